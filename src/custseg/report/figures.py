"""The report's figures: what each shows, and the list saying which figures a report has.

:data:`FIGURES` is the whole list, in page order. Each :class:`FigureSpec` names its section,
file slug, title and caption, the small function that builds it from :class:`ReportData`, and
whether it applies to a run; a segmentation method brings its figures by adding entries, as
Ward's merge heights do::

    FigureSpec("k", "merge-heights", "Merge heights", "...", _merge_heights,
               applies=uses("hierarchical"), wide=False)

Builders create a :class:`~matplotlib.figure.Figure` (no pyplot state) and draw on it with
:mod:`custseg.plotting`; :mod:`custseg.report.render` lays it out and renders it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..model import KSelection
from ..plotting import (
    FEATURE_LABELS,
    Projection,
    box_stats,
    feature_labels,
    histogram_data,
    is_skewed,
    plot_dendrogram,
    plot_elbow,
    plot_information_criteria,
    plot_k_metrics,
    plot_ledger,
    plot_merge_heights,
    plot_pca,
    plot_rfm_boxplots,
    plot_rfm_histograms,
    plot_scatter_2d,
    plot_scatter_3d,
    plot_segment_means,
    plot_segment_profile,
    plot_segment_shares,
    plot_silhouette,
    principal_components,
    profile_ratios,
    sample_indices,
    segment_colors,
    silhouette_values,
)
from ..plotting.evidence import plot_holdout_by_k
from ..runs import RunFiles
from ..schema import RFM_COLUMNS

__all__ = ["FIGURES", "SAMPLE_SIZE", "FigureSpec", "ReportData", "report_data", "uses"]

#: At most this many customers are drawn in scatter plots and used for the silhouette plot.
SAMPLE_SIZE = 5_000


@dataclass(frozen=True, eq=False)  # arrays: identity, not element-wise equality
class ReportData:
    """What the figures and captions of a report show, from a run's files.

    Plain values only (arrays, lists, dicts), so that figures can be tested without a run
    folder; the derived values are computed once, when a figure first asks for them.

    Attributes
    ----------
    X : ndarray of shape (n, 3)
        Recency, frequency and monetary value of every customer (shape (n, 2), recency and
        frequency, for data without money: see ``features``).
    labels : ndarray of shape (n,)
        Cluster of every customer.
    outlier : ndarray of shape (n,)
        Whether the customer was flagged as an outlier (kept in the segments).
    scaled : ndarray of shape (n, 3)
        The features as the model saw them (transformed and standardised).
    centers : ndarray of shape (k, 3)
        Cluster centres in the scaled space, row i for cluster i.
    selection : KSelection
        The k sweep.
    ledger : dict
        ``rows_read``, ``rows_used`` and ``rows_dropped`` (reason -> rows).
    clusters : list of int
        The segments, in order.
    names : dict of int -> str
        Segment names.
    means : dict of str -> list of float
        Mean of each feature per segment, in ``clusters`` order.
    share_customers, share_revenue : list of float
        Per segment, in ``clusters`` order (``share_revenue`` None without money).
    seed : int
        Seed of the report's samples.
    method : str
        The segmentation method (``"kmeans"``, ``"hierarchical"``, ``"gmm"``, ``"rfm-scores"``).
    method_figures : dict of str -> list
        The method's own numbers per k of the sweep (``merge_height`` for Ward, ``bic`` and
        ``aic`` for mixtures; None where undefined).
    features : tuple of str
        The columns of ``X``: recency, frequency, monetary (or recency, frequency).
    axis_labels : dict of str -> str
        Each feature's axis label (frequency in what it counts: :func:`feature_labels`).
    """

    X: np.ndarray
    labels: np.ndarray
    outlier: np.ndarray
    scaled: np.ndarray
    centers: np.ndarray
    selection: KSelection
    ledger: dict[str, Any]
    clusters: list[int]
    names: dict[int, str]
    means: dict[str, list[float]]
    share_customers: list[float]
    share_revenue: list[float] | None
    seed: int = 0
    method: str = "kmeans"
    method_figures: dict[str, list[float | None]] = field(default_factory=dict)
    features: tuple[str, ...] = RFM_COLUMNS
    axis_labels: dict[str, str] = field(default_factory=lambda: dict(FEATURE_LABELS))

    @property
    def n(self) -> int:
        """Number of customers."""
        return len(self.X)

    @cached_property
    def n_outliers(self) -> int:
        """Number of customers flagged as outliers."""
        return int(self.outlier.sum())

    @cached_property
    def colors(self) -> dict[int, str]:
        """Segment colours, the same in every figure."""
        return segment_colors(self.clusters)

    @cached_property
    def log(self) -> dict[str, bool]:
        """Which features are skewed enough to be drawn on log axes."""
        return {f: is_skewed(self.X[:, j]) for j, f in enumerate(self.features)}

    @property
    def log_note(self) -> str:
        """The caption's sentence on log scales (empty when there are none)."""
        logged = [f.capitalize() for f in self.features if self.log[f]]
        return f" {', '.join(logged)} on log scales." if logged else ""

    @property
    def money(self) -> bool:
        """Whether the run has monetary value (else: recency and frequency only)."""
        return "monetary" in self.features

    @property
    def target(self) -> str:
        """What the backtest ranked: holdout ``revenue``, or ``orders`` without money."""
        return "revenue" if self.money else "orders"

    @property
    def features_words(self) -> str:
        """``R, F and M`` or ``R and F``."""
        return "R, F and M" if self.money else "R and F"

    @property
    def spend_more(self) -> str:
        """Captions' words on spending (none without money)."""
        return " or spend far more" if self.money else ""

    @property
    def higher_better(self) -> str:
        """Which features are better higher, in a caption."""
        return "frequency and monetary are" if self.money else "frequency is"

    @property
    def charts(self) -> str:
        """How many charts of means, in words."""
        return "three" if self.money else "two"

    @property
    def knee_note(self) -> str:
        """Where the elbow curve bends."""
        knee = self.selection.knee
        return (
            "no clear knee was found"
            if knee is None
            else f"the curve bends at k = {knee} (dashed line)"
        )

    @cached_property
    def fitted(self) -> np.ndarray:
        """Indices of the customers the model was fitted on (the non-outliers)."""
        return np.flatnonzero(~self.outlier)

    @cached_property
    def fitted_sample(self) -> np.ndarray:
        """A seeded sample of :attr:`fitted`, for the silhouette and PCA views."""
        return self.fitted[sample_indices(len(self.fitted), SAMPLE_SIZE, seed=self.seed)]

    @cached_property
    def scatter_sample(self) -> np.ndarray:
        """A seeded sample of all customers, for the 3-D view."""
        return sample_indices(self.n, SAMPLE_SIZE, seed=self.seed)

    @property
    def silhouette_defined(self) -> bool:
        """Whether the sample has 2 or more segments and more customers than segments."""
        return 2 <= self.sample_segments <= len(self.fitted_sample) - 1

    @cached_property
    def sample_segments(self) -> int:
        """Number of segments among :attr:`fitted_sample`."""
        return len(np.unique(self.labels[self.fitted_sample]))

    @cached_property
    def silhouette(self) -> np.ndarray:
        """Silhouette of each customer of :attr:`fitted_sample`, in the scaled space."""
        idx = self.fitted_sample
        return silhouette_values(self.scaled[idx], self.labels[idx])

    @cached_property
    def pca(self) -> Projection:
        """Principal components of the scaled features of the fitted customers."""
        return principal_components(self.scaled[self.fitted])

    def sampled(self, idx: np.ndarray, whole: int, of: str, *, all_of: str = "") -> str:
        """``a seeded sample of 5,000 of <of>`` or ``all <all_of or of>``, with counts."""
        if len(idx) < whole:
            return f"a seeded sample of {len(idx):,} of {of.format(n=whole)}"
        return f"all {(all_of or of).format(n=whole)}"

    @property
    def silhouette_note(self) -> str:
        """Which customers the silhouette figure shows."""
        return self.sampled(
            self.fitted_sample,
            len(self.fitted),
            "the {n:,} customers the model was fitted on",
            all_of="{n:,} customers the model was fitted on (outliers aside)",
        )

    @property
    def pca_note(self) -> str:
        """Which customers the PCA figure shows."""
        return self.sampled(
            self.fitted_sample,
            len(self.fitted),
            "the {n:,} non-outliers",
            all_of="{n:,} non-outliers",
        )

    @property
    def scatter_note(self) -> str:
        """Which customers the 3-D figure shows."""
        return self.sampled(self.scatter_sample, self.n, "{n:,} customers")


