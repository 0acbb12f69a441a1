"""Shared preprocessing, the k sweep and its selection, and canonical renumbering.

The method is the reference workflow's (docs/REFERENCE.md section 1), without its defects, for
any clustering method of :mod:`custseg.methods`:

1. optionally ``log1p`` the R, F, M values;
2. flag outliers (|z| >= 3 on any feature by default) - they are left out of the fit, never out of
   the result: each is assigned afterwards by the method's own prediction (nearest centre,
   most likely component; RFM scores rank everyone, outliers included);
3. standardise with a scaler fitted on the non-outliers;
4. sweep k over ``k_values`` (above the method's sweep limit, on a seeded sample), recording
   SSE, silhouette, Calinski-Harabasz and Davies-Bouldin per k and the method's own figure
   (merge heights, BIC), and choose k by the method's rule, the silhouette, or a fixed k;
5. fit the chosen k on every non-outlier (from the sample's solution when the sweep was
   sampled) and renumber the segments canonically (0 = highest mean monetary), so that ids
   depend neither on the seed nor on the order of the rows.

Everything needed to score new customers the same way is kept in a
:class:`custseg.model.ClusterModel`, which round-trips through plain JSON.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .config import ClusterConfig, OutlierMethod
from .errors import ConfigError, EmptyDataError
from .methods import Fit, Method, get_method
from .metrics import n_distinct, quality, segmentation_metrics, silhouettes
from .model import (
    ClusterModel,
    KSelection,
    OutlierRule,
    as_float_matrix,
    features_matrix,
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
        # ddof=0, like scipy.stats.zscore
        return zscore_rule(arr.mean(axis=0), arr.std(axis=0), z_threshold)
    if method == "iqr":
        if not iqr_factor > 0:
            raise ConfigError(f"iqr_factor must be positive, got {iqr_factor}. Use e.g. 3.")
        q1, q3 = np.quantile(arr, [0.25, 0.75], axis=0)
        return iqr_rule(q1, q3, iqr_factor)
    raise ConfigError(f"Unknown outlier method {method!r}. Use one of zscore, iqr, none.")


def zscore_rule(mean: np.ndarray, std: np.ndarray, z_threshold: float) -> OutlierRule:
    """The z-score rule from per-feature means and population standard deviations."""
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    flat = std == 0
    lower = np.where(flat, -np.inf, mean - z_threshold * std)
    upper = np.where(flat, np.inf, mean + z_threshold * std)
    return OutlierRule("zscore", tuple(lower.tolist()), tuple(upper.tolist()))


def iqr_rule(q1: np.ndarray, q3: np.ndarray, iqr_factor: float) -> OutlierRule:
    """The IQR rule from per-feature quartiles (bounds one float step outside: strict)."""
    q1, q3 = np.asarray(q1, dtype=np.float64), np.asarray(q3, dtype=np.float64)
    iqr = q3 - q1
    flat = iqr == 0
    lower = np.where(flat, -np.inf, np.nextafter(q1 - iqr_factor * iqr, -np.inf))
    upper = np.where(flat, np.inf, np.nextafter(q3 + iqr_factor * iqr, np.inf))
    return OutlierRule("iqr", tuple(lower.tolist()), tuple(upper.tolist()))


# --------------------------------------------------------------------------------------------
# the k sweep
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sweep:
    """A sweep's selection, its fits per k, and what the final fit needs to know."""

    selection: KSelection
    fits: dict[int, Fit]
    figures: dict[str, list[float | None]]
    sample: int | None
    notes: tuple[str, ...]


def _fmt_ks(ks: Sequence[int]) -> str:
    """'7' or '7, 8 and 9'."""
    items = [str(k) for k in ks]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _best(
    k_values: Sequence[int], values: Sequence[float | None], *, low: bool = False
) -> int | None:
    """k with the highest (or lowest) defined value (ties: the smaller k), or None."""
    best: tuple[float, int] | None = None
    for k, v in zip(k_values, values, strict=True):
        if v is not None and (best is None or (v < best[0] if low else v > best[0])):
            best = (v, k)
    return None if best is None else best[1]


