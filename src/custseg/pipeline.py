"""One call from raw transactions to named segments: orchestration only, no maths."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from .clean import Ledger, explain_drops, mark_drops
from .cluster import ClusterFit, fit_segments
from .config import RunConfig
from .engine import Engine, EngineSpec, opened
from .engine import connect as connect_engine
from .errors import ConfigError, CustsegWarning, InputError
from .features import GroupedLines, basket_note, group_lines, rfm_table_and_ledger
from .load import SourceInfo, load_transactions
from .naming import SegmentName, describe_segments, place_outliers
from .reference import Reference, load_reference, match_reference, reference_config

if TYPE_CHECKING:
    from .backtest import Evidence, Outcomes
    from .formats import ScoredWith
    from .stability import Stability
from .schema import ColumnMap, feature_columns

__all__ = [
    "STAGES",
    "Aggregated",
    "BacktestResult",
    "InEngine",
    "SegmentationResult",
    "aggregate",
    "aggregate_in_engine",
    "backtest",
    "backtest_aggregated",
    "check_cluster_engine",
    "customer_table",
    "holdout_of",
    "reemit_warnings",
    "run",
    "segment_aggregated",
    "segment_in_spark",
    "segment_rfm",
]

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
    scored_with : ScoredWith or None
        The saved model that scored the customers (``custseg score``), else None.
    stability : Stability or None
        How much the segments depend on the seed and on the sample (see
        :mod:`custseg.stability`); None for scored runs.
    reference : Reference or None
        The reference model whose names the segments kept (``--reference``).
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
    scored_with: ScoredWith | None = None
    stability: Stability | None = None
    reference: Reference | None = None

    @property
    def k(self) -> int:
        """The number of segments."""
        return self.fit.model.k

    def net_nonpositive(self) -> dict[int, int] | None:
        """With ``--returns net``: per segment, the customers whose net value is 0 or below
        (kept with monetary 0); None otherwise."""
        if self.ledger.customers_net_nonpositive is None:
            return None
        c = self.customers
        counts = c.loc[c["monetary"] <= 0, "cluster"].value_counts()
        return {s.cluster: int(counts.get(s.cluster, 0)) for s in self.segments}

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
    rfm: pd.DataFrame, *, config: RunConfig | None = None, reference: Reference | None = None
) -> tuple[pd.DataFrame, ClusterFit, pd.DataFrame, list[SegmentName]]:
    """Cluster and name an RFM table (index customer id; recency, frequency, monetary).

    Returns the customer table with ``outlier``, ``cluster`` and ``segment`` added (and
    ``segment_probability`` for mixtures, ``r_score``, ``f_score``, ``m_score``, ``rfm_cell``
    for RFM scores), the fit, the profiles and the segment names. With a ``reference`` model,
    segments that are the same groups keep its names and ids (see :mod:`custseg.reference`).
    """
    config = config or RunConfig()
    cluster = config.cluster if reference is None else reference_config(config.cluster, reference)
    features = list(feature_columns(list(rfm.columns)))
    return _name_fit(rfm, fit_segments(rfm[features], config=cluster), config, reference)


def _name_fit(
    rfm: pd.DataFrame, fit: ClusterFit, config: RunConfig, reference: Reference | None
) -> tuple[pd.DataFrame, ClusterFit, pd.DataFrame, list[SegmentName]]:
    """Place outliers, match a reference, warn the notes, and name the segments of a fit."""
    fit = place_outliers(rfm, fit)
    keep: dict[int, tuple[str, str]] = {}
    avoid: set[str] = set()
    if reference is not None:
        fit, matches = match_reference(rfm, fit, reference)
        actions = {s.cluster: (s.name, s.action) for s in reference.doc.segments}
        keep = {m.cluster: actions[m.old_cluster] for m in matches if m.old_cluster in actions}
        avoid = {s.name for s in reference.doc.segments}
        fit = dataclasses.replace(fit, matches=tuple(matches))
    for note in fit.notes:
        warnings.warn(note, CustsegWarning, stacklevel=2)
    if fit.model.k == 1:
        warnings.warn(
            "k = 1 puts every customer in one segment: segments help only when they split "
            "customers who should be treated differently. Let k be chosen, or pass --k 2 "
            "or more.",
            CustsegWarning,
            stacklevel=2,
        )
    profiles, names = describe_segments(
        rfm,
        fit.labels,
        fit.model,
        overrides=config.names or None,
        keep=keep,
        avoid=avoid,
        frequency_unit=config.clean.frequency_unit,
    )
    return customer_table(rfm, fit, names), fit, profiles, names


def customer_table(rfm: pd.DataFrame, fit: ClusterFit, names: list[SegmentName]) -> pd.DataFrame:
    """One row per customer: R, F, M, outlier, cluster, segment, ``returned`` (where the RFM
    table has it), and the method's extras (``segment_probability`` for mixtures;
    ``r_score``, ``f_score``, ``m_score`` and ``rfm_cell`` for RFM scores)."""
    by_cluster = {s.cluster: s.name for s in names}
    customers = rfm[list(feature_columns(list(rfm.columns)))].copy()
    customers["outlier"] = np.asarray(fit.outlier, dtype=bool)
    customers["cluster"] = np.asarray(fit.labels, dtype=np.int64)
    customers["segment"] = [by_cluster[c] for c in customers["cluster"]]
    if "returned" in rfm.columns:
        customers["returned"] = rfm["returned"].to_numpy(dtype=np.float64)
    if fit.probability is not None:
        customers["segment_probability"] = fit.probability
    if fit.scores is not None:
        for j, name in enumerate(("r_score", "f_score", "m_score")):
            customers[name] = fit.scores[:, j]
        cells = fit.scores.astype(str)
        customers["rfm_cell"] = np.char.add(np.char.add(cells[:, 0], cells[:, 1]), cells[:, 2])
    return customers


def run(
    source: str | Path | pd.DataFrame | pa.Table | ir.Table,
    *,
    config: RunConfig | None = None,
    columns: ColumnMap | Mapping[str, str | None] | None = None,
    date_format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
    header: bool | None = None,
    sheet: str | int | None = None,
    progress: Progress | None = None,
    engine: EngineSpec = None,
    con: BaseBackend | None = None,
    reference: str | Path | Reference | None = None,
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
    date_format, encoding, delimiter, decimal, header, sheet : optional
        Reading options, detected when omitted (see :func:`custseg.load.load_transactions`).
    progress : callable, optional
        Called with each stage's name as it starts.
    engine : Engine, str, Ibis backend or SparkSession, optional
        Where the rows are read, cleaned and aggregated: ``"duckdb"`` (default), ``"spark"``,
        a database URL, or an open engine (see :func:`custseg.engine.connect`). An engine
        opened here is closed before returning; one passed in stays open.
    con : backend, optional
        The same as ``engine`` (kept for callers that pass a connection).
    reference : path or Reference, optional
        The model.json of an earlier run: segments that are the same groups keep its names
        and ids (see :mod:`custseg.reference`).

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
    ref = load_reference(reference) if isinstance(reference, str | Path) else reference
    read_options = {
        "columns": columns,
        "date_format": date_format,
        "encoding": encoding,
        "delimiter": delimiter,
        "decimal": decimal,
        "header": header,
        "sheet": sheet,
    }
    return on_engine(
        engine if engine is not None else con,
        lambda eng: _run(
            source,
            config=_with_reference(config or RunConfig(), ref),
            reference=ref,
            read_options=read_options,
            progress=progress or (lambda _stage: None),
            con=eng,
        ),
    )


def _span(ledger: Ledger) -> tuple[dt.date, dt.date] | None:
    if ledger.date_min is None or ledger.date_max is None:
        return None
    return ledger.date_min.date(), ledger.date_max.date()


@dataclass(frozen=True)
class _BacktestChoice:
    """k chosen by what the segments predicted on a holdout, and the figures per k."""

    k: int | None
    figures: dict[str, list[float | None]]
    note: str

    def apply(self, fit: ClusterFit) -> ClusterFit:
        """The final fit, with its selection saying how k was chosen (a fallback is warned)."""
        if self.k is None:  # fell back to the method's own rule
            if not self.note:
                return fit
            warnings.warn(self.note, CustsegWarning, stacklevel=3)
            return dataclasses.replace(fit, notes=(self.note, *fit.notes))
        selection = dataclasses.replace(fit.selection, method="backtest", note=self.note)
        figures = {**fit.figures, **self.figures}
        return dataclasses.replace(fit, selection=selection, figures=figures)


def _k_by_backtest(
    rows: ir.Table | GroupedLines, span: tuple[dt.date, dt.date] | None, config: RunConfig
) -> tuple[RunConfig, _BacktestChoice]:
    """Choose k by the holdout Spearman of the segments' value with revenue (orders, for data
    without money; 1-SE rule).

    Every k of the sweep is fitted on the data before the cutoff; the smallest k whose
    Spearman is within one bootstrap standard error of the best is taken, then the final
    model is fitted on all the data with that k. ``span`` is the first and last purchase
    date the holdout may use (inside a backtest: up to its own cutoff, never beyond).
    """
    from .backtest import choose_k_by_holdout, holdout_outcomes

    cluster = config.cluster
    plain = config.model_copy(update={"cluster": cluster.replace(select="auto")})
    if cluster.method == "rfm-scores":  # the rule table fixes k: nothing to choose
        return plain, _BacktestChoice(None, {}, "")
    if span is None:
        return plain, _BacktestChoice(None, {}, "No purchase dates: k chosen by the method's rule.")
    try:
        outcomes = holdout_outcomes(
            rows,
            clean=config.clean,
            holdout_days=cluster.holdout_days,
            first=span[0],
            last=span[1],
        )
    except InputError as exc:
        short = str(exc).split(". Pass")[0]
        why = f"--select backtest: {short}; k was chosen by the method's own rule instead."
        return plain, _BacktestChoice(None, {}, why)
    k, figures, note = choose_k_by_holdout(outcomes, cluster, seed=cluster.random_state)
    fixed = config.model_copy(update={"cluster": cluster.replace(select="auto", k=k)})
    return fixed, _BacktestChoice(k, figures, note)


_R = TypeVar("_R")


def on_engine(spec: EngineSpec, call: Callable[[Engine], _R]) -> _R:
    """``call(engine)`` on the engine of ``spec`` (opened and closed here unless it is an
    :class:`Engine`; what the call held in it is released either way), with every custseg
    warning it gives recorded in the result's ``warnings`` and warned again to the caller's
    filters, each once."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught, opened(spec) as eng:
            warnings.simplefilter("always", CustsegWarning)
            try:
                result = call(eng)
            finally:
                eng.release_held()
    finally:
        given = reemit_warnings(caught)
    return dataclasses.replace(result, warnings=tuple(given))  # type: ignore[type-var]


