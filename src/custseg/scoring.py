"""Score new transactions with a saved model: the frozen pipeline of a past run.

A model.json carries everything its run decided: the cleaning rules, the column mapping,
the transform, outlier rule, scaler, the method's state (centres, mixture, score thresholds)
and the segments' names. :func:`score` applies all of it to new transactions with a new
``as_of`` (the new data's, or the one given), so a segment name means what it meant in the
model's run; nothing is refitted. Scoring a model's own input reproduces every customer's
segment exactly.

The date window of the model's run (``since``, ``until``, ``as_of``) belongs to that run and
is not carried over; excluded codes, duplicate handling, strictness, the frequency unit, the
returns mode and whether monetary value is used (the model's features) are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .clean import explain_drops, mark_drops
from .cluster import ClusterFit
from .config import CleanConfig, RunConfig
from .engine import Engine, EngineSpec
from .errors import CustsegWarning, ModelFileError, SchemaError
from .features import basket_note, compute_rfm_and_ledger
from .formats import ModelFile, ScoredWith
from .load import load_transactions
from .metrics import segmentation_metrics, sse
from .model import KSelection
from .naming import describe_segments
from .pipeline import SegmentationResult, customer_table, on_engine, stopwatch

__all__ = ["score"]


def _model_doc(model: str | Path | ModelFile) -> tuple[ModelFile, ScoredWith]:
    if isinstance(model, ModelFile):
        digest = hashlib.sha256(model.dumps().encode("utf-8")).hexdigest()
        return model, ScoredWith(model_sha256=digest, model_as_of=model.as_of, model_file="")
    path = Path(model)
    doc = ModelFile.read(path, fix="pass the model.json of a finished `custseg run`")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return doc, ScoredWith(model_sha256=digest, model_as_of=doc.as_of, model_file=path.name)


def _clean_rules(saved: CleanConfig, as_of: dt.date | None) -> CleanConfig:
    """The model's cleaning rules without its run's date window, with the new ``as_of``."""
    return CleanConfig(
        as_of=as_of,
        exclude_codes=saved.exclude_codes,
        drop_duplicates=saved.drop_duplicates,
        strict=saved.strict,
        **saved.aggregation(),
    )


def _load(source: Any, doc: ModelFile, columns: Mapping[str, str | None], **read: Any) -> Any:
    """The new transactions, read with the model's columns where the new data has them."""
    given = {k: v for k, v in columns.items() if v}
    need = bool(doc.settings.clean.exclude_codes)
    money = "monetary" in doc.model.features
    original = dict(read)
    try:
        return load_transactions(
            source, columns={**doc.columns, **given}, need_stock_code=need, monetary=money, **read
        )
    except SchemaError:
        # Other column names (a new export, another system): find them as a run would.
        return load_transactions(
            source, columns=given, need_stock_code=need, monetary=money, **original
        )


def _fit_of(doc: ModelFile, rfm: pd.DataFrame) -> ClusterFit:
    """The model applied to the new customers, in the shape of a run's fit."""
    model = doc.model
    missing = [f for f in model.features if f not in rfm.columns]
    if missing:
        raise ModelFileError(
            f"The model segments on {list(model.features)} but the new data gives no "
            f"{missing}. Score data with the same kind of columns (a value per line for "
            "monetary), or fit a new model with custseg run."
        )
    found = model.assign(rfm[list(model.features)])
    Z, _ = model.scaled(rfm[list(model.features)])
    inlier = ~found.outlier
    metrics = segmentation_metrics(Z[inlier], found.labels[inlier], sample=10_000, random_state=0)
    selection = KSelection(
        method="fixed",
        k_values=[model.k],
        sse=[sse(Z[inlier], found.labels[inlier]) if inlier.any() else 0.0],
        silhouette=[metrics["silhouette"]],
        calinski_harabasz=[metrics["calinski_harabasz"]],
        davies_bouldin=[metrics["davies_bouldin"]],
        knee=None,
        k=model.k,
        note=f"Scored with a saved {model.method} model (as of {doc.as_of}); nothing was refitted.",
    )
    return ClusterFit(
        model=model,
        labels=found.labels,
        outlier=found.outlier,
        selection=selection,
        metrics=metrics,
        probability=found.probability,
        scores=found.scores,
    )


