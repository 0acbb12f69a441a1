"""Outliers, transform, scaling, the k sweep and its selection, K-Means and canonical renumbering.

The method is the reference workflow's (REFERENCE.md section 1), without its defects:

1. optionally ``log1p`` the R, F, M values;
2. flag outliers (|z| >= 3 on any feature by default) - they are left out of the fit, never out of
   the result: each is assigned to its nearest segment afterwards;
3. standardise with a scaler fitted on the non-outliers;
4. sweep K-Means (k-means++) over ``k_values``, recording SSE, silhouette, Calinski-Harabasz and
   Davies-Bouldin per k, and pick k at the knee of the SSE curve (kneed) or by silhouette;
5. fit the final model and renumber its clusters canonically (0 = highest mean monetary), so that
   cluster ids depend neither on the seed nor on the order of the rows.

Everything needed to score new customers the same way is kept in a :class:`ClusterModel`, which
round-trips through plain JSON (:meth:`ClusterModel.to_dict` / :meth:`ClusterModel.from_dict`).
"""

from __future__ import annotations

import functools
import math
import reprlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .config import ClusterConfig, OutlierMethod, TransformMethod
from .errors import ConfigError, EmptyDataError, InputError, ModelFileError, SchemaError

__all__ = [
    "FEATURES",
    "ClusterFit",
    "ClusterModel",
    "KSelection",
    "OutlierRule",
    "fit_outlier_rule",
    "fit_segments",
    "select_k",
    "transform_features",
]

FEATURES: tuple[str, str, str] = ("recency", "frequency", "monetary")

MODEL_FORMAT = "custseg-cluster-model"
MODEL_VERSION = 1

# K-Means restarts cost rows x n_init per k. Above this many row-fits per k the sweep lowers
# n_init (never below 1, scikit-learn's own default for k-means++): with a million customers the
# SSE surface is smooth and k-means++ restarts barely move the optimum, while ten of them would
# cost ~80 s for k = 1..10 on two cores. Up to 100,000 customers the requested n_init is used.
_ROW_FIT_BUDGET = 1_000_000

# Below this many rows the sweep runs on one thread (OpenMP and BLAS): an iteration over a few
# thousand rows is too short to pay for thread synchronisation, and on a busy machine (CI, shared
# servers) oversubscribed spinning threads made the 4,338-customer sweep ten times slower.
_SINGLE_THREAD_ROWS = 100_000

# Pairwise distances for the silhouette are computed in blocks of about this many floats (64 MB).
_SILHOUETTE_BLOCK = 8_000_000


# --------------------------------------------------------------------------------------------
# transform and outliers
# --------------------------------------------------------------------------------------------


def transform_features(X: np.ndarray, *, transform: TransformMethod) -> np.ndarray:
    """Apply the feature transform (a new array; ``X`` is not modified).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Raw feature values (recency, frequency, monetary for RFM).
    transform : {"none", "log"}
        ``"log"`` applies ``numpy.log1p``, which tames the long right tails of F and M.

    Returns
    -------
    ndarray of float64, same shape as ``X``.

    Raises
    ------
    ConfigError
        If ``transform`` is unknown, or ``"log"`` meets negative values.

    Examples
    --------
    >>> transform_features(np.array([[0.0, 1.0, 9.0]]), transform="log").round(3)
    array([[0.   , 0.693, 2.303]])
    """
    arr = np.array(X, dtype=np.float64, copy=True)
    if transform == "none":
        return arr
    if transform == "log":
        if arr.size and np.nanmin(arr) < 0:
            raise ConfigError(
                f"transform='log' needs non-negative values, found a minimum of "
                f"{float(np.nanmin(arr)):g}. Use transform='none' or shift the features first."
            )
        return np.log1p(arr)
    raise ConfigError(f"Unknown transform {transform!r}. Use none or log.")


