"""K-Means (k-means++, Lloyd), the reference workflow's method; k at the knee of the SSE curve.

Measured on two cores (docs/benchmarks.md): Lloyd beats Elkan with three features, and one
thread beats two at every size, so the fits run on one thread. Above :data:`SWEEP_SAMPLE`
customers the k sweep runs on a seeded sample and the chosen k is fitted on everyone from the
sample's centres (see :func:`custseg.cluster.fit_segments`).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from .base import CentroidState, Fit, Method, MethodName, nearest_center

__all__ = ["SAMPLE_RESTARTS", "SWEEP_SAMPLE", "KMeansMethod", "effective_n_init"]

#: Customers above which the k sweep runs on a seeded sample of this many.
SWEEP_SAMPLE = 50_000
#: K-Means restarts per k on that sample (at most; ``n_init`` when lower). The sample's fit is
#: a start: the chosen k is refitted on everyone from its centres. Measured in bench/bench.py
#: (sweep section, docs/benchmarks.md): the full sweep's knee at every seed tried and a final
#: SSE within 0.01% of it; fit_segments at ~376k customers took 7.4 CPU s (median) against 9.2
#: with ten restarts on the sample.
SAMPLE_RESTARTS = 3
# K-Means restarts cost rows x n_init per k. Above this many row-fits per k the restarts are
# lowered (never below 1): with the sweep on at most SWEEP_SAMPLE rows this only matters for
# fits on everyone without a start, e.g. a fixed k on a million customers.
_ROW_FIT_BUDGET = 1_000_000


def effective_n_init(n_init: int, n_rows: int) -> int:
    """n_init lowered so that rows x n_init stays within the per-k budget (never below 1)."""
    return max(1, min(n_init, _ROW_FIT_BUDGET // max(n_rows, 1)))


class KMeansMethod(Method):
    """K-Means on the scaled features."""

    name: ClassVar[MethodName] = "kmeans"
    auto_rule: ClassVar[str] = "knee"
    rules: ClassVar[tuple[str, ...]] = ("knee", "silhouette")
    sweep_limit: ClassVar[int | None] = SWEEP_SAMPLE

    def params(self) -> dict[str, Any]:
        return {"n_init": self.config.n_init, "init": "k-means++", "algorithm": "lloyd"}

    def on_sample(self) -> KMeansMethod:
        """At most :data:`SAMPLE_RESTARTS` restarts per k on the sweep's sample."""
        restarts = min(self.config.n_init, SAMPLE_RESTARTS)
        return (
            self
            if restarts == self.config.n_init
            else KMeansMethod(self.config.replace(n_init=restarts))
        )

    def fit(self, Z: np.ndarray, k: int, raw: np.ndarray, *, start: Fit | None = None) -> Fit:
        if k == 1:
            # One cluster is its mean; no restarts, no randomness.
            centers = Z.mean(axis=0, keepdims=True)
            labels = np.zeros(Z.shape[0], dtype=np.int64)
            return Fit(1, centers, CentroidState(), labels, {"sse": _inertia(Z, centers)})
        n_init = effective_n_init(self.config.n_init, Z.shape[0]) if start is None else 1
        centers, inertia, texts = _kmeans(
            Z,
            k,
            init=start.centers if start is not None else "k-means++",
            n_init=n_init,
            random_state=self.config.random_state,
        )
        notes = [f"k={k}: {t}" for t in texts]
        if start is None and n_init < self.config.n_init:
            notes.append(
                f"K-Means restarts lowered from {self.config.n_init} to {n_init} for "
                f"{Z.shape[0]:,} customers."
            )
        labels = nearest_center(Z, centers)
        return Fit(k, centers, CentroidState(), labels, {"sse": inertia}, tuple(notes))


def _inertia(Z: np.ndarray, centers: np.ndarray) -> float:
    return float(((Z - centers) ** 2).sum())


def _kmeans(
    Z: np.ndarray, k: int, *, init: Any, n_init: int, random_state: int | None
) -> tuple[np.ndarray, float, list[str]]:
    """Fit K-Means (Lloyd) on one thread; return centers, inertia and warning texts raised."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    km = KMeans(
        n_clusters=k, init=init, n_init=n_init, algorithm="lloyd", random_state=random_state
    )
    with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        km.fit(Z)
    texts = [str(w.message).split("\n")[0] for w in caught]
    return np.asarray(km.cluster_centers_, dtype=np.float64), float(km.inertia_), texts