def _kept_k(ks: Sequence[int], n_distinct: int, n_rows: int) -> tuple[list[int], list[str]]:
    """The k that can be swept with ``n_distinct`` distinct rows, and notes on those dropped."""
    kept = [k for k in ks if k <= n_distinct]
    dropped = [k for k in ks if k > n_distinct]
    few = _few_points(n_rows, n_distinct)
    if not kept:
        note = f"Every k asked ({_fmt_ks(ks)}) exceeds {few}; swept k={n_distinct} only."
        return [n_distinct], [note]
    if dropped:
        return kept, [f"Dropped k={_fmt_ks(dropped)} from the sweep: only {few}."]
    return kept, []


def _k_too_large(k: int, n_rows: int, n_distinct: int) -> str:
    """Why k cannot be fitted, counting customers and distinct points each by their name.

    >>> _k_too_large(5000, 4311, 4150).split(". ")[0]
    'k = 5,000 is more than the 4,311 customers (4,150 distinct R/F/M points)'
    """
    if k > n_rows:
        what = f"the {_few_points(n_rows, n_distinct)}"
    else:  # enough customers, but some share their R/F/M values and cannot be split
        what = f"the {n_distinct:,} distinct R/F/M points of the {n_rows:,} customers"
    return f"k = {k:,} is more than {what}. Pass a k of at most {n_distinct:,}, or let k be chosen."


def _few_points(n_rows: int, n_distinct: int) -> str:
    """``"4 customers (3 distinct R/F/M points)"``: customers and distinct points, each named."""
    if n_distinct == n_rows:
        return f"{n_rows:,} customer{'s' if n_rows != 1 else ''}"
    points = f"{n_distinct:,} distinct R/F/M point{'s' if n_distinct != 1 else ''}"
    return f"{n_rows:,} customers ({points})"


def _knee_locator() -> Any:
    """kneed's ``KneeLocator``, imported on first use without ``matplotlib.pyplot``.

    kneed imports pyplot only for its optional plots (it runs without matplotlib); blocking
    that import while kneed loads saves half a second of every run that finds a knee.
    """
    if "kneed" not in sys.modules and "matplotlib.pyplot" not in sys.modules:
        sys.modules["matplotlib.pyplot"] = None  # type: ignore[assignment]  # ImportError
        try:
            import kneed  # noqa: F401
        finally:
            del sys.modules["matplotlib.pyplot"]
    from kneed import KneeLocator

    return KneeLocator


def _find_knee(ks: list[int], curve: list[float | None]) -> int | None:
    """The knee of a convex, decreasing curve (kneed), or None."""
    points = [(k, v) for k, v in zip(ks, curve, strict=True) if v is not None]
    if len(points) < 3:
        return None
    try:
        with warnings.catch_warnings():
            # A flat curve makes kneed divide 0 by 0: that is "no knee", not an error.
            warnings.simplefilter("ignore")
            KneeLocator = _knee_locator()
            xs, ys = zip(*points, strict=True)
            found = KneeLocator(xs, ys, curve="convex", direction="decreasing").knee
    except (ValueError, ZeroDivisionError, IndexError):
        return None
    return None if found is None else int(found)


Choice = tuple[Literal["knee", "silhouette", "merge-gap", "bic"], int, str | None]
#: What each rule reads, and how it names it when that figure is undefined.
_RULES = {
    "merge-gap": ("merge_gap", False, "No merge-height gap is defined for the k swept"),
    "bic": ("bic", True, "No BIC is defined for the k swept"),
}


def _choose_k(
    rule: str, ks: list[int], figures: dict[str, list[float | None]], knee: int | None
) -> Choice:
    """How k was chosen, k, and a sentence when the choice fell back to the silhouette."""
    best_sil = _best(ks, figures["silhouette"])
    if rule == "knee" and knee is not None:
        return "knee", knee, None
    if rule in _RULES:
        name, low, why = _RULES[rule]
        found = _best(ks, figures.get(name, [None] * len(ks)), low=low)
        if found is not None:
            return rule, found, None  # type: ignore[return-value]
    elif rule == "silhouette":
        if best_sil is not None:
            return "silhouette", best_sil, None
        return "silhouette", ks[0], f"No silhouette is defined for the k swept; took k={ks[0]}."
    else:
        curve = "merge-height" if "merge_height" in figures else "SSE"
        why = f"No knee in the {curve} curve" if len(ks) >= 3 else "Too few k values for a knee"
    if best_sil is not None:
        return "silhouette", best_sil, f"{why}; took the best silhouette (k={best_sil})."
    return "silhouette", ks[0], f"{why} and no silhouette is defined; took k={ks[0]}."