def reemit_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """Warn again what a run warned (to the caller's filters); the custseg ones, once each.

    Returns the custseg warnings' texts, for run.json.
    """
    given: list[str] = []
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, CustsegWarning):
            if text in given:
                continue
            given.append(text)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return given


@dataclass(frozen=True)
class Aggregated:
    """The input loaded, cleaned and aggregated: what every command starts from."""

    tx: Any
    rfm: pd.DataFrame
    ledger: Ledger
    as_of: dt.date
    #: The rows grouped by customer, reason, invoice and day, held in the engine where it can
    #: (see :meth:`custseg.engine.Engine.hold`): a backtest's training and holdout RFM are
    #: aggregated from these groups instead of scanning the rows again.
    lines: GroupedLines | None = None

    @property
    def table(self) -> ir.Table | GroupedLines:
        """What a holdout is aggregated from: the grouped lines, else the loaded rows."""
        return self.lines if self.lines is not None else self.tx.table


def aggregate(
    source: Any,
    *,
    config: RunConfig,
    read_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
    lap: Callable[[str], None] | None = None,
    con: EngineSpec = None,
    holdout: bool | None = None,
) -> Aggregated:
    """Load, clean and aggregate transactions: the engine's part of every command.

    ``progress`` is told each stage as it starts, ``lap`` as it ends (both optional).
    ``con`` is the engine (see :func:`custseg.engine.connect`; a fresh DuckDB by default): it
    stays open, since the returned table is queried again by some commands. ``holdout``: keep
    the lines grouped by day in the engine (:attr:`Aggregated.lines`) for a holdout's
    aggregations; by default when ``config`` chooses k by backtest.
    """
    progress = progress or (lambda _stage: None)
    lap = lap or (lambda _stage: None)
    eng = connect_engine(con)
    tx, marked = _load_marked(source, eng, config, read_options or {}, progress, lap)
    with eng.translate_errors(tx.source.name):
        keep = _chooses_k_by_backtest(config) if holdout is None else holdout
        hold = eng.hold if keep else None
        lines = group_lines(marked, by_day=keep, hold=hold, **config.clean.aggregation())
        rfm, ledger, as_of = lines.rfm_and_ledger(config.clean.as_of)
        explain_drops(marked, ledger, tx.columns, config=config.clean)
    _warn_baskets(ledger)
    lap(STAGES[1])
    return Aggregated(tx, rfm, ledger, as_of, lines if keep else None)


