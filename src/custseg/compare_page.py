"""compare.html: one self-contained page of a comparison, rendered by a Jinja2 template.

The markup lives in ``report/compare.html.j2`` (package data). Autoescaping is on, so every
value from the runs (segment names from config overrides, folder and file names) is escaped
wherever the template puts it; this module only computes what the page says and draws the
figures (:mod:`custseg.compare_plots`), inlined as base64 PNG. Nothing is fetched: the page
forbids every network load in its Content-Security-Policy.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import matplotlib
import numpy as np
from jinja2 import Environment, StrictUndefined
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .compare_plots import name_colors, plot_migration_flows, plot_migration_heatmap
from .comparison import Comparison

__all__ = ["PAGE_FILE", "render_compare_page", "write_compare_page"]

PAGE_FILE = "compare.html"
_TEMPLATE = "compare.html.j2"
_DPI = 150
_RC: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelcolor": "#334155",
    "xtick.color": "#475569",
    "ytick.color": "#475569",
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


@dataclass(frozen=True)
class _Figure:
    slug: str
    title: str
    caption: str
    png_base64: str
    width: int
    height: int


@contextlib.contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(cast(Any, _RC)):
        yield


def _png(draw: Callable[[Axes], object], width: float, height: float) -> tuple[str, int, int]:
    """A figure drawn by ``draw`` on one axes, as base64 PNG and its display size."""
    with _style():
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig.add_subplot())
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii"), round(width * 96), round(height * 96)


def _figures(c: Comparison) -> list[_Figure]:
    matrix = c.matrix().astype(float)
    matrix.loc[c.new_label, c.lost_label] = np.nan  # new customers cannot be lost
    colors = name_colors(list(c.old.names.values()), list(c.new.names.values()))
    rows, cols = matrix.shape
    specs = [
        (
            "heatmap",
            "Migration matrix",
            "Customers of each old segment (row) by their segment in the new run (column); "
            "the shade and the percentage are the share of the row. The last row holds the "
            "customers only in the new run, the last column those only in the old.",
            lambda ax: plot_migration_heatmap(matrix, ax=ax),
            max(6.4, 1.3 * cols + 3.0),
            max(3.2, 0.55 * rows + 1.6),
        ),
        (
            "flows",
            "Flows between segments",
            "Each band is a cell of the matrix: customers from an old segment (left) to a new "
            "one (right), coloured by the old segment; a name both runs use has one colour.",
            lambda ax: plot_migration_flows(matrix, colors=colors, ax=ax),
            9.0,
            max(4.0, 0.45 * max(rows, cols) + 2.0),
        ),
    ]
    out = []
    for slug, title, caption, draw, w, h in specs:
        png, width, height = _png(draw, w, h)
        out.append(_Figure(slug, title, caption, png, width, height))
    return out


def _count(v: Any) -> str:
    return f"{int(v):,}" if isinstance(v, int | float) and math.isfinite(v) else "n/a"


def _money(v: Any) -> str:
    return f"{float(v):,.0f}" if isinstance(v, int | float) and math.isfinite(v) else "n/a"


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


@functools.cache
def _environment() -> Environment:
    env = Environment(
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(count=_count, money=_money)
    return env


def _template_text() -> str:
    return resources.files("custseg").joinpath("report", _TEMPLATE).read_text(encoding="utf-8")


def _side(r: Any) -> dict[str, Any]:
    s = r.summary
    return {
        "folder": r.out_dir.name,
        "as_of": s.as_of,
        "input": s.input.name,
        "sha256": s.input.sha256 or r.run.input.sha256 or "n/a",
        "method": s.method.name,
        "k": s.k,
        "customers": len(r.customers),
        "revenue": float(r.customers["monetary"].sum()),
    }


def render_compare_page(comparison: Comparison) -> str:
    """The HTML of compare.html: the two runs, the totals, the figures and the tables."""
    c = comparison
    t = c.totals()
    matrices = {key: c.matrix(key) for key in ("customers", "revenue_old", "revenue_new")}
    template = _environment().from_string(_template_text())
    return template.render(
        title=f"Segment migration: {c.old.out_dir.name} to {c.new.out_dir.name}",
        old=_side(c.old),
        new=_side(c.new),
        totals=t,
        moved_share=_share(t["moved"], t["customers_common"]),
        figures=_figures(c),
        matrices=[
            (
                "Customers",
                [str(x) for x in matrices["customers"].columns],
                [(str(i), [_count(v) for v in row]) for i, row in matrices["customers"].iterrows()],
            ),
            (
                "Revenue in the new run",
                [str(x) for x in matrices["revenue_new"].columns],
                [
                    (str(i), [_money(v) for v in row])
                    for i, row in matrices["revenue_new"].iterrows()
                ],
            ),
            (
                "Revenue in the old run",
                [str(x) for x in matrices["revenue_old"].columns],
                [
                    (str(i), [_money(v) for v in row])
                    for i, row in matrices["revenue_old"].iterrows()
                ],
            ),
        ],
        old_segments=c.old_segments().to_dict("records"),
        new_segments=c.new_segments().to_dict("records"),
    )


def write_compare_page(comparison: Comparison, out_dir: str | Path) -> Path:
    """Write compare.html into ``out_dir`` (an existing folder) and return its path."""
    path = Path(out_dir) / PAGE_FILE
    path.write_text(render_compare_page(comparison), encoding="utf-8")
    return path
