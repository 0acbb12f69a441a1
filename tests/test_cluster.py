"""Tests of custseg.cluster: outliers, transform, k sweep, fit, canonical ids, the model file."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from custseg.cluster import (
    FEATURES,
    ClusterModel,
    KSelection,
    OutlierRule,
    fit_outlier_rule,
    fit_segments,
    select_k,
    transform_features,
)
from custseg.config import ClusterConfig as _Config
from custseg.errors import ConfigError, EmptyDataError, InputError, ModelFileError, SchemaError
from custseg.methods.kmeans import effective_n_init as _effective_n_init
from custseg.metrics import quality as _quality
from custseg.metrics import silhouettes as _silhouettes

RFM_CSV = Path(__file__).parent / "data" / "rfm_online_retail.csv"


def ClusterConfig(**kwargs: object) -> _Config:
    """The reference tutorial's settings (z-score outliers, no transform, knee) with changes:
    the method these tests pin, whatever the product's default."""
    return _Config.preset("tutorial", **kwargs)


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    """Online Retail RFM (4,338 customers, as of 2011-12-10; see tests/data)."""
    return pd.read_csv(RFM_CSV, index_col="customer_id")


@pytest.fixture(scope="module")
def reference_fit(rfm: pd.DataFrame):
    """The reference's settings: zscore outliers, knee over k = 1..10, seed 0."""
    return fit_segments(rfm, config=ClusterConfig())