def _chooses_k_by_backtest(config: RunConfig) -> bool:
    cluster = config.cluster
    return cluster.select == "backtest" and cluster.k is None and cluster.method != "rfm-scores"


def _warn_baskets(ledger: Ledger) -> None:
    note = basket_note(ledger)
    if note:
        warnings.warn(note, CustsegWarning, stacklevel=3)


def _load_marked(
    source: Any,
    eng: Engine,
    config: RunConfig,
    read_options: dict[str, Any],
    progress: Progress,
    lap: Callable[[str], None],
) -> tuple[Any, ir.Table]:
    """The input loaded, and its rows marked by the reason each is dropped (if any)."""
    progress(STAGES[0])
    with eng.translate_errors(str(source) if isinstance(source, str | Path) else "the input"):
        tx = load_transactions(
            source,
            **read_options,
            need_stock_code=bool(config.clean.exclude_codes),
            monetary=config.clean.monetary,
            engine=eng,
        )
    if not tx.columns.has_values and config.clean.monetary:
        warnings.warn(no_value_note(tx.source_columns), CustsegWarning, stacklevel=2)
    lap(STAGES[0])
    progress(STAGES[1])
    return tx, mark_drops(tx.table, config=config.clean)


@dataclass(frozen=True)
class InEngine:
    """The input loaded, cleaned and aggregated, the customer table left in the engine."""

    tx: Any
    table: ir.Table
    ledger: Ledger
    as_of: dt.date


