"""K-Means on Spark MLlib for customer tables too large for the driver (--cluster-engine spark).

The workflow of :func:`custseg.cluster.fit_segments` with the customer table kept in Spark:

1. the transform (``log1p``) and the outlier rule are Spark expressions and aggregates: z-score
   from ``avg`` and ``stddev_pop`` (population std, as locally), IQR from Spark SQL's exact
   ``percentile`` (linear interpolation, NumPy's default; not ``approxQuantile``), so the
   bounds are the local ones up to floating-point summation order;
2. the scaler is ``pyspark.ml.feature.StandardScaler`` fitted on the non-outliers: its
   standard deviation is the corrected one (divides by n-1; scikit-learn's by n);
3. the k sweep fits ``pyspark.ml.clustering.KMeans`` (``initMode="k-means||"``, seeded) per k
   on every non-outlier (no sample, one run per k instead of scikit-learn's ``n_init``
   k-means++ restarts); SSE is ``summary.trainingCost``; the silhouette is
   ``ClusteringEvaluator``'s, on squared Euclidean distances (the local one uses plain
   distances, on a seeded sample of 10,000); Calinski-Harabasz and Davies-Bouldin come from
   per-segment sums aggregated in Spark (:func:`custseg.metrics.quality_from_sums`); k is
   chosen by kneed's knee (or the silhouette) exactly as locally;
4. the centres become a :class:`custseg.model.ClusterModel` in the same scaled space, so
   model.json, naming, scoring and the report are unchanged; segments are predicted in Spark
   (nearest centre, ties to the lower id, as the model predicts) and renumbered canonically
   from per-segment means aggregated in Spark.

Only the labelled customer table comes back to the driver (customer id, R, F, M, outlier,
segment: about 33 bytes and the id per customer, some 0.5 GB at 10 million customers), for
segments.csv, the names and the report; placing outliers and the final assignment then run
on it as locally, by the model's own rule, so segments.csv is what ``custseg score`` gives.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .cluster import (
    ClusterFit,
    _choose_k,
    _find_knee,
    _kept_k,
    canonical_order,
    fit_outlier_rule,
    iqr_rule,
    zscore_rule,
)
from .config import ClusterConfig
from .errors import ConfigError, EmptyDataError
from .features import order_customers
from .methods import CentroidState
from .metrics import quality_from_sums
from .model import ClusterModel, KSelection, OutlierRule
from .schema import CUSTOMER, RFM_COLUMNS

__all__ = ["MAX_ITER", "MLLIB_NOTE", "TOL", "fit_segments_spark", "spark_config"]

#: What every run clustered in Spark says (k_selection.note of summary.json, the report).
MLLIB_NOTE = (
    "Clustered with Spark MLlib K-Means (k-means||); silhouette on squared distances; scaler "
    "divides by n-1, so figures differ slightly from a local run."
)
#: MLlib K-Means' iteration cap (MLlib's default is 20; scikit-learn's 300) and tolerance.
MAX_ITER = 100
TOL = 1e-4
#: Customers per partition of the k sweep (at least one partition, at most one per core).
ROWS_PER_PARTITION = 500_000

#: Per-customer columns beside R, F, M that come back with the labels (for segments.csv).
_CARRIED = ("returned",)
_T = tuple(f"_t{j}" for j in range(len(RFM_COLUMNS)))
_Z = tuple(f"_z{j}" for j in range(len(RFM_COLUMNS)))
_VEC, _PRED, _OUT, _FIT = "_features", "_prediction", "outlier", "_fitted"


def spark_config(config: ClusterConfig) -> tuple[ClusterConfig, list[str]]:
    """The settings a Spark fit can use, and a note when ``select="backtest"`` gave way.

    The backtest's k choice refits on the training customers on the driver; in Spark k is
    chosen by the method's own rule (the knee of MLlib's SSE curve) instead.
    """
    if config.method != "kmeans":
        raise ConfigError(
            f"--cluster-engine spark fits Spark MLlib K-Means only, not --method "
            f"{config.method}. Use --method kmeans, or --cluster-engine local."
        )
    if config.select == "backtest":
        note = (
            "--cluster-engine spark chooses k at the knee of MLlib's SSE curve (the backtest's "
            "refits would run on the driver); pass --select knee or silhouette to say so."
            if config.k is None
            else None
        )
        return config.replace(select="auto"), [note] if note else []
    return config, []


@dataclass(frozen=True)
class _KFit:
    """MLlib K-Means at one k: centres (scaled space), SSE, predictions of the fitted rows."""

    k: int
    centers: np.ndarray
    sse: float
    predictions: Any
    notes: tuple[str, ...] = ()


def _functions() -> Any:
    from pyspark.sql import functions

    return functions


def _sum(columns: list[Any]) -> Any:
    """Left-to-right sum of columns, in the order NumPy sums a row's features."""
    return functools.reduce(operator.add, columns)


