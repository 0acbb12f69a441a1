"""Drawing: each ``plot_*`` draws computed data on the axes it is given.

Plot functions never compute statistics, save or show: :mod:`custseg.plotting.data` computes
the figure data; :mod:`custseg.report` creates the figures, saves and closes them. Every
function takes its axes as a keyword (``ax=`` or, for multi-panel figures, ``axes=``) and
returns what it drew on; without axes it creates a new pyplot figure, for notebooks.

Text from the data (segment names) goes through :func:`plain_text`, so a ``$`` in a name is
drawn as a dollar sign instead of starting mathtext.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ..schema import RFM_COLUMNS

if TYPE_CHECKING:
    from mpl_toolkits.mplot3d.axes3d import Axes3D

    from ..model import KSelection

__all__ = [
    "FEATURE_LABELS",
    "SEGMENT_PALETTE",
    "feature_labels",
    "new_axes",
    "plain_text",
    "plot_dendrogram",
    "plot_elbow",
    "plot_information_criteria",
    "plot_k_metrics",
    "plot_ledger",
    "plot_merge_heights",
    "plot_pca",
    "plot_rfm_boxplots",
    "plot_rfm_histograms",
    "plot_scatter_2d",
    "plot_scatter_3d",
    "plot_segment_means",
    "plot_segment_profile",
    "plot_segment_shares",
    "plot_silhouette",
    "segment_colors",
    "thousands",
]

#: Axis labels of the three RFM features (frequency counting invoices: see feature_labels).
FEATURE_LABELS: dict[str, str] = {
    "recency": "Recency (days since last purchase)",
    "frequency": "Frequency (invoices)",
    "monetary": "Monetary (total spend)",
}


def feature_labels(*, frequency_unit: str = "orders", invoices: bool = True) -> dict[str, str]:
    """The axis labels of a run's features: frequency in what it counts (invoices, purchase
    lines for data without an invoice column, or purchase days).

    Examples
    --------
    >>> feature_labels(frequency_unit="days")["frequency"]
    'Frequency (purchase days)'
    >>> feature_labels(invoices=False)["frequency"]
    'Frequency (purchase lines)'
    """
    unit = "purchase days" if frequency_unit == "days" else "invoices" if invoices else None
    return {**FEATURE_LABELS, "frequency": f"Frequency ({unit or 'purchase lines'})"}


def _label(feat: str, labels: Mapping[str, str] | None) -> str:
    return (labels or FEATURE_LABELS).get(feat, FEATURE_LABELS.get(feat, feat))


#: Segment colours in cluster order (colour-blind-friendly Okabe-Ito-like set, then more).
SEGMENT_PALETTE: tuple[str, ...] = (
    "#2563eb",
    "#f59e0b",
    "#10b981",
    "#ef4444",
    "#8b5cf6",
    "#06b6d4",
    "#ec4899",
    "#84cc16",
    "#64748b",
    "#a16207",
    "#0f766e",
    "#be123c",
    "#4338ca",
    "#ca8a04",
    "#15803d",
    "#9d174d",
)

_NEUTRAL = "#94a3b8"
_ACCENT = "#dc2626"
_INK = "#1e293b"


def plain_text(text: object) -> str:
    """Data text safe for matplotlib: ``$`` is escaped so it never starts mathtext.

    Examples
    --------
    >>> plain_text("Big $ spenders $$")
    'Big \\\\$ spenders \\\\$\\\\$'
    """
    return str(text).replace("$", r"\$")


def _wrap(text: object, width: int = 18) -> str:
    """A data label made safe (see :func:`plain_text`) and wrapped onto short lines."""
    return textwrap.fill(plain_text(text), width, break_long_words=False) or plain_text(text)


def segment_colors(clusters: Sequence[int]) -> dict[int, str]:
    """One colour per cluster id, the same in every figure of a run.

    Examples
    --------
    >>> segment_colors([0, 1])
    {0: '#2563eb', 1: '#f59e0b'}
    """
    return {int(c): SEGMENT_PALETTE[int(c) % len(SEGMENT_PALETTE)] for c in clusters}


def new_axes(n: int = 1, *, projection: str | None = None) -> list[Any]:
    """Fresh pyplot axes for interactive use (report.py always passes its own)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(4.0 * n, 3.5), layout="constrained")
    kw = {"projection": projection} if projection else {}
    return [fig.add_subplot(1, n, i + 1, **kw) for i in range(n)]


