"""One call from raw transactions to named segments: orchestration only, no maths."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from .clean import Ledger, explain_drops, mark_drops
from .cluster import ClusterFit, fit_segments
from .config import RunConfig
from .engine import Engine, EngineSpec
from .engine import connect as connect_engine
from .errors import CustsegWarning
from .features import compute_rfm_and_ledger
from .load import SourceInfo, load_transactions
from .naming import SegmentName, describe_segments
from .schema import RFM_COLUMNS, ColumnMap

__all__ = ["STAGES", "SegmentationResult", "run", "segment_rfm"]

#: The stages a run goes through, in order, as reported to a progress callback.
STAGES: tuple[str, ...] = ("load", "clean and aggregate", "cluster and name")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SegmentationResult:
    """Everything a run computed.

    Attributes
    ----------
    customers : DataFrame
        One row per customer (index ``customer_id``): ``recency``, ``frequency``,
        ``monetary``, ``outlier``, ``cluster``, ``segment``.
    as_of : date
        The reference date for recency.
    ledger : Ledger
        Rows read, used and dropped by reason; customers seen and segmented.
    fit : ClusterFit
        The fitted model, k selection and metrics.
    profiles : DataFrame
        Per-cluster sizes, revenue and R/F/M means and medians.
    segments : list of SegmentName
        Name, description, action and levels per cluster.
    columns : ColumnMap
        The source columns used for each role.
    source : SourceInfo
        Where the rows came from.
    date_format : str or None
        The date format used (None: ISO or typed dates).
    config : RunConfig
        The settings of the run.
    timings : dict
        Seconds spent per stage (not written to summary.json, which stays reproducible).
    warnings : tuple of str
        Every :class:`CustsegWarning` the run gave, in order (kept in run.json, so nothing is
        lost when a caller silences them).
    """

    customers: pd.DataFrame
    as_of: dt.date
    ledger: Ledger
    fit: ClusterFit
    profiles: pd.DataFrame
    segments: list[SegmentName]
    columns: ColumnMap | None
    source: SourceInfo
    date_format: str | None
    config: RunConfig
    timings: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def k(self) -> int:
        """The number of segments."""
        return self.fit.model.k

    def segment_table(self) -> pd.DataFrame:
        """Profiles with names, descriptions, actions and levels, one row per segment."""
        names = pd.DataFrame(
            [
                {
                    "cluster": s.cluster,
                    "segment": s.name,
                    "description": s.description,
                    "action": s.action,
                    **{f"{k}_level": v for k, v in s.levels.items()},
                }
                for s in self.segments
            ]
        )
        return names.merge(self.profiles.reset_index(), on="cluster", how="left")


def segment_rfm(
    rfm: pd.DataFrame, *, config: RunConfig | None = None
) -> tuple[pd.DataFrame, ClusterFit, pd.DataFrame, list[SegmentName]]:
    """Cluster and name an RFM table (index customer id; recency, frequency, monetary).

    Returns the customer table with ``outlier``, ``cluster`` and ``segment`` added (and
    ``segment_probability`` for mixtures, ``r_score``, ``f_score``, ``m_score``, ``rfm_cell``
    for RFM scores), the fit, the profiles and the segment names.
    """
    config = config or RunConfig()
    fit = fit_segments(rfm[list(RFM_COLUMNS)], config=config.cluster)
    for note in fit.notes:
        warnings.warn(note, CustsegWarning, stacklevel=2)
    profiles, names = describe_segments(rfm, fit.labels, fit.model, overrides=config.names or None)
    by_cluster = {s.cluster: s.name for s in names}
    customers = rfm[list(RFM_COLUMNS)].copy()
    customers["outlier"] = np.asarray(fit.outlier, dtype=bool)
    customers["cluster"] = np.asarray(fit.labels, dtype=np.int64)
    customers["segment"] = [by_cluster[c] for c in customers["cluster"]]
    if fit.probability is not None:
        customers["segment_probability"] = fit.probability
    if fit.scores is not None:
        for j, name in enumerate(("r_score", "f_score", "m_score")):
            customers[name] = fit.scores[:, j]
        cells = fit.scores.astype(str)
        customers["rfm_cell"] = np.char.add(np.char.add(cells[:, 0], cells[:, 1]), cells[:, 2])
    return customers, fit, profiles, names


def run(
    source: str | Path | pd.DataFrame | pa.Table | ir.Table,
    *,
    config: RunConfig | None = None,
    columns: ColumnMap | Mapping[str, str | None] | None = None,
    date_format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
    progress: Progress | None = None,
    engine: EngineSpec = None,
    con: BaseBackend | None = None,
) -> SegmentationResult:
    """Segment the customers of a transaction file or table.

    Parameters
    ----------
    source : path, glob, folder, DataFrame, Arrow or Ibis table
        The transactions (see :func:`custseg.load.load_transactions`).
    config : RunConfig, optional
        Cleaning, clustering and naming settings.
    columns : ColumnMap or mapping, optional
        Explicit role -> column choices.
    date_format, encoding, delimiter, sheet : optional
        Reading options, detected when omitted.
    progress : callable, optional
        Called with each stage's name as it starts.
    engine : Engine, str, Ibis backend or SparkSession, optional
        Where the rows are read, cleaned and aggregated: ``"duckdb"`` (default), ``"spark"``,
        a database URL, or an open engine (see :func:`custseg.engine.connect`). An engine
        opened here is closed before returning; one passed in stays open.
    con : backend, optional
        The same as ``engine`` (kept for callers that pass a connection).

    Returns
    -------
    SegmentationResult

    Raises
    ------
    CustsegError
        For unreadable input, missing columns, no purchase lines or invalid settings.

    Examples
    --------
    >>> from custseg.datasets import online_retail_path
    >>> result = run(online_retail_path())
    >>> len(result.customers)
    4338
    """
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CustsegWarning)
            result = _run(
                source,
                config=config or RunConfig(),
                read_options={
                    "columns": columns,
                    "date_format": date_format,
                    "encoding": encoding,
                    "delimiter": delimiter,
                    "sheet": sheet,
                },
                progress=progress or (lambda _stage: None),
                engine=engine if engine is not None else con,
            )
    finally:
        given = _reemit(caught)
    return dataclasses.replace(result, warnings=tuple(given))


def _reemit(caught: list[warnings.WarningMessage]) -> list[str]:
    """Warn again what a run warned (to the caller's filters); the custseg ones, once each."""
    given: list[str] = []
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, CustsegWarning):
            if text in given:
                continue
            given.append(text)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return given