def uses(*methods: str) -> Callable[[ReportData], bool]:
    """A :attr:`FigureSpec.applies` predicate: the run used one of these clustering methods."""
    return lambda d: d.method in methods


def _always(d: ReportData) -> bool:
    return True


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report.

    Attributes
    ----------
    section : str
        Id of the page section it appears in.
    slug : str
        File stem (``NN-<slug>.png``) and HTML id (``fig-<slug>``).
    title : str
    caption : str
        Filled with ``caption.format(d=data)``: ``{d.n_outliers:,}`` is a field of
        :class:`ReportData`.
    build : callable
        ``build(data) -> Figure``: creates the figure and draws on it.
    applies : callable, optional
        ``applies(data) -> bool``: whether this run has the figure (always, by default).
    wide : bool, optional
        Full width on the page; narrow figures are paired side by side.
    missing : str, optional
        A note shown in the section instead, when the figure does not apply (formatted as
        ``caption``; none by default).
    """

    section: str
    slug: str
    title: str
    caption: str
    build: Callable[[ReportData], Figure]
    applies: Callable[[ReportData], bool] = _always
    wide: bool = True
    missing: str = ""


def _figure(width: float, height: float) -> Figure:
    """A figure without a layout engine: :func:`custseg.report.render.fit_layout` places it."""
    return Figure(figsize=(width, height))


def _ledger(d: ReportData) -> Figure:
    drops = sum(1 for v in d.ledger["rows_dropped"].values() if int(v) > 0)
    fig = _figure(8.5, 1.2 + 0.42 * (2 + drops))
    plot_ledger(d.ledger, ax=fig.add_subplot())
    return fig


def _boxplots(d: ReportData) -> Figure:
    inliers = ~d.outlier
    stats = {
        f: [
            box_stats(d.X[:, j], f"All ({d.n:,})", seed=d.seed),
            box_stats(d.X[inliers, j], f"Non-outliers ({d.n - d.n_outliers:,})", seed=d.seed),
        ]
        for j, f in enumerate(d.features)
    }
    fig = _figure(3.5 * len(d.features), 3.6)
    axes = fig.subplots(1, len(d.features))
    plot_rfm_boxplots(stats, log=d.log, axes=axes, axis_labels=d.axis_labels)
    return fig


def _histograms(d: ReportData) -> Figure:
    hists = {
        f: (*histogram_data(d.X[:, j], log=d.log[f]), d.log[f]) for j, f in enumerate(d.features)
    }
    fig = _figure(3.5 * len(d.features), 3.2)
    plot_rfm_histograms(hists, axes=fig.subplots(1, len(d.features)), axis_labels=d.axis_labels)
    return fig


def _elbow(d: ReportData) -> Figure:
    fig = _figure(6.4, 3.6)
    plot_elbow(d.selection, ax=fig.add_subplot())
    return fig


def _merge_heights(d: ReportData) -> Figure:
    fig = _figure(6.4, 3.6)
    sel = d.selection
    plot_merge_heights(
        sel.k_values, d.method_figures["merge_height"], k=sel.k, ax=fig.add_subplot()
    )
    return fig


def _dendrogram(d: ReportData) -> Figure:
    fig = _figure(6.4, 3.6)
    f = d.method_figures
    merges = np.asarray(f["dendrogram_merges"], dtype=np.float64).reshape(-1, 4)
    plot_dendrogram(merges, f["dendrogram_sizes"], k=d.selection.k, ax=fig.add_subplot())  # type: ignore[arg-type]
    return fig


def _information_criteria(d: ReportData) -> Figure:
    fig = _figure(6.4, 3.6)
    sel, f = d.selection, d.method_figures
    plot_information_criteria(sel.k_values, f["bic"], f["aic"], k=sel.k, ax=fig.add_subplot())
    return fig


def _holdout_by_k(d: ReportData) -> Figure:
    fig = _figure(6.4, 3.6)
    sel, f = d.selection, d.method_figures
    plot_holdout_by_k(
        sel.k_values,
        f["holdout_spearman"],
        f["holdout_auc"],
        k=sel.k,
        target=d.target,
        ax=fig.add_subplot(),
    )
    return fig


def _k_metrics(d: ReportData) -> Figure:
    fig = _figure(10.5, 3.2)
    plot_k_metrics(d.selection, axes=fig.subplots(1, 3))
    return fig


def _silhouette(d: ReportData) -> Figure:
    values = d.silhouette
    fig = _figure(7.5, 1.6 + 0.55 * max(d.sample_segments, 2))
    plot_silhouette(
        values,
        d.labels[d.fitted_sample],
        names=d.names,
        average=float(values.mean()),
        colors=d.colors,
        ax=fig.add_subplot(),
    )
    return fig


def _segment_means(d: ReportData) -> Figure:
    fig = _figure(3.5 * len(d.features), 3.4)
    plot_segment_means(
        d.means,
        clusters=d.clusters,
        names=d.names,
        colors=d.colors,
        axes=fig.subplots(1, len(d.features)),
        axis_labels=d.axis_labels,
    )
    return fig


def _segment_profile(d: ReportData) -> Figure:
    overall = {f: float(d.X[:, j].mean()) for j, f in enumerate(d.features)}
    fig = _figure(6.0, 1.6 + 0.5 * len(d.clusters))
    plot_segment_profile(
        profile_ratios(d.means, overall),
        segment_names=[d.names[k] for k in d.clusters],
        features=d.features,
        ax=fig.add_subplot(),
    )
    return fig


def _segment_shares(d: ReportData) -> Figure:
    fig = _figure(6.0, 1.6 + 0.6 * len(d.clusters))
    plot_segment_shares(
        d.share_customers,
        d.share_revenue,
        clusters=d.clusters,
        names=d.names,
        colors=d.colors,
        ax=fig.add_subplot(),
    )
    return fig


def _scatter_2d(d: ReportData) -> Figure:
    idx = d.scatter_sample
    fig = _figure(6.4, 5.6)
    plot_scatter_2d(
        d.X[idx],
        d.labels[idx],
        names=d.names,
        log=[d.log[f] for f in d.features],
        features=d.features,
        colors=d.colors,
        ax=fig.add_subplot(),
        axis_labels=d.axis_labels,
    )
    return fig


def _scatter_3d(d: ReportData) -> Figure:
    idx = d.scatter_sample
    fig = _figure(6.4, 5.6)
    plot_scatter_3d(
        d.X[idx],
        d.labels[idx],
        names=d.names,
        log=[d.log[f] for f in RFM_COLUMNS],
        colors=d.colors,
        ax=fig.add_subplot(projection="3d"),
    )
    return fig


def _pca(d: ReportData) -> Figure:
    idx = d.fitted_sample
    fig = _figure(6.4, 5.6)
    plot_pca(
        d.pca.transform(d.scaled[idx]),
        d.labels[idx],
        names=d.names,
        explained=list(d.pca.explained),
        colors=d.colors,
        centers=d.pca.transform(d.centers),
        ax=fig.add_subplot(),
    )
    return fig


#: Every figure a report can have, in page order.
FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "data",
        "ledger",
        "Where the rows went",
        "Read top to bottom: every row read is either used (green) or dropped for the first "
        "reason it meets (red); longer red bars are the bigger losses.",
        _ledger,
    ),
    FigureSpec(
        "distributions",
        "rfm-boxplots",
        "Box plots of {d.features_words}",
        "Boxes span the middle half of customers, the line is the median; dots are customers "
        "beyond the whiskers. Compare each pair: the {d.n_outliers:,} outliers flagged (kept "
        "in the segments) stretch the tails of all customers.{d.log_note}",
        _boxplots,
    ),
    FigureSpec(
        "distributions",
        "rfm-histograms",
        "Histograms of {d.features_words}",
        "How many customers have each value, over all customers: a long right tail means a "
        "few customers buy far more often{d.spend_more} than the rest.{d.log_note}",
        _histograms,
    ),
    FigureSpec(
        "k",
        "elbow",
        "Elbow curve",
        "The sum of squared distances to the nearest centre falls as k grows; "
        "{d.knee_note}: beyond it, more segments buy little.",
        _elbow,
        applies=uses("kmeans"),
        wide=False,
    ),
    FigureSpec(
        "k",
        "merge-heights",
        "Merge heights",
        "Each point is what merging k segments into k - 1 costs (the Ward distance of the "
        "merge); where the heights jump, one merge more would join segments far apart (the "
        "merge-gap rule takes the largest jump). The dashed line is the k used.",
        _merge_heights,
        applies=uses("hierarchical"),
        wide=False,
    ),
    FigureSpec(
        "k",
        "dendrogram",
        "Top of the Ward tree",
        "The last merges of the tree, read from the bottom: each leaf is a branch of "
        "customers (its size below it), each bracket a merge at its height; the dashed line "
        "cuts the tree into the k segments used. Built on the customers the tree was fitted "
        "on (a seeded sample above 10,000), before outliers were placed.",
        _dendrogram,
        applies=lambda d: "dendrogram_merges" in d.method_figures,
        wide=False,
    ),
    FigureSpec(
        "k",
        "information-criteria",
        "BIC and AIC by k",
        "How well a mixture of k Gaussians fits, penalised for its number of parameters "
        "(lower is better; BIC penalises more than AIC); the star marks the lowest BIC, the "
        "dotted line the k used.",
        _information_criteria,
        applies=uses("gmm"),
        wide=False,
    ),
    FigureSpec(
        "k",
        "holdout-by-k",
        "Backtest by k",
        "k was chosen on the data itself: segments fitted before the holdout cutoff, at each "
        "k, ranked customers by their segment's value; the lines show how well that ranking "
        "matched the holdout {d.target} (Spearman) and who bought again (AUC). The dotted line "
        "is the smallest k within one bootstrap standard error of the best Spearman.",
        _holdout_by_k,
        applies=lambda d: "holdout_spearman" in d.method_figures,
        wide=False,
    ),
    FigureSpec(
        "k",
        "k-metrics",
        "Quality scores by k",
        "Each score rates how well separated the segments are at each k; the star marks the "
        "best k for that score, the dotted line the k used.",
        _k_metrics,
        applies=lambda d: len(d.selection.k_values) > 1,  # not for a fixed rule table
    ),
    FigureSpec(
        "model",
        "silhouette",
        "Silhouette per customer",
        "Each customer's silhouette, from -1 (closer to another segment) to 1 (well inside "
        "its own), for {d.silhouette_note}: wide bands right of 0 are well-separated "
        "segments, bars left of 0 are customers on a border.",
        _silhouette,
        applies=lambda d: d.silhouette_defined,
        wide=False,
        missing="The silhouette is not defined here ({d.sample_segments} segment(s) among "
        "{d.fitted_sample.size} customers fitted): it needs at least 2 segments and more "
        "customers than segments.",
    ),
    FigureSpec(
        "segments",
        "segment-means",
        "Mean {d.features_words} per segment",
        "Lower recency is better (bought recently); higher {d.higher_better} better. Read "
        "each segment's bars across the {d.charts} charts.",
        _segment_means,
    ),
    FigureSpec(
        "segments",
        "segment-profile",
        "Segment profiles",
        "Each cell is the segment's mean divided by the average customer's: red is above "
        "average, blue below (for recency, above average means lapsed).",
        _segment_profile,
        wide=False,
    ),
    FigureSpec(
        "segments",
        "segment-shares",
        "Customers and revenue per segment",
        "A solid bar longer than its light twin marks a segment that brings more revenue "
        "than its share of customers.",
        _segment_shares,
        applies=lambda d: d.money,
        wide=False,
    ),
    FigureSpec(
        "segments",
        "segment-sizes",
        "Customers per segment",
        "Each bar is a segment's share of the customers (the data has no monetary value, so "
        "there is no revenue to compare it with).",
        _segment_shares,
        applies=lambda d: not d.money,
        wide=False,
    ),
    FigureSpec(
        "views",
        "scatter-3d",
        "Customers in R, F, M space",
        "Each dot is a customer ({d.scatter_note}, outliers included), coloured by segment: "
        "compact, separate clouds mean distinct segments.{d.log_note}",
        _scatter_3d,
        applies=lambda d: d.money,
        wide=False,
    ),
    FigureSpec(
        "views",
        "scatter-rf",
        "Customers in R, F space",
        "Each dot is a customer ({d.scatter_note}, outliers included), coloured by segment: "
        "compact, separate clouds mean distinct segments.{d.log_note}",
        _scatter_2d,
        applies=lambda d: not d.money,
        wide=False,
    ),
    FigureSpec(
        "views",
        "pca",
        "PCA projection",
        "The scaled features seen from the two directions of greatest spread ({d.pca_note}; "
        "the {d.n_outliers:,} outliers are left out of this view), crosses at the segment "
        "centres: overlap here can still be separation in 3-D.",
        _pca,
        applies=lambda d: len(d.fitted) >= 3,
        wide=False,
    ),
)


def _number(v: float | None) -> float:
    return math.nan if v is None else float(v)  # None: a segment no customer falls in


def report_data(run: RunFiles) -> ReportData:
    """The figures' view of a run's files (the one place the figures read summary.json)."""
    c, ledger, segments = run.customers, run.summary.ledger, run.segments
    features = tuple(run.model.features)
    X = c[list(features)].to_numpy(dtype=np.float64)
    scaled, _ = run.model.scaled(X)
    money = "monetary" in features
    return ReportData(
        X=X,
        labels=c["cluster"].to_numpy(),
        outlier=c["outlier"].to_numpy(dtype=bool),
        scaled=scaled,
        centers=run.model.center_array(),  # NaN rows: segments without a centre
        selection=run.selection,
        ledger={
            "rows_read": ledger.rows_read,
            "rows_used": ledger.rows_used,
            "rows_dropped": dict(ledger.rows_dropped),
        },
        clusters=[s.cluster for s in segments],
        names=run.names,
        means={f: [_number(getattr(s, f"{f}_mean")) for s in segments] for f in features},
        share_customers=[s.share_customers for s in segments],
        share_revenue=[_number(s.share_revenue) for s in segments] if money else None,
        seed=run.seed,
        method=run.summary.method.name,
        method_figures=dict(run.summary.method.figures),
        features=features,
        axis_labels=feature_labels(
            frequency_unit=run.summary.settings.clean.frequency_unit,
            invoices="invoice" in run.summary.input.columns,
        ),
    )