def score(
    model: str | Path | ModelFile,
    source: Any,
    *,
    as_of: dt.date | None = None,
    columns: Mapping[str, str | None] | None = None,
    date_format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
    header: bool | None = None,
    sheet: str | int | None = None,
    progress: Callable[[str], None] | None = None,
    engine: EngineSpec = None,
) -> SegmentationResult:
    """Segment new transactions with a saved model (see the module docstring).

    Parameters
    ----------
    model : path or ModelFile
        A run's model.json.
    source : path, glob, folder, DataFrame, Arrow or Ibis table
        The new transactions.
    as_of : date, optional
        Reference date for recency (default: the day after the new data's last purchase).
    columns : mapping, optional
        Role -> column for the new data (default: the model's, where they exist, else found
        by name).
    engine : engine spec, optional
        Where the rows are read and aggregated (see :func:`custseg.engine.connect`): a fresh
        DuckDB by default.

    Returns
    -------
    SegmentationResult
        With ``scored_with`` naming the model; segment names, actions and ids are the model's.

    Raises
    ------
    ModelFileError
        If the model file is missing, broken or of another format version, or the new data
        lacks a feature the model needs.

    Examples
    --------
    >>> import tempfile
    >>> from custseg.datasets import online_retail_path
    >>> from custseg.output import write_run
    >>> from custseg.pipeline import run
    >>> first = run(online_retail_path())
    >>> out = Path(tempfile.mkdtemp()) / "run"
    >>> _ = write_run(first, out, report=False)
    >>> again = score(out / "model.json", online_retail_path())
    >>> bool((again.customers["cluster"] == first.customers["cluster"]).all())
    True
    """
    read = {
        "date_format": date_format,
        "encoding": encoding,
        "delimiter": delimiter,
        "decimal": decimal,
        "header": header,
        "sheet": sheet,
    }
    return on_engine(
        engine,
        lambda eng: _score(
            model,
            source,
            as_of=as_of,
            columns=dict(columns or {}),
            read=read,
            progress=progress or (lambda _stage: None),
            eng=eng,
        ),
    )


def _score(
    model: Any,
    source: Any,
    *,
    as_of: dt.date | None,
    columns: dict[str, str | None],
    read: dict[str, Any],
    progress: Callable[[str], None],
    eng: Engine,
) -> SegmentationResult:
    timings, lap = stopwatch()
    doc, scored_with = _model_doc(model)
    clean = _clean_rules(doc.settings.clean, as_of)
    progress("load")
    tx = _load(source, doc, columns, engine=eng, **read)
    lap("load")
    progress("clean and aggregate")
    marked = mark_drops(tx.table, config=clean)
    with eng.translate_errors(tx.source.name):
        rfm, ledger, used_as_of = compute_rfm_and_ledger(
            marked, as_of=clean.as_of, **clean.aggregation()
        )
        explain_drops(marked, ledger, tx.columns, config=clean)
    note = basket_note(ledger)
    if note:
        warnings.warn(note, CustsegWarning, stacklevel=2)
    lap("clean and aggregate")
    progress("score and name")
    fit = _fit_of(doc, rfm)
    profiles, names = describe_segments(
        rfm, fit.labels, fit.model, frequency_unit=clean.frequency_unit
    )
    saved = {s.cluster: s for s in doc.segments}
    names = [
        dataclasses.replace(n, name=saved[n.cluster].name, action=saved[n.cluster].action)
        if n.cluster in saved
        else n
        for n in names
    ]
    customers = customer_table(rfm, fit, names)
    settings = RunConfig(clean=clean, cluster=doc.settings.cluster, names=doc.settings.names)
    lap("score and name")
    return SegmentationResult(
        customers=customers,
        as_of=used_as_of,
        ledger=ledger,
        fit=fit,
        profiles=profiles,
        segments=names,
        columns=tx.columns,
        source=tx.source,
        date_format=tx.date_format,
        config=settings,
        scored_with=scored_with,
        timings=timings,
    )