def aggregate_in_engine(
    source: Any,
    *,
    config: RunConfig,
    read_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
    lap: Callable[[str], None] | None = None,
    con: EngineSpec = None,
) -> InEngine:
    """As :func:`aggregate`, but the RFM table stays an engine table (only the ledger's one
    row comes back): what ``--cluster-engine spark`` starts from."""
    progress = progress or (lambda _stage: None)
    lap = lap or (lambda _stage: None)
    eng = connect_engine(con)
    tx, marked = _load_marked(source, eng, config, read_options or {}, progress, lap)
    with eng.translate_errors(tx.source.name):
        table, ledger, as_of = rfm_table_and_ledger(
            marked, as_of=config.clean.as_of, hold=eng.hold, **config.clean.aggregation()
        )
        explain_drops(marked, ledger, tx.columns, config=config.clean)
    _warn_baskets(ledger)
    lap(STAGES[1])
    return InEngine(tx, table, ledger, as_of)


def check_cluster_engine(config: RunConfig, eng: Engine | None, *, command: str = "run") -> None:
    """Refuse ``--cluster-engine spark`` where it cannot apply, in one line.

    Raises
    ------
    ConfigError
        Off a Spark engine, or for a command other than run (backtest and compare-methods
        refit on the driver).
    """
    if config.cluster.cluster_engine != "spark":
        return
    if command != "run":
        raise ConfigError(
            f"--cluster-engine spark applies to custseg run; {command} fits on the driver. "
            "Drop --cluster-engine spark."
        )
    if eng is None or eng.kind != "spark":
        got = "duckdb" if eng is None else eng.kind
        raise ConfigError(
            f"--cluster-engine spark needs --engine spark (the customer table must be in "
            f"Spark), got --engine {got}. Add --engine spark, or drop --cluster-engine spark."
        )


