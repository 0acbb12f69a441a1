"""A run's output folder -> report.html and figures/ (the only module writing HTML or figures).

The report is built from the files of the output folder (segments.csv, summary.json,
model.json, run.json), never from in-memory results, so ``custseg run`` and ``custseg report``
produce the same page. The page is one self-contained file: figures are inlined as base64 PNG,
styles and the tiny self-check script are inline, nothing is fetched from the network.

Figure data is computed by the pure ``*_data``/``box_stats``/... helpers below; drawing is
:mod:`custseg.plotting`; this module creates the figures (``matplotlib.figure.Figure``, no
pyplot state), saves them as PNG and SVG, and closes them.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import math
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .errors import OutputError
from .model import ClusterModel, KSelection
from .plotting import (
    plot_elbow,
    plot_k_metrics,
    plot_ledger,
    plot_pca,
    plot_rfm_boxplots,
    plot_rfm_histograms,
    plot_scatter_3d,
    plot_segment_means,
    plot_segment_profile,
    plot_segment_shares,
    plot_silhouette,
    segment_colors,
)
from .runs import RunFiles, read_run, replace_atomically

__all__ = [
    "REPORT_FILE",
    "box_stats",
    "histogram_data",
    "is_skewed",
    "k_agreement",
    "sample_indices",
    "write_report",
]

REPORT_FILE = "report.html"
FIGURES_DIR = "figures"
FEATURES = ("recency", "frequency", "monetary")
#: At most this many customers are drawn in scatter plots and used for the silhouette plot.
SAMPLE_SIZE = 5_000
_DPI = 150
_DOI = "https://doi.org/10.24432/C5BW33"
_RC: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelcolor": "#334155",
    "axes.edgecolor": "#94a3b8",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e2e8f0",
    "grid.linewidth": 0.8,
    "xtick.color": "#475569",
    "ytick.color": "#475569",
    "legend.fontsize": 8,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "svg.fonttype": "path",
    "svg.hashsalt": "custseg",
}


# --------------------------------------------------------------------------------------------
# reading a run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RunView:
    """A read run as plain dicts, the way the page builder below reads it."""

    out_dir: Path
    customers: pd.DataFrame
    summary: dict[str, Any]
    run: dict[str, Any]
    model: ClusterModel
    selection: KSelection
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def names(self) -> dict[int, str]:
        """Cluster -> segment name."""
        return {int(s["cluster"]): str(s["name"]) for s in self.segments}

    @property
    def seed(self) -> int:
        """The run's seed (0 when it had none), for the report's samples."""
        seed = self.run.get("seed")
        return int(seed) if isinstance(seed, int) else 0


def _view(run: RunFiles) -> _RunView:
    return _RunView(
        run.out_dir,
        run.customers,
        run.summary.to_json(),
        run.run.to_json(),
        run.model,
        run.selection,
        [s.model_dump(mode="json") for s in run.segments],
    )


# --------------------------------------------------------------------------------------------
# figure data (pure functions)
# --------------------------------------------------------------------------------------------


def sample_indices(n: int, size: int, *, seed: int) -> np.ndarray:
    """Sorted indices of a seeded sample of ``min(n, size)`` of ``range(n)`` (all when n <= size).

    Examples
    --------
    >>> sample_indices(5, 10, seed=0).tolist()
    [0, 1, 2, 3, 4]
    >>> len(sample_indices(100, 10, seed=0))
    10
    """
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def is_skewed(values: np.ndarray) -> bool:
    """Whether a positive feature is right-skewed enough for a log axis (skewness > 2).

    Examples
    --------
    >>> is_skewed(np.array([1.0, 1, 1, 1, 2, 2, 3, 2, 1, 400]))
    True
    >>> is_skewed(np.array([1.0, 2, 3, 4]))
    False
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size < 3 or float(v.min()) <= 0:
        return False
    sd = float(v.std())
    if sd == 0 or float(v.max()) / float(v.min()) < 10:
        return False
    return float(np.mean(((v - v.mean()) / sd) ** 3)) > 2.0


