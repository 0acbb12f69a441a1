"""Tests of custseg.methods: K-Means, Ward, Gaussian mixtures and RFM scores behind one interface."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from typer.testing import CliRunner

from custseg.cli import app
from custseg.cluster import fit_segments
from custseg.config import ClusterConfig, ScoreRule, check_score_rules
from custseg.errors import ConfigError
from custseg.formats import ModelFile
from custseg.methods import get_method
from custseg.methods.hierarchical import top_merges, ward_cut, ward_tree
from custseg.methods.scores import ScoreState, thresholds
from custseg.model import ClusterModel
from custseg.naming import SCORE_RULES
from custseg.schema import RFM_COLUMNS

RFM_CSV = Path(__file__).parent / "data" / "rfm_online_retail.csv"
METHODS = ("kmeans", "hierarchical", "gmm", "rfm-scores")
runner = CliRunner()

# segments.csv of the demo before the method interface existed (the tutorial's K-Means):
# customer_id, recency, frequency, monetary, outlier, cluster of every non-outlier (sha256 of
# those columns). Outliers now go to the nearest segment whose name they fit (issue 10).
KMEANS_DEMO_CLUSTERS = "05102754b786522cb29ca612ac06d5f8e4dde3f71b45f55f89884711feccad11"


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    return pd.read_csv(RFM_CSV, index_col="customer_id")


def _plain(**kwargs: object) -> ClusterConfig:
    """Settings for synthetic blobs (with negative values: no log transform; k by the
    method's own rule, since an RFM table has no holdout)."""
    return ClusterConfig(**{"transform": "none", "select": "auto", **kwargs})


def _blobs(seed: int = 0, n: int = 60) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0, 0], [6, 6, 0], [0, 6, 6], [6, 0, 6]])
    return np.concatenate([c + rng.normal(scale=0.8, size=(n, 3)) for c in centers])


# --- K-Means: today's behaviour --------------------------------------------------------------


def test_kmeans_demo_clusters_are_byte_identical(tmp_path: Path) -> None:
    from custseg.datasets import online_retail_path

    out = tmp_path / "demo"
    args = ["run", str(online_retail_path()), "--preset", "tutorial", "--out", str(out)]
    res = runner.invoke(app, [*args, "--no-report", "-q"])
    assert res.exit_code == 0, res.output
    rows = (out / "segments.csv").read_text(encoding="utf-8").splitlines()
    kept = [rows[0], *(r for r in rows[1:] if r.split(",")[4] == "false")]
    projection = "\n".join(",".join(r.split(",")[:6]) for r in kept)
    assert hashlib.sha256(projection.encode()).hexdigest() == KMEANS_DEMO_CLUSTERS
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == {
        "name": "kmeans",
        "params": {"n_init": 10, "init": "k-means++", "algorithm": "lloyd"},
        "figures": {},
        "sweep_sample": None,
    }
    assert summary["k"] == 3 and summary["k_selection"]["method"] == "knee"


# --- Ward ------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 4, 5, 7])
def test_ward_cut_equals_scikit_learn(k: int) -> None:
    from custseg.methods.hierarchical import ward_cut, ward_tree

    X = np.random.default_rng(k).normal(size=(60, 3))
    ours = ward_cut(ward_tree(X), len(X), k)
    theirs = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(X)
    assert adjusted_rand_score(ours, theirs) == 1.0


def test_ward_segments_are_the_branches_on_separated_data() -> None:
    X = _blobs(seed=1, n=25)
    fit = get_method(_plain(method="hierarchical")).sweep(X, [4], X)[0]
    theirs = AgglomerativeClustering(n_clusters=4, linkage="ward").fit_predict(X)
    # Segments are the nearest centroid of each branch: on separated data, the branch itself.
    assert adjusted_rand_score(fit.labels, theirs) == 1.0
    assert fit.criterion["merge_height"] > 0 and fit.final_notes == ()