def _axes_list(axes: Sequence[Axes] | None, n: int) -> list[Axes]:
    if axes is None:
        return list(new_axes(n))
    got = list(axes)
    if len(got) != n:
        raise ValueError(f"axes must hold {n} Axes, got {len(got)}. Pass one per panel.")
    return got


def thousands(ax: Axes, axis: str = "y") -> None:
    fmt = FuncFormatter(lambda v, _pos: f"{v:,.0f}" if abs(v) >= 10 else f"{v:g}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _log_axis(axis: Any, set_scale: Any) -> None:
    """A log axis with plain-number labels on the decades only (no mathtext, few labels)."""
    set_scale("log")
    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_ledger(ledger: Mapping[str, Any], *, ax: Axes | None = None) -> Axes:
    """Waterfall of the rows: read, dropped per reason (reasons with no rows left out), used.

    Parameters
    ----------
    ledger : mapping
        The ``ledger`` object of summary.json (``rows_read``, ``rows_used``,
        ``rows_dropped``).
    ax : Axes, optional

    Returns
    -------
    Axes
        One horizontal bar per step; drops float from what was left before them.
    """
    ax = ax if ax is not None else new_axes()[0]
    read = int(ledger["rows_read"])
    used = int(ledger["rows_used"])
    drops = [(str(r), int(n)) for r, n in dict(ledger["rows_dropped"]).items() if int(n) > 0]
    labels = ["Rows read"]
    lefts, widths, colors = [0.0], [float(read)], ["#334155"]
    left = float(read)
    for reason, n in drops:
        left -= n
        labels.append("− " + plain_text(reason.replace("_", " ")))
        lefts.append(left)
        widths.append(float(n))
        colors.append(_ACCENT)
    labels.append("Rows used")
    lefts.append(0.0)
    widths.append(float(used))
    colors.append("#16a34a")
    y = np.arange(len(labels))
    ax.barh(y, widths, left=lefts, color=colors, height=0.6)
    for yi, lf, w in zip(range(len(labels)), lefts, widths, strict=True):
        share = f" ({w / read:.1%})" if read and yi != 0 else ""
        ax.text(lf + w, yi, f" {w:,.0f}{share}", va="center", ha="left", fontsize=8, color=_INK)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, max(read, 1) * 1.3)
    thousands(ax, "x")
    ax.set(xlabel="Rows", title="Where the rows went")
    return ax


def plot_rfm_boxplots(
    stats: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    log: Mapping[str, bool] | None = None,
    axes: Sequence[Axes] | None = None,
    axis_labels: Mapping[str, str] | None = None,
) -> list[Axes]:
    """Box plots of each feature, one box per group (all customers, non-outliers).

    Parameters
    ----------
    stats : mapping of feature -> list of box statistics
        ``Axes.bxp`` dicts (``label``, ``med``, ``q1``, ``q3``, ``whislo``, ``whishi``,
        ``fliers``), computed beforehand on all rows.
    log : mapping of feature -> bool, optional
        Draw that feature on a log axis.
    axes : sequence of Axes, optional
        One per feature.
    axis_labels : mapping of feature -> str, optional
        Axis labels (default :data:`FEATURE_LABELS`; see :func:`feature_labels`).

    Returns
    -------
    list of Axes
    """
    feats = list(stats)
    out = _axes_list(axes, len(feats))
    for ax, feat in zip(out, feats, strict=True):
        boxes = [dict(b, label=plain_text(b.get("label", ""))) for b in stats[feat]]
        ax.bxp(
            boxes,
            showfliers=True,
            widths=0.55,
            patch_artist=True,
            boxprops={"facecolor": "#dbeafe", "edgecolor": "#1d4ed8"},
            medianprops={"color": "#1d4ed8", "linewidth": 2},
            flierprops={
                "marker": "o",
                "markersize": 2.5,
                "markerfacecolor": _NEUTRAL,
                "markeredgecolor": "none",
                "alpha": 0.6,
                "rasterized": True,  # up to hundreds of dots per box
            },
        )
        if log and log.get(feat):
            _log_axis(ax.yaxis, ax.set_yscale)
        else:
            thousands(ax)
        ax.set(title=feat.capitalize(), ylabel=_label(feat, axis_labels))
    return out


