"""backtest.html: one self-contained page of what a backtest found (figures inline)."""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

from matplotlib.figure import Figure

from ..errors import OutputError
from ..formats import BacktestFile
from ..plotting.evidence import plot_evidence, plot_holdout_by_segment
from .page import environment
from .render import render_figure, report_style

__all__ = ["BACKTEST_PAGE", "RANKINGS", "write_backtest_page"]

BACKTEST_PAGE = "backtest.html"
#: How each ranking is called on the page and in the CLI's table.
RANKINGS = {
    "segments": "Segments (their value)",
    "monetary": "Monetary",
    "frequency": "Frequency",
    "recency": "Recency",
    "rfm_score": "RFM score (R+F+M)",
    "rf_score": "RF score (R+F)",
}


def _png(fig: Figure) -> str:
    png, _ = render_figure(fig)
    return base64.b64encode(png).decode("ascii")


def _figures(doc: BacktestFile) -> list[dict[str, object]]:
    with report_style():  # the report's look: created and drawn inside its style
        return _drawn(doc)


def _drawn(doc: BacktestFile) -> list[dict[str, object]]:
    segs = doc.segments
    target = doc.target or "revenue"
    money = target == "revenue"
    fig = Figure(figsize=(8.0, 1.4 + 0.45 * len(segs)))
    plot_holdout_by_segment(
        [s.name for s in segs],
        [(s.revenue_per_customer if money else s.orders_per_customer) or 0.0 for s in segs],
        [s.share_buying_again for s in segs],
        target=target,
        ax=fig.add_subplot(),
    )
    ev = doc.evidence
    fig2 = Figure(figsize=(8.0, 1.6 + 0.6 * len(ev.spearman)))
    plot_evidence(ev.spearman, ev.auc, labels=RANKINGS, target=target, ax=fig2.add_subplot())
    brought = (
        "revenue a segment's average customer brought"
        if money
        else ("orders a segment's average customer placed")
    )
    return [
        {"title": f"Holdout {target} per customer, by segment", "png": _png(fig), "caption":
         f"Each bar is the {brought} in the holdout; the label adds the share of its "
         "customers who bought again."},
        {"title": "Rankings compared", "png": _png(fig2), "caption":
         "How well each ranking of the customers known at the cutoff orders their holdout "
         f"{target} (Spearman) and tells who buys again (AUC): the segments against the "
         "customers' own numbers."},
    ]  # fmt: skip


def write_backtest_page(out_dir: str | Path) -> Path:
    """Write backtest.html from the folder's backtest.json; returns its path.

    Raises
    ------
    InputError
        If backtest.json is missing or malformed.
    OutputError
        If the page cannot be written.
    """
    out = Path(out_dir)
    doc = BacktestFile.read(out / BacktestFile.FILE, fix="run `custseg backtest INPUT` again")
    page = (
        environment()
        .get_template("backtest.html.j2")
        .render(doc=doc, figures=_figures(doc), rankings=RANKINGS)
    )
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{BACKTEST_PAGE}.tmp-", dir=out)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out / BACKTEST_PAGE)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"Cannot write {out / BACKTEST_PAGE}: {exc}. Check the folder.") from None
    return out / BACKTEST_PAGE
