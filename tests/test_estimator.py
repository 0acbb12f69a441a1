"""Tests of custseg.estimator.RFMSegmenter: scikit-learn's contract and the RFM facade."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import SkipTestWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import check_estimator

from custseg.cluster import ClusterModel, fit_segments
from custseg.config import ClusterConfig
from custseg.errors import ConfigError
from custseg.estimator import RFMSegmenter
from custseg.naming import place_outliers

RFM_CSV = Path(__file__).parent / "data" / "rfm_online_retail.csv"

# Deliberate deviations from scikit-learn's checks, each with its reason.
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_array_api_input": "custseg computes in NumPy; array API namespaces are not supported",
}


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    return pd.read_csv(RFM_CSV, index_col="customer_id")


# RFM scores score exactly recency, frequency and monetary, and their segments are the rule
# table's rows: scikit-learn's checks set n_clusters and feed 1 to 10 generic columns.
_NOT_RFM = "rfm-scores needs exactly the R, F, M columns and takes k from its rule table"
SCORE_DEVIATIONS: dict[str, str] = {
    name: _NOT_RFM
    for name in (
        "check_clustering",
        "check_dont_overwrite_parameters",
        "check_dtype_object",
        "check_estimators_dtypes",
        "check_estimators_fit_returns_self",
        "check_estimators_overwrite_params",
        "check_fit2d_1feature",
        "check_fit2d_1sample",
        "check_fit2d_predict1d",
        "check_fit_check_is_fitted",
        "check_fit_idempotent",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_n_features_in",
        "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit",
        "check_readonly_memmap_input",
    )
}


@pytest.mark.parametrize(
    ("estimator", "deviations", "passing"),
    # Small sweeps keep the ~50 checks per instance fast; the method is the same.
    [
        (RFMSegmenter(k_values=(1, 2, 3, 4), n_init=1), {}, 40),
        (RFMSegmenter(n_clusters=3, outliers="none", k_values=(1, 2, 3), n_init=1), {}, 40),
        (RFMSegmenter(method="hierarchical", k_values=(1, 2, 3, 4)), {}, 40),
        (RFMSegmenter(method="gmm", k_values=(1, 2, 3)), {}, 40),
        (RFMSegmenter(method="rfm-scores"), SCORE_DEVIATIONS, 30),
    ],
    ids=["auto", "fixed", "hierarchical", "gmm", "rfm-scores"],
)
def test_rfm_segmenter_sklearn_checks(
    estimator: RFMSegmenter, deviations: dict[str, str], passing: int
) -> None:
    expected = EXPECTED_FAILED_CHECKS | deviations
    with warnings.catch_warnings():
        # skipped checks are asserted below, from the results
        warnings.simplefilter("ignore", SkipTestWarning)
        results = check_estimator(estimator, expected_failed_checks=expected, on_fail=None)
    failed = [f"{r['check_name']}: {r['exception']}" for r in results if r["status"] == "failed"]
    assert failed == []
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= set(expected), skipped
    assert sum(r["status"] == "passed" for r in results) >= passing


def test_rfm_segmenter_init_stores_params_verbatim() -> None:
    est = RFMSegmenter(7, outliers="iqr", feature_transform="log", k_values=(2, 3))
    params = est.get_params()
    assert params["n_clusters"] == 7 and params["outliers"] == "iqr"
    assert params["feature_transform"] == "log" and params["k_values"] == (2, 3)
    assert clone(est).get_params() == params


def test_rfm_segmenter_fit_matches_fit_segments(rfm: pd.DataFrame) -> None:
    est = RFMSegmenter(n_init=3).fit(rfm)
    fit = place_outliers(rfm, fit_segments(rfm, config=ClusterConfig.preset("tutorial", n_init=3)))
    np.testing.assert_array_equal(est.labels_, fit.labels)
    np.testing.assert_array_equal(est.outliers_, fit.outlier)
    assert est.model_ == fit.model and est.k_selection_ == fit.selection
    assert est.n_clusters_ == 3 and est.n_features_in_ == 3
    assert est.cluster_centers_.shape == (3, 3)
    np.testing.assert_allclose(est.scaler_mean_, fit.model.scaler_mean)
    assert est.segment_names_ == ["Loyal big spenders", "Need attention", "Lapsed customers"]
    assert est.segments_ is not None and est.segments_[0].action


def test_rfm_segmenter_reorders_rfm_columns(rfm: pd.DataFrame) -> None:
    shuffled_cols = rfm.reset_index()[["monetary", "customer_id", "recency", "frequency"]]
    a = RFMSegmenter(n_clusters=3, n_init=2).fit(rfm)
    b = RFMSegmenter(n_clusters=3, n_init=2).fit(shuffled_cols)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert list(b.feature_names_in_) == ["recency", "frequency", "monetary"]
    np.testing.assert_array_equal(b.predict(shuffled_cols), b.labels_)


def test_rfm_segmenter_predict_transform_score(rfm: pd.DataFrame) -> None:
    est = RFMSegmenter(n_init=2).fit(rfm)
    np.testing.assert_array_equal(est.predict(rfm), est.labels_)
    dist = est.transform(rfm)
    assert dist.shape == (len(rfm), est.n_clusters_)
    inlier = ~est.outliers_  # outliers go to the nearest segment whose name they fit
    np.testing.assert_array_equal(dist.argmin(axis=1)[inlier], est.labels_[inlier])
    own = dist[np.arange(len(rfm)), est.labels_]  # the distance to each row's own segment
    assert est.score(rfm) == pytest.approx(-(own**2).sum())
    np.testing.assert_array_equal(est.outlier_mask(rfm), est.outliers_)
    np.testing.assert_array_equal(est.fit_predict(rfm), est.labels_)


def test_rfm_segmenter_generic_features_get_generic_names() -> None:
    X = np.random.default_rng(0).normal(size=(60, 2))
    X[:30] += 8
    est = RFMSegmenter(n_clusters=2, outliers="none").fit(X)
    assert est.segment_names_ == ["Segment 0", "Segment 1"] and est.segments_ is None
    assert est.model_.features == ("x0", "x1")


def test_rfm_segmenter_model_round_trips(rfm: pd.DataFrame) -> None:
    est = RFMSegmenter(n_init=2, feature_transform="log").fit(rfm)
    model = ClusterModel.from_dict(json.loads(json.dumps(est.model_.to_dict())))
    np.testing.assert_array_equal(model.predict(rfm)[0], est.predict(rfm))


def test_rfm_segmenter_random_state_none_and_pipeline(rfm: pd.DataFrame) -> None:
    pipe = make_pipeline(FunctionTransformer(), RFMSegmenter(n_clusters=3, random_state=None))
    labels = pipe.fit_predict(rfm.to_numpy())
    assert sorted(set(labels.tolist())) == [0, 1, 2]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_clusters": 0}, "n_clusters must be 'auto' or an integer >= 1, got 0"),
        ({"n_clusters": "many"}, "got 'many'"),
        ({"outliers": "mad"}, "Unknown outlier method 'mad'"),
        ({"feature_transform": "sqrt"}, "Unknown transform 'sqrt'"),
        ({"select": "gap"}, "Unknown selection 'gap'"),
        ({"k_values": [3, 1]}, "increasing without repeats"),
    ],
)
def test_rfm_segmenter_invalid_params_raise(params: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RFMSegmenter(**params).fit(np.ones((4, 3)) * np.arange(4)[:, None])


def test_rfm_segmenter_too_many_clusters_raises() -> None:
    X = np.array([[1.0, 1, 1], [1, 1, 1], [2, 2, 2]])
    with pytest.raises(
        ConfigError, match=r"k = 5 is more than the 3 customers \(2 distinct R/F/M points\)"
    ):
        RFMSegmenter(n_clusters=5).fit(X)
