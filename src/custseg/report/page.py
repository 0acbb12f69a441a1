"""report.html: the page's text and numbers, rendered by the Jinja2 template beside this module.

The markup lives in ``templates/report.html.j2`` (with ``macros.html.j2``, ``report.css`` and
``selfcheck.js``), shipped as package data and loaded the way pandas loads its Styler
templates: one :class:`jinja2.Environment` with a :class:`~jinja2.PackageLoader`. Autoescaping
is on, so every value from the data (names, file names, column names, settings) is escaped
wherever the template puts it; this module only computes what the page says.
"""

from __future__ import annotations

import functools
import html
import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from rich.filesize import decimal

from ..model import KSelection
from ..naming import level_words
from ..runs import RunFiles

__all__ = ["SECTIONS", "PageFigure", "Returns", "k_agreement", "render_page", "returns_of"]

#: The page's sections (id, heading), in order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("data", "1. Data"),
    ("distributions", "2. RFM distributions"),
    ("k", "3. Choosing k"),
    ("model", "4. The model"),
    ("segments", "5. Segments"),
    ("views", "6. Views"),
    ("repro", "7. Reproducibility"),
)
_DOI = "https://doi.org/10.24432/C5BW33"
_METRICS = (
    ("silhouette", "Silhouette (higher is better, max 1)", ".3f"),
    ("calinski_harabasz", "Calinski-Harabasz (higher is better)", ",.1f"),
    ("davies_bouldin", "Davies-Bouldin (lower is better, min 0)", ".3f"),
)


@dataclass(frozen=True)
class PageFigure:
    """A rendered figure as the page shows it.

    Attributes
    ----------
    section, slug, title, caption : str
    number : int
        Its number on the page (1, 2, ...), also the prefix of its files.
    png_base64 : str
        The PNG, base64-encoded for a ``data:`` URL.
    width, height : int
        Display size in CSS pixels (96 per inch of the figure).
    wide : bool
        Full width; narrow figures are paired side by side.
    """

    section: str
    slug: str
    title: str
    caption: str
    number: int
    png_base64: str
    width: int
    height: int
    wide: bool = True


def k_agreement(selection: KSelection) -> str:
    """One sentence on whether the knee and the quality scores agree on k.

    Examples
    --------
    >>> from custseg.model import KSelection
    >>> sel = KSelection("knee", [1, 2, 3], [9.0, 4.0, 3.0], [None, 0.5, 0.4],
    ...                  [None, 10.0, 12.0], [None, 0.6, 0.7], knee=2, k=2)
    >>> print(k_agreement(sel))  # doctest: +NORMALIZE_WHITESPACE
    The knee says 2, the best silhouette 2, the best Calinski-Harabasz 3 and the best
    Davies-Bouldin 2; the run used k = 2 (knee).
    """
    ks = list(selection.k_values)
    if len(ks) == 1:  # a rule table, not a sweep
        return (
            f"Only k = {ks[0]} was considered; the run used k = {selection.k} ({selection.method})."
        )

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


# --- formatting filters ----------------------------------------------------------------------


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _count(v: Any) -> str:
    """``4,338``; ``n/a`` for anything but a finite number."""
    return f"{int(v):,}" if _finite(v) else "n/a"


def _number(v: Any, spec: str = ",.2f") -> str:
    """``v`` formatted with ``spec``; ``n/a`` for anything but a finite number."""
    return format(float(v), spec) if _finite(v) else "n/a"


def _filesize(n: Any) -> str:
    """``3.6 MB`` (powers of 1000); ``n/a`` when the size is unknown."""
    return decimal(int(n)) if _finite(n) else "n/a"


def _escape(value: Any) -> Any:
    """Every ``{{ value }}`` of the page goes through this before autoescaping.

    MarkupSafe escapes quotes as ``&#34;``/``&#39;``; the page keeps the standard library's
    ``&quot;``/``&#x27;`` (what :func:`html.escape` writes, as the page always has). Markup
    (from macros and ``|safe``) passes unchanged; autoescaping then leaves this Markup alone.
    """
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


