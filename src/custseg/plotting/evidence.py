"""Figures of a backtest: what each segment's customers did next, and how rankings compare."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from .draw import SEGMENT_PALETTE, new_axes, plain_text, thousands

__all__ = ["plot_evidence", "plot_holdout_by_k", "plot_holdout_by_segment"]


def plot_holdout_by_segment(
    names: Sequence[str],
    revenue_per_customer: Sequence[float],
    share_buying_again: Sequence[float],
    *,
    target: str = "revenue",
    ax: Axes | None = None,
) -> Axes:
    """Holdout revenue per customer of each segment (bars), labelled with the share who
    bought again; ``target="orders"`` for data without money (the bars are then orders).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = plot_holdout_by_segment(["A", "B"], [300.0, 40.0], [0.9, 0.3],
    ...                              ax=Figure().add_subplot())
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['A', 'B']
    """
    ax = ax if ax is not None else new_axes()[0]
    y = np.arange(len(names))
    colors = [SEGMENT_PALETTE[i % len(SEGMENT_PALETTE)] for i in range(len(names))]
    ax.barh(y, revenue_per_customer, color=colors, height=0.6)
    top = max(max(revenue_per_customer, default=0.0), 1e-9)
    for yi, value, share in zip(y, revenue_per_customer, share_buying_again, strict=True):
        ax.text(
            value + top * 0.01,
            float(yi),
            f" {value:,.0f} · {share:.0%} bought again"
            if target == "revenue"
            else f" {value:,.2f} · {share:.0%} bought again",
            va="center",
            ha="left",
            fontsize=8,
        )
    ax.set_yticks(y, [plain_text(n) for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.45)
    thousands(ax, "x")
    ax.set(xlabel=f"Holdout {target} per customer", title="What each segment did next")
    return ax


def plot_evidence(
    spearman: Mapping[str, float],
    auc: Mapping[str, float],
    *,
    labels: Mapping[str, str] | None = None,
    target: str = "revenue",
    ax: Axes | None = None,
) -> Axes:
    """Spearman with holdout revenue (``target``: orders for data without money) and AUC for
    buying again of each ranking (segments first).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = plot_evidence({"segments": 0.5, "monetary": 0.52}, {"segments": 0.72,
    ...                    "monetary": 0.71}, ax=Figure().add_subplot())
    >>> len(ax.patches)
    4
    """
    ax = ax if ax is not None else new_axes()[0]
    names = list(spearman)
    y = np.arange(len(names))
    words = labels or {}
    ax.barh(
        y - 0.18,
        [spearman[n] for n in names],
        height=0.34,
        color="#2563eb",
        label=f"Spearman (holdout {target})",
    )
    ax.barh(
        y + 0.18, [auc[n] for n in names], height=0.34, color="#f59e0b", label="AUC (buys again)"
    )
    for yi, n in zip(y, names, strict=True):
        ax.text(spearman[n], yi - 0.18, f" {spearman[n]:.3f}", va="center", fontsize=7.5)
        ax.text(auc[n], yi + 0.18, f" {auc[n]:.3f}", va="center", fontsize=7.5)
    ax.set_yticks(y, [plain_text(words.get(n, n)) for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.45)
    ax.axvline(0.5, color="#94a3b8", linestyle=":", linewidth=1)
    ax.legend(loc="center right", frameon=False)
    ax.set(xlabel="Higher is better (AUC 0.5 = chance)", title="Rankings compared")
    return ax


def plot_holdout_by_k(
    k_values: Sequence[int],
    spearman: Sequence[float | None],
    auc: Sequence[float | None],
    *,
    k: int | None = None,
    target: str = "revenue",
    ax: Axes | None = None,
) -> Axes:
    """How well the segments fitted before the cutoff ranked the holdout, by k: Spearman with
    holdout revenue (``target``: orders for data without money) and AUC for buying again,
    the k used drawn dotted.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = plot_holdout_by_k([2, 3, 4], [0.40, 0.45, None], [0.66, 0.70, 0.71], k=3,
    ...                        ax=Figure().add_subplot())
    >>> [len(line.get_xdata()) for line in ax.get_lines()[:2]]
    [2, 3]
    """
    ax = ax if ax is not None else new_axes()[0]
    for values, color, label in (
        (spearman, "#2563eb", f"Spearman (holdout {target})"),
        (auc, "#f59e0b", "AUC (buys again)"),
    ):
        pairs = [(kk, v) for kk, v in zip(k_values, values, strict=True) if v is not None]
        ax.plot([p[0] for p in pairs], [p[1] for p in pairs], marker="o", color=color, label=label)
    if k is not None:
        ax.axvline(k, color="#94a3b8", linestyle=":", linewidth=1, label=f"k used ({k})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best", frameon=False, fontsize=8)
    ax.set(xlabel="k (number of segments)", ylabel="Higher is better", title="Backtest by k")
    return ax
