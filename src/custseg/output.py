"""SegmentationResult -> segments.csv, summary.json, model.json, written whole or not at all.

A run writes into a temporary folder beside the target and renames it into place when every
file is complete, so an interrupted run leaves the previous output as it was and no partial
files.
"""

from __future__ import annotations

import csv
import io
import os
import platform
import re
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .comparison import Comparison
from .config import RunConfig
from .errors import InputError
from .formats import (
    BacktestEvidence,
    BacktestFile,
    BacktestSegment,
    CompareFile,
    CompareRun,
    CompareTotals,
    CustomerStats,
    Flow,
    InputRecord,
    Interval,
    LedgerRecord,
    Machine,
    MatchRecord,
    MethodRecord,
    MethodsFile,
    Metrics,
    ModelFile,
    NewSegmentSource,
    OldSegmentFate,
    ReferenceRecord,
    RunInput,
    RunRecord,
    SegmentRecord,
    SegmentRef,
    StabilityRecord,
    Summary,
)
from .method_comparison import MethodsResult
from .naming import PROFILE_COLUMNS, SegmentName
from .pipeline import BacktestResult, SegmentationResult
from .runs import SEGMENTS_FILE, RunFiles, atomic_output_dir
from .schema import RFM_COLUMNS

__all__ = [
    "EXTRA_COLUMNS",
    "OUTPUT_FILES",
    "RETURNED",
    "SEGMENT_COLUMNS",
    "build_backtest",
    "build_compare",
    "build_model",
    "build_run_record",
    "build_summary",
    "neutralize_cell",
    "segment_columns",
    "write_backtest",
    "write_compare",
    "write_methods",
    "write_outputs",
    "write_run",
]

OUTPUT_FILES = (SEGMENTS_FILE, Summary.FILE, ModelFile.FILE, RunRecord.FILE)
_PACKAGES = (
    "duckdb",
    "ibis-framework",
    "sqlglot",
    "pyarrow",
    "pandas",
    "numpy",
    "scikit-learn",
    "kneed",
    "matplotlib",
    "pydantic",
)
#: The value of each customer's cancellation lines (positive), right after SEGMENT_COLUMNS in
#: every run: what ``--returns net`` subtracts from monetary.
RETURNED = "returned"
#: Columns some methods add after ``returned``, in this order.
EXTRA_COLUMNS = ("segment_probability", "r_score", "f_score", "m_score", "rfm_cell")
#: The columns of segments.csv, in order (docs/REFERENCE.md section 4).
SEGMENT_COLUMNS = (
    "customer_id",
    "recency",
    "frequency",
    "monetary",
    "outlier",
    "cluster",
    "segment",
)

# Per-k figures summary.json keeps in k_selection rather than under the method.
_IN_K_SELECTION = ("sse", "silhouette", "calinski_harabasz", "davies_bouldin")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def neutralize_cell(text: str) -> str:
    """Defuse spreadsheet formulas: text starting with = + - @ (or a tab/CR) gets a leading '.

    Plain numbers such as ``-12`` are left alone.

    Examples
    --------
    >>> neutralize_cell("=HYPERLINK(1)")
    "'=HYPERLINK(1)"
    >>> neutralize_cell("-12")
    '-12'
    """
    if text and text[0] in "=+-@\t\r" and not _NUMBER.match(text):
        return "'" + text
    return text