def _sq_dist(center: np.ndarray) -> Any:
    """Squared Euclidean distance of the scaled columns to ``center`` (a Spark column)."""
    F = _functions()
    return _sum([(F.col(z) - F.lit(float(c))) ** 2 for z, c in zip(_Z, center, strict=True)])


def _nearest(centers: np.ndarray) -> Any:
    """Index of the nearest centre (ties: the lower index), as :func:`nearest_center`."""
    F = _functions()
    if len(centers) == 1:
        return F.lit(0)
    d = F.array(*[_sq_dist(c) for c in centers])
    return (F.array_position(d, F.array_min(d)) - 1).cast("int")


def _transformed(df: Any, transform: str) -> Any:
    """The raw features as doubles plus their transformed columns ``_t0..``."""
    F = _functions()
    raw = [F.col(c).cast("double").alias(c) for c in RFM_COLUMNS]
    extra = [F.col(c).cast("double").alias(c) for c in _CARRIED if c in df.columns]
    df = df.select(F.col(CUSTOMER), *raw, *extra)
    if transform == "log":
        return df.select("*", *[F.log1p(c).alias(t) for c, t in zip(RFM_COLUMNS, _T, strict=True)])
    return df.select("*", *[F.col(c).alias(t) for c, t in zip(RFM_COLUMNS, _T, strict=True)])


def _outlier_rule(df: Any, config: ClusterConfig) -> OutlierRule:
    """The outlier rule on the transformed columns, aggregated in Spark."""
    F = _functions()
    d = len(_T)
    if config.outliers == "zscore":
        row = df.agg(
            *[F.avg(t).alias(f"m{j}") for j, t in enumerate(_T)],
            *[F.stddev_pop(t).alias(f"s{j}") for j, t in enumerate(_T)],
        ).first()
        mean = np.array([row[f"m{j}"] for j in range(d)], dtype=np.float64)
        std = np.array([row[f"s{j}"] for j in range(d)], dtype=np.float64)
        return zscore_rule(mean, std, config.z_threshold)
    if config.outliers == "iqr":
        # Exact percentiles, linearly interpolated as numpy.quantile does.
        row = df.agg(
            *[
                F.expr(f"percentile({t}, array(0.25, 0.75))").alias(f"q{j}")
                for j, t in enumerate(_T)
            ]
        ).first()
        qs = np.array([row[f"q{j}"] for j in range(d)], dtype=np.float64)
        return iqr_rule(qs[:, 0], qs[:, 1], config.iqr_factor)
    return fit_outlier_rule(np.zeros((1, d)), method="none")


def _flag(rule: OutlierRule) -> Any:
    """Outlier iff a transformed value is on or beyond a bound (as :meth:`OutlierRule.flag`)."""
    F = _functions()
    tests = [F.lit(False)]
    for t, lo, hi in zip(_T, rule.lower, rule.upper, strict=True):
        if np.isfinite(lo):
            tests.append(F.col(t) <= F.lit(lo))
        if np.isfinite(hi):
            tests.append(F.col(t) >= F.lit(hi))
    return functools.reduce(operator.or_, tests)


def _distinct(df: Any) -> int:
    return int(df.select(*RFM_COLUMNS).distinct().count())


def _fit_rows(df: Any, n: int, config: ClusterConfig) -> tuple[Any, list[str]]:
    """The table with ``_fitted`` (the non-outliers, or everyone when too few are left)."""
    F = _functions()
    n_fit = int(df.filter(~F.col(_OUT)).count())
    everyone = df.withColumn(_FIT, F.lit(True))
    if n_fit < n and n_fit < 2:
        note = (
            f"{n - n_fit} of {n} customers are outliers, leaving {n_fit}; "
            "fitted on all customers instead."
        )
        return everyone, [note]
    if config.k is not None and n_fit < n and _distinct(df.filter(~F.col(_OUT))) < config.k:
        note = (
            f"Fewer than k={config.k} distinct customers are not outliers; "
            "fitted on all customers instead."
        )
        return everyone, [note]
    return df.withColumn(_FIT, ~F.col(_OUT)), []


