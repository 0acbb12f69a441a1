"""compare.html: one self-contained page of a comparison of two runs, built from compare.json.

As the run report is built from a run folder's files, this page is built from the folder's
compare.json alone (:func:`write_compare_page`), so it can be rebuilt without the two runs.
The markup is ``templates/compare.html.j2``, rendered by the report's Jinja2 environment
(:func:`custseg.report.page.environment`: autoescaping on, the report's macros and styles), so
every value from the runs (segment names from config overrides, folder and file names) is
escaped wherever the template puts it. The two figures are drawn by
:mod:`custseg.plotting.compare` in the report's style and layout (:mod:`.render`) and inlined
as base64 PNG; the page's Content-Security-Policy forbids every fetch and every script.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..comparison import matrix_labels
from ..errors import OutputError
from ..formats import CompareFile
from ..plotting.compare import name_colors, plot_migration_flows, plot_migration_heatmap
from .page import environment
from .render import render_figure, report_style

__all__ = ["COMPARE_PAGE", "compare_matrix", "render_compare_page", "write_compare_page"]

COMPARE_PAGE = "compare.html"


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


def compare_matrix(
    doc: CompareFile, value: Literal["customers", "revenue_old", "revenue_new"] = "customers"
) -> pd.DataFrame:
    """The migration matrix of a compare.json, labelled as
    :meth:`custseg.comparison.Comparison.matrix` labels it (the corner cell NaN)."""
    old = [s.name for s in doc.old.segments]
    new = [s.name for s in doc.new.segments]
    new_label, lost_label = matrix_labels(old, new)
    out = pd.DataFrame(0.0, index=[*old, new_label], columns=[*new, lost_label])
    for f in doc.matrix:
        out.loc[f.from_ or new_label, f.to or lost_label] = getattr(f, value)
    out.loc[new_label, lost_label] = np.nan  # new customers cannot be lost
    out.index.name, out.columns.name = "old segment", "new segment"
    return out


def _draw(draw: Callable[[Axes], object], width: float, height: float) -> tuple[str, int, int]:
    """A one-axes figure drawn by ``draw``: base64 PNG and display size (96 px per inch)."""
    with report_style():
        fig = Figure(figsize=(width, height))
        draw(fig.add_subplot())
        png, _ = render_figure(fig)
    return base64.b64encode(png).decode("ascii"), round(width * 96), round(height * 96)


def _figures(doc: CompareFile) -> list[_Figure]:
    matrix = compare_matrix(doc)
    colors = name_colors([s.name for s in doc.old.segments], [s.name for s in doc.new.segments])
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


def _tables(doc: CompareFile) -> list[tuple[str, list[str], list[tuple[str, list[float]]]]]:
    """(caption, columns, rows of (name, cells)) of each matrix the page shows."""
    out = []
    shown: list[tuple[Literal["customers", "revenue_old", "revenue_new"], str]] = [
        ("customers", "Customers")
    ]
    if doc.new.revenue is not None:  # a run of data without money has no revenue
        shown.append(("revenue_new", "Revenue in the new run"))
    if doc.old.revenue is not None:
        shown.append(("revenue_old", "Revenue in the old run"))
    for key, caption in shown:
        m = compare_matrix(doc, key).fillna(0.0)
        rows = [(str(name), row.tolist()) for name, row in m.iterrows()]
        out.append((caption, [str(c) for c in m.columns], rows))
    return out


def render_compare_page(doc: CompareFile) -> str:
    """The HTML of compare.html: the two runs, the totals, the figures, the matrices and the
    segment tables."""
    t = doc.totals
    return (
        environment()
        .get_template("compare.html.j2")
        .render(
            title=f"Segment migration: {doc.old.folder} to {doc.new.folder}",
            doc=doc,
            totals=t,
            moved_share=f"{t.moved / t.customers_common:.1%}" if t.customers_common else "n/a",
            figures=_figures(doc),
            matrices=_tables(doc),
        )
    )


def write_compare_page(out_dir: str | Path) -> Path:
    """Write compare.html from the folder's compare.json; returns its path.

    Raises
    ------
    InputError
        If compare.json is missing or malformed.
    OutputError
        If the page cannot be written.
    """
    out = Path(out_dir)
    doc = CompareFile.read(out / CompareFile.FILE)
    page = render_compare_page(doc)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{COMPARE_PAGE}.tmp-", dir=out)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out / COMPARE_PAGE)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"Cannot write {out / COMPARE_PAGE}: {exc}. Check the folder.") from None
    return out / COMPARE_PAGE