def box_stats(
    values: np.ndarray, label: str, *, max_fliers: int = 300, seed: int = 0
) -> dict[str, Any]:
    """Tukey box statistics for ``Axes.bxp`` from all values in O(n).

    Whiskers reach the most extreme values within 1.5 IQR of the quartiles; beyond them are
    the fliers, of which a seeded sample of at most ``max_fliers`` (always with the minimum
    and maximum) is kept, so that a million customers do not become a million markers.

    Examples
    --------
    >>> s = box_stats(np.array([1.0, 2, 3, 4, 100]), "all")
    >>> s["med"], s["whishi"], s["fliers"].tolist()
    (3.0, 4.0, [100.0])
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {
            "label": label,
            "med": np.nan,
            "q1": np.nan,
            "q3": np.nan,
            "whislo": np.nan,
            "whishi": np.nan,
            "fliers": np.array([]),
        }
    q1, med, q3 = (float(x) for x in np.percentile(v, [25, 50, 75]))
    iqr = q3 - q1
    lo_in = v[v >= q1 - 1.5 * iqr]
    hi_in = v[v <= q3 + 1.5 * iqr]
    whislo = float(lo_in.min()) if lo_in.size else q1
    whishi = float(hi_in.max()) if hi_in.size else q3
    fliers = v[(v < whislo) | (v > whishi)]
    if fliers.size > max_fliers:
        keep = sample_indices(fliers.size, max_fliers - 2, seed=seed)
        fliers = np.concatenate([fliers[keep], [fliers.min(), fliers.max()]])
    return {
        "label": label,
        "med": med,
        "q1": q1,
        "q3": q3,
        "whislo": whislo,
        "whishi": whishi,
        "fliers": fliers,
    }


def histogram_data(
    values: np.ndarray, *, log: bool, bins: int = 40
) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges and counts; log-spaced bins when ``log`` (integers get integer-centred bins).

    Examples
    --------
    >>> edges, counts = histogram_data(np.array([1.0, 1, 2, 3]), log=False)
    >>> edges.tolist(), counts.tolist()
    ([0.5, 1.5, 2.5, 3.5], [2, 1, 1])
    """
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    integer = bool(np.all(v == np.round(v)))
    if integer and (hi - lo) <= bins:
        edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
    elif log and lo > 0:
        if integer:
            edges = np.unique(np.floor(np.geomspace(lo, hi + 1, bins + 1))) - 0.5
            edges = edges[edges > 0] if lo > 0.5 else edges
            if edges[-1] < hi:
                edges = np.append(edges, hi + 0.5)
        else:
            edges = np.geomspace(lo, hi * (1 + 1e-9), bins + 1)
    else:
        edges = np.histogram_bin_edges(v, bins=bins if hi > lo else 1)
    counts, edges = np.histogram(v, bins=edges)
    return edges, counts


def k_agreement(selection: KSelection) -> str:
    """One sentence on whether the knee and the quality scores agree on k.

    Examples
    --------
    >>> sel = KSelection("knee", [1, 2, 3], [9.0, 4.0, 3.0], [None, 0.5, 0.4],
    ...                  [None, 10.0, 12.0], [None, 0.6, 0.7], knee=2, k=2)
    >>> print(k_agreement(sel))  # doctest: +NORMALIZE_WHITESPACE
    The knee says 2, the best silhouette 2, the best Calinski-Harabasz 3 and the best
    Davies-Bouldin 2; the run used k = 2 (knee).
    """
    ks = list(selection.k_values)

    def best(values: Sequence[float | None], pick: Any) -> int | None:
        arr = np.array([np.nan if v is None else v for v in values], dtype=float)
        return None if np.isnan(arr).all() else int(ks[int(pick(arr))])

    votes = [
        ("the knee", selection.knee),
        ("the best silhouette", best(selection.silhouette, np.nanargmax)),
        ("the best Calinski-Harabasz", best(selection.calinski_harabasz, np.nanargmax)),
        ("the best Davies-Bouldin", best(selection.davies_bouldin, np.nanargmin)),
    ]
    found = {k for _, k in votes if k is not None}
    used = f"the run used k = {selection.k} ({selection.method})."
    if len(found) == 1 and all(k is not None for _, k in votes):
        return f"All four methods agree on k = {found.pop()}; {used}"
    parts = [f"{who} {'found none' if k is None else k}" for who, k in votes]
    parts[0] = parts[0].replace("the knee ", "the knee says ", 1)
    text = ", ".join(parts[:-1]) + " and " + parts[-1]
    return text[0].upper() + text[1:] + "; " + used


def profile_ratios(
    segments: Sequence[Mapping[str, Any]], overall: Mapping[str, float]
) -> np.ndarray:
    """Segment mean / mean over all customers, shape (n_segments, 3).

    Examples
    --------
    >>> profile_ratios([{"recency_mean": 10, "frequency_mean": 4, "monetary_mean": 50}],
    ...                {"recency": 20, "frequency": 2, "monetary": 100}).tolist()
    [[0.5, 2.0, 0.5]]
    """
    out = np.array([[float(s[f"{f}_mean"]) for f in FEATURES] for s in segments], dtype=float)
    base = np.array([float(overall[f]) or 1.0 for f in FEATURES])
    return out / base


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------