def plot_rfm_histograms(
    hists: Mapping[str, tuple[np.ndarray, np.ndarray, bool]],
    *,
    axes: Sequence[Axes] | None = None,
    axis_labels: Mapping[str, str] | None = None,
) -> list[Axes]:
    """Histogram of each feature over all customers; log x axis where the feature is skewed.

    Parameters
    ----------
    hists : mapping of feature -> (edges, counts, log)
        Bin edges (n + 1), counts (n) and whether to use a log x axis.
    axes : sequence of Axes, optional
        One per feature.
    axis_labels : mapping of feature -> str, optional
        Axis labels (default :data:`FEATURE_LABELS`; see :func:`feature_labels`).

    Returns
    -------
    list of Axes
    """
    feats = list(hists)
    out = _axes_list(axes, len(feats))
    for ax, feat in zip(out, feats, strict=True):
        edges, counts, log = hists[feat]
        ax.stairs(counts, edges, fill=True, color="#60a5fa", alpha=0.85)
        ax.stairs(counts, edges, color="#1d4ed8", linewidth=0.8)
        if log:
            _log_axis(ax.xaxis, ax.set_xscale)
        else:
            thousands(ax, "x")
        scale = " (log scale)" if log else ""
        ax.set(
            title=feat.capitalize(),
            xlabel=_label(feat, axis_labels) + scale,
            ylabel="Customers",
        )
    return out


