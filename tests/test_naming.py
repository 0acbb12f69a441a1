"""Tests of custseg.naming: profiles, levels and the naming rule table."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.cluster import fit_segments
from custseg.config import ClusterConfig
from custseg.errors import ConfigError, EmptyDataError, InputError, SchemaError
from custseg.naming import (
    DEFAULT_RULES,
    LEVELS,
    SCORE_RULES,
    SegmentName,
    contradiction_shares,
    customer_levels,
    describe_segments,
    level_cuts,
    name_segments,
    place_outliers,
    profile_segments,
    segment_assertions,
    segment_levels,
)

RFM_CSV = Path(__file__).parent / "data" / "rfm_online_retail.csv"


@pytest.fixture
def six() -> tuple[pd.DataFrame, np.ndarray]:
    """Six customers: three recent big spenders (cluster 0), three lapsed small ones (1)."""
    rfm = pd.DataFrame(
        {
            "recency": [1, 2, 3, 100, 200, 300],
            "frequency": [10, 8, 6, 1, 1, 2],
            "monetary": [1000.0, 800.0, 600.0, 10.0, 20.0, 30.0],
        },
        index=pd.Index(["a", "b", "c", "d", "e", "f"], name="customer_id"),
    )
    return rfm, np.array([0, 0, 0, 1, 1, 1])


def _profile_row(customers: int, r: float, f: float, m: float) -> dict[str, float]:
    """A profile row with mean = median, for rule tests."""
    return {
        "customers": customers, "share_customers": 0.1, "revenue": m * customers,
        "share_revenue": 0.1, "recency_mean": r, "recency_median": r, "frequency_mean": f,
        "frequency_median": f, "monetary_mean": m, "monetary_median": m,
    }  # fmt: skip


def _profiles(rows: list[dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, index=pd.Index(range(len(rows)), name="cluster"))


# ------------------------------------------------------------------------------- profiles


def test_profile_segments_hand_computed(six) -> None:
    rfm, labels = six
    prof = profile_segments(rfm, labels)
    assert prof.index.name == "cluster" and prof.index.tolist() == [0, 1]
    assert prof["customers"].tolist() == [3, 3]
    assert prof["share_customers"].tolist() == [0.5, 0.5]
    assert prof["revenue"].tolist() == [2400.0, 60.0]
    np.testing.assert_allclose(prof["share_revenue"], [2400 / 2460, 60 / 2460])
    assert prof["recency_mean"].tolist() == [2.0, 200.0]
    assert prof["recency_median"].tolist() == [2.0, 200.0]
    np.testing.assert_allclose(prof["frequency_mean"], [8.0, 4 / 3])
    assert prof["frequency_median"].tolist() == [8.0, 1.0]
    assert prof["monetary_mean"].tolist() == [800.0, 20.0]
    assert prof["monetary_median"].tolist() == [800.0, 20.0]


def test_profile_segments_does_not_mutate_input(six) -> None:
    rfm, labels = six
    before = rfm.copy()
    profile_segments(rfm, labels)
    pd.testing.assert_frame_equal(rfm, before)


def test_profile_segments_errors(six) -> None:
    rfm, labels = six
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['frequency'\]"):
        profile_segments(rfm.drop(columns="frequency"), labels)
    with pytest.raises(InputError, match="Got 2 cluster labels for 6 customers"):
        profile_segments(rfm, np.array([0, 1]))
    with pytest.raises(EmptyDataError, match="0 rows"):
        profile_segments(rfm.iloc[:0], np.array([], dtype=int))


# --------------------------------------------------------------------------------- levels


def test_segment_levels_hand_computed(six) -> None:
    rfm, labels = six
    levels = segment_levels(profile_segments(rfm, labels), rfm)
    # Cluster 0: recency median 2 ranks (1 + 2) / 2 / 6 = 0.25 -> low (recent); frequency 8
    # and monetary 800 rank 4.5 / 6 = 0.75 -> high. Cluster 1 mirrors it.
    assert levels == {
        0: {"recency": "low", "frequency": "high", "monetary": "high"},
        1: {"recency": "high", "frequency": "low", "monetary": "low"},
    }


def test_segment_levels_counts_ties_as_half() -> None:
    # 4 of 6 customers bought once: a median of 1 ranks (0 + 4) / 2 / 6 = 1/3 -> medium.
    rfm = pd.DataFrame(
        {"recency": [1, 2, 3, 4, 5, 6], "frequency": [1, 1, 1, 1, 5, 9], "monetary": [1.0] * 6}
    )
    levels = segment_levels(profile_segments(rfm, np.zeros(6, dtype=int)), rfm)
    assert levels[0]["frequency"] == "medium"


def test_segment_levels_missing_columns_raise(six) -> None:
    rfm, labels = six
    prof = profile_segments(rfm, labels)
    with pytest.raises(SchemaError, match="recency_median"):
        segment_levels(prof.drop(columns="recency_median"), rfm)


# ---------------------------------------------------------------------------------- rules

_RFM = ("recency", "frequency", "monetary")


def test_vocabulary_names_every_level_combination() -> None:
    for r, f, m in itertools.product(LEVELS, repeat=3):
        lv = {"recency": r, "frequency": f, "monetary": m}
        assert any(rule.when and rule.matches(lv) for rule in DEFAULT_RULES), lv
    assert all(rule.when for rule in DEFAULT_RULES)  # no catch-all: "Customers" says nothing


def _named(levels: dict[str, str]) -> str:
    """The name of a segment with these asserted levels (beside an unrelated second one)."""
    prof = _profiles([_profile_row(10, 5, 3, 100), _profile_row(10, 5, 3, 100)])
    other = {"recency": "medium", "frequency": "medium", "monetary": "medium"}
    return name_segments(prof, {0: levels, 1: other})[0].name


@pytest.mark.parametrize(
    ("levels", "name"),
    [
        (("low", "high", "high"), "Champions"),
        (("low", "high", "low"), "Loyal customers"),
        (("medium", "high", "medium"), "Loyal customers"),
        (("low", "medium", "low"), "Potential loyalists"),
        (("low", "low", "high"), "New customers"),
        (("medium", "medium", "low"), "Need attention"),
        (("medium", "low", "high"), "About to sleep"),
        (("medium", "low", "low"), "About to sleep"),
        (("high", "high", "high"), "Can't lose them"),
        (("high", "high", "low"), "At risk"),
        (("high", "low", "high"), "Lapsed big spenders"),
        (("high", "medium", "medium"), "At risk"),
        (("high", "low", "medium"), "Hibernating"),
        (("high", "low", "low"), "Lost"),
    ],
)
def test_most_specific_fitting_name(levels: tuple[str, str, str], name: str) -> None:
    assert _named(dict(zip(_RFM, levels, strict=True))) == name


def test_a_level_the_segment_cannot_assert_is_never_named() -> None:
    # mixed recency: no name that speaks of recency
    assert _named({"frequency": "high", "monetary": "high"}) == "Loyal big spenders"
    assert _named({"monetary": "low"}) == "Low spenders"
    assert _named({}) == "Mixed customers"


def test_name_segments_hand_computed(six) -> None:
    rfm, labels = six
    prof = profile_segments(rfm, labels)
    names = name_segments(prof, segment_levels(prof, rfm))
    assert [s.name for s in names] == ["Champions", "Lost"]
    champ = names[0]
    assert isinstance(champ, SegmentName) and champ.cluster == 0
    assert champ.description == (
        "3 top customers (50%) who bought recently, buy often and spend a lot: median 2 days "
        "since the last order, 8 orders and 800 spent; 98% of revenue."
    )
    assert (
        champ.levels
        == champ.asserted
        == {"recency": "low", "frequency": "high", "monetary": "high"}
    )
    assert "up-sell" in champ.action and "resellers" in champ.action
    assert "1 order and 20 spent" in names[1].description
    for s in names:
        assert "£" not in s.description and "$" not in s.description


def test_same_levels_are_told_apart_in_words_not_numbers() -> None:
    prof = _profiles(
        [
            _profile_row(10, 5, 20, 9000),
            _profile_row(20, 6, 15, 5000),
            _profile_row(30, 7, 12, 3000),
        ]
    )
    champ = {"recency": "low", "frequency": "high", "monetary": "high"}
    names = [s.name for s in name_segments(prof, dict.fromkeys(range(3), champ))]
    # next most specific names first, then the same name with the biggest difference in words
    assert names[:2] == ["Champions", "Loyal customers"]
    assert names[2] in {"Loyal big spenders", "Recent big spenders"}
    five = _profiles([_profile_row(10, 5, 20, 9000 - 1000 * i) for i in range(5)])
    lost = {"recency": "high", "frequency": "low", "monetary": "low"}
    many = [s.name for s in name_segments(five, dict.fromkeys(range(5), lost))]
    assert len(set(many)) == 5 and not any(ch.isdigit() for n in many for ch in n)


def test_name_segments_overrides(six) -> None:
    rfm, labels = six
    prof = profile_segments(rfm, labels)
    lv = segment_levels(prof, rfm)
    names = name_segments(
        prof,
        lv,
        overrides={
            "Champions": {"name": "VIP", "description": "{customers} VIPs.", "action": "Call."},
            "Absent segment": {"name": "Ignored"},
        },
    )
    assert (names[0].name, names[0].description, names[0].action) == ("VIP", "3 VIPs.", "Call.")
    assert names[1].name == "Lost"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"Champions": {"name": "Lost"}}, r"two segments the name\(s\) \['Lost'\]"),
        ({"Champions": {"colour": "red"}}, "must map name/description/action"),
        ({"Champions": {"name": "  "}}, "empty or non-text value"),
        ({"Champions": {"description": "{nope}"}}, "Description template of segment"),
        ({"Champions": {"description": "{customers"}}, "Description template"),
    ],
)
def test_name_segments_bad_overrides_raise(six, overrides: dict, match: str) -> None:
    rfm, labels = six
    prof = profile_segments(rfm, labels)
    with pytest.raises(ConfigError, match=match):
        name_segments(prof, segment_levels(prof, rfm), overrides=overrides)


def test_one_segment_says_so() -> None:
    names = name_segments(_profiles([_profile_row(4338, 50, 4, 2000)]), {0: {}})
    assert names[0].name == "All customers"
    assert "k = 1" in names[0].description and "rarely useful" in names[0].description


# ------------------------------------------------------------------ levels and contradictions


def test_level_cuts_and_customer_levels_agree_with_segment_levels() -> None:
    rfm = pd.DataFrame(
        {"recency": [1, 2, 3, 4, 5, 6], "frequency": [1, 1, 1, 1, 2, 9], "monetary": range(6)}
    )
    cuts = level_cuts(rfm)
    own = customer_levels(rfm, cuts)
    assert own[:, 0].tolist() == [0, 0, 1, 1, 2, 2]
    assert own[:, 1].tolist() == [1, 1, 1, 1, 2, 2]  # four tied at 1 sit at the 33rd percentile
    prof = profile_segments(rfm, np.arange(6))
    levels = segment_levels(prof, rfm)
    assert [levels[i]["recency"] for i in range(6)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_contradiction_share_hand_computed() -> None:
    # customer levels (R, F, M): two fit "recent, frequent", one is in the least frequent third
    own = np.array([[0, 2, 1], [0, 2, 2], [0, 0, 1], [2, 0, 0]])
    labels = np.array([0, 0, 0, 1])
    asserted = {0: {"recency": "low", "frequency": "high"}, 1: {"recency": "medium"}}
    shares = contradiction_shares(own, labels, asserted)
    assert shares == {0: pytest.approx(1 / 3), 1: 0.0}  # medium is never two steps away


def test_segment_assertions_drop_a_level_one_percent_contradict() -> None:
    n = 300
    rfm = pd.DataFrame(
        {
            "recency": np.r_[np.arange(1, 101), np.arange(200, 400)],
            "frequency": np.r_[np.full(100, 10), np.ones(200)],
            "monetary": np.r_[np.full(100, 900.0), np.full(200, 10.0)],
        }
    )
    labels = np.r_[np.zeros(100, int), np.ones(200, int)]
    assert segment_assertions(rfm, labels)[0] == {
        "recency": "low", "frequency": "high", "monetary": "high",
    }  # fmt: skip
    labels[[250, 251]] = 0  # two long-lapsed buyers (the least recent third): 2 of 102 > 1%
    assert segment_assertions(rfm, labels)[0] == {"frequency": "high", "monetary": "high"}
    assert n == len(rfm)


# ------------------------------------------------------------------------------ real data


@pytest.mark.parametrize("k", range(1, 11))
def test_names_for_every_k_are_unique_words_that_fit(k: int) -> None:
    rfm = pd.read_csv(RFM_CSV, index_col="customer_id")
    fit = place_outliers(rfm, fit_segments(rfm, config=ClusterConfig.preset("tutorial", k=k)))
    prof, names = describe_segments(rfm, fit.labels, fit.model)
    got = [s.name for s in names]
    assert len(set(got)) == len(got) == k
    assert not any(ch.isdigit() for n in got for ch in n)
    assert all(s.contradiction_share < 0.01 for s in names), [
        (s.name, s.contradiction_share) for s in names
    ]
    for s in names:  # descriptions say what the levels say, and that numbers are medians
        assert "median" in s.description
        if s.asserted.get("recency") == "low":
            assert "bought recently" in s.description
    assert prof["customers"].sum() == 4338


def test_the_docs_list_the_whole_vocabulary() -> None:
    """docs/naming.md shows every name of DEFAULT_RULES and of the score tables, with its action."""
    doc = (Path(__file__).parents[1] / "docs" / "naming.md").read_text(encoding="utf-8")
    for rule in DEFAULT_RULES:
        assert f"| {rule.name} |" in doc and rule.action in doc, rule.name
    for rules in SCORE_RULES.values():
        for cell in rules:
            assert f"| {cell.name} | {', '.join(map(str, cell.r))} |" in doc, cell.name


def test_outliers_are_never_given_a_name_they_contradict() -> None:
    rfm = pd.read_csv(RFM_CSV, index_col="customer_id")
    fit = place_outliers(rfm, fit_segments(rfm, config=ClusterConfig.preset("tutorial")))
    _, names = describe_segments(rfm, fit.labels, fit.model)
    by_id = {s.cluster: s for s in names}
    own = customer_levels(rfm, fit.model.level_cuts)
    where = rfm.index.get_loc(12346)  # one order, 326 days ago, 77,183.60
    segment = by_id[int(fit.labels[where])]
    assert segment.name != "Champions" and segment.asserted.get("recency") != "low"
    out = np.flatnonzero(fit.outlier)
    shares = contradiction_shares(own[out], fit.labels[out], {s.cluster: s.asserted for s in names})
    assert max(shares.values()) == 0.0


# --- data without money: recency and frequency only -------------------------------------------

_MONEY_WORDS = ("spen", "revenue", "monetary", "big", "small", "low-spending", "premium")


def test_profiles_and_names_without_money(six) -> None:  # type: ignore[no-untyped-def]
    rfm, labels = six
    rf = rfm[["recency", "frequency"]]
    profiles = profile_segments(rf, labels)
    assert list(profiles.columns) == [
        "customers", "share_customers", "recency_mean", "recency_median", "frequency_mean",
        "frequency_median",
    ]  # fmt: skip
    assert profiles["recency_median"].tolist() == [2.0, 200.0]
    levels = segment_levels(profiles, rf)
    assert levels == {
        0: {"recency": "low", "frequency": "high"},
        1: {"recency": "high", "frequency": "low"},
    }
    names = name_segments(profiles, levels)
    # with money these would be Champions and Lost; without, no name asserts a spend
    assert [s.name for s in names] == ["Loyal customers", "Hibernating"]
    assert names[0].description == (
        "3 loyal customers (50%) who bought recently and buy often: median 2 days since the "
        "last order and 8 orders."
    )
    # thirds by percentile rank (ties as half): recency 3 is at 5/12, 200 at 9/12 > 2/3
    assert level_cuts(rf) == ((3.0, 200.0), (2.0, 8.0))


def test_no_rf_name_speaks_of_money_for_any_k() -> None:
    rng = np.random.default_rng(3)
    rf = pd.DataFrame(
        {"recency": rng.integers(1, 365, 600), "frequency": rng.geometric(0.3, 600)},
        index=pd.Index([f"c{i}" for i in range(600)], name="customer_id"),
    )
    for k in range(1, 9):
        fit = place_outliers(rf, fit_segments(rf, config=ClusterConfig(k=k, select="auto")))
        assert fit.model.features == ("recency", "frequency")
        _, names = describe_segments(rf, fit.labels, fit.model)
        assert len({s.name for s in names}) == k
        for s in names:
            text = f"{s.name} {s.description}".lower()
            assert not any(w in text for w in _MONEY_WORDS), (k, s.name, s.description)
            assert set(s.levels) <= {"recency", "frequency"}
