"""compare.html: one self-contained page of a comparison of two runs.

The markup is ``templates/compare.html.j2``, rendered by the report's Jinja2 environment
(:func:`custseg.report.page.environment`: autoescaping on, the report's macros and styles), so
every value from the runs (segment names from config overrides, folder and file names) is
escaped wherever the template puts it. This module computes what the page says and draws its
two figures with :mod:`custseg.plotting.compare`, in the report's style and layout
(:mod:`custseg.report.render`), inlined as base64 PNG. The page's Content-Security-Policy
forbids every fetch: it works offline and runs no script.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..comparison import Comparison
from ..plotting.compare import name_colors, plot_migration_flows, plot_migration_heatmap
from ..runs import RunFiles
from .page import environment
from .render import render_figure, report_style

__all__ = ["COMPARE_FILE", "render_compare_page", "write_compare_page"]

COMPARE_FILE = "compare.html"


@dataclass(frozen=True)
class _Figure:
    """A figure as the page shows it (the fields the report's ``figure`` macro reads)."""

    slug: str
    title: str
    caption: str
    number: int
    png_base64: str
    width: int
    height: int


def _draw(draw: Callable[[Axes], object], width: float, height: float) -> tuple[str, int, int]:
    """A one-axes figure drawn by ``draw``: base64 PNG and display size (96 px per inch)."""
    with report_style():
        fig = Figure(figsize=(width, height))
        draw(fig.add_subplot())
        png, _ = render_figure(fig)
    return base64.b64encode(png).decode("ascii"), round(width * 96), round(height * 96)


def _figures(c: Comparison) -> list[_Figure]:
    matrix = c.matrix().astype(float)
    matrix.loc[c.new_label, c.lost_label] = np.nan  # new customers cannot be lost
    colors = name_colors(list(c.old.names.values()), list(c.new.names.values()))
    rows, cols = matrix.shape
    specs: list[tuple[str, str, str, Callable[[Axes], object], float, float]] = [
        (
            "migration",
            "Migration matrix",
            "Customers of each old segment (row) by their segment in the new run (column); "
            "the shade and the percentage are the share of the row. The last row holds the "
            "customers only in the new run, the last column those only in the old one.",
            lambda ax: plot_migration_heatmap(matrix, ax=ax),
            max(7.0, 1.25 * cols + 3.5),
            max(3.2, 0.55 * rows + 1.6),
        ),
        (
            "flows",
            "Flows between segments",
            "Each band is a cell of the matrix: customers from an old segment (left) to a new "
            "one (right), coloured by the old segment; a name both runs use has one colour.",
            lambda ax: plot_migration_flows(matrix, colors=colors, ax=ax),
            9.5,
            max(4.0, 0.45 * max(rows, cols) + 2.0),
        ),
    ]
    out = []
    for number, (slug, title, caption, draw, w, h) in enumerate(specs, start=1):
        png, width, height = _draw(draw, w, h)
        out.append(_Figure(slug, title, caption, number, png, width, height))
    return out


def _side(r: RunFiles) -> dict[str, Any]:
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


def _matrices(c: Comparison) -> list[tuple[str, str, list[str], list[tuple[str, list[Any]]]]]:
    """(caption, number format, columns, rows of (name, cells)) of each matrix the page shows."""
    out = []
    for key, caption, spec in (
        ("customers", "Customers", ",.0f"),
        ("revenue_new", "Revenue in the new run", ",.0f"),
        ("revenue_old", "Revenue in the old run", ",.0f"),
    ):
        m = c.matrix(key)  # type: ignore[arg-type]
        rows = [(str(name), row.tolist()) for name, row in m.iterrows()]
        out.append((caption, spec, [str(col) for col in m.columns], rows))
    return out


def render_compare_page(comparison: Comparison) -> str:
    """The HTML of compare.html: the two runs, the totals, the figures, the matrices and the
    segment tables."""
    c = comparison
    t = c.totals()
    common = t["customers_common"]
    return (
        environment()
        .get_template("compare.html.j2")
        .render(
            title=f"Segment migration: {c.old.out_dir.name} to {c.new.out_dir.name}",
            old=_side(c.old),
            new=_side(c.new),
            totals=t,
            moved_share=f"{t['moved'] / common:.1%}" if common else "n/a",
            figures=_figures(c),
            matrices=_matrices(c),
            old_segments=c.old_segments().to_dict("records"),
            new_segments=c.new_segments().to_dict("records"),
        )
    )


def write_compare_page(comparison: Comparison, out_dir: str | Path) -> Path:
    """Write compare.html into ``out_dir`` (an existing folder) and return its path."""
    path = Path(out_dir) / COMPARE_FILE
    path.write_text(render_compare_page(comparison), encoding="utf-8")
    return path