def no_value_note(headers: Sequence[str]) -> str:
    """What a run says when the input has no value column: it segments on R and F only."""
    return (
        f"No value column (quantity and price, or amount) among {list(headers)}: segmenting "
        "on recency and frequency only, without monetary value. If a column holds each "
        "line's value, pass --amount-col NAME (or --quantity-col and --price-col)."
    )


def effective_config(config: RunConfig, agg: Aggregated) -> RunConfig:
    """The settings as the run applies them: ``monetary`` off for data without money."""
    if config.clean.monetary and "monetary" not in agg.rfm.columns:
        return config.model_copy(update={"clean": config.clean.replace(monetary=False)})
    return config


def stopwatch() -> tuple[dict[str, float], Callable[[str], None]]:
    """Stage timings and the ``lap(stage)`` that records the seconds since the last lap."""
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        timings[stage] = now - clock[0]
        clock[0] = now

    return timings, lap


def _with_reference(config: RunConfig, ref: Reference | None) -> RunConfig:
    """The settings a run with ``ref`` needs (a score model's bins and rules)."""
    if ref is None:
        return config
    return config.model_copy(update={"cluster": reference_config(config.cluster, ref)})


def _run(
    source: str | Path | pd.DataFrame | pa.Table | ir.Table,
    *,
    config: RunConfig,
    read_options: dict[str, Any],
    progress: Progress,
    con: Engine,
    reference: Reference | None = None,
) -> SegmentationResult:
    timings, lap = stopwatch()
    check_cluster_engine(config, con)
    if config.cluster.cluster_engine == "spark":
        try:
            inside = aggregate_in_engine(
                source,
                config=config,
                read_options=read_options,
                progress=progress,
                lap=lap,
                con=con,
            )
            progress(STAGES[2])
            result = segment_in_spark(inside, con, config=config, reference=reference)
        finally:
            con.release_held()
    else:
        agg = aggregate(
            source, config=config, read_options=read_options, progress=progress, lap=lap, con=con
        )
        progress(STAGES[2])
        result = segment_aggregated(agg, config=config, reference=reference)
    lap(STAGES[2])
    return dataclasses.replace(result, timings=timings)


def segment_in_spark(
    inside: InEngine, eng: Engine, *, config: RunConfig, reference: Reference | None = None
) -> SegmentationResult:
    """Segment a customer table that stays in Spark, with MLlib K-Means (see
    :mod:`custseg.spark_cluster`); only the labelled customer table comes back.

    Stability is not measured: its refits would run on the driver.
    """
    from .spark_cluster import fit_segments_spark

    cluster = config.cluster if reference is None else reference_config(config.cluster, reference)
    frame = eng.to_dataframe(inside.table)  # type: ignore[attr-defined]
    with eng.translate_errors(inside.tx.source.name):
        rfm, fit = fit_segments_spark(frame, config=cluster)
    customers, fit, profiles, names = _name_fit(rfm, fit, config, reference)
    return SegmentationResult(
        customers=customers,
        as_of=inside.as_of,
        ledger=inside.ledger,
        fit=fit,
        profiles=profiles,
        segments=names,
        columns=inside.tx.columns,
        source=inside.tx.source,
        date_format=inside.tx.date_format,
        config=config,
        reference=reference,
    )


