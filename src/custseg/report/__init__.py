"""A run's output folder -> report.html and figures/ (the only writer of HTML and figures).

The report is built from the files of the output folder (segments.csv, summary.json,
model.json, run.json), never from in-memory results, so ``custseg run`` and ``custseg report``
produce the same page. The page is one self-contained file: figures are inlined as base64 PNG,
styles and the tiny self-check script are inline, nothing is fetched from the network.

- :mod:`.figures`: which figures a report has (:data:`FIGURES`), each built from
  :class:`ReportData` with :mod:`custseg.plotting`;
- :mod:`.render`: the report's style, the layout, PNG and SVG bytes;
- :mod:`.page`: the page's text, rendered by ``templates/report.html.j2`` (Jinja2).
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..runs import read_run, replace_atomically
from .backtest import BACKTEST_PAGE, write_backtest_page
from .figures import FIGURES, FigureSpec, ReportData, report_data, uses
from .page import SECTIONS, PageFigure, render_page
from .render import render_figure, report_style

__all__ = [
    "BACKTEST_PAGE",
    "FIGURES",
    "FIGURES_DIR",
    "REPORT_FILE",
    "FigureSpec",
    "ReportData",
    "build_figures",
    "uses",
    "write_backtest_page",
    "write_report",
]


REPORT_FILE = "report.html"
FIGURES_DIR = "figures"


@dataclass(frozen=True)
class _Built:
    page: PageFigure
    png: bytes
    svg: bytes | None


def build_figures(
    data: ReportData, specs: Sequence[FigureSpec] = FIGURES, *, svg: bool = False
) -> tuple[list[_Built], dict[str, str]]:
    """Render the figures that apply, numbered in page order, and the notes for the others."""
    order = {sid: i for i, (sid, _) in enumerate(SECTIONS)}
    built: list[_Built] = []
    notes: dict[str, str] = {sid: "" for sid in order}
    with report_style():
        for spec in sorted(specs, key=lambda s: order[s.section]):
            if not spec.applies(data):
                if spec.missing:
                    notes[spec.section] = spec.missing.format(d=data)
                continue
            fig = spec.build(data)
            width, height = fig.get_size_inches()
            png, svg_bytes = render_figure(fig, svg=svg)
            page = PageFigure(
                section=spec.section,
                slug=spec.slug,
                title=spec.title.format(d=data),
                caption=spec.caption.format(d=data),
                number=len(built) + 1,
                png_base64=base64.b64encode(png).decode("ascii"),
                width=round(width * 96),
                height=round(height * 96),
                wide=spec.wide,
            )
            built.append(_Built(page, png, svg_bytes))
    return built, notes


def _write(out: Path, page: str, figures: Sequence[_Built]) -> list[Path]:
    """report.html and figures/ into ``out``, each replacing the old one only once complete."""
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
        for f in figures:
            files: dict[str, Any] = {"png": f.png, "svg": f.svg}
            for ext, content in files.items():
                if content is not None:
                    name = f"{f.page.number:02d}-{f.page.slug}.{ext}"
                    (fig_tmp / name).write_bytes(content)
                    names.append(name)
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


def write_report(out_dir: str | Path, *, svg: bool = False) -> list[Path]:
    """Build report.html and figures/ (a PNG of each figure) from a run's output files.

    Reads segments.csv, summary.json, model.json and run.json of ``out_dir``, so that the
    page is the same whether it is built at the end of a run or rebuilt later. The figures
    folder and the page replace the previous ones only once complete.

    Parameters
    ----------
    out_dir : path
        The output folder of a finished run.
    svg : bool, default False
        Also write an SVG of each figure (vector, for print or slides; slower).

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
    run = read_run(out)
    data = report_data(run)
    figures, notes = build_figures(data, svg=svg)
    page = render_page(
        run, [f.page for f in figures], notes, colors=data.colors, n_outliers=data.n_outliers
    )
    return _write(out, page, figures)