@dataclass
class _Fig:
    section: str
    slug: str
    title: str
    caption: str
    figure: Figure
    wide: bool = True
    png: bytes = b""
    svg: bytes = b""


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _figures(run: _RunView) -> tuple[list[_Fig], dict[str, str]]:
    """Every figure of the report, and notes for sections where a figure cannot be drawn."""
    c = run.customers
    X = c[list(FEATURES)].to_numpy(dtype=np.float64)
    clusters = [int(s["cluster"]) for s in run.segments]
    names = run.names
    colors = segment_colors(clusters)
    seed = run.seed
    inlier = ~c["outlier"].to_numpy(dtype=bool)
    n, n_out = len(c), int((~inlier).sum())
    log = {f: is_skewed(X[:, j]) for j, f in enumerate(FEATURES)}
    logged = [f for f in FEATURES if log[f]]
    log_note = f" {', '.join(x.capitalize() for x in logged)} on log scales." if logged else ""
    figs: list[_Fig] = []
    notes: dict[str, str] = {}

    led = run.summary["ledger"]
    n_bars = 2 + sum(1 for v in dict(led["rows_dropped"]).values() if int(v) > 0)
    fig = _figure(8.5, 1.2 + 0.42 * n_bars)
    plot_ledger(led, ax=fig.add_subplot())
    figs.append(
        _Fig(
            "data",
            "ledger",
            "Where the rows went",
            "Read top to bottom: every row read is either used (green) or dropped for the "
            "first reason it meets (red); longer red bars are the bigger losses.",
            fig,
        )
    )

    fig = _figure(10.5, 3.6)
    stats = {
        f: [
            box_stats(X[:, j], f"All ({n:,})", seed=seed),
            box_stats(X[inlier, j], f"Non-outliers ({int(inlier.sum()):,})", seed=seed),
        ]
        for j, f in enumerate(FEATURES)
    }
    plot_rfm_boxplots(stats, log=log, axes=fig.subplots(1, 3))
    figs.append(
        _Fig(
            "distributions",
            "rfm-boxplots",
            "Box plots of R, F and M",
            f"Boxes span the middle half of customers, the line is the median; dots are "
            f"customers beyond the whiskers. Compare each pair: the {n_out:,} outliers "
            f"flagged (kept in the segments) stretch the tails of all customers." + log_note,
            fig,
        )
    )

    fig = _figure(10.5, 3.2)
    hists = {f: (*histogram_data(X[:, j], log=log[f]), log[f]) for j, f in enumerate(FEATURES)}
    plot_rfm_histograms(hists, axes=fig.subplots(1, 3))
    figs.append(
        _Fig(
            "distributions",
            "rfm-histograms",
            "Histograms of R, F and M",
            "How many customers have each value, over all customers: a long right tail "
            "means a few customers buy far more often or spend far more than the rest." + log_note,
            fig,
        )
    )

    sel = run.selection
    fig = _figure(6.4, 3.6)
    plot_elbow(sel, ax=fig.add_subplot())
    knee = (
        f"the curve bends at k = {sel.knee} (dashed line)"
        if sel.knee is not None
        else "no clear knee was found"
    )
    figs.append(
        _Fig(
            "k",
            "elbow",
            "Elbow curve",
            f"The sum of squared distances to the nearest centre falls as k grows; "
            f"{knee}: beyond it, more segments buy little.",
            fig,
            wide=False,
        )
    )

    fig = _figure(10.5, 3.2)
    plot_k_metrics(sel, axes=fig.subplots(1, 3))
    figs.append(
        _Fig(
            "k",
            "k-metrics",
            "Quality scores by k",
            "Each score rates how well separated the segments are at each k; the star "
            "marks the best k for that score, the dotted line the k used.",
            fig,
        )
    )

    # The model: silhouette on the customers K-Means was fitted on (the non-outliers).
    Z, _ = run.model.scaled(c[list(FEATURES)])
    fit_idx = np.flatnonzero(inlier)
    labels_fit = c["cluster"].to_numpy()[fit_idx]
    sidx = fit_idx[sample_indices(len(fit_idx), SAMPLE_SIZE, seed=seed)]
    s_labels = c["cluster"].to_numpy()[sidx]
    n_lab = len(np.unique(s_labels))
    if 2 <= n_lab <= len(sidx) - 1:
        from sklearn.metrics import silhouette_samples

        values = silhouette_samples(Z[sidx], s_labels)
        fig = _figure(7.5, 1.6 + 0.55 * max(n_lab, 2))
        plot_silhouette(
            values,
            s_labels,
            names=names,
            average=float(values.mean()),
            colors=colors,
            ax=fig.add_subplot(),
        )
        sampled = (
            f"a seeded sample of {len(sidx):,} of the {len(fit_idx):,} customers the model "
            f"was fitted on"
            if len(sidx) < len(fit_idx)
            else f"all {len(fit_idx):,} customers the model was fitted on (outliers aside)"
        )
        figs.append(
            _Fig(
                "model",
                "silhouette",
                "Silhouette per customer",
                f"Each customer's silhouette, from -1 (closer to another segment) to 1 "
                f"(well inside its own), for {sampled}: wide bands right of 0 are "
                f"well-separated segments, bars left of 0 are customers on a border.",
                fig,
                wide=False,
            )
        )
    else:
        notes["model"] = (
            f"The silhouette is not defined here ({n_lab} segment(s) among "
            f"{len(sidx)} customers fitted): it needs at least 2 segments and more "
            "customers than segments."
        )

    means = {f: [float(s[f"{f}_mean"]) for s in run.segments] for f in FEATURES}
    fig = _figure(10.5, 3.4)
    plot_segment_means(
        means, clusters=clusters, names=names, colors=colors, axes=fig.subplots(1, 3)
    )
    figs.append(
        _Fig(
            "segments",
            "segment-means",
            "Mean R, F and M per segment",
            "Lower recency is better (bought recently); higher frequency and monetary "
            "are better. Read each segment's bars across the three charts.",
            fig,
        )
    )

    overall = {f: float(X[:, j].mean()) for j, f in enumerate(FEATURES)}
    fig = _figure(6.0, 1.6 + 0.5 * len(clusters))
    plot_segment_profile(
        profile_ratios(run.segments, overall),
        segment_names=[names[k] for k in clusters],
        ax=fig.add_subplot(),
    )
    figs.append(
        _Fig(
            "segments",
            "segment-profile",
            "Segment profiles",
            "Each cell is the segment's mean divided by the average customer's: red is "
            "above average, blue below (for recency, above average means lapsed).",
            fig,
            wide=False,
        )
    )

    fig = _figure(6.0, 1.6 + 0.6 * len(clusters))
    plot_segment_shares(
        [float(s["share_customers"]) for s in run.segments],
        [float(s["share_revenue"]) for s in run.segments],
        clusters=clusters,
        names=names,
        colors=colors,
        ax=fig.add_subplot(),
    )
    figs.append(
        _Fig(
            "segments",
            "segment-shares",
            "Customers and revenue per segment",
            "A solid bar longer than its light twin marks a segment that brings more "
            "revenue than its share of customers.",
            fig,
            wide=False,
        )
    )

    idx = sample_indices(n, SAMPLE_SIZE, seed=seed)
    sample_note = (
        f"a seeded sample of {len(idx):,} of {n:,} customers"
        if len(idx) < n
        else f"all {n:,} customers"
    )
    fig = _figure(6.4, 5.6)
    plot_scatter_3d(
        X[idx],
        c["cluster"].to_numpy()[idx],
        names=names,
        log=[log[f] for f in FEATURES],
        colors=colors,
        ax=fig.add_subplot(projection="3d"),
    )
    figs.append(
        _Fig(
            "views",
            "scatter-3d",
            "Customers in R, F, M space",
            f"Each dot is a customer ({sample_note}, outliers included), coloured by "
            f"segment: compact, separate clouds mean distinct segments." + log_note,
            fig,
            wide=False,
        )
    )

    if len(fit_idx) >= 3:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=0).fit(Z[fit_idx])
        pidx = fit_idx[sample_indices(len(fit_idx), SAMPLE_SIZE, seed=seed)]
        fig = _figure(6.4, 5.6)
        plot_pca(
            pca.transform(Z[pidx]),
            c["cluster"].to_numpy()[pidx],
            names=names,
            explained=[float(v) for v in pca.explained_variance_ratio_],
            colors=colors,
            centers=pca.transform(np.asarray(run.model.centers)),
            ax=fig.add_subplot(),
        )
        pn = (
            f"a seeded sample of {len(pidx):,} of the {len(fit_idx):,} non-outliers"
            if len(pidx) < len(fit_idx)
            else f"all {len(fit_idx):,} non-outliers"
        )
        figs.append(
            _Fig(
                "views",
                "pca",
                "PCA projection",
                f"The scaled features seen from the two directions of greatest spread "
                f"({pn}; the {n_out:,} outliers are left out of this view), crosses at "
                f"the segment centres: overlap here can still be separation in 3-D.",
                fig,
                wide=False,
            )
        )
    del labels_fit
    return figs, notes