def plot_elbow(selection: KSelection, *, ax: Axes | None = None) -> Axes:
    """SSE by k with the knee and the chosen k marked.

    Parameters
    ----------
    selection : KSelection
        The k sweep.
    ax : Axes, optional

    Returns
    -------
    Axes
        The SSE line; a dashed vertical line labelled ``knee`` when a knee was found, and a
        ring around the chosen k.
    """
    ax = ax if ax is not None else new_axes()[0]
    ks = list(selection.k_values)
    ax.plot(ks, selection.sse, marker="o", color="#1d4ed8", label="SSE")
    if selection.knee is not None:
        ax.axvline(
            selection.knee, linestyle="--", color=_ACCENT, label=f"knee (k = {selection.knee})"
        )
    if selection.k in ks:
        i = ks.index(selection.k)
        ax.plot(
            [selection.k],
            [selection.sse[i]],
            marker="o",
            markersize=14,
            fillstyle="none",
            color=_INK,
            linestyle="none",
            label=f"chosen (k = {selection.k})",
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    thousands(ax)
    ax.legend(frameon=False)
    ax.set(xlabel="Number of clusters k", ylabel="Sum of squared errors", title="Elbow method")
    return ax


def _by_k(k_values: Sequence[int], values: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """k and value where the value is defined."""
    ks = np.asarray(k_values, dtype=np.float64)
    vals = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    ok = np.isfinite(vals)
    return ks[ok], vals[ok]


def plot_merge_heights(
    k_values: Sequence[int],
    heights: Sequence[float | None],
    *,
    k: int | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Ward merge heights by k: the cost of merging k segments into k - 1.

    Parameters
    ----------
    k_values : sequence of int
    heights : sequence of float or None
        Height of the merge taking k segments to k - 1, per k (None where undefined, k = 1).
    k : int, optional
        The k used, drawn as a dashed line.
    ax : Axes, optional

    Returns
    -------
    Axes
        The height line; a dashed vertical line labelled with the k used.
    """
    ax = ax if ax is not None else new_axes()[0]
    ks, vals = _by_k(k_values, heights)
    ax.plot(ks, vals, marker="o", color="#1d4ed8", label="merge height")
    if k is not None:
        ax.axvline(k, linestyle="--", color=_ACCENT, label=f"k used ({k})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    thousands(ax)
    ax.legend(frameon=False)
    ax.set(
        xlabel="Number of clusters k",
        ylabel="Height of the merge to k - 1",
        title="Ward merge heights",
    )
    return ax


def plot_dendrogram(
    merges: np.ndarray, sizes: Sequence[float], *, k: int | None = None, ax: Axes | None = None
) -> Axes:
    """The top of a Ward tree: its last merges over the branches they join, leaves labelled
    with their sizes, and the cut into ``k`` segments as a dashed line.

    Parameters
    ----------
    merges : ndarray of shape (p - 1, 4)
        A SciPy linkage matrix over p branches (:func:`custseg.methods.hierarchical.top_merges`).
    sizes : sequence of float
        Customers in each branch.
    k : int, optional
    ax : Axes, optional

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> merges = np.array([[0, 1, 1.0, 2], [2, 3, 4.0, 3]])  # 3 branches, 2 merges
    >>> ax = plot_dendrogram(merges, [1, 2, 2], k=2, ax=Figure().add_subplot())
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['2', '1', '2']
    """
    from scipy.cluster.hierarchy import dendrogram  # only for Ward reports

    ax = ax if ax is not None else new_axes()[0]
    labels = [f"{int(n):,}" for n in sizes]
    dendrogram(merges, ax=ax, labels=labels, color_threshold=0, above_threshold_color="#1d4ed8")
    heights = merges[:, 2]
    p = len(sizes)
    if k is not None and 2 <= k <= p:
        below = heights[p - k - 1] if k < p else 0.0
        ax.axhline((heights[p - k] + below) / 2, linestyle="--", color=_ACCENT)
        ax.text(ax.get_xlim()[1], (heights[p - k] + below) / 2, f" k = {k}", va="center",
                color=_ACCENT, fontsize=8)  # fmt: skip
    ax.tick_params(axis="x", labelsize=7)
    ax.set(xlabel="Branch (customers)", ylabel="Merge height (Ward)", title="Top of the Ward tree")
    return ax


def plot_information_criteria(
    k_values: Sequence[int],
    bic: Sequence[float | None],
    aic: Sequence[float | None],
    *,
    k: int | None = None,
    ax: Axes | None = None,
) -> Axes:
    """BIC and AIC of a Gaussian mixture by k, the lowest BIC starred.

    Parameters
    ----------
    k_values : sequence of int
    bic, aic : sequence of float or None
        Per k (lower is better).
    k : int, optional
        The k used, drawn as a dotted line.
    ax : Axes, optional

    Returns
    -------
    Axes
        Two lines (BIC solid, AIC dashed), a star at the lowest BIC.
    """
    ax = ax if ax is not None else new_axes()[0]
    ks, b = _by_k(k_values, bic)
    ax.plot(ks, b, marker="o", color="#1d4ed8", label="BIC")
    ax.plot(*_by_k(k_values, aic), marker="o", color=_NEUTRAL, linestyle="--", label="AIC")
    if b.size:
        i = int(np.argmin(b))
        ax.plot(
            [ks[i]],
            [b[i]],
            marker="*",
            markersize=15,
            color=_ACCENT,
            linestyle="none",
            label=f"lowest BIC (k = {int(ks[i])})",
        )
    if k is not None:
        ax.axvline(k, color=_NEUTRAL, linestyle=":", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    thousands(ax)
    ax.legend(frameon=False)
    ax.set(xlabel="Number of components k", ylabel="Information criterion", title="BIC and AIC")
    return ax


_METRICS = (
    ("silhouette", "Silhouette (higher is better)", np.nanargmax),
    ("calinski_harabasz", "Calinski-Harabasz (higher is better)", np.nanargmax),
    ("davies_bouldin", "Davies-Bouldin (lower is better)", np.nanargmin),
)


def plot_k_metrics(selection: KSelection, *, axes: Sequence[Axes] | None = None) -> list[Axes]:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin by k, each with its best k marked.

    Parameters
    ----------
    selection : KSelection
        The k sweep (``None`` values, e.g. at k = 1, are left out).
    axes : sequence of Axes, optional
        Three axes.

    Returns
    -------
    list of Axes
    """
    out = _axes_list(axes, 3)
    ks = np.asarray(selection.k_values, dtype=np.float64)
    for ax, (attr, title, best) in zip(out, _METRICS, strict=True):
        vals = np.array([np.nan if v is None else v for v in getattr(selection, attr)], dtype=float)
        ok = ~np.isnan(vals)
        ax.plot(ks[ok], vals[ok], marker="o", color="#1d4ed8")
        if ok.any():
            i = int(best(vals))
            ax.plot(
                [ks[i]],
                [vals[i]],
                marker="*",
                markersize=15,
                color=_ACCENT,
                linestyle="none",
                label=f"best (k = {int(ks[i])})",
            )
            ax.legend(frameon=False)
        ax.axvline(selection.k, color=_NEUTRAL, linestyle=":", linewidth=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(title=title, xlabel="Number of clusters k")
    return out


def plot_silhouette(
    values: np.ndarray,
    labels: np.ndarray,
    *,
    names: Mapping[int, str],
    average: float,
    colors: Mapping[int, str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Per-customer silhouette coefficients, sorted within each segment, as filled bands.

    Parameters
    ----------
    values : ndarray
        Silhouette coefficient per customer.
    labels : ndarray
        Cluster per customer.
    names : mapping of cluster -> segment name
    average : float
        Mean silhouette, drawn as a dashed vertical line.
    colors : mapping of cluster -> colour, optional
    ax : Axes, optional

    Returns
    -------
    Axes
        One filled band (a PolyCollection) per cluster present.
    """
    ax = ax if ax is not None else new_axes()[0]
    colors = colors or segment_colors(sorted(names))
    gap = max(2, int(len(values) * 0.02))
    y0 = 0
    ticks, ticklabels = [], []
    for c in sorted(int(x) for x in np.unique(labels)):
        v = np.sort(np.asarray(values)[labels == c])
        y = np.arange(y0, y0 + len(v))
        ax.fill_betweenx(y, 0, v, color=colors.get(c, _NEUTRAL), alpha=0.9, linewidth=0)
        ticks.append(y0 + len(v) / 2)
        ticklabels.append(_wrap(names.get(c, f"cluster {c}")))
        y0 += len(v) + gap
    ax.axvline(average, color=_INK, linestyle="--", linewidth=1.2, label=f"mean {average:.3f}")
    ax.axvline(0, color=_NEUTRAL, linewidth=0.8)
    ax.set_yticks(ticks, ticklabels)
    ax.set_ylim(-gap, max(y0, 1))
    ax.invert_yaxis()
    ax.legend(frameon=False, loc="lower right")
    ax.set(xlabel="Silhouette coefficient", title="Silhouette per customer", xlim=(-1, 1))
    return ax


def plot_segment_means(
    means: Mapping[str, Sequence[float]],
    *,
    clusters: Sequence[int],
    names: Mapping[int, str],
    colors: Mapping[int, str] | None = None,
    axes: Sequence[Axes] | None = None,
    axis_labels: Mapping[str, str] | None = None,
) -> list[Axes]:
    """Bar charts of the mean of each feature per segment (the reference's three charts).

    Parameters
    ----------
    means : mapping of feature -> means in ``clusters`` order
    clusters : sequence of int
    names : mapping of cluster -> segment name
    colors : mapping of cluster -> colour, optional
    axes : sequence of Axes, optional
        One per feature.
    axis_labels : mapping of feature -> str, optional
        Axis labels (default :data:`FEATURE_LABELS`; see :func:`feature_labels`).

    Returns
    -------
    list of Axes
        One bar per segment on each.
    """
    feats = list(means)
    out = _axes_list(axes, len(feats))
    colors = colors or segment_colors(clusters)
    # Up to 3 segments: level names, wrapped; more: slanted names on fewer lines, so that
    # neighbours do not overlap.
    many = len(clusters) > 3
    rotation = 45 if many else 0
    labels = [_wrap(names.get(c, f"cluster {c}"), 24 if many else 14) for c in clusters]
    x = np.arange(len(clusters))
    for ax, feat in zip(out, feats, strict=True):
        vals = np.asarray(means[feat], dtype=float)
        bars = ax.bar(x, vals, color=[colors.get(c, _NEUTRAL) for c in clusters], width=0.65)
        ax.bar_label(
            bars,
            # NaN: an empty segment (no bar, no number)
            labels=["" if np.isnan(v) else f"{v:,.0f}" if v >= 100 else f"{v:,.1f}" for v in vals],
            fontsize=8,
            padding=2,
        )
        ax.set_xticks(
            x,
            labels,
            rotation=rotation,
            ha="right" if rotation else "center",
            rotation_mode="anchor" if many else "default",
        )
        ax.margins(y=0.15)
        thousands(ax)
        ax.set(title=f"Mean {feat}", ylabel=_label(feat, axis_labels))
    return out


def plot_segment_profile(
    ratios: np.ndarray,
    *,
    segment_names: Sequence[str],
    features: Sequence[str] = RFM_COLUMNS,
    ax: Axes | None = None,
) -> Axes:
    """Heatmap of each segment's mean relative to the average customer (1.0 = average).

    Parameters
    ----------
    ratios : ndarray of shape (n_segments, n_features)
        Segment mean divided by the mean over all customers.
    segment_names : sequence of str
        Row labels.
    features : sequence of str
        Column labels.
    ax : Axes, optional

    Returns
    -------
    Axes
        An image (log2 colour scale centred on 1x) annotated with each ratio.
    """
    ax = ax if ax is not None else new_axes()[0]
    r = np.asarray(ratios, dtype=float)
    logr = np.log2(np.clip(r, 1e-3, None))  # NaN (an empty segment) stays NaN: a blank cell
    finite = np.abs(logr[np.isfinite(logr)])
    lim = max(float(finite.max()) if finite.size else 1.0, 0.5)
    im = ax.imshow(logr, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim), aspect="auto")
    for i in range(r.shape[0]):
        for j in range(r.shape[1]):
            if not np.isfinite(r[i, j]):
                continue
            strong = abs(logr[i, j]) > lim * 0.6
            ax.text(
                j,
                i,
                f"{r[i, j]:.2f}×",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if strong else _INK,
            )
    ax.set_xticks(range(len(features)), [f.capitalize() for f in features])
    ax.set_yticks(range(len(segment_names)), [_wrap(n) for n in segment_names])
    ax.tick_params(length=0)
    ax.grid(False)  # grid lines would cut through the cells and their numbers
    for side in ax.spines.values():
        side.set_visible(False)
    # Beside the axes, not in its grid cell, so that a layout can place it (as constrained
    # layout and custseg.report.render.fit_layout do).
    ax.figure.colorbar(
        im, ax=ax, label="log2(segment mean / average)", shrink=0.8, use_gridspec=False
    )
    ax.set(title="Segment means vs the average")
    return ax


def plot_segment_shares(
    share_customers: Sequence[float],
    share_revenue: Sequence[float] | None,
    *,
    clusters: Sequence[int],
    names: Mapping[int, str],
    colors: Mapping[int, str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Share of customers (light) beside share of revenue (solid) per segment.

    Parameters
    ----------
    share_customers, share_revenue : sequence of float
        Fractions in ``clusters`` order; ``share_revenue`` None for data without money
        (one solid bar of customers per segment).
    clusters : sequence of int
    names : mapping of cluster -> segment name
    colors : mapping of cluster -> colour, optional
    ax : Axes, optional

    Returns
    -------
    Axes
        Two horizontal bars per segment.
    """
    ax = ax if ax is not None else new_axes()[0]
    colors = colors or segment_colors(clusters)
    y = np.arange(len(clusters))
    cols = [colors.get(c, _NEUTRAL) for c in clusters]
    if share_revenue is None:
        bars = ax.barh(y, share_customers, height=0.6, color=cols)
        ax.bar_label(bars, labels=[f"{v:.0%}" for v in share_customers], fontsize=8, padding=2)
        ax.set_yticks(y, [_wrap(names.get(c, f"cluster {c}")) for c in clusters])
        ax.invert_yaxis()
        top = max([*share_customers, 0.01])
        ax.set_xlim(0, min(1.0, top * 1.2) if top < 0.8 else top * 1.15)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
        ax.set(xlabel="Share of customers", title="Customers per segment")
        return ax
    h = 0.38
    b1 = ax.barh(y - h / 2, share_customers, height=h, color=cols, alpha=0.35)
    b2 = ax.barh(y + h / 2, share_revenue, height=h, color=cols)
    for bars, vals in ((b1, share_customers), (b2, share_revenue)):
        ax.bar_label(bars, labels=[f"{v:.0%}" for v in vals], fontsize=8, padding=2)
    ax.set_yticks(y, [_wrap(names.get(c, f"cluster {c}")) for c in clusters])
    ax.invert_yaxis()
    top = max([*share_customers, *share_revenue, 0.01])
    ax.set_xlim(0, min(1.0, top * 1.2) if top < 0.8 else top * 1.15)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
    ax.legend(
        handles=[
            Patch(color=_NEUTRAL, alpha=0.35, label="share of customers"),
            Patch(color=_NEUTRAL, label="share of revenue"),
        ],
        frameon=False,
        loc="lower right",
    )
    ax.set(xlabel="Share", title="Customers and revenue per segment")
    return ax


def _point_size(n: int) -> float:
    """Marker area: small dots for thousands of points, visible ones for a handful."""
    return float(np.clip(25_000 / max(n, 1), 5.0, 30.0))


def _segment_points(
    ax: Axes, pts: np.ndarray, labels: np.ndarray, names: Mapping[int, str], colors: Any
) -> None:
    """One scatter collection per segment of 2-D points, labelled with its name."""
    for c in sorted(int(x) for x in np.unique(labels)):
        m = labels == c
        ax.scatter(
            pts[m, 0],
            pts[m, 1],
            s=_point_size(len(pts)),
            alpha=0.55,
            color=colors.get(c, _NEUTRAL),
            label=plain_text(names.get(c, f"cluster {c}")),
            linewidths=0,
            rasterized=True,  # thousands of dots: an image in SVG, not thousands of paths
        )


def _legend_sizes(legend: Any, size: float = 30.0) -> None:
    """Same-size legend markers, whatever the size of the points they stand for."""
    for handle in legend.legend_handles:
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([size])
            handle.set_alpha(1.0)


def _log_ticks(axis: Any) -> None:
    """Ticks of a log10-valued axis labelled with the original values."""
    axis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    axis.set_major_formatter(
        FuncFormatter(lambda v, _p: f"{10**v:,.0f}" if v >= 0 else f"{10**v:g}")
    )


def plot_scatter_3d(
    points: np.ndarray,
    labels: np.ndarray,
    *,
    names: Mapping[int, str],
    log: Sequence[bool] = (False, False, False),
    features: Sequence[str] = RFM_COLUMNS,
    colors: Mapping[int, str] | None = None,
    ax: Axes3D | None = None,
) -> Axes3D:
    """3-D scatter of recency, frequency and monetary, coloured by segment.

    Log axes are drawn by plotting log10 values with ticks labelled in original units
    (matplotlib's 3-D axes do not support log scales).

    Parameters
    ----------
    points : ndarray of shape (n, 3)
        Raw feature values.
    labels : ndarray of shape (n,)
        Cluster per point.
    names : mapping of cluster -> segment name
    log : three bools
        Which axes are logarithmic (values must be positive there).
    features : three str
    colors : mapping of cluster -> colour, optional
    ax : Axes3D, optional

    Returns
    -------
    Axes3D
        One scatter collection per segment.
    """
    ax = ax if ax is not None else new_axes(projection="3d")[0]
    colors = colors or segment_colors(sorted(names))
    pts = np.asarray(points, dtype=float).copy()
    for j, lg in enumerate(log):
        if lg:
            pts[:, j] = np.log10(np.clip(pts[:, j], 1e-9, None))
    for c in sorted(int(x) for x in np.unique(labels)):
        m = labels == c
        ax.scatter(
            pts[m, 0],
            pts[m, 1],
            pts[m, 2],
            s=5,
            alpha=0.6,
            color=colors.get(c, _NEUTRAL),
            label=plain_text(names.get(c, f"cluster {c}")),
            depthshade=False,
            rasterized=True,  # thousands of dots: an image in SVG, not thousands of paths
        )
    axes3 = (ax.xaxis, ax.yaxis, ax.zaxis)
    setters = (ax.set_xlabel, ax.set_ylabel, ax.set_zlabel)
    for axis, setter, feat, lg in zip(axes3, setters, features, log, strict=True):
        if lg:
            _log_ticks(axis)
        setter(feat.capitalize() + (" (log)" if lg else ""))
    _legend_sizes(ax.legend(frameon=False, loc="upper left"))
    ax.set_title("Customers in R, F, M space")
    ax.view_init(elev=22, azim=-58)
    return ax


def plot_scatter_2d(
    points: np.ndarray,
    labels: np.ndarray,
    *,
    names: Mapping[int, str],
    log: Sequence[bool] = (False, False),
    features: Sequence[str] = ("recency", "frequency"),
    colors: Mapping[int, str] | None = None,
    ax: Axes | None = None,
    axis_labels: Mapping[str, str] | None = None,
) -> Axes:
    """Scatter of two raw features (recency and frequency: data without money), coloured by
    segment; log axes where asked (values must be positive there).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = plot_scatter_2d(np.array([[1.0, 5], [200, 1]]), np.array([0, 1]),
    ...                      names={0: "A", 1: "B"}, ax=Figure().add_subplot())
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['A', 'B']
    """
    ax = ax if ax is not None else new_axes()[0]
    colors = colors or segment_colors(sorted(names))
    _segment_points(ax, np.asarray(points, dtype=float), labels, names, colors)
    for (axis, set_scale), lg in zip(
        ((ax.xaxis, ax.set_xscale), (ax.yaxis, ax.set_yscale)), log, strict=True
    ):
        if lg:
            _log_axis(axis, set_scale)
    ax.set(
        xlabel=_label(features[0], axis_labels) + (" (log)" if log[0] else ""),
        ylabel=_label(features[1], axis_labels) + (" (log)" if log[1] else ""),
        title="Customers in R, F space",
    )
    _legend_sizes(ax.legend(frameon=False, loc="best"))
    return ax


def plot_pca(
    points: np.ndarray,
    labels: np.ndarray,
    *,
    names: Mapping[int, str],
    explained: Sequence[float],
    colors: Mapping[int, str] | None = None,
    centers: np.ndarray | None = None,
    ax: Axes | None = None,
) -> Axes:
    """2-D PCA projection of the scaled features, coloured by segment.

    Parameters
    ----------
    points : ndarray of shape (n, 2)
        Projected customers.
    labels : ndarray of shape (n,)
        Cluster per point.
    names : mapping of cluster -> segment name
    explained : two floats
        Explained variance ratio of each component.
    colors : mapping of cluster -> colour, optional
    centers : ndarray of shape (k, 2), optional
        Projected cluster centers, drawn as crosses (row i is cluster i).
    ax : Axes, optional

    Returns
    -------
    Axes
        One scatter collection per segment (plus one for the centers).
    """
    ax = ax if ax is not None else new_axes()[0]
    colors = colors or segment_colors(sorted(names))
    _segment_points(ax, np.asarray(points, dtype=float), labels, names, colors)
    if centers is not None and len(centers):
        ax.scatter(
            centers[:, 0],
            centers[:, 1],
            marker="X",
            s=120,
            color=_INK,
            edgecolors="white",
            linewidths=1.2,
            label="segment centres",
        )
    ev = [f"{e:.0%}" if math.isfinite(e) else "n/a" for e in explained]
    ax.set(
        xlabel=f"Principal component 1 ({ev[0]} of variance)",
        ylabel=f"Principal component 2 ({ev[1]} of variance)",
        title="PCA projection of the scaled features",
    )
    _legend_sizes(ax.legend(frameon=False, loc="best"))
    return ax