def _restarts_note(method: Method, sweeper: Method) -> str:
    """`` (3 restarts per k)`` when the sample was swept with fewer restarts than asked."""
    asked, used = method.params().get("n_init"), sweeper.params().get("n_init")
    return "" if asked == used else f" ({used} restarts per k, of the {asked} asked)"


def _sample_rows(n: int, size: int | None, random_state: int | None) -> np.ndarray | None:
    """Sorted indices of a seeded sample of ``size`` rows, or None when all rows are used."""
    if size is None or n <= size:
        return None
    rng = np.random.RandomState(random_state)
    return np.sort(rng.permutation(n)[:size])


def _figures(
    Z: np.ndarray, fits: list[Fit], ks: list[int], n_distinct: int, config: ClusterConfig
) -> dict[str, list[float | None]]:
    """SSE, silhouette, Calinski-Harabasz, Davies-Bouldin and the method's own figures per k."""
    defined = [i for i, k in enumerate(ks) if 2 <= k < n_distinct]
    sil_defined = silhouettes(
        Z,
        [fits[i].labels for i in defined],
        sample=config.silhouette_sample,
        random_state=config.random_state,
    )
    out: dict[str, list[float | None]] = {
        name: [None] * len(ks) for name in ("silhouette", "calinski_harabasz", "davies_bouldin")
    }
    for i, s in zip(defined, sil_defined, strict=True):
        out["silhouette"][i] = s
        out["calinski_harabasz"][i], out["davies_bouldin"][i] = quality(Z, fits[i].labels)
    for name in ("sse", "merge_height", "merge_gap", "bic", "aic"):
        values = [f.criterion.get(name) for f in fits]
        if any(v is not None for v in values):
            out[name] = values
    for f in fits:
        out.update(f.sweep_figures)  # type: ignore[arg-type]
    return out


def _sweep(
    method: Method, Z: np.ndarray, raw: np.ndarray, config: ClusterConfig, *, is_sorted: bool = True
) -> _Sweep:
    """Sweep k on ``Z`` (or a seeded sample of it) and choose k."""
    if Z.shape[0] == 0:
        raise EmptyDataError("No rows to cluster: the feature matrix is empty. Check the input.")
    idx = _sample_rows(Z.shape[0], method.sweep_limit, config.random_state)
    Zs, Rs = (Z, raw) if idx is None else (Z[idx], raw[idx])
    distinct = n_distinct(Zs, is_sorted=is_sorted)
    kept, notes = _kept_k(list(config.k_values), distinct, Zs.shape[0])
    sweeper = method if idx is None else method.on_sample()
    fits = sweeper.sweep(Zs, kept, Rs)
    figures = _figures(Zs, fits, kept, distinct, config)
    notes += [note for f in fits for note in f.notes if note not in notes]
    curve = figures.get("merge_height") if method.name == "hierarchical" else figures.get("sse")
    knee = _find_knee(kept, curve or [None] * len(kept))
    rule = method.auto_rule if config.select == "auto" else config.select
    how, k, choice = _choose_k(rule, kept, figures, knee)
    if idx is not None:
        notes.append(
            f"The k sweep ran on a seeded sample of {len(idx):,} of the {Z.shape[0]:,} "
            f"customers fitted{_restarts_note(method, sweeper)}; the chosen k was then fitted "
            "on all of them."
        )
    all_notes = ([choice] if choice else []) + notes
    selection = KSelection(
        method=how,
        k_values=kept,
        sse=[float(v) for v in figures.get("sse", [])],  # type: ignore[arg-type]
        silhouette=figures["silhouette"],
        calinski_harabasz=figures["calinski_harabasz"],
        davies_bouldin=figures["davies_bouldin"],
        knee=knee,
        k=k,
        note=" ".join(all_notes) if all_notes else None,
    )
    return _Sweep(
        selection,
        dict(zip(kept, fits, strict=True)),
        figures,
        None if idx is None else len(idx),
        tuple(notes),
    )