@contextlib.contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(cast(Any, _RC)):
        yield


def _freeze_positions(fig: Figure) -> None:
    """Pin titles and axis labels where the layout put them.

    Each draw otherwise places them again from the extents of every tick label (and the
    title from the whole y axis), which is most of the cost of drawing these figures. The
    positions are kept in axes coordinates, so they hold at any dpi. 3-D axes are left
    alone (they place their labels themselves), and so are colorbars (they set their ticks
    only when drawn).
    """
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for ax in fig.axes:
        if ax.name == "3d" or "outline" in ax.spines:
            continue
        update_title = getattr(ax, "_update_title_position", None)
        if update_title is not None and hasattr(ax, "_autotitlepos"):
            update_title(renderer)
            ax._autotitlepos = False  # placed: draws keep it there
        for axis in (ax.xaxis, ax.yaxis):
            update_label = getattr(axis, "_update_label_position", None)
            if update_label is None:
                continue
            update_label(renderer)
            label = axis.label
            where = label.get_transform().transform(label.get_position())
            axis.set_label_coords(*ax.transAxes.inverted().transform(where))


def _render(f: _Fig) -> None:
    """PNG and SVG of a figure, with one layout pass and one draw per format.

    ``savefig`` on a figure with a layout engine draws it twice (once, unseen, to lay it
    out). Laying it out here once, pinning what the layout placed and then dropping the
    engine leaves one draw per file.
    """
    fig = f.figure
    FigureCanvasAgg(fig)
    fig.set_dpi(_DPI)
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    fig.set_layout_engine(None)
    _freeze_positions(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    f.png = buf.getvalue()
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", dpi=_DPI, metadata={"Date": None, "Creator": None})
    f.svg = buf.getvalue()
    fig.clear()


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    """Escape any text for HTML (element content and quoted attributes)."""
    return html.escape(str(value), quote=True)


def _int(v: Any) -> str:
    return f"{int(v):,}" if isinstance(v, int | float) and math.isfinite(v) else "n/a"


def _num(v: Any, fmt: str = ",.2f") -> str:
    return format(float(v), fmt) if isinstance(v, int | float) and math.isfinite(v) else "n/a"


def _size(n: Any) -> str:
    if not isinstance(n, int | float):
        return "n/a"
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return "n/a"  # pragma: no cover


_SECTIONS = (
    ("data", "1. Data"),
    ("distributions", "2. RFM distributions"),
    ("k", "3. Choosing k"),
    ("model", "4. The model"),
    ("segments", "5. Segments"),
    ("views", "6. Views"),
    ("repro", "7. Reproducibility"),
)

_CSS = """
:root{--ink:#0f172a;--muted:#475569;--line:#e2e8f0;--bg:#f8fafc;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);line-height:1.5;
 font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header.top{background:linear-gradient(135deg,#0f172a,#1e3a8a);color:#fff;padding:28px 0 22px}
.wrap{max-width:1120px;margin:0 auto;padding:0 24px}
header.top h1{margin:0 0 4px;font-size:26px;letter-spacing:-.01em}
header.top p{margin:0;color:#cbd5e1}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin-top:18px}
.kpi{background:rgba(255,255,255,.08);border:1px solid rgba(255,255,255,.15);border-radius:10px;
 padding:10px 14px}
.kpi b{display:block;font-size:22px;font-variant-numeric:tabular-nums}
.kpi span{font-size:12px;color:#cbd5e1;text-transform:uppercase;letter-spacing:.05em}
nav.toc{background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0;z-index:5}
nav.toc ol{list-style:none;display:flex;flex-wrap:wrap;gap:4px 18px;margin:0;padding:10px 0}
nav.toc a{color:var(--muted);text-decoration:none;font-size:14px}
nav.toc a:hover{color:var(--accent)}
main{padding:8px 0 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;
 padding:18px 22px;margin:20px 0}
h2{margin:0 0 10px;font-size:20px}
h3{margin:16px 0 6px;font-size:16px}
p.lead{color:var(--muted);margin:0 0 12px}
figure{margin:14px 0;break-inside:avoid}
figure img{display:block;width:100%;height:auto;border-radius:6px}
figure.narrow{max-width:680px}
figcaption{font-size:13.5px;color:var(--muted);margin-top:4px}
figcaption b{color:var(--ink)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:8px 24px;
 align-items:start}
table{border-collapse:collapse;width:100%;font-size:14px;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600}
td.n,th.n{text-align:right}
.facts{align-items:start;display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:14px;margin-top:12px}
.card{border:1px solid var(--line);border-left:6px solid var(--c);border-radius:10px;
 padding:12px 16px;break-inside:avoid}
.card h4{margin:0 0 4px;font-size:16px}
.card .meta{font-size:13px;color:var(--muted);margin-bottom:6px}
.card p{margin:6px 0;font-size:14px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:3px;background:var(--c);
 margin-right:6px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
pre{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:10px;
 white-space:pre-wrap;word-break:break-all}
.zero{color:#94a3b8}
.note{background:#fffbeb;border:1px solid #fde68a;border-radius:8px;padding:8px 12px;font-size:14px}
footer{color:var(--muted);font-size:13px;padding:0 0 30px}
footer a{color:var(--muted)}
@media print{
 body{background:#fff;font-size:11pt}
 nav.toc{display:none}
 header.top{background:#fff!important;color:#000;padding:0 0 8px;border-bottom:2px solid #000}
 header.top p,.kpi span{color:#333}
 .kpi{border-color:#999;background:#fff}
 section{border:none;padding:0;margin:14px 0;break-before:auto}
 figure,.card,table{break-inside:avoid}
 h2{break-after:avoid}
 .grid2{grid-template-columns:1fr 1fr}
 a{color:inherit;text-decoration:none}
 @page{margin:14mm}
}
"""

# Sets a hidden marker after load: how many images there are and how many failed to decode.
_SELFCHECK = """
window.addEventListener("load", function () {
  var imgs = document.images, bad = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) { bad += 1; }
  }
  var el = document.getElementById("selfcheck");
  el.setAttribute("data-images", String(imgs.length));
  el.setAttribute("data-broken", String(bad));
  el.textContent = bad === 0 ? "images-ok" : "images-broken";
});
"""


def _figure_html(f: _Fig, number: int, *, alone: bool = False) -> str:
    b64 = base64.b64encode(f.png).decode("ascii")
    w, h = f.figure.get_size_inches()
    cls = ' class="narrow"' if alone else ""
    return (
        f'<figure id="fig-{_e(f.slug)}"{cls}><img src="data:image/png;base64,{b64}" '
        f'alt="{_e(f.title)}" width="{round(w * 96)}" height="{round(h * 96)}">'
        f"<figcaption><b>Figure {number}. {_e(f.title)}.</b> {_e(f.caption)}</figcaption></figure>"
    )


def _flush(pending: list[tuple[_Fig, int]], parts: list[str]) -> None:
    """Narrow figures side by side in pairs; a lone one alone at a readable width."""
    if len(pending) == 2:
        parts.append(
            '<div class="grid2">' + "".join(_figure_html(g, i) for g, i in pending) + "</div>"
        )
    elif pending:
        parts.append(_figure_html(*pending[0], alone=True))
    pending.clear()


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    th = "".join(
        f'<th class="n">{_e(h)}</th>' if n else f"<th>{_e(h)}</th>"
        for h, n in zip(head, numeric, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if n else f"<td>{c}</td>"
            for c, n in zip(r, numeric, strict=True)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _is_demo_data(run: _RunView) -> bool:
    cmd = run.run.get("command") or []
    name = str(run.summary.get("input", {}).get("name", ""))
    return name == "online_retail.parquet" or (len(cmd) > 1 and cmd[1] == "demo")


def _html(run: _RunView, figs: list[_Fig], notes: Mapping[str, str]) -> str:
    s, led, segs = run.summary, run.summary["ledger"], run.segments
    colors = segment_colors([int(x["cluster"]) for x in segs])
    metrics = s.get("metrics") or {}
    revenue = sum(float(x["revenue"]) for x in segs)
    inp = s.get("input") or {}
    n_out = int(run.customers["outlier"].sum())
    sil = metrics.get("silhouette")
    dmin, dmax = led.get("purchase_date_min"), led.get("purchase_date_max")
    span = (
        f"purchases {_e(str(dmin)[:10])} to {_e(str(dmax)[:10])}"
        if dmin and dmax
        else "no purchase dates recorded"
    )
    kpis = [
        (_int(led.get("customers_segmented", len(run.customers))), "customers"),
        (_int(len(segs)), "segments"),
        (f"{_int(s['k'])} <small>({_e(run.selection.method)})</small>", "k"),
        (_num(sil, ".3f"), "silhouette"),
        (_num(revenue, ",.0f"), "revenue"),
        (_int(n_out), "outliers kept"),
    ]
    number = 0
    by_section: dict[str, list[str]] = {}
    grouped: dict[str, list[_Fig]] = {}
    for f in figs:
        grouped.setdefault(f.section, []).append(f)
    for sec, items in grouped.items():
        parts: list[str] = []
        pending: list[tuple[_Fig, int]] = []
        for f in items:
            number += 1
            if f.wide:
                _flush(pending, parts)
                parts.append(_figure_html(f, number))
            else:
                pending.append((f, number))
                if len(pending) == 2:
                    _flush(pending, parts)
        _flush(pending, parts)
        by_section[sec] = parts

    def figs_of(sec: str) -> str:
        note = f'<p class="note">{_e(notes[sec])}</p>' if sec in notes else ""
        return note + "".join(by_section.get(sec, []))

    # 1. data
    read = int(led["rows_read"]) or 1
    ledger_rows = [["Rows read", _int(led["rows_read"]), "100.0%"]]
    for reason, cnt in dict(led["rows_dropped"]).items():
        label = f"Dropped: {_e(str(reason).replace('_', ' '))}"
        cells = [label, _int(cnt), f"{int(cnt) / read:.1%}"]
        ledger_rows.append(cells if int(cnt) else [f'<span class="zero">{c}</span>' for c in cells])
    ledger_rows.append(
        [
            "<b>Rows used</b>",
            f"<b>{_int(led['rows_used'])}</b>",
            f"{int(led['rows_used']) / read:.1%}",
        ]
    )
    facts = _table(
        ["Customers", "count"],
        [
            ["Seen (with any row)", _int(led.get("customers_seen"))],
            ["Segmented (at least one purchase line)", _int(led.get("customers_segmented"))],
            ["Without a purchase line", _int(led.get("customers_without_purchase"))],
            ["Outliers (flagged, kept in segments)", _int(n_out)],
        ],
        [False, True],
    )
    data_sec = (
        f'<p class="lead">Input <code>{_e(inp.get("name", "?"))}</code>, {span}; recency '
        f"counted to {_e(s['as_of'])}.</p>"
        + figs_of("data")
        + '<div class="facts">'
        + _table(["Rows", "count", "share"], ledger_rows, [False, True, True])
        + facts
        + "</div>"
    )

    # 2. distributions
    dist_sec = (
        '<p class="lead">Recency, frequency and monetary value of every customer, '
        "before and after setting the outliers aside.</p>" + figs_of("distributions")
    )

    # 3. k
    k_sec = (
        f'<p class="lead">{_e(k_agreement(run.selection))}</p>'
        + (f'<p class="note">{_e(run.selection.note)}</p>' if run.selection.note else "")
        + figs_of("k")
    )

    # 4. model
    mrows = [
        [_e(label), _num(metrics.get(key), fmt)]
        for key, label, fmt in (
            ("silhouette", "Silhouette (higher is better, max 1)", ".3f"),
            ("calinski_harabasz", "Calinski-Harabasz (higher is better)", ",.1f"),
            ("davies_bouldin", "Davies-Bouldin (lower is better, min 0)", ".3f"),
        )
    ]
    settings = (s.get("settings") or {}).get("cluster") or {}
    model_sec = (
        f'<p class="lead">K-Means with k = {_int(s["k"])} on standardised features '
        f"(transform: {_e(settings.get('transform', 'none'))}, outliers: "
        f"{_e(settings.get('outliers', '?'))}), fitted on the non-outliers; outliers are "
        "assigned to the nearest segment.</p>"
        + figs_of("model")
        + _table(["Quality of the final model", "value"], mrows, [False, True])
    )

    # 5. segments
    seg_rows = []
    for x in segs:
        col = colors[int(x["cluster"])]
        seg_rows.append(
            [
                f'<span class="swatch" style="--c:{col}"></span>{_e(x["name"])}',
                _int(x["customers"]),
                f"{float(x['share_customers']):.1%}",
                _num(x["revenue"], ",.0f"),
                f"{float(x['share_revenue']):.1%}",
                _num(x["recency_mean"], ",.0f"),
                _num(x["frequency_mean"], ",.1f"),
                _num(x["monetary_mean"], ",.0f"),
            ]
        )
    seg_table = _table(
        [
            "Segment",
            "customers",
            "share",
            "revenue",
            "share",
            "recency (days)",
            "frequency",
            "monetary",
        ],
        seg_rows,
        [False, *[True] * 7],
    )
    cards = "".join(
        f'<div class="card" style="--c:{colors[int(x["cluster"])]}"><h4>{_e(x["name"])}</h4>'
        f'<div class="meta">{_int(x["customers"])} customers '
        f"({float(x['share_customers']):.0%}) · {float(x['share_revenue']):.0%} of revenue</div>"
        f"<p>{_e(x['description'])}</p><p><b>Suggested action:</b> {_e(x['action'])}</p></div>"
        for x in segs
    )
    seg_sec = (
        seg_table
        + figs_of("segments")
        + f'<h3>What to do with each segment</h3><div class="cards">{cards}</div>'
    )

    # 6. views
    views_sec = figs_of("views")

    # 7. reproducibility
    cmd = run.run.get("command")
    cmd_text = shlex.join(str(a) for a in cmd) if isinstance(cmd, list) else "n/a"
    rin = run.run.get("input") or {}
    versions = run.run.get("versions") or {}
    repro_rows = [
        ["Command", f"<code>{_e(cmd_text)}</code>"],
        ["Seed", _e(run.run.get("seed"))],
        ["As of", _e(run.run.get("as_of", s.get("as_of")))],
        ["Input", f"<code>{_e(rin.get('name', inp.get('name', '?')))}</code>"],
        ["Input size", _e(_size(rin.get("size_bytes", inp.get("size_bytes"))))],
        ["Input SHA-256", f"<code>{_e(rin.get('sha256', inp.get('sha256', 'n/a')))}</code>"],
        ["Columns used", _e(", ".join(f"{k}: {v}" for k, v in (inp.get("columns") or {}).items()))],
        ["Versions", _e(", ".join(f"{k} {v}" for k, v in versions.items()))],
    ]
    settings_json = json.dumps(s.get("settings", {}), indent=2, ensure_ascii=False)
    repro_sec = (
        _table(["What", "value"], repro_rows, [False, False])
        + f"<details><summary>All settings</summary><pre>{_e(settings_json)}</pre></details>"
    )

    bodies = {
        "data": data_sec,
        "distributions": dist_sec,
        "k": k_sec,
        "model": model_sec,
        "segments": seg_sec,
        "views": views_sec,
        "repro": repro_sec,
    }
    toc = "".join(f'<li><a href="#{sid}">{_e(title)}</a></li>' for sid, title in _SECTIONS)
    sections = "".join(
        f'<section id="{sid}"><h2>{_e(title)}</h2>{bodies[sid]}</section>'
        for sid, title in _SECTIONS
    )
    credit = ""
    if _is_demo_data(run):
        credit = (
            "<p>Data: Chen, D. (2015). Online Retail [Dataset]. UCI Machine Learning "
            f'Repository. <a href="{_DOI}">{_DOI}</a> (CC BY 4.0).</p>'
        )
    kpi_html = "".join(
        f'<div class="kpi"><b>{v}</b><span>{_e(label)}</span></div>' for v, label in kpis
    )
    title = f"Customer segments: {inp.get('name', 'run')}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<header class="top"><div class="wrap"><h1>{_e(title)}</h1>'
        f"<p>{span} · as of {_e(s['as_of'])} · custseg {_e(s.get('custseg_version', ''))}</p>"
        f'<div class="kpis">{kpi_html}</div></div></header>'
        f'<nav class="toc"><div class="wrap"><ol>{toc}</ol></div></nav>'
        f'<main class="wrap">{sections}</main>'
        f'<footer class="wrap"><p>Made with custseg. Rebuild this page and its figures '
        f"with <code>custseg report</code> on this folder.</p>{credit}</footer>"
        f'<div id="selfcheck" hidden></div><script>{_SELFCHECK}</script>'
        "</body></html>\n"
    )


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def write_report(out_dir: str | Path) -> list[Path]:
    """Build report.html and figures/ (PNG and SVG of each figure) from a run's output files.

    Reads segments.csv, summary.json, model.json and run.json of ``out_dir``, so that the
    page is the same whether it is built at the end of a run or rebuilt later. The figures
    folder and the page replace the previous ones only once complete.

    Parameters
    ----------
    out_dir : path
        The output folder of a finished run.

    Returns
    -------
    list of Path
        report.html, then the figure files.

    Raises
    ------
    InputError
        If a file of the run is missing or malformed (the message names it and the fix).
    OutputError
        If the folder cannot be written.

    Examples
    --------
    After ``custseg run data.csv --out custseg-output``::

        paths = write_report("custseg-output")  # report.html, then the figure files
    """
    out = Path(out_dir)
    run = _view(read_run(out))
    with _style():
        figs, notes = _figures(run)
        for f in figs:
            _render(f)
    page = _html(run, figs, notes)
    try:
        fig_tmp = Path(tempfile.mkdtemp(prefix=f".{FIGURES_DIR}.tmp-", dir=out))
        fd, html_tmp_name = tempfile.mkstemp(prefix=f".{REPORT_FILE}.tmp-", dir=out)
    except OSError as exc:
        raise OutputError(
            f"Cannot write to {str(out)!r}: {exc.strerror}. Check its permissions."
        ) from None
    html_tmp = Path(html_tmp_name)
    names: list[str] = []
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        for i, f in enumerate(figs, start=1):
            stem = f"{i:02d}-{f.slug}"
            (fig_tmp / f"{stem}.png").write_bytes(f.png)
            (fig_tmp / f"{stem}.svg").write_bytes(f.svg)
            names += [f"{stem}.png", f"{stem}.svg"]
        os.chmod(fig_tmp, 0o755)
        os.chmod(html_tmp, 0o644)
        replace_atomically(fig_tmp, out / FIGURES_DIR)
        os.replace(html_tmp, out / REPORT_FILE)
    except OSError as exc:
        raise OutputError(
            f"Cannot write the report into {str(out)!r}: {exc}. Check the folder."
        ) from None
    finally:
        shutil.rmtree(fig_tmp, ignore_errors=True)
        html_tmp.unlink(missing_ok=True)
    return [out / REPORT_FILE, *(out / FIGURES_DIR / n for n in names)]