def segment_aggregated(
    agg: Aggregated, *, config: RunConfig, reference: Reference | None = None
) -> SegmentationResult:
    """Segment aggregated transactions: k chosen (by backtest, by default), fitted, named,
    its stability measured (the body of :func:`run` after the engine's work)."""
    if config.cluster.cluster_engine == "spark":
        raise ConfigError(
            "--cluster-engine spark clusters a customer table left in Spark; this one is on "
            "the driver. Use custseg.run with engine='spark', or drop --cluster-engine spark."
        )
    config = effective_config(config, agg)
    chosen = None
    if config.cluster.select == "backtest" and config.cluster.k is None:
        fitted, chosen = _k_by_backtest(agg.table, _span(agg.ledger), config)
    used = fitted if chosen else config
    customers, fit, profiles, names = segment_rfm(agg.rfm, config=used, reference=reference)
    if chosen is not None:
        fit = chosen.apply(fit)
    return SegmentationResult(
        customers=customers,
        as_of=agg.as_of,
        ledger=agg.ledger,
        fit=fit,
        profiles=profiles,
        segments=names,
        columns=agg.tx.columns,
        source=agg.tx.source,
        date_format=agg.tx.date_format,
        config=config,
        stability=_stability(agg.rfm, fit, used),
        reference=reference,
    )


def _stability(rfm: pd.DataFrame, fit: ClusterFit, config: RunConfig) -> Stability | None:
    from .stability import stability

    measured = stability(rfm, fit.labels, config=config.cluster, k=fit.model.k)
    if measured is not None and measured.low:
        cause = (
            "which customers are in the data"
            if measured.deterministic
            else "the seed or of which customers are in the data"
        )
        warnings.warn(
            f"{measured.note()} That is low: the segments are partly an accident of {cause}; "
            "try another --method or a smaller --k.",
            CustsegWarning,
            stacklevel=3,
        )
    return measured


@dataclass(frozen=True)
class BacktestResult:
    """What the segments fitted before a cutoff predicted about the holdout after it.

    Attributes
    ----------
    outcomes : Outcomes
        The cutoff, the holdout and every training customer's outcome.
    training : SegmentationResult
        The segmentation of the data before the cutoff (every run option applies).
    segments : DataFrame
        Per segment: customers, share buying again, orders and revenue per customer, share of
        holdout revenue, value (see :func:`custseg.backtest.segment_outcomes`).
    evidence : Evidence
        Spearman and AUC of the segments and the baselines, bootstrap differences.
    ledger : Ledger
        The ledger of the whole input.
    """

    outcomes: Outcomes
    training: SegmentationResult
    segments: pd.DataFrame
    evidence: Evidence
    ledger: Ledger
    warnings: tuple[str, ...] = ()


def backtest(
    source: str | Path | pd.DataFrame | pa.Table | ir.Table,
    *,
    config: RunConfig | None = None,
    bootstrap: int = 1000,
    columns: ColumnMap | Mapping[str, str | None] | None = None,
    date_format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
    header: bool | None = None,
    sheet: str | int | None = None,
    progress: Progress | None = None,
    engine: EngineSpec = None,
    con: BaseBackend | None = None,
) -> BacktestResult:
    """Segment the data before a cutoff and measure what the segments predict after it.

    The holdout is ``config.cluster.holdout_days`` long (see :mod:`custseg.backtest` for every
    definition). Every run option applies to the training segmentation.

    Raises
    ------
    InputError
        If the data spans too little time for the holdout, or cannot be read.

    Examples
    --------
    >>> from custseg.datasets import online_retail_path
    >>> bt = backtest(online_retail_path(), bootstrap=100)
    >>> str(bt.outcomes.cutoff), len(bt.outcomes.train)
    ('2011-09-10', 3370)
    """
    read_options = {
        "columns": columns,
        "date_format": date_format,
        "encoding": encoding,
        "delimiter": delimiter,
        "decimal": decimal,
        "header": header,
        "sheet": sheet,
    }
    return on_engine(
        engine if engine is not None else con,
        lambda eng: _backtest(
            source,
            config=config or RunConfig(),
            bootstrap=bootstrap,
            read_options=read_options,
            progress=progress or (lambda _stage: None),
            con=eng,
        ),
    )


