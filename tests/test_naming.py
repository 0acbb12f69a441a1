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
    NamingRule,
    SegmentName,
    name_segments,
    profile_segments,
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
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['monetary'\]"):
        profile_segments(rfm.drop(columns="monetary"), labels)
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


def test_default_rules_cover_every_level_combination_without_catch_all() -> None:
    for r, f, m in itertools.product(LEVELS, repeat=3):
        lv = {"recency": r, "frequency": f, "monetary": m}
        first = next(rule for rule in DEFAULT_RULES if rule.matches(lv))
        assert first.when, f"only the catch-all matches {lv}"
    assert DEFAULT_RULES[-1].when == {}


@pytest.mark.parametrize(
    ("levels", "name"),
    [
        (("low", "high", "high"), "Champions"),
        (("low", "high", "low"), "Loyal customers"),
        (("medium", "high", "medium"), "Loyal customers"),
        (("low", "medium", "low"), "Potential loyalists"),
        (("low", "low", "high"), "New customers"),
        (("medium", "medium", "low"), "Needs attention"),
        (("medium", "low", "high"), "Needs attention"),
        (("medium", "low", "low"), "Occasional buyers"),
        (("high", "high", "high"), "Can't lose them"),
        (("high", "high", "low"), "At risk"),
        (("high", "low", "high"), "At risk"),
        (("high", "medium", "medium"), "At risk"),
        (("high", "low", "medium"), "Hibernating"),
        (("high", "low", "low"), "Hibernating"),
    ],
)
def test_name_segments_rule_table(levels: tuple[str, str, str], name: str) -> None:
    lv = dict(zip(("recency", "frequency", "monetary"), levels, strict=True))
    names = name_segments(_profiles([_profile_row(10, 5, 3, 100)]), {0: lv})
    assert names[0].name == name


def test_name_segments_hand_computed(six) -> None:
    rfm, labels = six
    prof = profile_segments(rfm, labels)
    names = name_segments(prof, segment_levels(prof, rfm))
    assert [s.name for s in names] == ["Champions", "Hibernating"]
    champ = names[0]
    assert isinstance(champ, SegmentName) and champ.cluster == 0
    assert champ.description == (
        "3 recent, frequent, high-spending customers: they last bought 2 days ago, bought "
        "8 times and spent 800 on median (98% of revenue)."
    )
    assert champ.levels == {"recency": "low", "frequency": "high", "monetary": "high"}
    assert "up-sell" in champ.action and "resellers" in champ.action
    assert "bought once" in name_segments(prof, segment_levels(prof, rfm))[1].description
    for s in names:
        assert "£" not in s.description and "$" not in s.description


def test_name_segments_collisions_take_next_rule_then_qualifier() -> None:
    prof = _profiles(
        [
            _profile_row(10, 5, 20, 9000),
            _profile_row(20, 6, 15, 5000),
            _profile_row(30, 7, 12, 3000),
        ]
    )
    champ = {"recency": "low", "frequency": "high", "monetary": "high"}
    names = name_segments(prof, dict.fromkeys(range(3), champ))
    assert [s.name for s in names] == ["Champions", "Loyal customers", "Champions (lower spend)"]


def test_name_segments_qualifiers_stay_unique() -> None:
    prof = _profiles([_profile_row(10, 5, 20, 9000 - i) for i in range(5)])
    lv = {"recency": "high", "frequency": "low", "monetary": "low"}
    names = [s.name for s in name_segments(prof, dict.fromkeys(range(5), lv))]
    assert len(set(names)) == 5
    assert names[:3] == ["Hibernating", "Hibernating (lower spend)", "Hibernating (lower spend 2)"]


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
    assert names[1].name == "Hibernating"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"Champions": {"name": "Hibernating"}}, r"two segments the name\(s\) \['Hibernating'\]"),
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


def test_name_segments_without_catch_all_raises() -> None:
    rules = (NamingRule("Only", {"recency": ("low",)}, "{customers}", "x"),)
    lv = {"recency": "high", "frequency": "low", "monetary": "low"}
    with pytest.raises(ConfigError, match="No naming rule matches cluster 0"):
        name_segments(_profiles([_profile_row(1, 1, 1, 1)]), {0: lv}, rules=rules)


def test_name_segments_missing_levels_raise() -> None:
    with pytest.raises(ConfigError, match="No levels for cluster 0"):
        name_segments(_profiles([_profile_row(1, 1, 1, 1)]), {})


# ------------------------------------------------------------------------------ real data


def test_name_segments_online_retail_reference_run() -> None:
    rfm = pd.read_csv(RFM_CSV, index_col="customer_id")
    fit = fit_segments(rfm, config=ClusterConfig(n_init=3))
    prof = profile_segments(rfm, fit.labels)
    names = name_segments(prof, segment_levels(prof, rfm))
    assert [s.name for s in names] == ["Champions", "Needs attention", "Hibernating"]
    assert prof["customers"].sum() == 4338
    assert prof["share_revenue"].sum() == pytest.approx(1.0)
    assert names == name_segments(prof, segment_levels(prof, rfm))