def _blobs(n_per: int = 30, seed: int = 0) -> np.ndarray:
    """Three well separated blobs in 3-D."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0, 0], [10, 10, 0], [0, 10, 10]])
    return np.concatenate([c + rng.normal(scale=0.5, size=(n_per, 3)) for c in centers])


# ------------------------------------------------------------------------------- transform


def test_transform_features_log_is_log1p_and_copies() -> None:
    X = np.array([[0.0, 1.0, 9.0]])
    out = transform_features(X, transform="log")
    np.testing.assert_allclose(out, np.log1p(X))
    same = transform_features(X, transform="none")
    np.testing.assert_array_equal(same, X)
    assert same is not X


def test_transform_features_log_rejects_negative_values() -> None:
    with pytest.raises(ConfigError, match=r"non-negative.*-2.*transform='none'"):
        transform_features(np.array([[1.0, -2.0, 3.0]]), transform="log")


def test_transform_features_unknown_transform_raises() -> None:
    with pytest.raises(ConfigError, match="Unknown transform 'sqrt'"):
        transform_features(np.ones((2, 3)), transform="sqrt")  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- outliers


def test_fit_outlier_rule_zscore_bounds_hand_computed() -> None:
    # mean 2, population std 4: bounds 2 -/+ z * 4.
    Xt = np.array([[0.0], [0.0], [0.0], [0.0], [10.0]])
    rule = fit_outlier_rule(Xt, method="zscore", z_threshold=3.0)
    assert rule.lower == (-10.0,) and rule.upper == (14.0,)
    assert not rule.flag(Xt).any()
    rule2 = fit_outlier_rule(Xt, method="zscore", z_threshold=2.0)
    # |z| of the 10 is exactly 2: on the bound counts as an outlier (|z| >= threshold).
    assert rule2.flag(Xt).tolist() == [False, False, False, False, True]


def test_fit_outlier_rule_zscore_matches_reference_rule(rfm: pd.DataFrame) -> None:
    X = rfm[list(FEATURES)].to_numpy(dtype=float)
    z = np.abs((X - X.mean(axis=0)) / X.std(axis=0))
    expected = (z >= 3).any(axis=1)
    got = fit_outlier_rule(X, method="zscore", z_threshold=3.0).flag(X)
    np.testing.assert_array_equal(got, expected)
    assert got.sum() == 64


def test_fit_outlier_rule_iqr_is_strict() -> None:
    # q1 = 2, q3 = 4, IQR = 2, factor 1.5: outlier iff x < -1 or x > 7.
    Xt = np.array([[1.0], [2.0], [3.0], [4.0], [100.0]])
    rule = fit_outlier_rule(Xt, method="iqr", iqr_factor=1.5)
    probe = np.array([[-1.0], [-1.0001], [7.0], [7.0001], [3.0]])
    assert rule.flag(probe).tolist() == [False, True, False, True, False]
    assert rule.flag(Xt).tolist() == [False, False, False, False, True]


@pytest.mark.parametrize("method", ["zscore", "iqr"])
def test_fit_outlier_rule_zero_spread_flags_nothing(method: str) -> None:
    Xt = np.array([[5.0, 1.0], [5.0, 1.0], [5.0, 1.0], [5.0, 9.0]])
    rule = fit_outlier_rule(Xt, method=method, z_threshold=1.0, iqr_factor=1.0)  # type: ignore[arg-type]
    assert rule.lower[0] == -math.inf and rule.upper[0] == math.inf
    flags = rule.flag(np.array([[5.0, 1.0], [7.0, 1.0]]))
    assert flags.tolist() == [False, False]


def test_fit_outlier_rule_none_flags_nothing() -> None:
    rule = fit_outlier_rule(np.array([[0.0], [1e9]]), method="none")
    assert not rule.flag(np.array([[-1e300], [1e300]])).any()


def test_fit_outlier_rule_errors() -> None:
    with pytest.raises(EmptyDataError, match="at least one row"):
        fit_outlier_rule(np.empty((0, 3)), method="zscore")
    with pytest.raises(ConfigError, match="Unknown outlier method 'mad'"):
        fit_outlier_rule(np.ones((2, 3)), method="mad")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="z_threshold must be positive, got 0"):
        fit_outlier_rule(np.ones((2, 3)), method="zscore", z_threshold=0)
    with pytest.raises(ConfigError, match="iqr_factor must be positive"):
        fit_outlier_rule(np.ones((2, 3)), method="iqr", iqr_factor=-1)


def test_outlier_rule_flag_rejects_wrong_width() -> None:
    rule = OutlierRule("none", (-math.inf,) * 3, (math.inf,) * 3)
    with pytest.raises(InputError, match="expects 3 feature columns"):
        rule.flag(np.ones((2, 2)))


# ------------------------------------------------------------------------------ select_k


def test_select_k_finds_three_blobs_at_the_knee() -> None:
    sel = select_k(_blobs(), k_values=range(1, 8), n_init=3)
    assert sel.method == "knee" and sel.knee == 3 and sel.k == 3 and sel.note is None
    assert sel.k_values == list(range(1, 8))
    assert all(a > b for a, b in zip(sel.sse, sel.sse[1:], strict=False))
    assert sel.silhouette[0] is None and sel.calinski_harabasz[0] is None
    assert sel.silhouette[2] is not None and sel.silhouette[2] > 0.8


def test_select_k_silhouette_mode_takes_best_silhouette() -> None:
    sel = select_k(_blobs(), k_values=[2, 3, 4, 5], select="silhouette", n_init=3)
    assert sel.method == "silhouette" and sel.k == 3
    best = max(s for s in sel.silhouette if s is not None)
    assert sel.silhouette[sel.k_values.index(3)] == best


def test_select_k_without_knee_falls_back_to_silhouette_with_note() -> None:
    sel = select_k(_blobs(), k_values=[2, 3], n_init=2)
    assert sel.method == "silhouette" and sel.knee is None and sel.k == 3
    assert sel.note == "Too few k values for a knee; took the best silhouette (k=3)."


def test_select_k_drops_k_above_distinct_rows() -> None:
    X = np.array([[0.0, 0], [0, 0], [5, 5], [9, 1]])
    sel = select_k(X, k_values=range(1, 6))
    assert sel.k_values == [1, 2, 3]
    assert "Dropped k=4 and 5 from the sweep: only 4 customers (3 distinct R/F/M points)." in (
        sel.note or ""
    )
    # k = 3 = number of distinct rows: quality is undefined there.
    assert sel.silhouette == [None, pytest.approx(sel.silhouette[1]), None]
    assert sel.davies_bouldin[2] is None


def test_select_k_metrics_match_sklearn() -> None:
    X = _blobs(n_per=100)
    sel = select_k(X, k_values=[1, 2, 3, 4], n_init=2, silhouette_sample=150, random_state=7)
    for i, k in enumerate(sel.k_values[1:], start=1):
        km = KMeans(k, n_init=2, random_state=7, algorithm="lloyd").fit(X)
        assert sel.sse[i] == pytest.approx(km.inertia_)
        sil = silhouette_score(X, km.labels_, sample_size=150, random_state=7)
        assert sel.silhouette[i] == pytest.approx(sil, rel=1e-9)
        assert sel.calinski_harabasz[i] == pytest.approx(calinski_harabasz_score(X, km.labels_))
        assert sel.davies_bouldin[i] == pytest.approx(davies_bouldin_score(X, km.labels_))


def test_silhouettes_match_sklearn_on_random_labels_with_duplicates() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 3))
    X[:20] = X[0]
    labels = [rng.integers(0, k, 600) for k in (2, 3, 6)]
    ours = _silhouettes(X, labels, sample=250, random_state=3)
    theirs = [silhouette_score(X, lab, sample_size=250, random_state=3) for lab in labels]
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    ch, db = _quality(X, labels[1])
    assert ch == pytest.approx(calinski_harabasz_score(X, labels[1]))
    assert db == pytest.approx(davies_bouldin_score(X, labels[1]))


def test_select_k_to_dict_is_the_summary_object() -> None:
    d = select_k(_blobs(), k_values=range(1, 5), n_init=2).to_dict()
    assert list(d) == [
        "method", "k_values", "sse", "silhouette", "calinski_harabasz", "davies_bouldin",
        "knee", "k", "note",
    ]  # fmt: skip
    assert d["silhouette"][0] is None
    assert json.loads(json.dumps(d, allow_nan=False)) == d


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k_values": []}, "k_values must be increasing positive integers"),
        ({"k_values": [3, 2]}, r"got \[3, 2\]"),
        ({"k_values": [0, 1]}, "k_values must be"),
        ({"k_values": [1, 2], "select": "gap"}, "Unknown selection 'gap'"),
        ({"k_values": [1, 2], "n_init": 0}, "n_init must be an integer of at least 1, got 0"),
        ({"k_values": [1, 2], "silhouette_sample": 1}, "silhouette_sample must be"),
    ],
)
def test_select_k_invalid_options_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        select_k(_blobs(), **kwargs)


def test_select_k_empty_raises() -> None:
    with pytest.raises(EmptyDataError, match="empty"):
        select_k(np.empty((0, 3)), k_values=[1, 2])


def test_effective_n_init_budget() -> None:
    assert _effective_n_init(10, 4_338) == 10
    assert _effective_n_init(10, 200_000) == 5
    assert _effective_n_init(10, 1_000_000) == 1
    assert _effective_n_init(10, 5_000_000) == 1


# --------------------------------------------------------------------------- fit_segments


def test_fit_segments_reference_run_on_online_retail(rfm: pd.DataFrame, reference_fit) -> None:
    fit = reference_fit
    sel = fit.selection
    assert sel.method == "knee" and sel.knee == 3 and fit.model.k == 3
    assert sel.k_values == list(range(1, 11))
    assert 0.45 < fit.metrics["silhouette"] < 0.6  # 0.519
    assert fit.metrics["silhouette"] == sel.silhouette[2]
    assert fit.metrics["calinski_harabasz"] > 1000
    assert 0 < fit.metrics["davies_bouldin"] < 1.5
    assert len(fit.labels) == len(rfm) == 4338
    assert int(fit.outlier.sum()) == 64
    assert fit.notes == ()
    means = rfm.groupby(fit.labels)["monetary"].mean()
    assert list(means.index) == [0, 1, 2]
    assert means.is_monotonic_decreasing


def test_fit_segments_is_deterministic(rfm: pd.DataFrame, reference_fit) -> None:
    again = fit_segments(rfm, config=ClusterConfig())
    np.testing.assert_array_equal(again.labels, reference_fit.labels)
    assert again.selection == reference_fit.selection
    assert again.model == reference_fit.model


def test_fit_segments_is_invariant_to_row_order(rfm: pd.DataFrame, reference_fit) -> None:
    perm = np.random.default_rng(42).permutation(len(rfm))
    shuffled = fit_segments(rfm.iloc[perm], config=ClusterConfig())
    assert adjusted_rand_score(reference_fit.labels[perm], shuffled.labels) == 1.0
    np.testing.assert_array_equal(shuffled.labels, reference_fit.labels[perm])
    np.testing.assert_array_equal(shuffled.outlier, reference_fit.outlier[perm])
    assert shuffled.model == reference_fit.model


def test_fit_segments_ids_do_not_depend_on_seed(rfm: pd.DataFrame, reference_fit) -> None:
    other = fit_segments(rfm, config=ClusterConfig(random_state=123, n_init=3))
    # Another seed may move a few border customers (another local optimum), but the same
    # segment keeps the same id: without renumbering agreement would be near 1/k.
    assert adjusted_rand_score(other.labels, reference_fit.labels) > 0.98
    assert (other.labels == reference_fit.labels).mean() > 0.99


def test_fit_segments_fixed_k_still_reports_sweep(rfm: pd.DataFrame) -> None:
    fit = fit_segments(rfm, config=ClusterConfig(k=5, k_values=(1, 2, 3, 4, 5, 6), n_init=2))
    assert fit.selection.method == "fixed" and fit.selection.k == 5 and fit.model.k == 5
    assert fit.selection.k_values == [1, 2, 3, 4, 5, 6]
    assert sorted(set(fit.labels.tolist())) == [0, 1, 2, 3, 4]


def test_fit_segments_fixed_k_outside_sweep_computes_metrics() -> None:
    fit = fit_segments(_blobs(), config=ClusterConfig(k=4, k_values=(1, 2), outliers="none"))
    assert fit.selection.method == "fixed" and fit.model.k == 4
    assert fit.metrics["silhouette"] is not None and fit.metrics["davies_bouldin"] is not None


def test_fit_segments_outliers_go_to_nearest_center(rfm: pd.DataFrame, reference_fit) -> None:
    labels, outlier = reference_fit.model.predict(rfm)
    np.testing.assert_array_equal(labels, reference_fit.labels)
    np.testing.assert_array_equal(outlier, reference_fit.outlier)
    # The big spenders flagged as outliers land in the top segment, not removed.
    assert set(reference_fit.labels[reference_fit.outlier].tolist()) == {0}


def test_fit_segments_log_and_iqr_run(rfm: pd.DataFrame) -> None:
    fit = fit_segments(
        rfm, config=ClusterConfig(transform="log", outliers="iqr", k_values=(1, 2, 3), n_init=2)
    )
    assert fit.model.transform == "log" and fit.model.outlier_rule.method == "iqr"
    assert 2 <= fit.model.k <= 3


def test_fit_segments_single_customer() -> None:
    fit = fit_segments(np.array([[3.0, 2.0, 50.0]]), config=ClusterConfig())
    assert fit.model.k == 1 and fit.labels.tolist() == [0] and fit.outlier.tolist() == [False]
    assert fit.selection.k_values == [1]
    assert fit.metrics == {"silhouette": None, "calinski_harabasz": None, "davies_bouldin": None}


def test_fit_segments_identical_customers() -> None:
    fit = fit_segments(np.tile([[10.0, 1.0, 99.0]], (7, 1)), config=ClusterConfig())
    assert fit.model.k == 1 and set(fit.labels.tolist()) == {0} and not fit.outlier.any()


def test_fit_segments_fewer_customers_than_k_values() -> None:
    X = np.array([[1.0, 9, 900], [2, 8, 800], [200, 1, 20], [250, 1, 30]])
    fit = fit_segments(X, config=ClusterConfig(outliers="none"))
    assert fit.selection.k_values == [1, 2, 3, 4]
    assert "only 4 customers" in (fit.selection.note or "")
    assert fit.labels[0] == fit.labels[1] == 0


def test_fit_segments_all_outliers_fits_on_all() -> None:
    X = np.array([[0.0, 0, 0], [1, 1, 1]])
    fit = fit_segments(X, config=ClusterConfig(z_threshold=1.0, k=2))
    assert fit.outlier.all() and fit.model.k == 2
    assert "fitted on all customers instead" in fit.notes[0]


def test_fit_segments_generic_width_and_order() -> None:
    X = _blobs()[:, :2]
    fit = fit_segments(X, config=ClusterConfig(k=3, outliers="none"))
    assert fit.model.features == ("x0", "x1")
    last_means = [X[fit.labels == c, -1].mean() for c in range(3)]
    assert last_means == sorted(last_means, reverse=True)


def test_fit_segments_errors(rfm: pd.DataFrame) -> None:
    with pytest.raises(EmptyDataError, match="0 rows"):
        fit_segments(rfm.iloc[:0], config=ClusterConfig())
    with pytest.raises(
        ConfigError,
        match=r"k = 3 is more than the 2 distinct R/F/M points of the 3 customers\. .*at most 2",
    ):
        fit_segments(np.array([[1.0, 1, 1], [1, 1, 1], [2, 2, 2]]), config=ClusterConfig(k=3))
    with pytest.raises(InputError, match="1 missing or infinite"):
        fit_segments(np.array([[1.0, np.nan, 1], [2, 2, 2]]), config=ClusterConfig())
    # without monetary a table is data without money (R and F); without frequency, an error
    with pytest.raises(SchemaError, match=r"Missing feature column\(s\) \['frequency'\]"):
        fit_segments(rfm[["recency", "monetary"]], config=ClusterConfig())
    with pytest.raises(ConfigError, match="non-negative"):
        fit_segments(np.array([[-1.0, 1, 1], [2, 2, 2]]), config=ClusterConfig(transform="log"))
    with_na = rfm.head(3).astype({"frequency": "Int64"})
    with_na.iloc[0, 1] = pd.NA
    with pytest.raises(InputError, match="1 missing or infinite"):
        fit_segments(with_na, config=ClusterConfig())
    with pytest.raises(InputError, match="not all numeric"):
        fit_segments(
            rfm.head(3).astype({"monetary": str}).assign(monetary="x"), config=ClusterConfig()
        )
    with pytest.raises(InputError, match="2-D"):
        fit_segments(np.array([1.0, 2.0]), config=ClusterConfig())


@settings(max_examples=25, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 25), st.just(3)),
        elements=st.floats(0, 1000, allow_nan=False, allow_infinity=False),
    )
)
def test_fit_segments_invariants_on_random_tables(X: np.ndarray) -> None:
    fit = fit_segments(X, config=ClusterConfig(k_values=(1, 2, 3, 4), n_init=1))
    k = fit.model.k
    assert len(fit.labels) == len(X) and fit.labels.dtype == np.int64
    assert set(fit.labels.tolist()) <= set(range(k))
    labels, outlier = fit.model.predict(X)
    np.testing.assert_array_equal(labels, fit.labels)
    np.testing.assert_array_equal(outlier, fit.outlier)


# --------------------------------------------------------------------------------- model


def test_cluster_model_round_trips_through_json(rfm: pd.DataFrame, reference_fit) -> None:
    d = reference_fit.model.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = ClusterModel.from_dict(json.loads(text))
    assert back == reference_fit.model
    np.testing.assert_array_equal(back.predict(rfm)[0], reference_fit.labels)


def test_cluster_model_round_trips_infinite_bounds() -> None:
    fit = fit_segments(_blobs(), config=ClusterConfig(k=3, outliers="none"))
    d = fit.model.to_dict()
    assert d["outliers"]["lower"] == [None, None, None]
    assert ClusterModel.from_dict(json.loads(json.dumps(d, allow_nan=False))) == fit.model


def _corrupt(d: dict, path: tuple, value: object) -> dict:
    out = copy.deepcopy(d)
    target = out
    for p in path[:-1]:
        target = target[p]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("centers",), [[0.0, 0.0, 0.0]], "'centers' must be a list of k=3 rows"),
        (("centers", 0), [0.0, 0.0], "'centers' must be a list of 3 numbers"),
        (("centers", 1, 2), float("nan"), "'centers' must hold finite numbers"),
        (("centers", 1, 2), "1e3", "'centers' must hold finite numbers"),
        (("centers", 1, 2), True, "'centers' must hold finite numbers"),
        (("scaler_scale", 0), 0.0, "'scaler_scale' must be positive"),
        (("scaler_mean",), None, "'scaler_mean' must be a list of 3 numbers"),
        (("k",), 2, "'centers' must be a list of k=2 rows"),
        (("k",), True, "'k' must be a positive integer"),
        (("transform",), "__import__('os').system('x')", "'transform' must be 'none' or 'log'"),
        (("format",), "pickle", "'format' must be"),
        (("version",), 99, "'version' must be 1"),
        (("features",), ["recency", "recency", "monetary"], "'features' must be"),
        (("outliers", "method"), "magic", "'outliers.method'"),
        (("outliers", "lower", 0), 1e300, "lower <= upper"),
        (("outliers", "upper"), "inf", "'upper' must be a list"),
        (("random_state",), 1.5, "'random_state' must be an integer or null"),
        (("extra",), 1, r"unknown key\(s\)"),
        (("centers",), _DELETE, r"missing key\(s\) \['centers'\]"),
    ],
)
def test_cluster_model_from_dict_rejects_corrupt_models(
    reference_fit, path: tuple, value: object, match: str
) -> None:
    bad = _corrupt(reference_fit.model.to_dict(), path, value)
    with pytest.raises(ModelFileError, match=match) as info:
        ClusterModel.from_dict(bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("doc", [None, [], "model", 3, {"a": {"b": []}}])
def test_cluster_model_from_dict_rejects_non_models(doc: object) -> None:
    with pytest.raises(ModelFileError, match="Invalid cluster model"):
        ClusterModel.from_dict(doc)


def test_cluster_model_predict_checks_columns(reference_fit) -> None:
    with pytest.raises(InputError, match="Expected 3 feature columns"):
        reference_fit.model.predict(np.ones((2, 2)))
    with pytest.raises(SchemaError, match="Missing feature column"):
        reference_fit.model.predict(pd.DataFrame({"recency": [1.0]}))


def test_kselection_is_frozen(reference_fit) -> None:
    assert isinstance(reference_fit.selection, KSelection)
    with pytest.raises(AttributeError):
        reference_fit.selection.k = 9  # type: ignore[misc]


def test_fit_segments_on_recency_and_frequency_alone() -> None:
    rf = pd.DataFrame(
        {"recency": [5.0, 7, 6, 300, 280, 310], "frequency": [10.0, 9, 11, 1, 2, 1]},
        index=pd.Index(list("abcdef"), name="customer_id"),
    )
    fit = fit_segments(rf, config=ClusterConfig(k=2, outliers="none", select="auto"))
    assert fit.model.features == ("recency", "frequency")
    assert fit.model.center_array().shape == (2, 2)
    # canonical order without monetary: the most frequent segment first
    assert fit.labels.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ConfigError, match="rfm-scores scores recency, frequency and monetary"):
        fit_segments(rf, config=ClusterConfig(method="rfm-scores"))