@dataclass(frozen=True)
class OutlierRule:
    """Per-feature bounds in transformed space; a row is an outlier iff any value is on or beyond.

    A row is flagged when, for any feature ``j``, ``x[j] <= lower[j]`` or ``x[j] >= upper[j]``.
    Bounds of ``-inf`` / ``+inf`` never flag.

    Parameters
    ----------
    method : {"zscore", "iqr", "none"}
        The rule the bounds came from (see :func:`fit_outlier_rule`).
    lower, upper : tuple of float
        One bound per feature.
    """

    method: OutlierMethod
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    def flag(self, Xt: np.ndarray) -> np.ndarray:
        """Boolean mask of outlier rows of ``Xt`` (transformed features, same columns as fitted).

        Raises
        ------
        InputError
            If ``Xt`` does not have one column per bound.
        """
        arr = np.asarray(Xt, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != len(self.lower):
            raise InputError(
                f"Outlier rule expects {len(self.lower)} feature columns, got shape "
                f"{arr.shape}. Pass the same features the rule was fitted on."
            )
        lo = np.asarray(self.lower, dtype=np.float64)
        hi = np.asarray(self.upper, dtype=np.float64)
        mask: np.ndarray = np.any((arr <= lo) | (arr >= hi), axis=1)
        return mask

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; infinite bounds are written as ``null``."""
        return {
            "method": self.method,
            "lower": [None if math.isinf(v) else float(v) for v in self.lower],
            "upper": [None if math.isinf(v) else float(v) for v in self.upper],
        }


def fit_outlier_rule(
    Xt: np.ndarray,
    *,
    method: OutlierMethod,
    z_threshold: float = 3.0,
    iqr_factor: float = 3.0,
) -> OutlierRule:
    """Fit per-feature outlier bounds on transformed features.

    Parameters
    ----------
    Xt : ndarray of shape (n_samples, n_features)
        Transformed features (see :func:`transform_features`).
    method : {"zscore", "iqr", "none"}
        ``"zscore"``: outlier iff ``|x - mean| / std >= z_threshold`` on any feature, with the
        population std (ddof=0), as in the reference (``scipy.stats.zscore``).
        ``"iqr"``: outlier iff ``x < q1 - iqr_factor * IQR`` or ``x > q3 + iqr_factor * IQR``
        (strict; the bounds are stored one float step outside so that ``flag``'s ``<=`` / ``>=``
        test is exactly this strict one). ``"none"``: nothing is flagged.
    z_threshold, iqr_factor : float
        Positive thresholds.

    Returns
    -------
    OutlierRule

    Notes
    -----
    A feature without spread (std = 0 for zscore, IQR = 0 for iqr) gets infinite bounds: a spread
    of zero cannot measure distance, and it must not flag every customer who differs from the
    majority value.

    Raises
    ------
    EmptyDataError
        If ``Xt`` has no rows.
    ConfigError
        If ``method`` is unknown or a threshold is not positive.

    Examples
    --------
    >>> rule = fit_outlier_rule(np.array([[0.0], [2.0]]), method="zscore", z_threshold=1.0)
    >>> rule.lower, rule.upper
    ((0.0,), (2.0,))
    """
    arr = np.asarray(Xt, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise EmptyDataError(
            f"Cannot fit an outlier rule on an array of shape {arr.shape}. "
            "Pass at least one row of features."
        )
    d = arr.shape[1]
    inf = np.full(d, np.inf)
    if method == "none":
        return OutlierRule("none", tuple((-inf).tolist()), tuple(inf.tolist()))
    if method == "zscore":
        if not z_threshold > 0:
            raise ConfigError(f"z_threshold must be positive, got {z_threshold}. Use e.g. 3.")
        mean = arr.mean(axis=0)
        std = arr.std(axis=0)  # ddof=0, like scipy.stats.zscore
        flat = std == 0
        lower = np.where(flat, -np.inf, mean - z_threshold * std)
        upper = np.where(flat, np.inf, mean + z_threshold * std)
        return OutlierRule("zscore", tuple(lower.tolist()), tuple(upper.tolist()))
    if method == "iqr":
        if not iqr_factor > 0:
            raise ConfigError(f"iqr_factor must be positive, got {iqr_factor}. Use e.g. 3.")
        q1, q3 = np.quantile(arr, [0.25, 0.75], axis=0)
        iqr = q3 - q1
        flat = iqr == 0
        lower = np.where(flat, -np.inf, np.nextafter(q1 - iqr_factor * iqr, -np.inf))
        upper = np.where(flat, np.inf, np.nextafter(q3 + iqr_factor * iqr, np.inf))
        return OutlierRule("iqr", tuple(lower.tolist()), tuple(upper.tolist()))
    raise ConfigError(f"Unknown outlier method {method!r}. Use one of zscore, iqr, none.")


# --------------------------------------------------------------------------------------------
# k selection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KSelection:
    """The k sweep and the choice made from it.

    Parameters
    ----------
    method : {"knee", "silhouette", "fixed"}
        How ``k`` was chosen (``"fixed"``: given by the user; the sweep is still reported).
    k_values : list of int
        The k actually swept.
    sse : list of float
        K-Means inertia per k (scaled space).
    silhouette, calinski_harabasz, davies_bouldin : list of float or None
        Quality per k; ``None`` where undefined (k = 1, or k >= the number of distinct rows).
    knee : int or None
        The knee of the SSE curve found by kneed, if any.
    k : int
        The chosen number of clusters.
    note : str or None
        A sentence for humans when something was not as asked (no knee, k dropped, ...).
    """

    method: Literal["knee", "silhouette", "fixed"]
    k_values: list[int]
    sse: list[float]
    silhouette: list[float | None]
    calinski_harabasz: list[float | None]
    davies_bouldin: list[float | None]
    knee: int | None
    k: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``k_selection`` object of the summary (REFERENCE.md section 4), plus k and note."""
        return {
            "method": self.method,
            "k_values": [int(k) for k in self.k_values],
            "sse": [float(v) for v in self.sse],
            "silhouette": [_opt_float(v) for v in self.silhouette],
            "calinski_harabasz": [_opt_float(v) for v in self.calinski_harabasz],
            "davies_bouldin": [_opt_float(v) for v in self.davies_bouldin],
            "knee": None if self.knee is None else int(self.knee),
            "k": int(self.k),
            "note": self.note,
        }


@dataclass(frozen=True)
class _Sweep:
    """A sweep's selection plus the fitted centers per k, so the final fit can reuse them."""

    selection: KSelection
    centers: dict[int, np.ndarray]
    sweep_notes: tuple[str, ...]


def _opt_float(v: float | None) -> float | None:
    """float(v), or None for None / non-finite."""
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _n_distinct(X: np.ndarray, *, is_sorted: bool = False) -> int:
    """Number of distinct rows (one lexsort, or a linear scan if rows are already sorted)."""
    if X.shape[0] == 0:
        return 0
    Xs = X if is_sorted else X[np.lexsort(X.T[::-1])]
    return 1 + int(np.any(Xs[1:] != Xs[:-1], axis=1).sum())


def _effective_n_init(n_init: int, n_rows: int) -> int:
    """n_init lowered so that rows x n_init stays within the per-k budget (never below 1)."""
    return max(1, min(n_init, _ROW_FIT_BUDGET // max(n_rows, 1)))


def _kmeans_centers(
    X: np.ndarray, k: int, *, n_init: int, random_state: int | None
) -> tuple[np.ndarray, float, list[str]]:
    """Fit K-Means (k-means++, Lloyd); return centers, inertia and warning texts raised."""
    if k == 1:
        # One cluster is its mean; no restarts, no randomness.
        center = X.mean(axis=0, keepdims=True)
        return center, float(((X - center) ** 2).sum()), []
    # Lloyd rather than Elkan: with 3 features Elkan's bounds cost more than they save.
    km = KMeans(
        n_clusters=k,
        init="k-means++",
        n_init=n_init,
        algorithm="lloyd",
        random_state=random_state,
    )
    limits = 1 if X.shape[0] < _SINGLE_THREAD_ROWS else None
    with (
        threadpool_limits(limits=limits),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", ConvergenceWarning)
        km.fit(X)
    texts = [str(w.message).split("\n")[0] for w in caught]
    return np.asarray(km.cluster_centers_, dtype=np.float64), float(km.inertia_), texts


def _nearest(Z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center per row (ties: the lower index)."""
    if Z.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    d2 = cdist(Z, centers, metric="sqeuclidean")
    return np.asarray(np.argmin(d2, axis=1), dtype=np.int64)


def _silhouettes(
    X: np.ndarray,
    labelings: Sequence[np.ndarray],
    *,
    sample: int,
    random_state: int | None,
) -> list[float | None]:
    """Mean silhouette of each labelling on one seeded sample of at most ``sample`` rows.

    Same sample and definition as ``sklearn.metrics.silhouette_score(X, labels,
    sample_size=sample, random_state=random_state)``, but one pass of exact (cdist) distances
    serves every labelling, and the per-cluster sums are one matrix product instead of a Python
    loop over rows (scikit-learn takes ~1.5 s per k on 10,000 rows, this ~1 s for the whole
    sweep).
    """
    n = X.shape[0]
    if not labelings:
        return []
    if n > sample:
        idx = np.random.RandomState(random_state).permutation(n)[:sample]
        S = X[idx]
        labs = [np.asarray(lab)[idx] for lab in labelings]
    else:
        S = X
        labs = [np.asarray(lab) for lab in labelings]
    m = S.shape[0]
    encoded = [np.unique(lab, return_inverse=True)[1].ravel() for lab in labs]
    sizes = [int(e.max()) + 1 for e in encoded]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    onehot = np.zeros((m, int(offsets[-1])))
    for e, off in zip(encoded, offsets[:-1], strict=True):
        onehot[np.arange(m), off + e] = 1.0
    sums = np.empty((m, onehot.shape[1]))
    sq_norms = (S**2).sum(axis=1)[np.newaxis, :]
    block = max(1, _SILHOUETTE_BLOCK // max(m, 1))
    for start in range(0, m, block):
        dist = euclidean_distances(S[start : start + block], S, Y_norm_squared=sq_norms)
        # The dot-product formula leaves tiny non-zeros on the diagonal; sklearn zeroes them.
        stop = min(start + block, m)
        dist[np.arange(stop - start), np.arange(start, stop)] = 0.0
        sums[start : start + block] = dist @ onehot
    out: list[float | None] = []
    rows = np.arange(m)
    for e, size, off in zip(encoded, sizes, offsets[:-1], strict=True):
        if not 2 <= size <= m - 1:
            out.append(None)
            continue
        counts = np.bincount(e, minlength=size).astype(np.float64)
        per = sums[:, off : off + size]
        own_n = counts[e]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = per[rows, e] / (own_n - 1)
            means = per / counts
            means[rows, e] = np.inf
            b = means.min(axis=1)
            s = (b - a) / np.maximum(a, b)
        s = np.where(own_n > 1, np.nan_to_num(s), 0.0)
        out.append(float(s.mean()))
    return out


def _quality(X: np.ndarray, labels: np.ndarray) -> tuple[float | None, float | None]:
    """Calinski-Harabasz and Davies-Bouldin on all rows (None if fewer than 2 clusters).

    The same formulas as ``sklearn.metrics.calinski_harabasz_score`` and
    ``davies_bouldin_score``, computed with bincounts: O(n) instead of per-cluster distance
    matrices, which matters at a million rows times ten k.
    """
    present, lab = np.unique(labels, return_inverse=True)
    lab = lab.ravel()
    k, n = len(present), X.shape[0]
    if k < 2 or k >= n:
        return None, None
    counts = np.bincount(lab, minlength=k).astype(np.float64)
    cent = (
        np.stack(
            [np.bincount(lab, weights=X[:, j], minlength=k) for j in range(X.shape[1])], axis=1
        )
        / counts[:, np.newaxis]
    )
    sq = ((X - cent[lab]) ** 2).sum(axis=1)
    within = float(sq.sum())
    between = float((counts * ((cent - X.mean(axis=0)) ** 2).sum(axis=1)).sum())
    ch = 1.0 if within == 0.0 else between * (n - k) / (within * (k - 1.0))
    intra = np.bincount(lab, weights=np.sqrt(sq), minlength=k) / counts
    cdists = cdist(cent, cent)
    if np.allclose(intra, 0) or np.allclose(cdists, 0):
        db = 0.0
    else:
        cdists[cdists == 0] = np.inf
        db = float(np.mean(np.max((intra[:, np.newaxis] + intra) / cdists, axis=1)))
    return _opt_float(ch), _opt_float(db)


def _fmt_ks(ks: Sequence[int]) -> str:
    """'7' or '7, 8 and 9'."""
    items = [str(k) for k in ks]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _best_silhouette(k_values: Sequence[int], sil: Sequence[float | None]) -> int | None:
    """k with the highest defined silhouette (ties: the smaller k), or None."""
    best: tuple[float, int] | None = None
    for k, s in zip(k_values, sil, strict=True):
        if s is not None and (best is None or s > best[0]):
            best = (s, k)
    return None if best is None else best[1]


def _validate_k_values(k_values: Sequence[int]) -> list[int]:
    """Checked list of candidate k."""
    ks = list(k_values)
    if (
        not ks
        or any(isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1 for k in ks)
        or ks != sorted(set(ks))
    ):
        raise ConfigError(
            f"k_values must be increasing positive integers without repeats, got "
            f"{reprlib.repr(ks)}. Example: k_values=range(1, 11)."
        )
    return [int(k) for k in ks]


def _single_threaded_when_small(fn: Callable[..., _Sweep]) -> Callable[..., _Sweep]:
    """Run ``fn(X, ...)`` on one BLAS/OpenMP thread when X is small (see _SINGLE_THREAD_ROWS)."""

    @functools.wraps(fn)
    def wrapper(X: np.ndarray, **kwargs: Any) -> _Sweep:
        with threadpool_limits(limits=1 if X.shape[0] < _SINGLE_THREAD_ROWS else None):
            return fn(X, **kwargs)

    return wrapper


@_single_threaded_when_small
def _sweep(
    X: np.ndarray,
    *,
    k_values: Sequence[int],
    select: str,
    random_state: int | None,
    n_init: int,
    silhouette_sample: int,
    n_distinct: int | None = None,
) -> _Sweep:
    """Run the k sweep on ``X`` (scaled) and choose k; keep the centers per k."""
    ks = _validate_k_values(k_values)
    if select not in ("knee", "silhouette"):
        raise ConfigError(f"Unknown selection {select!r}. Use knee or silhouette.")
    if isinstance(n_init, bool) or not isinstance(n_init, int | np.integer) or n_init < 1:
        raise ConfigError(f"n_init must be an integer of at least 1, got {n_init!r}.")
    if (
        isinstance(silhouette_sample, bool)
        or not isinstance(silhouette_sample, int | np.integer)
        or silhouette_sample < 2
    ):
        raise ConfigError(
            f"silhouette_sample must be an integer of at least 2, got {silhouette_sample!r}."
        )
    n = X.shape[0]
    if n == 0:
        raise EmptyDataError("No rows to cluster: the feature matrix is empty. Check the input.")
    notes: list[str] = []
    if n_distinct is None:
        n_distinct = _n_distinct(X)
    kept = [k for k in ks if k <= n_distinct]
    dropped = [k for k in ks if k > n_distinct]
    if not kept:
        kept = [n_distinct]
        notes.append(
            f"Every k asked ({_fmt_ks(ks)}) exceeds the {n_distinct} distinct customers; "
            f"swept k={n_distinct} only."
        )
    elif dropped:
        notes.append(
            f"Dropped k={_fmt_ks(dropped)} from the sweep: only {n_distinct} distinct customers."
        )
    n_eff = _effective_n_init(int(n_init), n)
    if n_eff < n_init and any(k > 1 for k in kept):
        notes.append(f"K-Means restarts lowered from {n_init} to {n_eff} for {n:,} customers.")

    centers: dict[int, np.ndarray] = {}
    sse: list[float] = []
    labelings: list[np.ndarray] = []
    for k in kept:
        c, inertia, texts = _kmeans_centers(X, k, n_init=n_eff, random_state=random_state)
        centers[k] = c
        sse.append(inertia)
        labelings.append(_nearest(X, c))
        notes.extend(f"k={k}: {t}" for t in texts)

    defined = [i for i, k in enumerate(kept) if 2 <= k < n_distinct]
    sil_defined = _silhouettes(
        X,
        [labelings[i] for i in defined],
        sample=int(silhouette_sample),
        random_state=random_state,
    )
    sil: list[float | None] = [None] * len(kept)
    ch: list[float | None] = [None] * len(kept)
    db: list[float | None] = [None] * len(kept)
    for i, s in zip(defined, sil_defined, strict=True):
        sil[i] = s
        ch[i], db[i] = _quality(X, labelings[i])

    knee: int | None = None
    if len(kept) >= 3:
        try:
            with warnings.catch_warnings():
                # A flat SSE curve makes kneed divide 0 by 0: that is "no knee", not an error.
                warnings.simplefilter("ignore")
                from kneed import KneeLocator  # imports scipy.signal: 2 s, so only when used

                found = KneeLocator(kept, sse, curve="convex", direction="decreasing").knee
            knee = None if found is None else int(found)
        except (ValueError, ZeroDivisionError, IndexError):
            knee = None

    method: Literal["knee", "silhouette"]
    choice: str | None = None
    best_sil = _best_silhouette(kept, sil)
    if select == "knee" and knee is not None:
        method, k = "knee", knee
    elif select == "knee":
        method = "silhouette"
        why = "No knee in the SSE curve" if len(kept) >= 3 else "Too few k values for a knee"
        if best_sil is not None:
            k = best_sil
            choice = f"{why}; took the best silhouette (k={k})."
        else:
            k = kept[0]
            choice = f"{why} and no silhouette is defined; took k={k}."
    else:
        method = "silhouette"
        if best_sil is not None:
            k = best_sil
        else:
            k = kept[0]
            choice = f"No silhouette is defined for the k swept; took k={k}."
    all_notes = ([choice] if choice else []) + notes
    selection = KSelection(
        method=method,
        k_values=kept,
        sse=sse,
        silhouette=sil,
        calinski_harabasz=ch,
        davies_bouldin=db,
        knee=knee,
        k=k,
        note=" ".join(all_notes) if all_notes else None,
    )
    return _Sweep(selection=selection, centers=centers, sweep_notes=tuple(notes))


def select_k(
    X: np.ndarray,
    *,
    k_values: Sequence[int],
    select: Literal["knee", "silhouette"] = "knee",
    random_state: int | None = 0,
    n_init: int = 10,
    silhouette_sample: int = 10_000,
) -> KSelection:
    """Sweep K-Means over ``k_values`` and choose k.

    For each k, K-Means (k-means++, Lloyd, ``n_init`` restarts, seeded) is fitted on all rows;
    SSE is its inertia, the silhouette is computed on a seeded sample of at most
    ``silhouette_sample`` rows, Calinski-Harabasz and Davies-Bouldin on all rows. The knee of the
    SSE curve is located with ``kneed.KneeLocator(curve="convex", direction="decreasing")``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Features as clustered (already transformed and scaled).
    k_values : sequence of int
        Increasing candidate k. Values above the number of distinct rows are dropped (noted).
    select : {"knee", "silhouette"}
        Take the knee (falling back to the best silhouette when there is none, or with fewer
        than 3 k values: the ``note`` says so) or the best silhouette.
    random_state : int or None
        Seed for K-Means and for the silhouette sample.
    n_init : int
        K-Means restarts per k. Lowered (never below 1) when rows x n_init exceeds one million,
        so that a million customers sweep in about ten seconds; the note says so.
    silhouette_sample : int
        Largest number of rows the silhouette is computed on.

    Returns
    -------
    KSelection

    Raises
    ------
    EmptyDataError
        If ``X`` has no rows.
    ConfigError
        If an option is invalid.

    Examples
    --------
    >>> X = np.array([[0.0, 0], [0, 1], [10, 10], [10, 11], [20, 0], [20, 1]])
    >>> select_k(X, k_values=[1, 2, 3, 4], select="silhouette").k
    3
    """
    arr = _as_float_matrix(X)
    return _sweep(
        arr,
        k_values=k_values,
        select=select,
        random_state=random_state,
        n_init=n_init,
        silhouette_sample=silhouette_sample,
    ).selection


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------


def _as_float_matrix(X: Any) -> np.ndarray:
    """A 2-D float64 array of finite values (InputError otherwise)."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            "The features are not all numeric. Pass numbers for recency, frequency, monetary."
        ) from None
    if arr.ndim != 2:
        raise InputError(
            f"Expected a 2-D table of features, got an array of shape {arr.shape}. "
            "Pass one row per customer."
        )
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise InputError(
            f"The features hold {bad} missing or infinite value(s). Drop or fill them first."
        )
    return arr


def _features_matrix(
    X: np.ndarray | pd.DataFrame, features: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Features as a float matrix and their names (RFM columns of a DataFrame, or array columns)."""
    if isinstance(X, pd.DataFrame):
        want = tuple(features) if features is not None else FEATURES
        missing = [c for c in want if c not in X.columns]
        if missing:
            raise SchemaError(
                f"Missing feature column(s) {missing}: found {[str(c) for c in X.columns]}. "
                f"Pass a table with columns {list(want)}."
            )
        try:
            values = X.loc[:, list(want)].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise InputError(
                f"Feature columns {list(want)} are not all numeric: dtypes "
                f"{[str(t) for t in X.loc[:, list(want)].dtypes]}. Convert them to numbers."
            ) from None
        return _as_float_matrix(values), want
    arr = _as_float_matrix(X)
    if features is not None:
        if arr.shape[1] != len(features):
            raise InputError(
                f"Expected {len(features)} feature columns ({', '.join(features)}), got "
                f"{arr.shape[1]}. Pass the columns in that order."
            )
        return arr, tuple(features)
    names = FEATURES if arr.shape[1] == 3 else tuple(f"x{i}" for i in range(arr.shape[1]))
    return arr, names


def _scale(Xt: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Standardise with a fitted mean and scale (the one formula used at fit and predict)."""
    return (Xt - mean) / scale


@dataclass(frozen=True)
class ClusterModel:
    """Everything needed to score new customers the way the fit did.

    Parameters
    ----------
    features : tuple of str
        Feature names, in column order.
    transform : {"none", "log"}
        Transform applied before outlier detection and scaling.
    outlier_rule : OutlierRule
        Bounds in transformed space.
    scaler_mean, scaler_scale : tuple of float
        Standardisation fitted on the non-outliers (transformed space).
    centers : tuple of tuple of float
        k cluster centers in scaled space, in canonical order.
    k : int
        Number of clusters.
    random_state : int or None
        The seed the model was fitted with.

    Examples
    --------
    >>> fit = fit_segments(np.array([[1.0, 1, 10], [2, 1, 12], [300, 1, 5]]),
    ...                    config=ClusterConfig(k=2))
    >>> labels, outlier = fit.model.predict(np.array([[5.0, 1, 11]]))
    >>> int(labels[0]), bool(outlier[0])
    (0, False)
    """

    features: tuple[str, ...]
    transform: TransformMethod
    outlier_rule: OutlierRule
    scaler_mean: tuple[float, ...]
    scaler_scale: tuple[float, ...]
    centers: tuple[tuple[float, ...], ...]
    k: int
    random_state: int | None = 0

    def scaled(self, X_raw: np.ndarray | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Scaled features and the outlier mask for raw features ``X_raw``."""
        arr, _ = _features_matrix(X_raw, self.features)
        Xt = transform_features(arr, transform=self.transform)
        outlier = self.outlier_rule.flag(Xt)
        Z = _scale(Xt, np.asarray(self.scaler_mean), np.asarray(self.scaler_scale))
        return Z, outlier

    def predict(self, X_raw: np.ndarray | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Cluster and outlier flag for each row of raw features.

        Parameters
        ----------
        X_raw : ndarray of shape (n_samples, n_features) or DataFrame
            Raw features in ``features`` order, or a DataFrame with those columns.

        Returns
        -------
        labels : ndarray of int64
            Nearest center (canonical cluster id).
        outlier : ndarray of bool
            Whether the row is beyond the outlier bounds.

        Raises
        ------
        InputError
            If the features are missing, not numeric or not finite.
        """
        Z, outlier = self.scaled(X_raw)
        return _nearest(Z, np.asarray(self.centers, dtype=np.float64)), outlier

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (lists, str, float, int, None; infinite bounds as null)."""
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "features": list(self.features),
            "transform": self.transform,
            "outliers": self.outlier_rule.to_dict(),
            "scaler_mean": [float(v) for v in self.scaler_mean],
            "scaler_scale": [float(v) for v in self.scaler_scale],
            "centers": [[float(v) for v in row] for row in self.centers],
            "k": int(self.k),
            "random_state": None if self.random_state is None else int(self.random_state),
        }

    @classmethod
    def from_dict(cls, d: Any) -> ClusterModel:
        """Rebuild a model from :meth:`to_dict` output, validating every field.

        Raises
        ------
        ModelFileError
            On anything that is not a well-formed custseg cluster model (wrong type, shape,
            non-finite number, unknown key); the message is one line.
        """
        return _model_from_dict(d)


def _bad(what: str, value: Any) -> ModelFileError:
    """A one-line ModelFileError about one field."""
    seen = reprlib.repr(value).replace("\n", " ")
    return ModelFileError(
        f"Invalid cluster model: {what}, got {seen}. Re-create the model file with custseg run."
    )


def _number(v: Any, *, allow_null_as: float | None = None) -> float:
    """A finite float from a JSON number (bools rejected); null maps to ``allow_null_as``."""
    if v is None and allow_null_as is not None:
        return allow_null_as
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError
    f = float(v)
    if not math.isfinite(f):
        raise TypeError
    return f


def _numbers(
    d: Mapping[str, Any], key: str, n: int, *, null_as: float | None = None
) -> tuple[float, ...]:
    """A list of exactly n numbers under ``key``."""
    v = d.get(key)
    if not isinstance(v, list) or len(v) != n:
        raise _bad(f"{key!r} must be a list of {n} numbers", v)
    try:
        return tuple(_number(x, allow_null_as=null_as) for x in v)
    except (TypeError, OverflowError):
        what = "numbers or null" if null_as is not None else "finite numbers"
        raise _bad(f"{key!r} must hold {what}", v) from None


def _model_from_dict(d: Any) -> ClusterModel:
    """Validate and build (see ClusterModel.from_dict)."""
    if not isinstance(d, dict):
        raise _bad("expected a JSON object", type(d).__name__)
    required = {
        "format", "version", "features", "transform", "outliers", "scaler_mean",
        "scaler_scale", "centers", "k", "random_state",
    }  # fmt: skip
    missing = sorted(required - set(d))
    unknown = sorted(str(x) for x in set(d) - required)
    if missing:
        raise _bad(f"missing key(s) {missing}", sorted(str(x) for x in d))
    if unknown:
        raise _bad("unknown key(s)", unknown)
    if d["format"] != MODEL_FORMAT:
        raise _bad(f"'format' must be {MODEL_FORMAT!r}", d["format"])
    if d["version"] != MODEL_VERSION or isinstance(d["version"], bool):
        raise _bad(f"'version' must be {MODEL_VERSION}", d["version"])
    feats = d["features"]
    if (
        not isinstance(feats, list)
        or not feats
        or not all(isinstance(f, str) and f for f in feats)
        or len(set(feats)) != len(feats)
    ):
        raise _bad("'features' must be a non-empty list of distinct names", feats)
    n = len(feats)
    if d["transform"] not in ("none", "log"):
        raise _bad("'transform' must be 'none' or 'log'", d["transform"])
    out = d["outliers"]
    if not isinstance(out, dict) or set(out) != {"method", "lower", "upper"}:
        raise _bad("'outliers' must be an object with method, lower, upper", out)
    if out["method"] not in ("zscore", "iqr", "none"):
        raise _bad("'outliers.method' must be zscore, iqr or none", out["method"])
    lower = _numbers(out, "lower", n, null_as=-math.inf)
    upper = _numbers(out, "upper", n, null_as=math.inf)
    if any(lo > hi for lo, hi in zip(lower, upper, strict=True)):
        raise _bad("outlier bounds must have lower <= upper", out)
    mean = _numbers(d, "scaler_mean", n)
    scale = _numbers(d, "scaler_scale", n)
    if any(s <= 0 for s in scale):
        raise _bad("'scaler_scale' must be positive", d["scaler_scale"])
    k = d["k"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise _bad("'k' must be a positive integer", k)
    raw_centers = d["centers"]
    if not isinstance(raw_centers, list) or len(raw_centers) != k:
        raise _bad(f"'centers' must be a list of k={k} rows", raw_centers)
    centers = tuple(_numbers({"centers": row}, "centers", n) for row in raw_centers)
    rs = d["random_state"]
    if rs is not None and (isinstance(rs, bool) or not isinstance(rs, int)):
        raise _bad("'random_state' must be an integer or null", rs)
    return ClusterModel(
        features=tuple(feats),
        transform=d["transform"],
        outlier_rule=OutlierRule(out["method"], lower, upper),
        scaler_mean=mean,
        scaler_scale=scale,
        centers=centers,
        k=k,
        random_state=rs,
    )


# --------------------------------------------------------------------------------------------
# the fit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterFit:
    """The result of :func:`fit_segments`.

    Parameters
    ----------
    model : ClusterModel
        The fitted model (canonical cluster order).
    labels : ndarray of int64
        Cluster of every row, outliers included (assigned to the nearest center).
    outlier : ndarray of bool
        Outlier flag of every row.
    selection : KSelection
        The k sweep and the choice of k.
    metrics : dict
        ``silhouette``, ``calinski_harabasz``, ``davies_bouldin`` of the final model on the
        fitted rows (None where undefined).
    notes : tuple of str
        Sentences about fallbacks taken (for the pipeline to warn with or report).
    """

    model: ClusterModel
    labels: np.ndarray
    outlier: np.ndarray
    selection: KSelection
    metrics: dict[str, float | None]
    notes: tuple[str, ...] = field(default=())


def _canonical_order(X_raw: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Old cluster ids in canonical order: highest mean of the last feature (monetary) first,
    then lower mean of the first (recency), then the other means, then the centers."""
    k = centers.shape[0]
    keys = []
    for c in range(k):
        members = X_raw[labels == c]
        means = members.mean(axis=0) if len(members) else np.full(X_raw.shape[1], np.nan)
        # Empty clusters (only possible through float ties) sort last.
        means = np.where(np.isnan(means), -np.inf, means)
        first = means[0] if means[0] != -np.inf else np.inf
        keys.append((-means[-1], first, *(-means[1:-1]), *centers[c], c))
    return np.array(sorted(range(k), key=lambda c: keys[c]), dtype=np.int64)


def fit_segments(X: np.ndarray | pd.DataFrame, *, config: ClusterConfig) -> ClusterFit:
    """Cluster customers by the reference method, made robust and deterministic.

    Steps: transform; flag outliers; fit a StandardScaler on the non-outliers; sweep k over
    ``config.k_values`` and choose k (``config.k`` fixes it: method ``"fixed"``, the sweep is
    still reported); fit K-Means on the non-outliers; assign every row, outliers included, to
    its nearest center; renumber clusters canonically (0 = highest mean monetary of its members
    in raw units, ties by lower mean recency), so ids depend neither on the seed nor on row
    order. Rows are sorted internally before fitting, so shuffling the input gives the same
    clusters per customer.

    Parameters
    ----------
    X : DataFrame with recency, frequency, monetary columns, or ndarray (n_samples, n_features)
        Raw features (an array with 3 columns is taken as R, F, M in that order; other widths
        are clustered as generic features, canonical order using the last and first columns).
    config : ClusterConfig
        Outlier rule, transform, k or k_values, selection, seed, restarts, silhouette sample.

    Returns
    -------
    ClusterFit

    Raises
    ------
    EmptyDataError
        If there are no rows.
    ConfigError
        If ``config.k`` exceeds the number of distinct customers, or ``log`` meets negatives.
    InputError
        If the features are missing, not numeric or not finite.

    Notes
    -----
    If fewer than 2 customers are not outliers (or fewer distinct ones than a fixed k), the
    model is fitted on all customers and ``notes`` says so.

    Examples
    --------
    >>> X = np.array([[5.0, 10, 5000], [7, 9, 4000], [300, 1, 50], [280, 1, 60]])
    >>> fit = fit_segments(X, config=ClusterConfig(k=2, outliers="none"))
    >>> fit.labels.tolist()
    [0, 0, 1, 1]
    """
    X_raw, features = _features_matrix(X)
    n = X_raw.shape[0]
    if n == 0:
        raise EmptyDataError(
            "No customers to segment: the feature table has 0 rows. Check the input and filters."
        )
    # A canonical row order makes K-Means (whose k-means++ draws depend on row order) and the
    # silhouette sample independent of how the input happened to be sorted.
    order = np.lexsort(X_raw.T[::-1])
    Xs = X_raw[order]
    n_distinct = _n_distinct(Xs, is_sorted=True)
    if config.k is not None and config.k > n_distinct:
        raise ConfigError(
            f"k={config.k} is more than the {n_distinct} distinct customer(s) in the data. "
            f"Pass a k of at most {n_distinct}, or let k be chosen."
        )

    Xt = transform_features(Xs, transform=config.transform)
    rule = fit_outlier_rule(
        Xt, method=config.outliers, z_threshold=config.z_threshold, iqr_factor=config.iqr_factor
    )
    outlier = rule.flag(Xt)
    fit_mask = ~outlier
    notes: list[str] = []
    n_fit = int(fit_mask.sum())
    if n_fit < n and n_fit < 2:
        notes.append(
            f"{n - n_fit} of {n} customers are outliers, leaving {n_fit}; "
            "fitted on all customers instead."
        )
        fit_mask = np.ones(n, dtype=bool)
    elif (
        config.k is not None and n_fit < n and _n_distinct(Xs[fit_mask], is_sorted=True) < config.k
    ):
        notes.append(
            f"Fewer than k={config.k} distinct customers are not outliers; "
            "fitted on all customers instead."
        )
        fit_mask = np.ones(n, dtype=bool)

    scaler = StandardScaler().fit(Xt[fit_mask])
    mean = np.asarray(scaler.mean_, dtype=np.float64)
    scale = np.asarray(scaler.scale_, dtype=np.float64)
    Z = _scale(Xt, mean, scale)
    Zfit = Z[fit_mask]
    # Rows of Xs are sorted and the transform and scaling are increasing per column, so Zfit's
    # rows are sorted too (equal raw rows stay equal).
    n_distinct_fit = _n_distinct(Zfit, is_sorted=True)

    sweep = _sweep(
        Zfit,
        k_values=config.k_values,
        select=config.select,
        random_state=config.random_state,
        n_init=config.n_init,
        silhouette_sample=config.silhouette_sample,
        n_distinct=n_distinct_fit,
    )
    selection = sweep.selection
    if config.k is not None:
        # The sweep is still reported, but no choice was made from it: drop that sentence.
        swept = " ".join(sweep.sweep_notes) or None
        selection = replace(selection, method="fixed", k=int(config.k), note=swept)
    k = selection.k
    if selection.note:
        notes.append(selection.note)
    if k in sweep.centers:
        centers = sweep.centers[k]
    else:
        n_eff = _effective_n_init(config.n_init, Zfit.shape[0])
        centers, _, texts = _kmeans_centers(Zfit, k, n_init=n_eff, random_state=config.random_state)
        notes.extend(f"k={k}: {t}" for t in texts)

    labels_s = _nearest(Z, centers)
    perm = _canonical_order(Xs, labels_s, centers)
    centers = centers[perm]
    # Relabel against the reordered centers (not by remapping ids) so that a row exactly
    # between two centers goes where ClusterModel.predict sends it: the lower canonical id.
    labels_s = _nearest(Z, centers)

    metrics: dict[str, float | None] = {
        "silhouette": None,
        "calinski_harabasz": None,
        "davies_bouldin": None,
    }
    if k in selection.k_values:
        # Same partition as in the sweep (the metrics do not depend on the numbering).
        i = selection.k_values.index(k)
        metrics["silhouette"] = selection.silhouette[i]
        metrics["calinski_harabasz"] = selection.calinski_harabasz[i]
        metrics["davies_bouldin"] = selection.davies_bouldin[i]
    elif 2 <= k < n_distinct_fit:
        fit_labels = labels_s[fit_mask]
        metrics["silhouette"] = _silhouettes(
            Zfit, [fit_labels], sample=config.silhouette_sample, random_state=config.random_state
        )[0]
        metrics["calinski_harabasz"], metrics["davies_bouldin"] = _quality(Zfit, fit_labels)

    labels = np.empty(n, dtype=np.int64)
    labels[order] = labels_s
    outlier_out = np.empty(n, dtype=bool)
    outlier_out[order] = outlier
    model = ClusterModel(
        features=features,
        transform=config.transform,
        outlier_rule=rule,
        scaler_mean=tuple(mean.tolist()),
        scaler_scale=tuple(scale.tolist()),
        centers=tuple(tuple(row) for row in centers.tolist()),
        k=k,
        random_state=config.random_state,
    )
    return ClusterFit(
        model=model,
        labels=labels,
        outlier=outlier_out,
        selection=selection,
        metrics=metrics,
        notes=tuple(notes),
    )