def select_k(
    X: np.ndarray,
    *,
    k_values: Sequence[int],
    select: Literal["auto", "knee", "silhouette"] = "auto",
    random_state: int | None = 0,
    n_init: int = 10,
    silhouette_sample: int = 10_000,
) -> KSelection:
    """Sweep K-Means over ``k_values`` and choose k.

    For each k, K-Means (k-means++, Lloyd, ``n_init`` restarts, seeded) is fitted on all rows
    (above 50,000 rows, on a seeded sample of 50,000); SSE is its inertia, the silhouette is
    computed on a seeded sample of at most ``silhouette_sample`` rows, Calinski-Harabasz and
    Davies-Bouldin on all rows swept. The knee of the SSE curve is located with
    ``kneed.KneeLocator(curve="convex", direction="decreasing")``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Features as clustered (already transformed and scaled).
    k_values : sequence of int
        Increasing candidate k. Values above the number of distinct rows are dropped (noted).
    select : {"auto", "knee", "silhouette"}
        Take the knee (``auto``; falling back to the best silhouette when there is none, or
        with fewer than 3 k values: the ``note`` says so) or the best silhouette.
    random_state : int or None
        Seed for K-Means and for the silhouette sample.
    n_init : int
        K-Means restarts per k (lowered, never below 1, when rows x n_init exceeds one million;
        the note says so).
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
        random_state=random_state,
        n_init=n_init,
        silhouette_sample=silhouette_sample,
    )
    arr = as_float_matrix(X)
    return _sweep(get_method(config), arr, arr, config, is_sorted=False).selection


# --------------------------------------------------------------------------------------------
# the fit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterFit:
    """The result of :func:`fit_segments`.

    Parameters
    ----------
    model : ClusterModel
        The fitted model (canonical segment order).
    labels : ndarray of int64
        Segment of every row, outliers included (assigned by the model's prediction).
    outlier : ndarray of bool
        Outlier flag of every row.
    selection : KSelection
        The k sweep and the choice of k.
    metrics : dict
        ``silhouette``, ``calinski_harabasz``, ``davies_bouldin`` of the final segmentation on
        the fitted rows (None where undefined).
    notes : tuple of str
        Sentences about fallbacks taken (for the pipeline to warn with or report).
    figures : dict of str -> list
        The method's own figures per k of the sweep (``merge_height`` and ``merge_gap`` for
        Ward, ``bic`` and ``aic`` for mixtures), beside the selection's.
    sweep_sample : int or None
        How many customers the sweep ran on, when it ran on a seeded sample.
    probability : ndarray or None
        Each row's probability of its segment (Gaussian mixtures).
    scores : ndarray of shape (n, 3) or None
        R, F, M scores of every row (RFM score segments).
    matches : tuple of custseg.reference.Match
        How each segment matched a reference model's (empty without a reference).
    """

    model: ClusterModel
    labels: np.ndarray
    outlier: np.ndarray
    selection: KSelection
    metrics: dict[str, float | None]
    notes: tuple[str, ...] = field(default=())
    figures: dict[str, list[float | None]] = field(default_factory=dict)
    sweep_sample: int | None = None
    probability: np.ndarray | None = None
    scores: np.ndarray | None = None
    matches: tuple[Any, ...] = ()


def _canonical_order(X_raw: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Old segment ids in canonical order: highest mean of the last feature (monetary) first,
    then lower mean of the first (recency), then the other means, then the centers."""
    k = centers.shape[0]
    means = np.full((k, X_raw.shape[1]), np.nan)
    for c in range(k):
        members = X_raw[labels == c]
        if len(members):
            means[c] = members.mean(axis=0)
    return canonical_order(means, centers)