def _scaler(fitted: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of pyspark.ml's StandardScaler (std with n-1; 0 -> 1 as scikit-learn)."""
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    vec = VectorAssembler(inputCols=list(_T), outputCol="_t").transform(fitted.select(*_T))
    model = StandardScaler(inputCol="_t", outputCol="_s", withMean=True, withStd=True).fit(vec)
    mean = np.asarray(model.mean.toArray(), dtype=np.float64)
    std = np.asarray(model.std.toArray(), dtype=np.float64)
    return mean, np.where((std == 0) | ~np.isfinite(std), 1.0, std)


def _scaled(df: Any, mean: np.ndarray, scale: np.ndarray) -> Any:
    """The scaled columns ``_z0..`` and their vector, as :func:`custseg.model.standardize`."""
    from pyspark.ml.feature import VectorAssembler

    F = _functions()
    z = [
        ((F.col(t) - F.lit(float(m))) / F.lit(float(s))).alias(name)
        for t, m, s, name in zip(_T, mean, scale, _Z, strict=True)
    ]
    return VectorAssembler(inputCols=list(_Z), outputCol=_VEC).transform(df.select("*", *z))


def _partitions(df: Any, n: int) -> int:
    """Partitions for the sweep: each K-Means iteration is a Spark job whose cost, below a
    few hundred thousand rows, is its tasks' overhead (4,338 customers: 8 partitions took
    2-3 times as long as 1), so one per ``ROWS_PER_PARTITION`` rows, up to the cores."""
    cores = int(df.sparkSession.sparkContext.defaultParallelism)
    return max(1, min(cores, -(-n // ROWS_PER_PARTITION)))


def _fit_k(fit_df: Any, k: int, config: ClusterConfig) -> _KFit:
    """MLlib K-Means (k-means||, seeded) at ``k``; k = 1 is the mean."""
    F = _functions()
    if k == 1:
        row = fit_df.agg(*[F.avg(z).alias(z) for z in _Z]).first()
        center = np.array([[row[z] for z in _Z]], dtype=np.float64)
        sse = fit_df.agg(F.sum(_sq_dist(center[0])).alias("s")).first()["s"]
        return _KFit(1, center, float(sse), fit_df.withColumn(_PRED, F.lit(0)))
    from pyspark.ml.clustering import KMeans

    km = KMeans(
        k=k,
        initMode="k-means||",
        maxIter=MAX_ITER,
        tol=TOL,
        featuresCol=_VEC,
        predictionCol=_PRED,
    )
    if config.random_state is not None:
        km = km.setSeed(int(config.random_state))
    model = km.fit(fit_df)
    centers = np.array([np.asarray(c, dtype=np.float64) for c in model.clusterCenters()])
    notes = []
    if model.summary.numIter >= MAX_ITER:
        notes.append(f"k={k}: MLlib K-Means stopped at {MAX_ITER} iterations before converging.")
    if len(centers) < k:
        notes.append(f"k={k}: MLlib K-Means found only {len(centers)} distinct centres.")
    return _KFit(
        k, centers, float(model.summary.trainingCost), model.transform(fit_df), tuple(notes)
    )


def _quality(preds: Any, d: int) -> tuple[float | None, float | None]:
    """Calinski-Harabasz and Davies-Bouldin of MLlib's partition, from sums in Spark."""
    F = _functions()
    rows = (
        preds.groupBy(_PRED)
        .agg(F.count(F.lit(1)).alias("n"), *[F.sum(z).alias(z) for z in _Z])
        .orderBy(_PRED)
        .collect()
    )
    ids = [int(r[_PRED]) for r in rows]
    counts = np.array([r["n"] for r in rows], dtype=np.float64)
    cent = np.array([[r[z] for z in _Z] for r in rows], dtype=np.float64) / counts[:, None]
    grand = cent.T @ counts / counts.sum()
    full = np.zeros((max(ids) + 1, d))
    full[ids] = cent
    idx = F.col(_PRED) + 1
    sq = _sum(
        [
            (F.col(z) - F.element_at(F.array(*[F.lit(float(v)) for v in full[:, j]]), idx)) ** 2
            for j, z in enumerate(_Z)
        ]
    )
    sums = (
        preds.select(_PRED, sq.alias("_sq"))
        .groupBy(_PRED)
        .agg(F.sum("_sq").alias("w"), F.sum(F.sqrt("_sq")).alias("r"))
        .orderBy(_PRED)
        .collect()
    )
    within = float(sum(r["w"] for r in sums))
    intra = np.array([r["r"] for r in sums], dtype=np.float64) / counts
    return quality_from_sums(counts, cent, grand, within, intra)


def _silhouette(preds: Any) -> float:
    """MLlib's silhouette: squared Euclidean distances, every fitted customer."""
    from pyspark.ml.evaluation import ClusteringEvaluator

    evaluator = ClusteringEvaluator(
        featuresCol=_VEC,
        predictionCol=_PRED,
        metricName="silhouette",
        distanceMeasure="squaredEuclidean",
    )
    return float(evaluator.evaluate(preds))


def _figures(fits: list[_KFit], distinct: int) -> dict[str, list[float | None]]:
    """SSE, silhouette, Calinski-Harabasz and Davies-Bouldin per k of the sweep."""
    out: dict[str, list[float | None]] = {
        "sse": [f.sse for f in fits],
        "silhouette": [],
        "calinski_harabasz": [],
        "davies_bouldin": [],
    }
    for f in fits:
        defined = 2 <= f.k < distinct and len(f.centers) >= 2
        ch, db = _quality(f.predictions, len(_Z)) if defined else (None, None)
        out["silhouette"].append(_silhouette(f.predictions) if defined else None)
        out["calinski_harabasz"].append(ch)
        out["davies_bouldin"].append(db)
    return out


def _selection(
    fits: list[_KFit],
    figures: dict[str, list[float | None]],
    notes: list[str],
    config: ClusterConfig,
) -> KSelection:
    """The sweep's KSelection, k chosen as :func:`custseg.cluster.fit_segments` chooses it."""
    ks = [f.k for f in fits]
    knee = _find_knee(ks, figures["sse"])
    if config.k is not None:
        how, k, choice = "fixed", int(config.k), None
    else:
        rule = "knee" if config.select == "auto" else config.select
        how, k, choice = _choose_k(rule, ks, figures, knee)
    said = [*([choice] if choice else []), *notes, MLLIB_NOTE]
    return KSelection(
        method=how,  # type: ignore[arg-type]
        k_values=ks,
        sse=[float(v) for v in figures["sse"]],  # type: ignore[arg-type]
        silhouette=figures["silhouette"],
        calinski_harabasz=figures["calinski_harabasz"],
        davies_bouldin=figures["davies_bouldin"],
        knee=knee,
        k=k,
        note=" ".join(said),
    )


def _renumbered(zdf: Any, centers: np.ndarray) -> np.ndarray:
    """The centres in canonical order, from per-segment raw means aggregated in Spark."""
    F = _functions()
    rows = (
        zdf.select(_nearest(centers).alias(_PRED), *RFM_COLUMNS)
        .groupBy(_PRED)
        .agg(*[F.avg(c).alias(c) for c in RFM_COLUMNS])
        .collect()
    )
    means = np.full((len(centers), len(RFM_COLUMNS)), np.nan)
    for r in rows:
        means[int(r[_PRED])] = [r[c] for c in RFM_COLUMNS]
    return centers[canonical_order(means, centers)]


def _params() -> dict[str, Any]:
    return {
        "engine": "spark-mllib",
        "init": "k-means||",
        "init_steps": 2,
        "max_iter": MAX_ITER,
        "tol": TOL,
        "silhouette": "squared-euclidean",
        "scaler_ddof": 1,
    }


def _metrics(final: _KFit, selection: KSelection, distinct: int) -> dict[str, float | None]:
    if final.k in selection.k_values:
        i = selection.k_values.index(final.k)
        return {
            "silhouette": selection.silhouette[i],
            "calinski_harabasz": selection.calinski_harabasz[i],
            "davies_bouldin": selection.davies_bouldin[i],
        }
    figures = _figures([final], distinct)
    return {
        name: figures[name][0] for name in ("silhouette", "calinski_harabasz", "davies_bouldin")
    }


def fit_segments_spark(rfm: Any, *, config: ClusterConfig) -> tuple[pd.DataFrame, ClusterFit]:
    """Segment the customers of a Spark DataFrame with MLlib K-Means.

    Parameters
    ----------
    rfm : pyspark.sql.DataFrame
        One row per customer: ``customer_id``, ``recency``, ``frequency``, ``monetary``.
    config : ClusterConfig
        As for :func:`custseg.cluster.fit_segments` (``method="kmeans"``; ``n_init`` does
        not apply: MLlib fits once per k from its k-means|| start).

    Returns
    -------
    customers : DataFrame
        The labelled table collected to the driver (index ``customer_id``, in the order of
        :func:`custseg.features.compute_rfm`): ``recency``, ``frequency``, ``monetary``.
    fit : ClusterFit
        As :func:`custseg.cluster.fit_segments` returns, aligned with ``customers``.

    Raises
    ------
    EmptyDataError
        If there are no customers.
    ConfigError
        If ``config.k`` exceeds the distinct customers, or ``log`` meets negatives.
    """
    config, first = spark_config(config)
    df = _transformed(rfm, config.transform).persist()
    try:
        return _fit(df, config, first)
    finally:
        df.unpersist()


def _check(df: Any, config: ClusterConfig) -> int:
    """The number of customers, once refused what :func:`fit_segments` refuses."""
    F = _functions()
    n = int(df.count())
    if n == 0:
        raise EmptyDataError(
            "No customers to segment: the feature table has 0 rows. Check the input and filters."
        )
    if config.transform == "log":
        low = df.agg(F.least(*[F.min(c) for c in RFM_COLUMNS]).alias("m")).first()["m"]
        if low is not None and low < 0:
            raise ConfigError(
                f"transform='log' needs non-negative values, found a minimum of {low:g}. "
                "Use transform='none' or shift the features first."
            )
    distinct = _distinct(df)
    if config.k is not None and config.k > distinct:
        raise ConfigError(
            f"k={config.k} is more than the {distinct} distinct customer(s) in the data. "
            f"Pass a k of at most {distinct}, or let k be chosen."
        )
    return n


def _model(
    rule: OutlierRule,
    mean: np.ndarray,
    scale: np.ndarray,
    centers: np.ndarray,
    config: ClusterConfig,
) -> ClusterModel:
    """The fitted pipeline as the :class:`ClusterModel` a local fit gives (model.json)."""
    return ClusterModel(
        features=RFM_COLUMNS,
        transform=config.transform,
        outlier_rule=rule,
        scaler_mean=tuple(mean.tolist()),
        scaler_scale=tuple(scale.tolist()),
        centers=tuple(tuple(c.tolist()) for c in centers),
        k=len(centers),
        random_state=config.random_state,
        method="kmeans",
        params=_params(),
        state=CentroidState(),
    )


def _fit(df: Any, config: ClusterConfig, first: list[str]) -> tuple[pd.DataFrame, ClusterFit]:
    F = _functions()
    n = _check(df, config)
    rule = _outlier_rule(df, config)
    flagged, fit_notes = _fit_rows(df.withColumn(_OUT, _flag(rule)), n, config)
    mean, scale = _scaler(flagged.filter(F.col(_FIT)))
    zdf = _scaled(flagged, mean, scale).persist()
    fitted = zdf.filter(F.col(_FIT)).select(_VEC, *_Z, *RFM_COLUMNS)
    fit_df = fitted.coalesce(_partitions(fitted, n)).persist()
    try:
        fit_distinct = _distinct(fit_df)
        kept, notes = _kept_k(list(config.k_values), fit_distinct, fit_df.count())
        fits = [_fit_k(fit_df, k, config) for k in kept]
        notes += [note for f in fits for note in f.notes]
        figures = _figures(fits, fit_distinct)
        selection = _selection(fits, figures, notes, config)
        by_k = {f.k: f for f in fits}
        final = by_k.get(selection.k) or _fit_k(fit_df, selection.k, config)
        metrics = _metrics(final, selection, fit_distinct)
        centers = _renumbered(zdf, final.centers)
        carried = [c for c in _CARRIED if c in zdf.columns]
        labelled = zdf.select(
            CUSTOMER, *RFM_COLUMNS, *carried, F.col(_OUT), _nearest(centers).alias("cluster")
        ).toPandas()
    finally:
        fit_df.unpersist()
        zdf.unpersist()
    customers = order_customers(labelled.set_index(CUSTOMER))
    model = _model(rule, mean, scale, centers, config)
    notes_all = [*first, *fit_notes, *([selection.note] if selection.note else [])]
    fit = ClusterFit(
        model=model,
        labels=customers["cluster"].to_numpy(dtype=np.int64),
        outlier=customers[_OUT].to_numpy(dtype=bool),
        selection=selection,
        metrics=metrics,
        notes=tuple(notes_all),
        figures=figures,
        sweep_sample=None,
    )
    rfm = customers[[*RFM_COLUMNS, *carried]].astype(
        {"recency": "int64", "frequency": "int64", "monetary": "float64"}
    )
    return rfm, fit
