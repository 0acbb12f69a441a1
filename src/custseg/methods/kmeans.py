"""K-Means (k-means++, Lloyd), the reference workflow's method; k at the knee of the SSE curve.

Measured on two cores (docs/benchmarks.md): Lloyd beats Elkan with three features, and one
thread beats two at every size, so each fit runs on one thread and a sweep fits its k values
side by side, one per core (:meth:`KMeansMethod.sweep`: the same fits, bit for bit). Above
:data:`SWEEP_SAMPLE` customers the k sweep runs on a seeded sample and the chosen k is fitted
on everyone from the sample's centres (see :func:`custseg.cluster.fit_segments`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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

    def sweep(self, Z: np.ndarray, ks: list[int], raw: np.ndarray) -> list[Fit]:
        """Every k fitted, one per core at a time: each fit is seeded and single-threaded,
        so the fits are those of a sweep in turn (scikit-learn's Lloyd loop releases the GIL)."""
        workers = min(len(ks), _cores())
        if workers < 2:
            return super().sweep(Z, ks, raw)
        from threadpoolctl import threadpool_limits

        # BLAS limits are process-wide: set once, here; OpenMP's are per thread (below).
        with (
            threadpool_limits(limits=1),
            _warnings_by_thread(),
            ThreadPoolExecutor(max_workers=workers) as pool,
        ):
            return list(pool.map(lambda k: self._fit_in_thread(Z, k, raw), ks))

    def _fit_in_thread(self, Z: np.ndarray, k: int, raw: np.ndarray) -> Fit:
        """A sweep thread's fit: one OpenMP thread, as a fit in turn has (a thread started
        here would otherwise use every core, and sum its centres in another order)."""
        from threadpoolctl import threadpool_limits

        _THREAD.in_sweep = True
        try:
            with threadpool_limits(limits=1, user_api="openmp"):
                return self.fit(Z, k, raw)
        finally:
            _THREAD.in_sweep = False

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
    if getattr(_THREAD, "in_sweep", False):  # limits set by the sweep; warnings kept per thread
        _THREAD.caught = []
        try:
            km.fit(Z)
        finally:
            messages, _THREAD.caught = _THREAD.caught, None
    else:
        with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            km.fit(Z)
        messages = [w.message for w in caught]
    texts = [str(m).split("\n")[0] for m in messages]
    return np.asarray(km.cluster_centers_, dtype=np.float64), float(km.inertia_), texts


# Per sweep thread: ``in_sweep``, and ``caught``, the warnings of the K-Means fit under way
# (catch_warnings is process-wide, not per thread).
_THREAD = threading.local()


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def _warnings_by_thread() -> Iterator[None]:
    """Inside: a warning shown while a thread's ``_THREAD.caught`` is a list is kept there (as
    ``catch_warnings(record=True)`` does for one thread), ConvergenceWarning always; any
    other warning is shown as before."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", ConvergenceWarning)
        shown = warnings.showwarning

        def keep(
            message: Any, category: Any, filename: str, lineno: int, *a: Any, **kw: Any
        ) -> None:
            caught = getattr(_THREAD, "caught", None)
            if caught is None:
                shown(message, category, filename, lineno, *a, **kw)
            else:
                caught.append(message)

        warnings.showwarning = keep
        yield