def test_ward_chooses_k_at_the_largest_merge_gap() -> None:
    fit = fit_segments(_blobs(), config=_plain(method="hierarchical", outliers="none"))
    assert fit.model.k == 4 and fit.selection.method == "merge-gap"
    gaps = fit.figures["merge_gap"]
    ks = fit.selection.k_values
    assert ks[int(np.nanargmax(np.array(gaps, dtype=float)))] == 4
    assert len(fit.figures["merge_height"]) == len(ks)


def test_kmeans_sweeps_a_sample_with_fewer_restarts_and_keeps_the_knee(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above the sweep limit: a seeded sample, at most SAMPLE_RESTARTS restarts per k (the
    note says so), the chosen k refitted on everyone; same knee and SSE as the full sweep."""
    import custseg.methods.kmeans as km

    X = _blobs(seed=3, n=250)  # 1,000 customers in four blobs
    config = _plain(outliers="none", n_init=10)
    full = fit_segments(X, config=config)
    calls: list[int] = []
    real = km._kmeans

    def counting(Z: np.ndarray, k: int, **kw: object) -> object:
        calls.append(int(kw["n_init"]))  # type: ignore[call-overload]
        return real(Z, k, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(km.KMeansMethod, "sweep_limit", 300)
    monkeypatch.setattr(km, "_kmeans", counting)
    sampled = fit_segments(X, config=config)
    assert sampled.sweep_sample == 300 and full.sweep_sample is None
    assert calls[:-1] == [km.SAMPLE_RESTARTS] * (len(calls) - 1)  # the sweep, k >= 2
    assert calls[-1] == 1  # the final fit on everyone starts from the sample's centres
    assert any("(3 restarts per k, of the 10 asked)" in n for n in sampled.notes)
    assert sampled.selection.knee == full.selection.knee == 4
    Z, _ = full.model.scaled(X)

    def sse(fit: object) -> float:
        centers = fit.model.center_array()  # type: ignore[attr-defined]
        return float(((Z - centers[fit.labels]) ** 2).sum())  # type: ignore[attr-defined]

    assert sse(sampled) == pytest.approx(sse(full), rel=0.005)


def test_kmeans_sweep_side_by_side_is_the_sweep_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """The k values fitted one per core give the fits of a sweep in turn, bit for bit, and
    each k keeps its own warnings (three distinct points: k = 4 and 5 find only three)."""
    import custseg.methods.kmeans as km
    from custseg.methods.base import Method

    points = np.repeat(np.array([[0.0, 0, 0], [5, 5, 0], [0, 5, 5]]), 40, axis=0)
    for Z in (_blobs(seed=5, n=500), points):
        method = get_method(ClusterConfig(n_init=4, random_state=7))
        ks = [2, 3, 4, 5]
        monkeypatch.setattr(km, "_cores", lambda: 2)
        side = method.sweep(Z, ks, Z)
        turn = Method.sweep(method, Z, ks, Z)  # the base class: one k after another
        for a, b in zip(side, turn, strict=True):
            assert a.k == b.k and a.criterion == b.criterion and a.notes == b.notes
            assert np.array_equal(a.centers, b.centers) and np.array_equal(a.labels, b.labels)
    assert [len(f.notes) > 0 for f in side] == [False, False, True, True]
    assert "Number of distinct clusters (3) found smaller than n_clusters (4)" in side[2].notes[0]


def test_ward_above_the_sample_limit_fits_a_seeded_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    import custseg.methods.hierarchical as ward

    monkeypatch.setattr(ward.WardMethod, "sweep_limit", 100)
    X = _blobs(n=60)
    config = _plain(method="hierarchical", outliers="none", k_values=(2, 3, 4, 5))
    fit = fit_segments(X, config=config)
    assert fit.sweep_sample == 100 and fit.model.k == 4
    assert any("seeded sample of 100" in n for n in fit.notes)
    labels, _ = fit.model.predict(X)
    np.testing.assert_array_equal(labels, fit.labels)  # everyone: the nearest centroid


# --- Gaussian mixtures -------------------------------------------------------------------------


def test_gmm_equals_scikit_learn_with_the_same_seed() -> None:
    X = _blobs(seed=2)
    fit = fit_segments(X, config=_plain(method="gmm", k=4, outliers="none", random_state=5))
    Z, _ = fit.model.scaled(X)
    gm = GaussianMixture(n_components=4, covariance_type="full", random_state=5).fit(Z)
    assert adjusted_rand_score(fit.labels, gm.predict(Z)) == 1.0
    ours = np.sort(np.asarray(fit.model.state.weights))
    np.testing.assert_allclose(ours, np.sort(gm.weights_), rtol=1e-9)
    np.testing.assert_allclose(np.sort(fit.probability), np.sort(gm.predict_proba(Z).max(axis=1)))


def test_gmm_chooses_k_by_bic_and_reports_aic() -> None:
    fit = fit_segments(_blobs(), config=_plain(method="gmm", outliers="none"))
    bic = fit.figures["bic"]
    assert fit.selection.method == "bic"
    assert fit.model.k == fit.selection.k_values[int(np.argmin(bic))] == 4
    assert len(fit.figures["aic"]) == len(bic)


# --- RFM scores --------------------------------------------------------------------------------


def test_quintile_thresholds_with_heavy_ties() -> None:
    # 10 customers: 4 bought once, then 2, 3, 4, 5, 9 orders.
    values = np.array([1, 1, 1, 1, 2, 3, 4, 5, 6, 9.0])
    edges = thresholds(values, 5, higher_is_better=True)
    assert edges == (2.0, 2.0, 4.0, 6.0)
    recency = np.arange(1, 11.0)
    r_edges = thresholds(recency, 5, higher_is_better=False)
    assert r_edges == (8.0, 6.0, 4.0, 2.0)  # a recency at or below the edge reaches it
    state = ScoreState(5, r_edges, edges, edges, SCORE_RULES[5])
    raw = np.column_stack([recency, values, values])
    scores = state.scores(raw)
    # F: 1 + floor(5 x share strictly below): 40% below 2 orders -> 3, so score 2 is empty
    assert scores[:, 1].tolist() == [1, 1, 1, 1, 3, 3, 4, 4, 5, 5]
    # R is reversed: 1 day -> 5; equal values always share a score
    assert scores[:, 0].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_quartile_scores_and_same_value_same_score(rfm: pd.DataFrame) -> None:
    fit = fit_segments(rfm, config=ClusterConfig(method="rfm-scores", score_bins=4))
    scores = pd.DataFrame(fit.scores, columns=["r", "f", "m"], index=rfm.index)
    for feature, col in zip(RFM_COLUMNS, "rfm", strict=True):
        per_value = scores.groupby(rfm[feature].to_numpy())[col].nunique()
        assert (per_value == 1).all()
    assert scores.to_numpy().min() == 1 and scores.to_numpy().max() == 4
    assert fit.model.k == len(SCORE_RULES[4])


@pytest.mark.parametrize("bins", [4, 5])
def test_default_rule_tables_cover_every_cell_once(bins: int) -> None:
    rules = SCORE_RULES[bins]
    check_score_rules(rules, bins)  # raises on a gap or an overlap
    seen = [cell for rule in rules for cell in itertools.product(rule.r, rule.f)]
    assert sorted(seen) == sorted(itertools.product(range(1, bins + 1), repeat=2))


def test_rule_table_with_a_gap_or_an_overlap_is_refused_naming_cells() -> None:
    table = list(SCORE_RULES[5])
    with pytest.raises(ConfigError, match=r"leaves 10 cell\(s\) uncovered: r=5 f=4 m=1"):
        check_score_rules(tuple(r for r in table if r.name != "Champions"), 5)
    extra = ScoreRule(name="VIP", r=(5,), f=(5,), m=(5,))
    with pytest.raises(
        ConfigError, match=r"covers 1 cell\(s\) twice: r=5 f=5 m=5 \('Champions' and 'VIP'\)"
    ):
        ClusterConfig(method="rfm-scores", score_rules=(*table, extra))
    with pytest.raises(ConfigError, match="scores run from 1 to 4"):
        ClusterConfig(method="rfm-scores", score_bins=4, score_rules=table)


def test_rule_table_override_with_monetary(rfm: pd.DataFrame) -> None:
    rules = (
        ScoreRule(name="Big spenders", r=(1, 2, 3, 4, 5), f=(1, 2, 3, 4, 5), m=(5,)),
        ScoreRule(name="Everyone else", r=(1, 2, 3, 4, 5), f=(1, 2, 3, 4, 5), m=(1, 2, 3, 4)),
    )
    fit = fit_segments(rfm, config=ClusterConfig(method="rfm-scores", score_rules=rules))
    assert fit.model.k == 2
    np.testing.assert_array_equal(fit.labels == 0, fit.scores[:, 2] == 5)


def test_scores_put_customer_12346_where_its_own_scores_say(rfm: pd.DataFrame) -> None:
    fit = fit_segments(rfm, config=ClusterConfig(method="rfm-scores"))
    i = rfm.index.get_loc(12346)  # one order, 326 days ago, 77,183.60
    assert fit.outlier[i] and fit.scores[i].tolist() == [1, 1, 5]
    assert fit.model.state.rules[fit.labels[i]].name == "Lost"


# --- every method ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_saved_model_reproduces_every_segment(method: str, tmp_path: Path) -> None:
    from fixtures import RETAIL_PARQUET

    src = RETAIL_PARQUET if RETAIL_PARQUET.exists() else None
    if src is None:
        from custseg.datasets import online_retail_path

        src = online_retail_path()
    out = tmp_path / "run"
    args = ["run", str(src), "--out", str(out), "--method", method, "--no-report", "-q"]
    assert runner.invoke(app, args).exit_code == 0
    model = ModelFile.read(out / "model.json").model
    seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    found = model.assign(seg[list(RFM_COLUMNS)])
    np.testing.assert_array_equal(found.labels, seg["cluster"].to_numpy())
    np.testing.assert_array_equal(found.outlier, seg["outlier"].to_numpy())
    assert model.method == method
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"]["name"] == method
    assert summary["metrics"]["silhouette"] is not None
    if method == "gmm":
        np.testing.assert_allclose(found.probability, seg["segment_probability"], atol=1e-6)
    if method == "rfm-scores":
        cells = seg[["r_score", "f_score", "m_score"]].astype(str).agg("".join, axis=1)
        assert (cells == seg["rfm_cell"].astype(str)).all()
        assert summary["k_selection"]["method"] == "rules"


@pytest.mark.parametrize("method", METHODS)
def test_model_round_trips_through_json(method: str, rfm: pd.DataFrame) -> None:
    fit = fit_segments(rfm, config=ClusterConfig(method=method))
    back = ClusterModel.from_dict(json.loads(json.dumps(fit.model.to_dict(), allow_nan=False)))
    assert back == fit.model
    np.testing.assert_array_equal(back.predict(rfm)[0], fit.labels)
    assert repr(back).startswith(f"ClusterModel(method='{method}', k={fit.model.k},")


def test_model_of_one_method_with_another_state_is_refused(rfm: pd.DataFrame) -> None:
    from custseg.errors import ModelFileError

    d = fit_segments(rfm, config=ClusterConfig(method="gmm", k=3)).model.to_dict()
    d["method"] = "kmeans"
    with pytest.raises(ModelFileError, match="unknown key"):
        ClusterModel.from_dict(d)
    d["method"] = "rfm-scores"
    with pytest.raises(ModelFileError, match="Invalid cluster model"):
        ClusterModel.from_dict(d)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_top_merges_cut_like_the_whole_tree(k: int) -> None:
    """The dendrogram's small tree, cut at k, groups the branches as the whole tree does."""
    from scipy.cluster.hierarchy import fcluster

    Z = np.random.default_rng(3).normal(size=(300, 3))
    tree = ward_tree(Z)
    small, sizes = top_merges(tree, 12)
    assert small.shape == (11, 4) and sizes.sum() == 300
    assert np.allclose(small[:, 2], tree[-11:, 2])  # the same merges, at the same heights
    whole = np.bincount(ward_cut(tree, 300, k))
    branch_cut = fcluster(small, t=k, criterion="maxclust") - 1
    cut_sizes = np.bincount(branch_cut, weights=sizes)
    assert sorted(cut_sizes.tolist()) == sorted(whole.tolist())