def _run(
    source: str | Path | pd.DataFrame | pa.Table | ir.Table,
    *,
    config: RunConfig,
    read_options: dict[str, Any],
    progress: Progress,
    engine: EngineSpec,
) -> SegmentationResult:
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = now - clock
        clock = now

    progress(STAGES[0])
    eng = connect_engine(engine)
    with contextlib.ExitStack() as stack:
        if not isinstance(engine, Engine):
            stack.callback(eng.close)  # opened here: closed here (the RFM table is in pandas)
        with eng.translate_errors(str(source) if isinstance(source, str | Path) else "the input"):
            tx = load_transactions(
                source,
                **read_options,
                need_stock_code=bool(config.clean.exclude_codes),
                engine=eng,
            )
        lap(STAGES[0])
        progress(STAGES[1])
        marked = mark_drops(tx.table, config=config.clean)
        with eng.translate_errors(tx.source.name):
            rfm, ledger, as_of = compute_rfm_and_ledger(marked, as_of=config.clean.as_of)
            explain_drops(marked, ledger, tx.columns, config=config.clean)
    lap(STAGES[1])
    progress(STAGES[2])
    customers, fit, profiles, names = segment_rfm(rfm, config=config)
    lap(STAGES[2])
    return SegmentationResult(
        customers=customers,
        as_of=as_of,
        ledger=ledger,
        fit=fit,
        profiles=profiles,
        segments=names,
        columns=tx.columns,
        source=tx.source,
        date_format=tx.date_format,
        config=config,
        timings=timings,
    )
