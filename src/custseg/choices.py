"""The named choices of the settings (typed literals), apart from their pydantic models.

:mod:`custseg.config` validates with them; the command line declares its options with them
without importing the models (``custseg --help`` answers before pydantic is loaded).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ClusterEngine",
    "ClusterMethod",
    "FrequencyUnit",
    "OutlierMethod",
    "Preset",
    "Returns",
    "SelectMethod",
    "TransformMethod",
]

OutlierMethod = Literal["zscore", "iqr", "none"]
#: What frequency counts: distinct ``orders`` (invoices; rows where the data has none) or
#: distinct calendar purchase ``days`` (the convention of lifetimes and pymc-marketing).
FrequencyUnit = Literal["orders", "days"]
#: What cancellation lines do to monetary: ``drop`` (left out, the default) or ``net``
#: (subtracted from their customer's monetary value).
Returns = Literal["drop", "net"]
TransformMethod = Literal["none", "log"]
#: How k is chosen: ``auto`` is the method's own rule (K-Means: knee of the SSE curve; Ward:
#: ``merge-gap``, the largest gap in the merge heights; Gaussian mixtures: lowest ``bic``);
#: ``backtest``: what the segments predict on the user's own data (see custseg.backtest).
SelectMethod = Literal["auto", "knee", "merge-gap", "bic", "silhouette", "backtest"]
ClusterMethod = Literal["kmeans", "hierarchical", "gmm", "rfm-scores"]
#: Where K-Means is fitted: on the driver (scikit-learn) or in Spark (MLlib, k-means||).
ClusterEngine = Literal["local", "spark"]
#: Named settings: ``default`` (evidence-chosen) or ``tutorial`` (the reference tutorial's).
Preset = Literal["default", "tutorial"]
