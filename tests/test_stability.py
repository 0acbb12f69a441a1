"""Tests of custseg.stability: refits with other seeds and on resamples, by adjusted Rand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import custseg.stability as stab
from custseg.cluster import fit_labels, fit_segments
from custseg.config import ClusterConfig
from custseg.stability import stability

RFM_CSV = Path(__file__).parent / "data" / "rfm_online_retail.csv"


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    return pd.read_csv(RFM_CSV, index_col="customer_id")


def test_tutorial_kmeans_is_stable_over_seeds(rfm: pd.DataFrame) -> None:
    cfg = ClusterConfig.preset("tutorial")
    fit = fit_segments(rfm, config=cfg)
    s = stability(rfm, fit.labels, config=cfg, k=fit.model.k)
    assert s is not None and not s.deterministic
    assert len(s.seeds) == stab.SEEDS and len(s.resamples) == stab.RESAMPLES
    assert s.seed_mean >= 0.99  # seeds agree (docs: 0.996 or more)
    assert 0.8 < s.resample_mean <= 1.0 and not s.low
    assert "other seeds agree" in s.note()


def test_deterministic_methods_skip_seed_refits(rfm: pd.DataFrame) -> None:
    for method in ("hierarchical", "rfm-scores"):
        cfg = ClusterConfig(method=method, select="auto")
        fit = fit_segments(rfm, config=cfg)
        s = stability(rfm, fit.labels, config=cfg, k=fit.model.k)
        assert s is not None and s.deterministic and s.seeds == []
        assert "does not depend on the seed" in s.note()


def test_random_data_is_unstable_and_says_so() -> None:
    rng = np.random.default_rng(0)
    rfm = pd.DataFrame(
        rng.uniform(1, 100, size=(400, 3)), columns=["recency", "frequency", "monetary"]
    )
    cfg = ClusterConfig(k=6, select="auto", outliers="none", transform="none")
    fit = fit_segments(rfm, config=cfg)
    s = stability(rfm, fit.labels, config=cfg, k=6)
    assert s is not None and s.resample_mean < 0.9


def test_large_inputs_are_measured_on_a_seeded_sample(
    rfm: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stab, "SAMPLE_LIMIT", 1000)
    cfg = ClusterConfig.preset("tutorial")
    fit = fit_segments(rfm, config=cfg)
    a = stability(rfm, fit.labels, config=cfg, k=3)
    b = stability(rfm, fit.labels, config=cfg, k=3)
    assert a == b and a is not None and a.sample == 1000


def test_too_few_customers_are_not_measured() -> None:
    rfm = pd.DataFrame({"recency": [1, 2, 50], "frequency": [3, 2, 1], "monetary": [9.0, 8, 1]})
    assert stability(rfm, np.array([0, 0, 1]), config=ClusterConfig(k=2), k=2) is None


def test_fit_labels_reproduces_the_fit(rfm: pd.DataFrame) -> None:
    from sklearn.metrics import adjusted_rand_score

    cfg = ClusterConfig.preset("tutorial")
    fit = fit_segments(rfm, config=cfg)
    labels = fit_labels(rfm, config=cfg, k=3)
    assert adjusted_rand_score(labels, fit.labels) > 0.99  # outliers placed aside, the same


def test_ward_refits_above_its_sample_size_build_the_tree_as_the_run_does(
    rfm: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the Ward sample size a refit is the run's fit (a tree on a seeded sample, then
    everyone to the nearest centroid), not a tree on every customer: the same segments at
    the run's seed, other samples at other seeds."""
    from sklearn.metrics import adjusted_rand_score

    from custseg.methods.hierarchical import WardMethod

    monkeypatch.setattr(WardMethod, "sweep_limit", 800)
    cfg = ClusterConfig(method="hierarchical", select="auto", k=4)
    fit = fit_segments(rfm, config=cfg)
    assert "seeded sample of 800" in (fit.selection.note or "")
    labels = fit_labels(rfm, config=cfg, k=4)
    kept = ~fit.outlier  # ids are not canonical in refits; outliers are placed aside
    assert adjusted_rand_score(labels[kept], fit.labels[kept]) == pytest.approx(1.0)
    s = stability(rfm, fit.labels, config=cfg, k=4)
    assert s is not None and not s.deterministic and len(s.seeds) == stab.SEEDS
    assert len(set(s.seeds)) > 1  # each seed's sample grows its own tree
