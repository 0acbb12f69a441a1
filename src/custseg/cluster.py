"""Outliers, transform, scaling, the k sweep and its selection, K-Means and canonical renumbering.

The method is the reference workflow's (docs/REFERENCE.md section 1), without its defects:

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

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .config import ClusterConfig, OutlierMethod
from .errors import ConfigError, EmptyDataError
from .model import (
    ClusterModel,
    KSelection,
    OutlierRule,
    as_float_matrix,
    features_matrix,
    nearest_center,
    standardize,
    transform_features,
)
from .schema import RFM_COLUMNS

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

#: The features clustered by default (the RFM columns; see :data:`custseg.schema.RFM_COLUMNS`).
FEATURES = RFM_COLUMNS

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


def _single_threaded_when_small(fn: Callable[..., _Sweep]) -> Callable[..., _Sweep]:
    """Run ``fn(X, ...)`` on one BLAS/OpenMP thread when X is small (see _SINGLE_THREAD_ROWS)."""

    @functools.wraps(fn)
    def wrapper(X: np.ndarray, *args: Any, **kwargs: Any) -> _Sweep:
        with threadpool_limits(limits=1 if X.shape[0] < _SINGLE_THREAD_ROWS else None):
            return fn(X, *args, **kwargs)

    return wrapper


def _kept_k(ks: Sequence[int], n_distinct: int) -> tuple[list[int], list[str]]:
    """The k that can be swept with ``n_distinct`` distinct rows, and notes on those dropped."""
    kept = [k for k in ks if k <= n_distinct]
    dropped = [k for k in ks if k > n_distinct]
    if not kept:
        return [n_distinct], [
            f"Every k asked ({_fmt_ks(ks)}) exceeds the {n_distinct} distinct customers; "
            f"swept k={n_distinct} only."
        ]
    if dropped:
        return kept, [
            f"Dropped k={_fmt_ks(dropped)} from the sweep: only {n_distinct} distinct customers."
        ]
    return kept, []


def _find_knee(ks: list[int], sse: list[float]) -> int | None:
    """The knee of a convex, decreasing SSE curve (kneed), or None."""
    if len(ks) < 3:
        return None
    try:
        with warnings.catch_warnings():
            # A flat SSE curve makes kneed divide 0 by 0: that is "no knee", not an error.
            warnings.simplefilter("ignore")
            from kneed import KneeLocator  # imports scipy.signal: 2 s, so only when used

            found = KneeLocator(ks, sse, curve="convex", direction="decreasing").knee
    except (ValueError, ZeroDivisionError, IndexError):
        return None
    return None if found is None else int(found)


def _choose_k(
    select: str, ks: list[int], knee: int | None, sil: list[float | None]
) -> tuple[Literal["knee", "silhouette"], int, str | None]:
    """How k was chosen, k, and a sentence when the choice fell back."""
    best_sil = _best_silhouette(ks, sil)
    if select == "knee" and knee is not None:
        return "knee", knee, None
    if select == "knee":
        why = "No knee in the SSE curve" if len(ks) >= 3 else "Too few k values for a knee"
        if best_sil is not None:
            return "silhouette", best_sil, f"{why}; took the best silhouette (k={best_sil})."
        return "silhouette", ks[0], f"{why} and no silhouette is defined; took k={ks[0]}."
    if best_sil is not None:
        return "silhouette", best_sil, None
    return "silhouette", ks[0], f"No silhouette is defined for the k swept; took k={ks[0]}."


def _scores(
    X: np.ndarray,
    labelings: list[np.ndarray],
    ks: list[int],
    n_distinct: int,
    config: ClusterConfig,
) -> tuple[list[float | None], list[float | None], list[float | None]]:
    """Silhouette (one seeded sample for all k), Calinski-Harabasz and Davies-Bouldin per k."""
    defined = [i for i, k in enumerate(ks) if 2 <= k < n_distinct]
    sil_defined = _silhouettes(
        X,
        [labelings[i] for i in defined],
        sample=config.silhouette_sample,
        random_state=config.random_state,
    )
    sil: list[float | None] = [None] * len(ks)
    ch: list[float | None] = [None] * len(ks)
    db: list[float | None] = [None] * len(ks)
    for i, s in zip(defined, sil_defined, strict=True):
        sil[i] = s
        ch[i], db[i] = _quality(X, labelings[i])
    return sil, ch, db


@_single_threaded_when_small
def _sweep(X: np.ndarray, config: ClusterConfig, *, n_distinct: int | None = None) -> _Sweep:
    """Run the k sweep on ``X`` (scaled) and choose k; keep the centers per k."""
    n = X.shape[0]
    if n == 0:
        raise EmptyDataError("No rows to cluster: the feature matrix is empty. Check the input.")
    n_distinct = _n_distinct(X) if n_distinct is None else n_distinct
    kept, notes = _kept_k(list(config.k_values), n_distinct)
    n_eff = _effective_n_init(config.n_init, n)
    if n_eff < config.n_init and any(k > 1 for k in kept):
        notes.append(
            f"K-Means restarts lowered from {config.n_init} to {n_eff} for {n:,} customers."
        )
    centers: dict[int, np.ndarray] = {}
    sse: list[float] = []
    labelings: list[np.ndarray] = []
    for k in kept:
        c, inertia, texts = _kmeans_centers(X, k, n_init=n_eff, random_state=config.random_state)
        centers[k] = c
        sse.append(inertia)
        labelings.append(nearest_center(X, c))
        notes.extend(f"k={k}: {t}" for t in texts)
    sil, ch, db = _scores(X, labelings, kept, n_distinct, config)
    knee = _find_knee(kept, sse)
    method, k, choice = _choose_k(config.select, kept, knee, sil)
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
    config = ClusterConfig(
        k_values=k_values,
        select=select,
        random_state=0 if random_state is None else random_state,
        n_init=n_init,
        silhouette_sample=silhouette_sample,
    )
    return _sweep(as_float_matrix(X), config).selection


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
    X_raw, features = features_matrix(X)
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
    Z = standardize(Xt, mean, scale)
    Zfit = Z[fit_mask]
    # Rows of Xs are sorted and the transform and scaling are increasing per column, so Zfit's
    # rows are sorted too (equal raw rows stay equal).
    n_distinct_fit = _n_distinct(Zfit, is_sorted=True)

    sweep = _sweep(Zfit, config, n_distinct=n_distinct_fit)
    selection = sweep.selection
    if config.k is not None:
        # The sweep is still reported, but no choice was made from it: drop that sentence.
        swept = " ".join(sweep.sweep_notes) or None
        selection = dataclasses.replace(selection, method="fixed", k=int(config.k), note=swept)
    k = selection.k
    if selection.note:
        notes.append(selection.note)
    if k in sweep.centers:
        centers = sweep.centers[k]
    else:
        n_eff = _effective_n_init(config.n_init, Zfit.shape[0])
        centers, _, texts = _kmeans_centers(Zfit, k, n_init=n_eff, random_state=config.random_state)
        notes.extend(f"k={k}: {t}" for t in texts)

    labels_s = nearest_center(Z, centers)
    perm = _canonical_order(Xs, labels_s, centers)
    centers = centers[perm]
    # Relabel against the reordered centers (not by remapping ids) so that a row exactly
    # between two centers goes where ClusterModel.predict sends it: the lower canonical id.
    labels_s = nearest_center(Z, centers)

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