def _backtest(
    source: Any,
    *,
    config: RunConfig,
    bootstrap: int,
    read_options: dict[str, Any],
    progress: Progress,
    con: Engine,
) -> BacktestResult:
    check_cluster_engine(config, con, command="backtest")
    timings, lap = stopwatch()
    agg = aggregate(
        source,
        config=config,
        read_options=read_options,
        progress=progress,
        lap=lap,
        con=con,
        holdout=True,
    )
    progress("backtest")
    result = backtest_aggregated(agg, config=config, bootstrap=bootstrap)
    lap("backtest")
    training = dataclasses.replace(result.training, timings=timings)
    return dataclasses.replace(result, training=training)


def holdout_of(agg: Aggregated, *, config: RunConfig) -> Outcomes:
    """The holdout outcomes of aggregated transactions (see :mod:`custseg.backtest`)."""
    from .backtest import holdout_outcomes

    led = agg.ledger
    assert led.date_min is not None and led.date_max is not None  # there are purchase lines
    return holdout_outcomes(
        agg.table,
        clean=config.clean,
        holdout_days=config.cluster.holdout_days,
        first=led.date_min.date(),
        last=led.date_max.date(),
    )


def backtest_aggregated(
    agg: Aggregated, *, config: RunConfig, bootstrap: int, outcomes: Outcomes | None = None
) -> BacktestResult:
    """The backtest of aggregated transactions (the body of :func:`backtest`); ``outcomes``
    may be given when several segmentations are measured on one holdout."""
    from .backtest import (
        baseline_scores,
        customer_value,
        evidence,
        segment_outcomes,
        segment_values,
    )

    check_cluster_engine(config, None, command="backtest")
    config = effective_config(config, agg)
    led = agg.ledger
    outcomes = outcomes or holdout_of(agg, config=config)
    train_config = config.model_copy(update={"clean": config.clean.replace(as_of=outcomes.as_of)})
    chosen = None
    if config.cluster.select == "backtest" and config.cluster.k is None:
        # The k is chosen inside the training span only: the holdout stays unseen.
        assert led.date_min is not None
        inner = (led.date_min.date(), outcomes.cutoff)
        train_config, chosen = _k_by_backtest(agg.table, inner, train_config)
    customers, fit, profiles, names = segment_rfm(outcomes.train, config=train_config)
    if chosen is not None:
        fit = chosen.apply(fit)
    labels = customers["cluster"].to_numpy()
    values = segment_values(labels, customer_value(outcomes.train))
    scores = {"segments": values, **baseline_scores(outcomes.train)}
    ev = evidence(
        scores,
        outcomes.target,
        outcomes.buys,
        bootstrap=bootstrap,
        seed=config.cluster.random_state,
    )
    training = SegmentationResult(
        customers=customers,
        as_of=outcomes.as_of,
        ledger=led,
        fit=fit,
        profiles=profiles,
        segments=names,
        columns=agg.tx.columns,
        source=agg.tx.source,
        date_format=agg.tx.date_format,
        config=train_config,
    )
    table = segment_outcomes(labels, {s.cluster: s.name for s in names}, outcomes)
    return BacktestResult(outcomes, training, table, ev, led)
