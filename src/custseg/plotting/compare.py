"""Figures of a comparison of two runs: the migration heatmap and the flow (alluvial) chart.

As in :mod:`custseg.plotting.draw`, each ``plot_*`` draws computed data (a migration matrix
from :meth:`custseg.comparison.Comparison.matrix`) on the axes it is given and returns them;
it never saves or shows. :func:`flow_layout` computes where the flow chart's nodes and bands
go, :func:`name_colors` the colours; segment names go through :func:`.draw.plain_text`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .draw import SEGMENT_PALETTE, plain_text

__all__ = [
    "flow_layout",
    "name_colors",
    "plot_migration_flows",
    "plot_migration_heatmap",
]

_NEUTRAL = "#94a3b8"
_INK = "#1e293b"


def _new_axes() -> Axes:
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(7.0, 4.5), layout="constrained").add_subplot()


def _wrap(text: object, width: int = 18) -> str:
    return textwrap.fill(plain_text(text), width, break_long_words=False) or plain_text(text)


def name_colors(old: Sequence[str], new: Sequence[str]) -> dict[str, str]:
    """One colour per segment name of either run: a name both runs use has one colour.

    Examples
    --------
    >>> name_colors(["Champions", "Lost"], ["Lost", "New stars"])
    {'Champions': '#2563eb', 'Lost': '#f59e0b', 'New stars': '#10b981'}
    """
    names = list(dict.fromkeys([*old, *new]))
    return {n: SEGMENT_PALETTE[i % len(SEGMENT_PALETTE)] for i, n in enumerate(names)}


def plot_migration_heatmap(
    matrix: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None
) -> Axes:
    """Customers from each old segment (rows) to each new one (columns), shaded by row share.

    Parameters
    ----------
    matrix : DataFrame
        Customer counts, old segments (and the new customers) by new segments (and the lost);
        NaN where a cell does not apply (new customers cannot be lost).
    ax : Axes, optional
    title : str, optional

    Returns
    -------
    Axes
        The cells, each labelled with its count and its share of the row.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> m = pd.DataFrame([[8, 2, 0], [1, 9, np.nan]], index=["A", "new"],
    ...                  columns=["A", "B", "lost"])
    >>> ax = plot_migration_heatmap(m, ax=Figure().add_subplot())
    >>> ax.texts[0].get_text()
    '8\\n80%'
    """
    ax = ax if ax is not None else _new_axes()
    counts = matrix.to_numpy(dtype=float)
    totals = np.nansum(counts, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(totals > 0, counts / np.where(totals > 0, totals, 1), 0.0)
    shown = np.ma.masked_invalid(np.where(np.isnan(counts), np.nan, share))
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for i, j in np.ndindex(counts.shape):
        if np.isnan(counts[i, j]):
            continue
        ax.text(
            j,
            i,
            f"{counts[i, j]:,.0f}\n{share[i, j]:.0%}",
            ha="center",
            va="center",
            fontsize=7.5,
            color="white" if share[i, j] > 0.55 else _INK,
        )
    ax.set_xticks(range(counts.shape[1]), [_wrap(c, 14) for c in matrix.columns])
    ax.set_yticks(range(counts.shape[0]), [_wrap(r, 22) for r in matrix.index])
    ax.tick_params(axis="x", labelrotation=0, labelsize=8)
    ax.tick_params(length=0)
    ax.grid(False)
    for side in ax.spines.values():
        side.set_visible(False)
    # Beside the axes, not in its grid cell, so that a layout can place it (see draw.py).
    ax.figure.colorbar(
        im, ax=ax, label="share of the row's customers", shrink=0.8, use_gridspec=False
    )
    ax.set(
        xlabel="segment in the new run",
        ylabel="segment in the old run",
        title=title or "Where each old segment's customers went",
    )
    return ax


def flow_layout(
    matrix: pd.DataFrame, *, gap: float = 0.03
) -> tuple[
    list[tuple[float, float]], list[tuple[float, float]], list[tuple[int, int, float, float]]
]:
    """Where the alluvial chart puts its nodes and bands, in units of customers.

    Rows are stacked top to bottom on the left, columns on the right, ``gap`` of the total
    between nodes; each cell's band leaves its row in column order and enters its column in
    row order, so bands cross as little as the order allows.

    Returns
    -------
    left, right : list of (top, height)
        One per row and per column of ``matrix``.
    bands : list of (row, column, top on the left, top on the right)
        One per cell with customers (its height is the cell's count).

    Examples
    --------
    >>> m = pd.DataFrame([[3, 1], [0, 2]], index=["a", "b"], columns=["a", "b"])
    >>> left, right, bands = flow_layout(m, gap=0.0)
    >>> left, right
    ([(0.0, 4.0), (4.0, 2.0)], [(0.0, 3.0), (3.0, 3.0)])
    >>> bands
    [(0, 0, 0.0, 0.0), (0, 1, 3.0, 3.0), (1, 1, 4.0, 4.0)]
    """
    counts = np.nan_to_num(matrix.to_numpy(dtype=float))
    space = gap * counts.sum()

    def stack(sizes: np.ndarray) -> list[tuple[float, float]]:
        tops = np.concatenate([[0.0], np.cumsum(sizes + space)[:-1]])
        return [(float(t), float(s)) for t, s in zip(tops, sizes, strict=True)]

    left, right = stack(counts.sum(axis=1)), stack(counts.sum(axis=0))
    out_at = [t for t, _ in left]
    in_at = [t for t, _ in right]
    bands = []
    for i, j in np.ndindex(counts.shape):  # row-major: each row's bands in column order
        if counts[i, j] > 0:
            bands.append((i, j, out_at[i], 0.0))
            out_at[i] += float(counts[i, j])
    for n, (i, j, top, _) in sorted(enumerate(bands), key=lambda b: (b[1][1], b[1][0])):
        bands[n] = (i, j, top, in_at[j])
        in_at[j] += float(counts[i, j])
    return left, right, bands


def plot_migration_flows(
    matrix: pd.DataFrame,
    *,
    colors: Mapping[str, str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """An alluvial chart: old segments on the left, new ones on the right, customers between.

    Parameters
    ----------
    matrix : DataFrame
        Customer counts as for :func:`plot_migration_heatmap` (NaN counts as 0).
    colors : mapping of segment name -> colour, optional
        Default :func:`name_colors` of the row and column names; labels with no colour (the
        new and the lost customers) are grey.
    ax : Axes, optional
    title : str, optional

    Returns
    -------
    Axes
        A bar per segment on each side, a band per cell coloured by its old segment.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> m = pd.DataFrame([[3, 1], [0, 2]], index=["a", "b"], columns=["a", "b"])
    >>> ax = plot_migration_flows(m, ax=Figure().add_subplot())
    >>> len(ax.collections)  # three bands
    3
    """
    ax = ax if ax is not None else _new_axes()
    rows, cols = [str(r) for r in matrix.index], [str(c) for c in matrix.columns]
    colors = colors if colors is not None else name_colors(rows, cols)
    counts = np.nan_to_num(matrix.to_numpy(dtype=float))
    left, right, bands = flow_layout(matrix)
    w = 0.04  # bar width, in axes units of the 0-1 x range
    t = np.linspace(0.0, 1.0, 60)
    ease = (1 - np.cos(np.pi * t)) / 2
    x = w + t * (1 - 2 * w)
    for i, j, top_l, top_r in bands:
        h = counts[i, j]
        upper = top_l + (top_r - top_l) * ease
        ax.fill_between(x, upper, upper + h, color=colors.get(rows[i], _NEUTRAL), alpha=0.45, lw=0)
    for nodes, names, x0, ha, xt in (
        (left, rows, 0.0, "right", -0.01),
        (right, cols, 1 - w, "left", 1.01),
    ):
        for (top, size), name in zip(nodes, names, strict=True):
            if size <= 0:
                continue
            ax.bar(x0, size, width=w, bottom=top, align="edge", color=colors.get(name, _NEUTRAL))
            ax.text(
                xt,
                top + size / 2,
                f"{_wrap(name, 22)}  {size:,.0f}",
                ha=ha,
                va="center",
                fontsize=8,
            )
    total = max(left[-1][0] + left[-1][1], right[-1][0] + right[-1][1])
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(total, 0.0)
    ax.set_axis_off()
    ax.set_title(title or "Customers from the old run's segments (left) to the new run's (right)")
    return ax
