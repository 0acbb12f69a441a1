"""Which segmentation fits these data? Every method on one input, side by side.

:func:`compare_methods` loads and aggregates the input once, then for each method runs what a
run would (k chosen as the settings say, by backtest by default) and the backtest on one
shared holdout: k, silhouette, Calinski-Harabasz, Davies-Bouldin, the largest segment's
share of customers, stability over seeds and resamples, and the holdout Spearman and AUC of
the segments, beside the baselines'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ClusterMethod, RunConfig
from .engine import Engine, EngineSpec
from .errors import InputError
from .formats import MethodRowRecord
from .pipeline import (
    aggregate,
    backtest_aggregated,
    check_cluster_engine,
    holdout_of,
    on_engine,
    segment_aggregated,
)

__all__ = ["MethodRow", "MethodsResult", "compare_methods"]

METHODS: tuple[ClusterMethod, ...] = ("kmeans", "hierarchical", "gmm", "rfm-scores")


#: One method on the data: its segmentation's quality, stability and evidence (one row of
#: methods.json, so the file's schema is the row's).
MethodRow = MethodRowRecord


@dataclass(frozen=True)
class MethodsResult:
    """Every method's row, the baselines' holdout figures and what the input was."""

    rows: list[MethodRow]
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    holdout_days: int | None = None
    cutoff: str | None = None
    input_name: str = ""
    note: str | None = None
    warnings: tuple[str, ...] = ()


def _row(method: str, result: Any, bt: Any) -> MethodRow:
    st = result.stability
    return MethodRow(
        method=method,
        k=result.k,
        k_rule=result.fit.selection.method,
        silhouette=result.fit.metrics.get("silhouette"),
        calinski_harabasz=result.fit.metrics.get("calinski_harabasz"),
        davies_bouldin=result.fit.metrics.get("davies_bouldin"),
        largest_share=float(result.profiles["share_customers"].max()),
        stability_seeds=None if st is None or st.deterministic else st.seed_mean,
        stability_resamples=None if st is None else st.resample_mean,
        holdout_spearman=None if bt is None else bt.evidence.spearman["segments"],
        holdout_auc=None if bt is None else bt.evidence.auc["segments"],
        segments=[s.name for s in result.segments],
    )


def compare_methods(
    source: Any,
    *,
    config: RunConfig | None = None,
    methods: Sequence[ClusterMethod] = METHODS,
    bootstrap: int = 200,
    read_options: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    engine: EngineSpec = None,
) -> MethodsResult:
    """Run every method in ``methods`` on one input and measure each (see the module).

    Every other setting of ``config`` applies to every method; the input is read and
    aggregated once, on ``engine`` (see :func:`custseg.engine.connect`). Where the data spans
    too little time for the holdout, the backtest columns are empty and ``note`` says why.

    Examples
    --------
    >>> import warnings
    >>> from custseg.datasets import online_retail_path
    >>> with warnings.catch_warnings():  # rfm-scores warns: 40% share the lowest frequency
    ...     warnings.simplefilter("ignore")
    ...     table = compare_methods(online_retail_path(), methods=["kmeans", "rfm-scores"])
    >>> [(r.method, r.k) for r in table.rows]
    [('kmeans', 5), ('rfm-scores', 11)]
    """
    return on_engine(
        engine,
        lambda eng: _compare(
            source,
            config=config or RunConfig(),
            methods=methods,
            bootstrap=bootstrap,
            read_options=read_options,
            notify=progress or (lambda _stage: None),
            eng=eng,
        ),
    )


def _compare(
    source: Any,
    *,
    config: RunConfig,
    methods: Sequence[ClusterMethod],
    bootstrap: int,
    read_options: dict[str, Any] | None,
    notify: Callable[[str], None],
    eng: Engine,
) -> MethodsResult:
    check_cluster_engine(config, eng, command="compare-methods")
    agg = aggregate(
        source, config=config, read_options=read_options, progress=notify, con=eng, holdout=True
    )
    try:
        outcomes, note = holdout_of(agg, config=config), None
    except InputError as exc:
        outcomes, note = None, f"No backtest: {exc}"
    rows: list[MethodRow] = []
    baselines: dict[str, dict[str, float]] = {}
    if "monetary" not in agg.rfm.columns and "rfm-scores" in methods:
        # Its rule table scores M too: data without money cannot have it.
        methods = [m for m in methods if m != "rfm-scores"]
        skipped = "rfm-scores left out: the data has no monetary value (it scores M too)."
        note = f"{note} {skipped}" if note else skipped
    for method in methods:
        notify(f"segment with {method}")
        cfg = config.model_copy(update={"cluster": config.cluster.replace(method=method)})
        result = segment_aggregated(agg, config=cfg)
        bt = None
        if outcomes is not None:
            bt = backtest_aggregated(agg, config=cfg, bootstrap=bootstrap, outcomes=outcomes)
            ev = bt.evidence
            baselines = {
                name: {"spearman": ev.spearman[name], "auc": ev.auc[name]}
                for name in ev.spearman
                if name != "segments"
            }
        rows.append(_row(method, result, bt))
    name = agg.tx.source.name
    return MethodsResult(
        rows=rows,
        baselines=baselines,
        holdout_days=None if outcomes is None else outcomes.holdout_days,
        cutoff=None if outcomes is None else str(outcomes.cutoff),
        input_name=Path(name).name if agg.tx.source.files else name,
        note=note,
    )