def canonical_order(member_means: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Old segment ids in canonical order from each segment's raw member means (NaN rows for
    empty segments) and its centre: see :func:`_canonical_order`."""
    k = centers.shape[0]
    keys = []
    for c in range(k):
        means = member_means[c]
        # Empty clusters (only possible through float ties) sort last.
        means = np.where(np.isnan(means), -np.inf, means)
        first = means[0] if means[0] != -np.inf else np.inf
        keys.append((-means[-1], first, *(-means[1:-1]), *centers[c], c))
    return np.array(sorted(range(k), key=lambda c: keys[c]), dtype=np.int64)


@dataclass(frozen=True)
class _Prepared:
    """Sorted raw features, their scaled form, the outlier rule and which rows are fitted."""

    raw: np.ndarray
    Z: np.ndarray
    rule: OutlierRule
    outlier: np.ndarray
    fit_mask: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    notes: tuple[str, ...]


def _prepare(Xs: np.ndarray, config: ClusterConfig) -> _Prepared:
    """Transform, flag outliers, and scale on the rows the method is fitted on."""
    from sklearn.preprocessing import StandardScaler

    n = Xs.shape[0]
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
    elif config.k is not None and n_fit < n and n_distinct(Xs[fit_mask], is_sorted=True) < config.k:
        notes.append(
            f"Fewer than k={config.k} distinct R/F/M points remain among the customers who are "
            "not outliers; "
            "fitted on all customers instead."
        )
        fit_mask = np.ones(n, dtype=bool)
    scaler = StandardScaler().fit(Xt[fit_mask])
    mean = np.asarray(scaler.mean_, dtype=np.float64)
    scale = np.asarray(scaler.scale_, dtype=np.float64)
    Z = standardize(Xt, mean, scale)
    return _Prepared(Xs, Z, rule, outlier, fit_mask, mean, scale, tuple(notes))


def _final_fit(method: Method, prep: _Prepared, config: ClusterConfig) -> tuple[Fit, _Sweep | None]:
    """The sweep (unless the method's rule table fixes k) and the fit of the chosen k."""
    rows = (
        np.ones(len(prep.Z), dtype=bool)
        if getattr(method, "fits_outliers", False)
        else prep.fit_mask
    )
    Zfit, Rfit = prep.Z[rows], prep.raw[rows]
    if method.name == "rfm-scores":
        return method.fit(Zfit, 0, Rfit), None
    sweep = _sweep(method, Zfit, Rfit, config)
    k = sweep.selection.k if config.k is None else int(config.k)
    start = sweep.fits.get(k)
    if sweep.sample is None and start is not None:
        return start, sweep
    idx = _sample_rows(len(Zfit), method.fit_limit, config.random_state)
    if idx is None:
        return method.fit(Zfit, k, Rfit, start=start), sweep
    fit = method.fit(Zfit[idx], k, Rfit[idx], start=start)
    note = (
        f"The final {method.name} model was fitted on a seeded sample of {len(idx):,} of the "
        f"{len(Zfit):,} customers; all of them were then assigned by the model."
    )
    return dataclasses.replace(fit, final_notes=(*fit.final_notes, note)), sweep


def _rules_selection(fit: Fit, metrics: dict[str, float | None], sse: float) -> KSelection:
    """The k_selection of a rule table: one k, no sweep."""
    return KSelection(
        method="rules",
        k_values=[fit.k],
        sse=[sse],
        silhouette=[metrics["silhouette"]],
        calinski_harabasz=[metrics["calinski_harabasz"]],
        davies_bouldin=[metrics["davies_bouldin"]],
        knee=None,
        k=fit.k,
        note=" ".join(fit.notes) or None,
    )


def _metrics_of(
    fit_labels: np.ndarray, Zfit: np.ndarray, sweep: _Sweep | None, k: int, config: ClusterConfig
) -> dict[str, float | None]:
    """The final segmentation's quality on the fitted rows (the sweep's own, when the same)."""
    if sweep is not None and sweep.sample is None and k in sweep.selection.k_values:
        i = sweep.selection.k_values.index(k)  # same partition (numbering aside)
        return {
            "silhouette": sweep.selection.silhouette[i],
            "calinski_harabasz": sweep.selection.calinski_harabasz[i],
            "davies_bouldin": sweep.selection.davies_bouldin[i],
        }
    return segmentation_metrics(
        Zfit, fit_labels, sample=config.silhouette_sample, random_state=config.random_state
    )


def _selection(
    sweep: _Sweep | None,
    final: Fit,
    metrics: dict[str, float | None],
    sse: float,
    config: ClusterConfig,
) -> KSelection:
    if sweep is None:
        return _rules_selection(final, metrics, sse)
    if config.k is None:
        return sweep.selection
    # The sweep is still reported, but no choice was made from it: drop that sentence.
    swept = " ".join(sweep.notes) or None
    return dataclasses.replace(sweep.selection, method="fixed", k=int(config.k), note=swept)


def _unsort(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    out[order] = values
    return out


def _fit_config(
    config: ClusterConfig, features: tuple[str, ...]
) -> tuple[ClusterConfig, list[str]]:
    """The settings a fit on an RFM table can use, and a note when one had to give way."""
    notes: list[str] = []
    if config.select == "backtest":
        if config.method != "rfm-scores" and config.k is None:
            notes.append(
                "select='backtest' needs the transactions (an RFM table has no holdout to cut): "
                "k was chosen by the method's own rule. Use custseg.run or the CLI to backtest."
            )
        config = config.replace(select="auto")
    if config.method == "rfm-scores" and features != RFM_COLUMNS:
        raise ConfigError(
            f"--method rfm-scores scores recency, frequency and monetary; got features "
            f"{list(features)} (data without money: no value column, or --no-monetary). "
            "Use --method kmeans, hierarchical or gmm, or give the data a value column."
        )
    return config, notes


def _model(
    features: tuple[str, ...],
    prep: _Prepared,
    centers: np.ndarray,
    state: Any,
    k: int,
    method: Method,
    config: ClusterConfig,
) -> ClusterModel:
    """The fitted pipeline as a :class:`ClusterModel` (what model.json saves)."""
    return ClusterModel(
        features=features,
        transform=config.transform,
        outlier_rule=prep.rule,
        scaler_mean=tuple(prep.mean.tolist()),
        scaler_scale=tuple(prep.scale.tolist()),
        centers=tuple(None if np.isnan(c).any() else tuple(c.tolist()) for c in centers),
        k=k,
        random_state=config.random_state,
        method=method.name,
        params=method.params(),
        state=state,
    )


def _fit_notes(
    first: list[str],
    prep: _Prepared,
    sweep: _Sweep | None,
    final: Fit,
    selection: KSelection,
    config: ClusterConfig,
) -> list[str]:
    """Every sentence the fit has to say, each once, in the order a reader needs them."""
    notes = [*first, *prep.notes, *(sweep.notes if sweep and config.k is not None else ())]
    if selection.note and selection.note not in notes:
        notes.append(selection.note)
    said = " ".join(notes)
    return notes + [note for note in (*final.notes, *final.final_notes) if note not in said]


def fit_segments(X: np.ndarray | pd.DataFrame, *, config: ClusterConfig) -> ClusterFit:
    """Segment customers with ``config.method``, made robust and deterministic.

    Steps: transform; flag outliers; fit a StandardScaler on the non-outliers; sweep k over
    ``config.k_values`` and choose k (``config.k`` fixes it: method ``"fixed"``, the sweep is
    still reported; RFM scores take k from their rule table); fit the method on the
    non-outliers; assign every row, outliers included, by the model's prediction; renumber
    segments canonically (0 = highest mean monetary of its members in raw units, ties by
    lower mean recency; rule segments keep the table's order), so ids depend neither on the
    seed nor on row order. Rows are sorted internally before fitting, so shuffling the input
    gives the same segments per customer.

    Parameters
    ----------
    X : DataFrame with recency, frequency, monetary columns, or ndarray (n_samples, n_features)
        Raw features (an array with 3 columns is taken as R, F, M in that order; other widths
        are clustered as generic features, canonical order using the last and first columns).
    config : ClusterConfig
        Method, outlier rule, transform, k or k_values, selection, seed, restarts, silhouette
        sample, score bins and rules.

    Returns
    -------
    ClusterFit

    Raises
    ------
    EmptyDataError
        If there are no rows.
    ConfigError
        If ``config.k`` exceeds the number of distinct R/F/M points, ``log`` meets negatives, or
        RFM scores meet features other than R, F, M.
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
    config, notes_first = _fit_config(config, features)
    # A canonical row order makes K-Means (whose k-means++ draws depend on row order) and the
    # silhouette sample independent of how the input happened to be sorted.
    order = np.lexsort(X_raw.T[::-1])
    Xs = X_raw[order]
    distinct = n_distinct(Xs, is_sorted=True)
    if config.k is not None and config.k > distinct:
        raise ConfigError(_k_too_large(config.k, n, distinct))
    prep = _prepare(Xs, config)
    method = get_method(config)
    final, sweep = _final_fit(method, prep, config)
    centers, state = final.centers, final.state
    labels_s = state.predict(Xs, prep.Z, centers)
    if method.name != "rfm-scores":
        perm = _canonical_order(Xs, labels_s, centers)
        centers, state = centers[perm], state.permuted(perm)
    rows = np.ones(n, dtype=bool) if getattr(method, "fits_outliers", False) else prep.fit_mask
    model = _model(features, prep, centers, state, final.k, method, config)
    # Labels from the model itself (not by remapping ids), so that a row exactly between two
    # centres goes where ClusterModel.predict sends it: the lower id.
    found = model.assign(Xs)
    labels_s = found.labels
    metrics = _metrics_of(labels_s[rows], prep.Z[rows], sweep, final.k, config)
    selection = _selection(sweep, final, metrics, final.criterion.get("sse", 0.0), config)
    notes = _fit_notes(notes_first, prep, sweep, final, selection, config)
    return ClusterFit(
        model=model,
        labels=_unsort(labels_s, order),
        outlier=_unsort(prep.outlier, order),
        selection=selection,
        metrics=metrics,
        notes=tuple(notes),
        figures={} if sweep is None else sweep.figures,
        sweep_sample=None if sweep is None else sweep.sample,
        probability=None if found.probability is None else _unsort(found.probability, order),
        scores=None if found.scores is None else _unsort(found.scores, order),
    )


def sweep_partitions(
    X: np.ndarray | pd.DataFrame, *, config: ClusterConfig
) -> tuple[list[int], list[np.ndarray]]:
    """Every k of the sweep and the segment of every row at that k (ids not canonical).

    The same preprocessing and sweep as :func:`fit_segments`; every row, outliers included,
    is assigned by each k's fitted state. Used to choose k by what the segments predict
    (``select="backtest"``).
    """
    X_raw, _ = features_matrix(X)
    if X_raw.shape[0] == 0:
        raise EmptyDataError("No customers to segment: the feature table has 0 rows.")
    order = np.lexsort(X_raw.T[::-1])
    Xs = X_raw[order]
    base = config.replace(select="auto", k=None) if config.select == "backtest" else config
    prep = _prepare(Xs, base)
    method = get_method(base)
    Z, raw = prep.Z[prep.fit_mask], Xs[prep.fit_mask]
    if Z.shape[0] == 0:
        raise EmptyDataError("No rows to cluster: the feature matrix is empty. Check the input.")
    idx = _sample_rows(Z.shape[0], method.sweep_limit, base.random_state)
    Zs, Rs = (Z, raw) if idx is None else (Z[idx], raw[idx])
    ks, _ = _kept_k(list(base.k_values), n_distinct(Zs), Zs.shape[0])
    # No figures and no k rule: only the partitions.
    fits = (method if idx is None else method.on_sample()).sweep(Zs, ks, Rs)
    labels = [_unsort(f.state.predict(Xs, prep.Z, f.centers), order) for f in fits]
    return ks, labels


def _fit_at(
    method: Method, Z: np.ndarray, k: int, raw: np.ndarray, random_state: int | None
) -> Fit:
    """One fit at k as :func:`fit_segments` makes it: above the method's sweep limit on a
    seeded sample first (Ward's tree, a sample's restarts), then on every row from there.
    (A final fit's own sample, ``Method.fit_limit``, is far above the stability sample.)"""
    idx = _sample_rows(Z.shape[0], method.sweep_limit, random_state)
    if idx is None:
        return method.fit(Z, k, raw)
    return method.fit(Z, k, raw, start=method.on_sample().fit(Z[idx], k, raw[idx]))


def fit_labels(
    X: np.ndarray | pd.DataFrame,
    *,
    config: ClusterConfig,
    k: int,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Segments of every row of ``X`` from one fit of the method at ``k`` (no sweep).

    The same preprocessing as :func:`fit_segments`, fitted on ``rows`` (indices into ``X``;
    default all rows) with ``config.random_state``; every row is then assigned by the fitted
    state (ids are not canonical: compare labellings with the adjusted Rand index). Used to
    measure how much a segmentation depends on the seed and on the sample.
    """
    X_raw, _ = features_matrix(X)
    fitted = X_raw if rows is None else X_raw[rows]
    order = np.lexsort(fitted.T[::-1])
    fitted = fitted[order]
    base = config.replace(select="auto")
    prep = _prepare(fitted, base.replace(k=k) if base.method != "rfm-scores" else base)
    method = get_method(base)
    keep = (
        np.ones(len(prep.Z), dtype=bool)
        if getattr(method, "fits_outliers", False)
        else prep.fit_mask
    )
    fit = _fit_at(method, prep.Z[keep], k, fitted[keep], base.random_state)
    Xt = transform_features(X_raw, transform=base.transform)
    Z = standardize(Xt, prep.mean, prep.scale)
    return np.asarray(fit.state.predict(X_raw, Z, fit.centers), dtype=np.int64)