@functools.cache
def environment() -> Environment:
    """The report's Jinja2 environment (templates of this package, autoescaping on)."""
    env = Environment(
        loader=PackageLoader("custseg.report", "templates"),
        autoescape=True,
        finalize=_escape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(count=_count, number=_number, filesize=_filesize, level_words=level_words)
    return env


# --- what the page says ----------------------------------------------------------------------


def _span(ledger: Any) -> str:
    lo, hi = ledger.purchase_date_min, ledger.purchase_date_max
    return f"purchases {lo[:10]} to {hi[:10]}" if lo and hi else "no purchase dates recorded"


def _figure_rows(figures: Sequence[PageFigure]) -> list[list[PageFigure]]:
    """A section's figures in rows: a wide one alone, narrow ones in pairs (a lone one alone)."""
    rows: list[list[PageFigure]] = []
    pending: list[PageFigure] = []
    for f in figures:
        if f.wide:
            rows += [pending] if pending else []
            rows.append([f])
            pending = []
        else:
            pending.append(f)
            if len(pending) == 2:
                rows.append(pending)
                pending = []
    return rows + ([pending] if pending else [])


def _repro(run: RunFiles) -> list[tuple[str, str, bool]]:
    """The reproducibility table: (what, value, whether the value is code)."""
    doc, inp = run.run, run.summary.input
    cmd = shlex.join(doc.command) if doc.command is not None else "n/a"
    return [
        ("Command", cmd, True),
        ("Seed", str(doc.seed), False),
        ("As of", str(doc.as_of), False),
        ("Input", doc.input.name, True),
        ("Input size", _filesize(doc.input.size_bytes), False),
        ("Input SHA-256", doc.input.sha256 or "n/a", True),
        ("Columns used", ", ".join(f"{k}: {v}" for k, v in inp.columns.items()), False),
        ("Versions", ", ".join(f"{k} {v}" for k, v in doc.versions.items()), False),
    ]


@dataclass(frozen=True)
class Returns:
    """What the page says about cancellation lines (from segments.csv and summary.json).

    Attributes
    ----------
    net : bool
        Whether monetary is net of returns (``--returns net``).
    value : float
        The value of the segmented customers' return lines.
    customers : int
        Segmented customers with a return line.
    rows_netted, nonpositive : int or None
        With ``--returns net``: lines subtracted, customers whose net value is 0 or below.
    nonpositive_outliers : int
        Of those, how many are flagged as outliers.
    where : list of (name, count)
        The segments the customers with net value 0 or below are in.
    """

    net: bool
    value: float
    customers: int
    rows_netted: int | None = None
    nonpositive: int | None = None
    nonpositive_outliers: int = 0
    where: tuple[tuple[str, int], ...] = ()


def returns_of(run: RunFiles) -> Returns | None:
    """The returns of a run, or None when segments.csv has no ``returned`` column."""
    c = run.customers
    if "returned" not in c.columns:
        return None
    ledger = run.summary.ledger
    net = ledger.customers_net_nonpositive is not None
    gone = c["monetary"].to_numpy() <= 0 if net else np.zeros(len(c), dtype=bool)
    return Returns(
        net=net,
        value=float(c["returned"].sum()),
        customers=int((c["returned"] > 0).sum()),
        rows_netted=ledger.rows_netted,
        nonpositive=ledger.customers_net_nonpositive,
        nonpositive_outliers=int((gone & c["outlier"].to_numpy(dtype=bool)).sum()),
        where=tuple((s.name, s.net_nonpositive) for s in run.segments if s.net_nonpositive),
    )


def _is_demo_data(run: RunFiles) -> bool:
    cmd = run.run.command or []
    return run.summary.input.name == "online_retail.parquet" or cmd[1:2] == ["demo"]


def render_page(
    run: RunFiles,
    figures: Sequence[PageFigure],
    notes: Mapping[str, str],
    *,
    colors: Mapping[int, str],
    n_outliers: int,
) -> str:
    """The HTML of report.html.

    Parameters
    ----------
    run : RunFiles
        The run's files.
    figures : sequence of PageFigure
        In page order.
    notes : mapping of section id -> str
        A note shown above a section's figures (e.g. why one could not be drawn).
    colors : mapping of cluster -> colour
        The segments' colours in the figures.
    n_outliers : int
        Customers flagged as outliers.
    """
    summary = run.summary
    metrics = summary.metrics
    rows = {sid: _figure_rows([f for f in figures if f.section == sid]) for sid, _ in SECTIONS}
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            title=f"Customer segments: {summary.input.name}",
            summary=summary,
            ledger=summary.ledger,
            span=_span(summary.ledger),
            segments=run.segments,
            colors=colors,
            revenue=sum(s.revenue or 0.0 for s in run.segments),
            features=list(run.model.features),
            n_outliers=n_outliers,
            metrics=[(label, getattr(metrics, key), spec) for key, label, spec in _METRICS],
            selection=run.selection,
            k_text=k_agreement(run.selection),
            sections=SECTIONS,
            rows=rows,
            notes={sid: notes.get(sid, "") for sid, _ in SECTIONS},
            repro=_repro(run),
            returns=returns_of(run),
            settings_json=json.dumps(
                json.loads(summary.settings.model_dump_json()), indent=2, ensure_ascii=False
            ),
            credit=_DOI if _is_demo_data(run) else "",
        )
    )
