"""Clustering methods behind one interface.

Preprocessing is shared (:mod:`custseg.cluster`: transform, outlier rule, scaling, canonical
renumbering, assigning outliers); a method only has to

- fit on the scaled features for a given k (:meth:`Method.fit`), or for every k of a sweep
  (:meth:`Method.sweep`, which Ward overrides: one tree serves every k);
- say how it chooses k (:attr:`Method.auto_rule`: the knee of the SSE curve, the largest gap
  in the merge heights, the lowest BIC, or a rule table);
- predict new customers from its state, which round-trips through model.json (the state
  classes here are NumPy-only and light to import; the fitting code imports scikit-learn or
  SciPy only when it runs).

==============  =================================  ========================  ===============
method          fit                                chooses k by (auto)       predicts
==============  =================================  ========================  ===============
kmeans          K-Means, k-means++, Lloyd          knee of the SSE curve     nearest centre
hierarchical    Ward linkage (a sample above 20k)  largest merge-height gap  nearest centroid
gmm             Gaussian mixture, full covariance  lowest BIC                highest posterior
rfm-scores      R, F, M quintile (or quartile)     the rule table (fixed)    the score cell
                scores and a rule table of names
==============  =================================  ========================  ===============
"""

from __future__ import annotations

from .base import (
    METHOD_NAMES,
    CentroidState,
    Fit,
    Method,
    MethodName,
    get_method,
    nearest_center,
)

__all__ = [
    "METHOD_NAMES",
    "CentroidState",
    "Fit",
    "Method",
    "MethodName",
    "get_method",
    "nearest_center",
]