def write_outputs(
    result: SegmentationResult, out_dir: str | Path, *, command: list[str] | None = None
) -> list[Path]:
    """Write segments.csv, summary.json, model.json and run.json into an existing folder.

    The first three depend only on the input, the options and the seed (byte-identical across
    identical runs); ``run.json`` records how this run was made (command line, package
    versions, stage timings, the warnings given) and differs between runs. Use
    :func:`write_run` to write a whole run folder atomically.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    _write_segments(result, out / SEGMENTS_FILE)
    return [
        out / SEGMENTS_FILE,
        build_summary(result).write(out / Summary.FILE),
        build_model(result).write(out / ModelFile.FILE),
        build_run_record(result, command=command).write(out / RunRecord.FILE),
    ]


def write_run(
    result: SegmentationResult,
    out: str | Path,
    *,
    force: bool = False,
    report: bool = True,
    svg: bool = False,
    command: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write a run folder whole or not at all: the outputs and, by default, the report.

    Everything is written into a temporary folder beside ``out``, which replaces ``out``
    (with ``force``) only when complete; a failure or an interrupt leaves the previous folder
    as it was and nothing half-written.

    Parameters
    ----------
    result : SegmentationResult
    out : path
        The run folder.
    force : bool
        Replace ``out`` if it exists and is not empty.
    report : bool
        Also write report.html and figures/ (PNG).
    svg : bool
        Also write an SVG of each figure.
    command : list of str, optional
        The command line, for run.json.
    progress : callable, optional
        Called with ``"write outputs"`` and ``"write report"`` as each starts.

    Returns
    -------
    list of Path
        The files written, under ``out`` (report.html last, its figures not listed).

    Raises
    ------
    OutputError
        If ``out`` exists without ``force``, is a file, or cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> from custseg.datasets import online_retail_path
    >>> from custseg.pipeline import run
    >>> out = Path(tempfile.mkdtemp()) / "segments"
    >>> [p.name for p in write_run(run(online_retail_path()), out, report=False)]
    ['segments.csv', 'summary.json', 'model.json', 'run.json']
    """
    notify = progress or (lambda _stage: None)
    target = Path(out)
    with atomic_output_dir(target, force=force) as tmp:
        notify("write outputs")
        written = write_outputs(result, tmp, command=command)
        if report:
            notify("write report")
            from .report import write_report  # matplotlib loads only when a report is written

            written += write_report(tmp, svg=svg)[:1]
    return [target / p.name for p in written]


def build_run_record(result: SegmentationResult, *, command: list[str] | None = None) -> RunRecord:
    """The run.json document: provenance that is not part of the reproducible results."""
    versions: dict[str, str | None] = {"custseg": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return RunRecord(
        command=command,
        versions=versions,
        seed=result.config.cluster.random_state,
        as_of=result.as_of,
        input=RunInput(
            name=result.source.name,
            size_bytes=result.source.size_bytes,
            sha256=result.source.sha256,
        ),
        timings_seconds={k: round(v, 3) for k, v in result.timings.items()},
        machine=Machine(platform=platform.platform(), cpus=os.cpu_count()),
        warnings=list(result.warnings),
    )


def _write_segments(result: SegmentationResult, path: Path) -> None:
    """segments.csv, column by column: the bytes csv.writer writes, in a third of its time."""
    c = result.customers
    names = {s: _csv_cells([str(s)])[0] for s in c["segment"].unique()}
    head = segment_columns(list(c.columns))
    columns = [
        _csv_cells([str(v) for v in c.index.tolist()]),
        list(map(str, c["recency"].to_numpy(dtype=np.int64).tolist())),
        list(map(str, c["frequency"].to_numpy(dtype=np.int64).tolist())),
    ]
    if "monetary" in head:  # data without money has no monetary column
        columns.append(
            [repr(round(m, 6)) for m in c["monetary"].to_numpy(dtype=np.float64).tolist()]
        )
    columns += [
        ["true" if o else "false" for o in c["outlier"].to_numpy(dtype=bool).tolist()],
        list(map(str, c["cluster"].to_numpy(dtype=np.int64).tolist())),
        [names[s] for s in c["segment"].tolist()],
    ]
    extra = [col for col in (RETURNED, *EXTRA_COLUMNS) if col in c.columns]
    for col in extra:
        values = c[col].to_numpy()
        if col in ("segment_probability", RETURNED):
            columns.append([repr(round(p, 6)) for p in values.astype(np.float64).tolist()])
        else:
            columns.append(list(map(str, values.tolist())))
    with path.open("w", newline="", encoding="utf-8") as fh:
        fh.write(",".join((*head, *extra)) + "\n")
        step = 200_000
        for start in range(0, len(c), step):
            rows = zip(*(col[start : start + step] for col in columns), strict=True)
            fh.write("\n".join(map(",".join, rows)) + "\n")


def segment_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """The first columns of segments.csv for a customer table: :data:`SEGMENT_COLUMNS`, without
    ``monetary`` for data without money."""
    if "monetary" in columns:
        return SEGMENT_COLUMNS
    return tuple(c for c in SEGMENT_COLUMNS if c != "monetary")


def _csv_cells(values: list[str]) -> list[str]:
    """Text cells neutralised and, where needed, quoted exactly as csv.writer does."""
    out = list(values)
    for i, v in enumerate(values):
        # The characters that can make csv.writer quote (a superset) or neutralize_cell act.
        if (v and v[0] in "=+-@\t\r") or "," in v or '"' in v or "\n" in v or "\r" in v:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow([neutralize_cell(v), ""])
            out[i] = buf.getvalue()[:-2]  # drop the empty second cell and the newline
    return out


def _segment_record(result: SegmentationResult, s: SegmentName) -> SegmentRecord:
    row = result.profiles.loc[s.cluster]
    nonpositive = result.net_nonpositive()
    return SegmentRecord(
        cluster=s.cluster,
        name=s.name,
        description=s.description,
        action=s.action,
        **{col: row[col].item() for col in PROFILE_COLUMNS if col in row.index},
        levels=s.levels,
        asserted=s.asserted,
        contradiction_share=s.contradiction_share,
        net_nonpositive=None if nonpositive is None else nonpositive[s.cluster],
    )


def build_summary(result: SegmentationResult) -> Summary:
    """The summary.json document (docs/REFERENCE.md section 4).

    It holds nothing that changes between identical runs (no timestamps, no timings).
    """
    customers = result.customers
    features = list(result.fit.model.features)
    return Summary(
        custseg_version=__version__,
        as_of=result.as_of,
        k=result.k,
        features=None if features == list(RFM_COLUMNS) else features,
        k_selection=result.fit.selection,
        metrics=Metrics(**result.fit.metrics),
        method=MethodRecord(
            name=result.fit.model.method,
            params=result.fit.model.params,
            figures={
                name: values
                for name, values in result.fit.figures.items()
                if name not in _IN_K_SELECTION
            },
            sweep_sample=result.fit.sweep_sample,
        ),
        stability=None
        if result.stability is None
        else StabilityRecord(
            seeds=result.stability.seeds,
            resamples=result.stability.resamples,
            seed_mean=result.stability.seed_mean,
            resample_mean=result.stability.resample_mean,
            sample=result.stability.sample,
            deterministic=result.stability.deterministic,
        ),
        segments=[_segment_record(result, s) for s in result.segments],
        ledger=LedgerRecord(**result.ledger.to_dict()),
        customers=CustomerStats(
            total=len(customers),
            outliers=int(customers["outlier"].sum()),
            recency_mean=float(customers["recency"].mean()),
            frequency_mean=float(customers["frequency"].mean()),
            monetary_mean=(
                float(customers["monetary"].mean()) if "monetary" in customers else None
            ),
        ),
        input=_input_record(result),
        settings=result.config,
        scored_with=result.scored_with,
        reference=_reference_record(result),
    )


def _reference_record(result: SegmentationResult) -> ReferenceRecord | None:
    ref = result.reference
    if ref is None:
        return None
    names = {s.cluster: s.name for s in result.segments}
    return ReferenceRecord(
        model_sha256=ref.sha256,
        model_as_of=ref.doc.as_of,
        model_file=ref.file,
        matches=[
            MatchRecord(
                cluster=m.cluster,
                name=names[m.cluster],
                old_cluster=m.old_cluster,
                old_name=m.old_name,
                distance=m.distance,
                radius=m.radius,
            )
            for m in result.fit.matches
        ],
    )


def _input_record(result: SegmentationResult) -> InputRecord:
    source = result.source
    return InputRecord(
        name=Path(source.name).name if source.files else source.name,
        files=len(source.files),
        size_bytes=source.size_bytes,
        sha256=source.sha256,
        format=source.format,
        encoding=source.encoding,
        sheet=source.sheet,
        columns=result.columns.used() if result.columns else {},
        date_format=result.date_format,
    )


def build_model(result: SegmentationResult) -> ModelFile:
    """The model.json document: everything needed to score new customers the same way."""
    return ModelFile(
        custseg_version=__version__,
        as_of=result.as_of,
        model=result.fit.model,
        segments=[
            SegmentRef(cluster=s.cluster, name=s.name, description=s.description, action=s.action)
            for s in result.segments
        ],
        settings=result.config,
        columns=result.columns.used() if result.columns else {},
    )


def build_backtest(result: BacktestResult) -> BacktestFile:
    """The backtest.json document (reproducible: no timings, no paths)."""
    out, ev, training = result.outcomes, result.evidence, result.training
    table = result.segments.rename(columns={"segment": "name"})
    segments = [
        BacktestSegment(cluster=int(cluster), **{str(k): _plain(v) for k, v in row.items()})
        for cluster, row in zip(table.index, table.to_dict("records"), strict=True)
    ]
    differences = {
        name: {metric: Interval(estimate=t[0], low=t[1], high=t[2]) for metric, t in d.items()}
        for name, d in ev.differences.items()
    }
    return BacktestFile(
        custseg_version=__version__,
        holdout_days=out.holdout_days,
        cutoff=out.cutoff,
        end=out.end,
        train_as_of=out.as_of,
        customers=len(out.train),
        buying_again=int(out.buys.sum()),
        target="orders" if out.revenue is None else None,
        holdout_revenue=None if out.revenue is None else float(out.revenue.sum()),
        new_customers=out.new_customers,
        new_revenue=out.new_revenue,
        k=training.k,
        k_selection=training.fit.selection,
        segments=segments,
        evidence=BacktestEvidence(
            spearman=ev.spearman,
            auc=ev.auc,
            differences=differences,
            bootstrap=ev.bootstrap,
            bootstrap_customers=ev.bootstrap_customers,
            seed=ev.seed,
        ),
        input=_input_record(training),
        settings=training.config,
    )


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def write_backtest(
    result: BacktestResult, out: str | Path, *, force: bool = False, report: bool = True
) -> list[Path]:
    """Write backtest.json (and backtest.html with its figure) into a folder, whole or not at all.

    Raises
    ------
    OutputError
        If ``out`` exists without ``force``, is a file, or cannot be written.
    """
    target = Path(out)
    with atomic_output_dir(target, force=force) as tmp:
        written = [build_backtest(result).write(tmp / BacktestFile.FILE)]
        if report:
            from .report import write_backtest_page

            written.append(write_backtest_page(tmp))
    return [target / p.name for p in written]


# --- compare ---------------------------------------------------------------------------------


def _compare_run(r: RunFiles, revenue: float | None) -> CompareRun:
    return CompareRun(
        folder=r.out_dir.name,
        as_of=r.summary.as_of,
        input=RunInput(
            name=r.summary.input.name,
            size_bytes=r.summary.input.size_bytes,
            sha256=r.summary.input.sha256 or r.run.input.sha256,
        ),
        method=r.summary.method.name,
        k=r.summary.k,
        customers=len(r.customers),
        revenue=None if revenue is None else round(revenue, 6),
        segments=[
            SegmentRef(cluster=s.cluster, name=s.name, description=s.description, action=s.action)
            for s in r.segments
        ],
    )


def build_compare(comparison: Comparison) -> CompareFile:
    """The compare.json document (reproducible: no timings, no paths beyond folder names)."""
    c, t = comparison, comparison.totals()
    cells: list[dict[str, Any]] = [
        {str(k): None if v is pd.NA else _plain(v) for k, v in row.items()}
        for row in c.flows.to_dict("records")
    ]

    def spread(cluster: int, side: str, other: str) -> dict[str, int]:
        """Customers of one segment by the segment on the other side (new and lost apart)."""
        mine = [
            f
            for f in cells
            if f[f"{side}_cluster"] == cluster and f[f"{other}_cluster"] is not None
        ]
        return {str(f[f"{other}_segment"]): int(f["customers"]) for f in mine}

    return CompareFile(
        custseg_version=__version__,
        old=_compare_run(c.old, t["revenue_old"]),
        new=_compare_run(c.new, t["revenue_new"]),
        totals=CompareTotals(
            **{k: round(v, 6) if isinstance(v, float) else v for k, v in t.items()}
        ),
        matrix=[
            Flow(
                **{"from": f["from_segment"]},
                from_cluster=f["from_cluster"],
                to=f["to_segment"],
                to_cluster=f["to_cluster"],
                customers=f["customers"],
                revenue_old=round(f["revenue_old"], 6) if c.money_old else None,
                revenue_new=round(f["revenue_new"], 6) if c.money_new else None,
            )
            for f in cells
        ],
        old_segments=[
            OldSegmentFate(**row, went_to=spread(row["cluster"], "from", "to"))
            for row in _records(c.old_segments(), money=c.money_old)
        ],
        new_segments=[
            NewSegmentSource(**row, came_from=spread(row["cluster"], "to", "from"))
            for row in _records(c.new_segments(), money=c.money_new)
        ],
    )


def _records(table: pd.DataFrame, *, money: bool) -> list[dict[str, Any]]:
    """Rows of a per-segment table as plain values, the index as ``cluster``, revenue rounded
    (None for a run without money)."""
    out = []
    for cluster, row in zip(table.index, table.to_dict("records"), strict=True):
        plain: dict[str, Any] = {str(k): _plain(v) for k, v in row.items()}
        plain["name"] = plain.pop("segment")
        for key in ("revenue_old", "revenue_new"):
            if key in plain:
                plain[key] = round(float(plain[key]), 6) if money else None
        out.append({"cluster": int(cluster), **plain})
    return out


def write_compare(
    comparison: Comparison, out: str | Path, *, force: bool = False, report: bool = True
) -> list[Path]:
    """Write compare.json, segments.csv with ``previous_segment`` and compare.html, whole or
    not at all.

    segments.csv is the new run's, byte for byte, with a last column ``previous_segment``: the
    customer's segment in the old run ("" for new customers).

    Parameters
    ----------
    comparison : Comparison
    out : path
        The folder to write.
    force : bool
        Replace ``out`` if it exists and is not empty.
    report : bool
        Also write compare.html.

    Returns
    -------
    list of Path
        The files written, under ``out``.

    Raises
    ------
    OutputError
        If ``out`` exists without ``force``, is a file, or cannot be written.
    InputError
        If the new run's segments.csv changed since it was read.
    """
    target = Path(out)
    with atomic_output_dir(target, force=force) as tmp:
        written = [build_compare(comparison).write(tmp / CompareFile.FILE)]
        written.append(
            _with_previous(
                comparison.new.out_dir / SEGMENTS_FILE,
                comparison.previous_segment.tolist(),
                tmp / SEGMENTS_FILE,
            )
        )
        if report:
            from .report.compare import write_compare_page

            written.append(write_compare_page(tmp))
    return [target / p.name for p in written]


def _with_previous(source: Path, previous: Sequence[str], path: Path) -> Path:
    """``source`` with a last column ``previous_segment`` (its other bytes unchanged)."""
    cells = _csv_cells([str(p) for p in previous])
    data = source.read_bytes()
    if b'"' not in data and b"\r" not in data:  # no quoted cell: one line per row
        lines = data.decode("utf-8").split("\n")
        rows = lines[:-1] if lines[-1] == "" else lines
    else:
        with source.open(newline="", encoding="utf-8") as fh:
            rows = [_csv_line(r) for r in csv.reader(fh)]
    if len(rows) != len(cells) + 1:
        raise InputError(
            f"{source} has {len(rows) - 1:,} customers, {len(cells):,} when it was read: it "
            "changed during the comparison; run `custseg compare` again."
        )
    with path.open("w", newline="", encoding="utf-8") as fh:
        fh.write(rows[0] + ",previous_segment\n")
        fh.writelines(f"{row},{cell}\n" for row, cell in zip(rows[1:], cells, strict=True))
    return path


def _csv_line(row: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()[:-1]


def write_methods(
    result: MethodsResult, config: RunConfig, out: str | Path, *, force: bool = False
) -> list[Path]:
    """Write methods.json into a folder, whole or not at all."""
    doc = MethodsFile(
        custseg_version=__version__,
        input=result.input_name,
        holdout_days=result.holdout_days,
        cutoff=result.cutoff,
        methods=list(result.rows),
        baselines=result.baselines,
        note=result.note,
        settings=config,
    )
    target = Path(out)
    with atomic_output_dir(target, force=force) as tmp:
        written = [doc.write(tmp / MethodsFile.FILE)]
    return [target / p.name for p in written]
