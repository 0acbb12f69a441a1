"""Segment profiles -> names, descriptions and marketing actions that fit every member.

A name asserts levels: Champions are recent, frequent and high-spending. Every customer has
a level per feature, the third of the whole customer base they fall in (**low recency means
recent**: few days since the last purchase). A segment's level is that of its median
(:func:`segment_levels`); its name may assert a low or high level only where fewer than
:data:`CONTRADICTION_LIMIT` of its members sit in the opposite third - a member so placed
*contradicts* the name by two steps (:func:`segment_assertions`). Medium never contradicts
by two steps.

Names come from the vocabulary :data:`DEFAULT_RULES`, the industry's words. In segment order
(highest spend first) each segment takes the most specific name whose levels all hold for
it and that no earlier segment took; a segment left without one is named from its levels
in words ("Recent frequent low-spending customers"), and segments whose levels read the
same are told apart by the feature on which their medians differ most ("higher spend",
"lower spend"). Names are unique, never numbered. Descriptions are written from the levels
asserted and give medians; tables of means say so.

Outliers are left out of the assertions and then placed in the nearest segment whose name
they do not contradict (:meth:`custseg.model.ClusterModel.assign`): a one-order wholesaler
is not a Champion. RFM score segments keep their rule table's names.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .cluster import ClusterFit
    from .model import ClusterModel

from .config import FrequencyUnit, ScoreRule
from .errors import ConfigError, EmptyDataError, InputError, SchemaError
from .methods.scores import ScoreState
from .schema import feature_columns

__all__ = [
    "CONTRADICTION_LIMIT",
    "DEFAULT_RULES",
    "LEVELS",
    "PROFILE_COLUMNS",
    "SCORE_RULES",
    "NamingRule",
    "SegmentName",
    "contradiction_shares",
    "customer_levels",
    "describe_segments",
    "level_cuts",
    "level_words",
    "name_rule_segments",
    "name_segments",
    "place_outliers",
    "profile_columns",
    "profile_segments",
    "segment_assertions",
    "segment_levels",
]

_RFM = ("recency", "frequency", "monetary")
#: Profile columns about money, left out for data without it (recency and frequency only).
_MONEY_COLUMNS = ("revenue", "share_revenue", "monetary_mean", "monetary_median")
Level = Literal["low", "medium", "high"]
LEVELS = ("low", "medium", "high")

PROFILE_COLUMNS = (
    "customers",
    "share_customers",
    "revenue",
    "share_revenue",
    "recency_mean",
    "recency_median",
    "frequency_mean",
    "frequency_median",
    "monetary_mean",
    "monetary_median",
)


def _check_rfm(rfm: pd.DataFrame) -> tuple[str, ...]:
    """The features of ``rfm`` (R, F and M, or R and F for data without money); SchemaError
    unless it has recency and frequency."""
    features = feature_columns([str(c) for c in rfm.columns])
    missing = [c for c in features if c not in rfm.columns]
    if missing:
        raise SchemaError(
            f"RFM table lacks column(s) {missing}: found {[str(c) for c in rfm.columns]}. "
            "Pass the output of compute_rfm (recency, frequency, monetary)."
        )
    return features


def profile_columns(features: Sequence[str]) -> tuple[str, ...]:
    """The columns of :func:`profile_segments` for these features (no money without M)."""
    if "monetary" in features:
        return PROFILE_COLUMNS
    return tuple(c for c in PROFILE_COLUMNS if c not in _MONEY_COLUMNS)


def profile_segments(
    rfm: pd.DataFrame, labels: np.ndarray, *, k: int | None = None
) -> pd.DataFrame:
    """Size, revenue and R/F/M means and medians per cluster.

    Parameters
    ----------
    rfm : DataFrame
        One row per customer with ``recency``, ``frequency``, ``monetary`` columns.
    labels : array-like of int, length ``len(rfm)``
        Cluster of each customer, in row order.
    k : int, optional
        List every cluster 0..k-1, those without customers too (0 customers, NaN figures).

    Returns
    -------
    DataFrame
        Indexed by ``cluster`` (sorted), columns ``customers``, ``share_customers``,
        ``revenue`` (sum of monetary), ``share_revenue``, and ``{feature}_mean`` /
        ``{feature}_median`` for recency, frequency, monetary (without a ``monetary`` column:
        no revenue and no monetary columns).

    Raises
    ------
    SchemaError
        If a column is missing.
    InputError
        If ``labels`` does not have one entry per row.
    EmptyDataError
        If ``rfm`` has no rows.

    Examples
    --------
    >>> rfm = pd.DataFrame({"recency": [1, 3], "frequency": [2, 1], "monetary": [10.0, 30.0]})
    >>> profile_segments(rfm, np.array([0, 0]))["share_revenue"].tolist()
    [1.0]
    """
    features = _check_rfm(rfm)
    lab = np.asarray(labels)
    if lab.ndim != 1 or len(lab) != len(rfm):
        raise InputError(
            f"Got {lab.size} cluster labels for {len(rfm)} customers. Pass one label per row."
        )
    if len(rfm) == 0:
        raise EmptyDataError("No customers to profile: the RFM table has 0 rows.")
    df = pd.DataFrame(
        {c: np.asarray(rfm[c], dtype=np.float64) for c in features}
        | {"cluster": lab.astype(np.int64)}
    )
    g = df.groupby("cluster", sort=True)
    out = pd.DataFrame({"customers": g.size().astype(np.int64)})
    out["share_customers"] = out["customers"] / len(df)
    if "monetary" in features:
        total_rev = float(df["monetary"].sum())
        out["revenue"] = g["monetary"].sum()
        out["share_revenue"] = out["revenue"] / total_rev if total_rev else 0.0
    for c in features:
        out[f"{c}_mean"] = g[c].mean()
        out[f"{c}_median"] = g[c].median()
    out.index = out.index.astype(np.int64)
    out.index.name = "cluster"
    out = out[list(profile_columns(features))]
    if k is not None:
        out = out.reindex(pd.RangeIndex(k, name="cluster"))
        for col in ("customers", "share_customers", "revenue", "share_revenue"):
            if col in out.columns:
                out[col] = out[col].fillna(0)
        out["customers"] = out["customers"].astype(np.int64)
    return out


#: Largest share of a segment's members that may sit in the opposite third of a level its
#: name asserts (the promise of a name: under 1% of members contradict it).
CONTRADICTION_LIMIT = 0.01


def _level(share_below: float) -> str:
    return "low" if share_below < 1 / 3 else "high" if share_below > 2 / 3 else "medium"


def segment_levels(profiles: pd.DataFrame, rfm: pd.DataFrame) -> dict[int, dict[str, str]]:
    """Level of each segment on each feature: ``"low"``, ``"medium"`` or ``"high"``.

    The level comes from the percentile rank of the segment's median among all customers'
    values (``scipy.stats.percentileofscore``, ties counted as half): below 1/3 is low,
    above 2/3 high, otherwise medium. Low recency means recent.

    Parameters
    ----------
    profiles : DataFrame
        Output of :func:`profile_segments` (index cluster, ``{feature}_median`` columns).
    rfm : DataFrame
        All customers, with ``recency``, ``frequency``, ``monetary``.

    Returns
    -------
    dict
        ``{cluster: {"recency": level, "frequency": level, "monetary": level}}`` (empty for
        a segment without customers).

    Raises
    ------
    SchemaError
        If a column is missing.
    EmptyDataError
        If ``rfm`` has no rows.

    Examples
    --------
    >>> rfm = pd.DataFrame({"recency": [1, 50, 300], "frequency": [9, 3, 1],
    ...                     "monetary": [900.0, 90.0, 9.0]})
    >>> segment_levels(profile_segments(rfm, np.array([0, 1, 2])), rfm)[0]
    {'recency': 'low', 'frequency': 'high', 'monetary': 'high'}
    """
    from scipy.stats import percentileofscore

    features = _check_rfm(rfm)
    missing = [f"{c}_median" for c in features if f"{c}_median" not in profiles.columns]
    if missing:
        raise SchemaError(
            f"Profiles lack column(s) {missing}. Pass the output of profile_segments."
        )
    if len(rfm) == 0:
        raise EmptyDataError("No customers to compare segments with: the RFM table is empty.")
    levels: dict[int, dict[str, str]] = {}
    present = profiles[profiles["customers"] > 0] if "customers" in profiles else profiles
    for c in features:
        values = np.asarray(rfm[c], dtype=np.float64)
        pct = np.atleast_1d(
            percentileofscore(values, present[f"{c}_median"].to_numpy(), kind="mean")
        )
        for cluster, p in zip(present.index, pct, strict=True):
            levels.setdefault(int(cluster), {})[c] = _level(float(p) / 100)
    return {int(c): levels.get(int(c), {}) for c in profiles.index}


def level_cuts(rfm: pd.DataFrame) -> tuple[tuple[float, float], ...]:
    """Per feature, the values cutting all customers into thirds: a value below the first
    is in the low third, at or above the second in the high third.

    The thirds are those of :func:`segment_levels` (percentile rank, ties as half), so one
    value is always in one third.

    Examples
    --------
    >>> level_cuts(pd.DataFrame({"recency": [1, 2, 3], "frequency": [1, 1, 5],
    ...                          "monetary": [10.0, 20, 30]}))
    ((2.0, 3.0), (1.0, 5.0), (20.0, 30.0))
    """
    out = []
    for c in _check_rfm(rfm):
        values = np.sort(np.asarray(rfm[c], dtype=np.float64))
        distinct = np.unique(values)
        below = np.searchsorted(values, distinct, side="left")
        upto = np.searchsorted(values, distinct, side="right")
        share = (below + upto) / 2 / len(values)
        lo = distinct[share >= 1 / 3]
        hi = distinct[share > 2 / 3]
        # With no value in a third, only values beyond every customer's would be in it.
        beyond = float(np.nextafter(distinct[-1], np.inf))
        out.append((float(lo[0]) if lo.size else beyond, float(hi[0]) if hi.size else beyond))
    return tuple(out)


def customer_levels(rfm: pd.DataFrame, cuts: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Each customer's third per feature (columns R, F, M; R, F with two cuts): 0 low, 1
    medium, 2 high."""
    X = rfm[list(_RFM[: len(cuts)])].to_numpy(dtype=np.float64)
    c = np.asarray(cuts, dtype=np.float64)
    return (c[:, 0] <= X).astype(np.int64) + (c[:, 1] <= X)


_CODE = {"low": 0, "medium": 1, "high": 2}


def contradiction_shares(
    own: np.ndarray, labels: np.ndarray, asserted: Mapping[int, Mapping[str, str]]
) -> dict[int, float]:
    """Per segment, the share of members whose own third is opposite a level the name asserts."""
    out: dict[int, float] = {}
    for cluster, levels in asserted.items():
        members = own[labels == cluster]
        if not len(members):
            out[int(cluster)] = 0.0
            continue
        bad = np.zeros(len(members), dtype=bool)
        for j, feature in enumerate(_RFM[: own.shape[1]]):
            level = levels.get(feature)
            if level in ("low", "high"):
                bad |= members[:, j] == 2 - _CODE[level]
        out[int(cluster)] = float(bad.mean())
    return out


def segment_assertions(
    rfm: pd.DataFrame, labels: np.ndarray, *, rows: np.ndarray | None = None
) -> dict[int, dict[str, str]]:
    """The levels each segment's name may assert: its median's level, kept for low or high
    only while fewer than :data:`CONTRADICTION_LIMIT` of its members (among ``rows``, by
    default all) sit in the opposite third of any level kept.

    Examples
    --------
    >>> rfm = pd.DataFrame({"recency": [1, 2, 300, 301, 302, 1],
    ...                     "frequency": [9, 8, 1, 1, 2, 1],
    ...                     "monetary": [900.0, 800, 9, 8, 7, 5]})
    >>> segment_assertions(rfm, np.array([0, 0, 1, 1, 1, 0]))[0]
    {'recency': 'low'}
    """
    keep = np.ones(len(rfm), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    sub, lab = rfm[keep], np.asarray(labels)[keep]
    profiles = profile_segments(sub, lab)
    levels = segment_levels(profiles, rfm)
    own = customer_levels(sub, level_cuts(rfm))
    out: dict[int, dict[str, str]] = {}
    for cluster, lv in levels.items():
        out[cluster] = _assertable(own[lab == cluster], lv)
    return out


def _assertable(members: np.ndarray, lv: Mapping[str, str]) -> dict[str, str]:
    """The levels kept: medium always; low and high while the members opposite any kept
    level stay under the limit (the least contradicted first)."""
    kept = {f: v for f, v in lv.items() if v == "medium"}
    opposite = {
        f: members[:, _RFM.index(f)] == 2 - _CODE[v] for f, v in lv.items() if v != "medium"
    }
    bad = np.zeros(len(members), dtype=bool)
    for f in sorted(opposite, key=lambda f: (opposite[f].mean(), _RFM.index(f))):
        union = bad | opposite[f]
        if union.mean() < CONTRADICTION_LIMIT:
            kept[f], bad = lv[f], union
    return {f: kept[f] for f in _RFM if f in kept}


@dataclass(frozen=True)
class NamingRule:
    """One name of the vocabulary.

    Parameters
    ----------
    name : str
        Segment name.
    when : mapping of feature -> tuple of levels
        The name fits a segment when each listed feature's asserted level is among those
        given; a feature the segment cannot assert (mixed) never fits. More listed features
        make a more specific name, preferred when several fit.
    description : str
        Who they are, a few words ("top customers"), leading the description; or a whole
        template (with ``{customers}`` and the profile fields) given as an override.
    action : str
        One sentence: the marketing action suggested.
    """

    name: str
    when: Mapping[str, tuple[str, ...]]
    description: str
    action: str

    def matches(self, levels: Mapping[str, str]) -> bool:
        """Whether the segment's asserted levels satisfy this rule."""
        return all(levels.get(f) in allowed for f, allowed in self.when.items())


_LO, _MED, _HI = ("low",), ("medium",), ("high",)
_REWARD = (
    "Reward them with early access and loyalty perks, up-sell and cross-sell premium lines, "
    "ask for reviews and referrals, and check for resellers to offer volume terms."
)
_WIN_BACK = "Win them back now with personal outreach and tailored offers; ask what went wrong."
_REACTIVATE = "Send personalised reactivation offers and win-back campaigns before they churn."
_NURTURE = "Send limited-time offers and recommendations based on past purchases before they lapse."

#: The vocabulary (R = recency level, low = recent; F = frequency; M = monetary).
DEFAULT_RULES: tuple[NamingRule, ...] = (
    NamingRule("Champions", {"recency": _LO, "frequency": _HI, "monetary": _HI},
               "top customers", _REWARD),
    NamingRule("Can't lose them", {"recency": _HI, "frequency": _HI, "monetary": _HI},
               "former top customers", _WIN_BACK),
    NamingRule("Lost", {"recency": _HI, "frequency": _LO, "monetary": _LO},
               "long-gone small buyers",
               "Leave them out of paid campaigns; an occasional newsletter at most."),
    NamingRule("Loyal customers", {"recency": ("low", "medium"), "frequency": _HI},
               "loyal customers",
               "Cross-sell related products and enrol them in a loyalty programme."),
    NamingRule("Potential loyalists", {"recency": _LO, "frequency": _MED},
               "promising repeat customers",
               "Offer membership or a loyalty programme and recommend products to make them "
               "regulars."),
    NamingRule("New customers", {"recency": _LO, "frequency": _LO}, "newcomers",
               "Welcome them with onboarding and a new-customer promotion to earn a second "
               "order."),
    NamingRule("Need attention", {"recency": _MED, "frequency": _MED}, "middling customers",
               _NURTURE),
    NamingRule("About to sleep", {"recency": _MED, "frequency": _LO}, "drifting customers",
               "Reconnect with popular products and a time-limited discount before they go "
               "quiet."),
    NamingRule("At risk", {"recency": _HI, "frequency": ("medium", "high")},
               "former regulars", _REACTIVATE),
    NamingRule("Lapsed big spenders", {"recency": _HI, "monetary": _HI},
               "former big spenders", _WIN_BACK),
    NamingRule("Hibernating", {"recency": _HI, "frequency": _LO}, "lapsed customers",
               "Try one low-cost reactivation campaign, then let them go from paid channels."),
    NamingRule("Loyal big spenders", {"frequency": _HI, "monetary": _HI},
               "frequent big spenders", _REWARD),
    NamingRule("Recent big spenders", {"recency": _LO, "monetary": _HI},
               "recent big spenders",
               "Thank them and follow up with premium recommendations to earn the next order."),
    NamingRule("Lapsing big spenders", {"recency": _MED, "monetary": _HI},
               "big spenders going quiet", _NURTURE),
    NamingRule("Recent small buyers", {"recency": _LO, "monetary": _LO},
               "recent small buyers",
               "Grow the basket: bundles, free-shipping thresholds, a second-order offer."),
    NamingRule("Big-ticket buyers", {"frequency": _LO, "monetary": _HI},
               "buyers of few, large orders",
               "Offer volume terms and account management; ask what would bring them back."),
    NamingRule("Frequent buyers", {"frequency": _HI}, "frequent buyers",
               "Keep them buying with a loyalty programme and replenishment reminders."),
    NamingRule("Big spenders", {"monetary": _HI}, "big spenders",
               "Give them premium service and early access to new lines."),
    NamingRule("Recent customers", {"recency": _LO}, "recent customers",
               "Follow up while they remember you: recommendations and a second-order offer."),
    NamingRule("Regular customers", {"frequency": _MED}, "regular customers", _NURTURE),
    NamingRule("Lapsing customers", {"recency": _MED}, "customers going quiet", _NURTURE),
    NamingRule("Lapsed customers", {"recency": _HI}, "lapsed customers", _REACTIVATE),
    NamingRule("Occasional buyers", {"frequency": _LO}, "occasional buyers",
               "Keep them in low-cost newsletters and seasonal campaigns; test small incentives."),
    NamingRule("Low spenders", {"monetary": _LO}, "low spenders",
               "Serve them through low-cost channels; test bundles to lift their basket."),
    NamingRule("Mid spenders", {"monetary": _MED}, "mid spenders", _NURTURE),
)  # fmt: skip

#: What each asserted level says about the customers, in the description.
_SAYS: dict[tuple[str, str], str] = {
    ("recency", "low"): "bought recently",
    ("recency", "medium"): "have not bought for a while",
    ("recency", "high"): "have not bought for a long time",
    ("frequency", "high"): "buy often",
    ("frequency", "medium"): "have bought a few times",
    ("frequency", "low"): "rarely buy",
    ("monetary", "high"): "spend a lot",
    ("monetary", "medium"): "spend a middling amount",
    ("monetary", "low"): "spend little",
}
#: Words for names made from levels: (feature, level) -> adjective.
_WORDS: dict[tuple[str, str], str] = {
    ("recency", "low"): "recent",
    ("recency", "medium"): "lapsing",
    ("recency", "high"): "lapsed",
    ("frequency", "high"): "frequent",
    ("frequency", "medium"): "repeat",
    ("frequency", "low"): "occasional",
    ("monetary", "high"): "high-spending",
    ("monetary", "medium"): "mid-spending",
    ("monetary", "low"): "low-spending",
}
#: How two segments with the same levels are told apart: (feature) -> (more, less).
_APART = {
    "monetary": ("higher spend", "lower spend"),
    "frequency": ("more frequent", "less frequent"),
    "recency": ("less recent", "more recent"),
}
_NUMBERS = (
    "median {recency_median:,.0f} days since the last order, {frequency_median:,.0f} "
    "{orders} and {monetary_median:,.0f} spent; {share_revenue:.0%} of revenue."
)
#: The numbers of data without money: recency and frequency only.
_NUMBERS_RF = (
    "median {recency_median:,.0f} days since the last order and {frequency_median:,.0f} {orders}."
)


def _numbers(values: Mapping[str, Any]) -> str:
    """The medians sentence of a description (without money when there is none)."""
    return (_NUMBERS if "monetary_median" in values else _NUMBERS_RF).format_map(values)


@dataclass(frozen=True)
class SegmentName:
    """Name, description and action of one segment.

    Parameters
    ----------
    cluster : int
        Segment id.
    name : str
        Segment name, unique within a run.
    description : str
        One sentence with the segment's numbers (medians).
    action : str
        One sentence: the suggested marketing action.
    levels : dict
        ``{"recency", "frequency", "monetary"} -> "low" | "medium" | "high"`` of the
        segment's medians (low recency = recent).
    asserted : dict
        The levels the name asserts (features the segment is mixed on are left out).
    contradiction_share : float
        Share of members whose own third contradicts an asserted level by two steps.
    """

    cluster: int
    name: str
    description: str
    action: str
    levels: dict[str, str] = field(default_factory=dict)
    asserted: dict[str, str] = field(default_factory=dict)
    contradiction_share: float = 0.0


def level_words(levels: Mapping[str, str]) -> str:
    """Asserted levels in words: ``{"recency": "low", "monetary": "high"}`` -> "recent,
    high-spending"."""
    return ", ".join(_WORDS[(f, levels[f])] for f in _RFM if f in levels)


#: The word for one unit of frequency, and its plural.
_UNIT_WORDS: dict[str, tuple[str, str]] = {
    "orders": ("order", "orders"),
    "days": ("purchase day", "purchase days"),
}


def _template_values(row: pd.Series, unit: FrequencyUnit = "orders") -> dict[str, Any]:
    """Profile numbers for description templates, plus ``times`` ("once", "twice", "3 times")
    and ``orders``, the word for the frequency's unit ("order", "purchase days")."""
    values: dict[str, Any] = {str(k): float(row[k]) for k in row.index if k in PROFILE_COLUMNS}
    values["customers"] = round(values.get("customers", 0))
    f = float(values.get("frequency_median", 0.0))
    values["times"] = {1.0: "once", 2.0: "twice"}.get(f, f"{f:,.0f} times")
    one, many = _UNIT_WORDS[unit]
    values["orders"] = one if round(f) == 1 else many
    return values


def _fill(template: str, values: Mapping[str, Any], name: str) -> str:
    """Fill a description template; ConfigError on a bad template."""
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(
            f"Description template of segment {name!r} is invalid ({exc!s}): "
            f"{reprlib.repr(template)}. Use fields like {{customers}} or {{monetary_median:,.0f}}."
        ) from None


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _says(asserted: Mapping[str, str], medians: Mapping[str, str]) -> str:
    parts = [_SAYS[(f, asserted[f])] for f in _RFM if f in asserted]
    if parts:
        return "who " + _joined(parts)
    leaning = [_SAYS[(f, medians[f])] for f in _RFM if medians.get(f, "medium") != "medium"]
    if leaning:
        return "most of whom " + _joined(leaning) + ", though not every one"
    return (
        "with mixed recency and frequency"
        if "monetary" not in medians
        else ("with mixed recency, frequency and spend")
    )


def _description(
    who: str,
    asserted: Mapping[str, str],
    row: pd.Series,
    medians: Mapping[str, str],
    unit: FrequencyUnit = "orders",
) -> str:
    values = _template_values(row, unit)
    head = f"{values['customers']:,} {who} ({values.get('share_customers', 0):.0%}) "
    return head + _says(asserted, medians) + ": " + _numbers(values)


def _generated(asserted: Mapping[str, str], medians: Mapping[str, str]) -> str:
    """A name in words from the asserted levels; with none, "Mostly ..." from the medians."""
    words = [_WORDS[(f, asserted[f])] for f in _RFM if f in asserted]
    if words:
        return (" ".join(words) + " customers").capitalize()
    leaning = [_WORDS[(f, medians[f])] for f in _RFM if medians.get(f, "medium") != "medium"]
    return ("Mostly " + " ".join(leaning) + " customers") if leaning else "Mixed customers"


def _action(asserted: Mapping[str, str]) -> str:
    for rule in DEFAULT_RULES:  # the action of the most specific fitting name
        if rule.matches(asserted) and rule.when:
            return rule.action
    return "Review this segment's profile and choose a campaign that fits it."


def _check_overrides(overrides: Mapping[str, Any]) -> None:
    for key, ov in overrides.items():
        if not isinstance(ov, Mapping) or not set(ov) <= {"name", "description", "action"}:
            raise ConfigError(
                f"Override for {key!r} must map name/description/action to text, got "
                f"{reprlib.repr(ov)}. Example: {{'name': 'VIP'}}."
            )
        if any(not isinstance(v, str) or not v.strip() for v in ov.values()):
            raise ConfigError(
                f"Override for {key!r} has an empty or non-text value: {reprlib.repr(ov)}. "
                "Give non-empty text."
            )


def _pick(
    asserted: Mapping[str, str], rules: Sequence[NamingRule], taken: set[str]
) -> NamingRule | None:
    """The most specific fitting rule no earlier segment took (ties: table order)."""
    fitting = [r for r in rules if r.when and r.matches(asserted) and r.name not in taken]
    return max(fitting, key=lambda r: len(r.when)) if fitting else None


def _tell_apart(
    names: list[str], profiles: pd.DataFrame, *, fixed: Collection[int] = ()
) -> list[str]:
    """Segments sharing a name get words from the feature their medians differ most on
    (names in ``fixed`` positions stay as they are)."""
    out = list(names)
    for name in sorted(set(names)):
        idx = [i for i, n in enumerate(names) if n == name and i not in fixed]
        if len(idx) == 1 and names.count(name) > 1:  # a kept name: the other one is new
            out[idx[0]] = f"{name} (new)"
            continue
        if len(idx) < 2:
            continue
        rows = profiles.iloc[idx]
        spread = {
            f: float(rows[f"{f}_median"].max() - rows[f"{f}_median"].min())
            / max(abs(float(rows[f"{f}_median"].max())), 1e-12)
            for f in ("monetary", "frequency", "recency")
            if f"{f}_median" in rows.columns
        }
        feature = max(spread, key=lambda f: spread[f])
        order = np.argsort(-rows[f"{feature}_median"].to_numpy(), kind="stable")
        more, less = _APART[feature]
        words = _ordinal(len(idx), more, less)
        for position, j in enumerate(order):
            out[idx[int(j)]] = f"{name} ({words[position]})"
    return out


def _ordinal(n: int, more: str, less: str) -> list[str]:
    """n words from most to least: higher, lower; highest ... lowest, spelled out."""
    if n == 2:
        return [more, less]
    base_more, base_less = more.split(" ", 1), less.split(" ", 1)
    noun = base_more[1] if len(base_more) > 1 else ""
    top = {"higher": "highest", "more": "most", "less": "least", "lower": "lowest"}
    first = f"{top.get(base_more[0], base_more[0])} {noun}".strip()
    last = f"{top.get(base_less[0], base_less[0])} {noun}".strip()
    middle = [f"{w} {noun}".strip() for w in ("upper-middle", "middle", "lower-middle")]
    inner = middle[1:2] if n == 3 else middle if n == 5 else [middle[0], middle[2]]
    if n > 5:
        inner = [f"{middle[1]} {i}" for i in range(1, n - 1)]
    return [first, *inner, last]


def name_segments(
    profiles: pd.DataFrame,
    levels: Mapping[int, Mapping[str, str]],
    *,
    rules: Sequence[NamingRule] = DEFAULT_RULES,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    shares: Mapping[int, float] | None = None,
    median_levels: Mapping[int, Mapping[str, str]] | None = None,
    keep: Mapping[int, tuple[str, str]] | None = None,
    avoid: Collection[str] = (),
    frequency_unit: FrequencyUnit = "orders",
) -> list[SegmentName]:
    """Name each segment from the levels it asserts; names are unique and never numbered.

    In segment order (with canonical ids, the highest spenders first) each segment takes the
    most specific rule whose levels all hold for it and that no earlier segment took; a
    segment left without one is named from its levels in words; segments with the same name
    are told apart by the feature their medians differ most on.

    Parameters
    ----------
    profiles : DataFrame
        Output of :func:`profile_segments`.
    levels : mapping
        The levels each segment may assert (:func:`segment_assertions`; the median levels of
        :func:`segment_levels` when every member fits them).
    rules : sequence of NamingRule
        The vocabulary.
    overrides : mapping, optional
        ``{default name: {"name": ..., "description": ..., "action": ...}}`` (each key
        optional); a description override is a template of the profile fields.
    shares : mapping, optional
        Contradiction share per segment, recorded on the names.
    median_levels : mapping, optional
        The median levels per segment, recorded on the names (default: ``levels``).
    keep : mapping, optional
        Segment -> (name, action) fixed in advance (a reference run's names).
    avoid : collection of str
        Names no other segment may take (a reference run's, kept for their own groups).
    frequency_unit : {"orders", "days"}
        What frequency counts, for the words of the descriptions.

    Returns
    -------
    list of SegmentName, one per profile row, in segment order.

    Raises
    ------
    ConfigError
        If an override is malformed, a description template is invalid, or overrides would
        make two segments share a name.

    Examples
    --------
    >>> rfm = pd.DataFrame({"recency": [1, 50, 300], "frequency": [9, 3, 1],
    ...                     "monetary": [900.0, 90.0, 9.0]})
    >>> prof = profile_segments(rfm, np.array([0, 1, 2]))
    >>> [s.name for s in name_segments(prof, segment_levels(prof, rfm))]
    ['Champions', 'Need attention', 'Lost']
    """
    overrides = dict(overrides or {})
    _check_overrides(overrides)
    if len(profiles) == 1:
        return [_all_customers(profiles, overrides, frequency_unit)]
    keep = dict(keep or {})
    medians = median_levels or levels
    picked, names = _default_names(profiles, levels, medians, rules=rules, keep=keep, avoid=avoid)
    out = []
    for (cluster, row), rule, default in zip(profiles.iterrows(), picked, names, strict=True):
        c = int(cluster)  # type: ignore[call-overload]
        worded = _worded(
            c,
            row,
            rule,
            default,
            asserted=dict(levels.get(c, {})),
            medians=dict(medians.get(c, {})),
            override=overrides,
            keep=keep,
            share=float((shares or {}).get(c, 0.0)),
            unit=frequency_unit,
        )
        out.append(worded)
    dupes = sorted({s.name for s in out if [t.name for t in out].count(s.name) > 1})
    if dupes:
        raise ConfigError(
            f"Segment name overrides give two segments the name(s) {dupes}. "
            "Choose names that differ from each other and from the other segments."
        )
    return out


def _default_names(
    profiles: pd.DataFrame,
    levels: Mapping[int, Mapping[str, str]],
    medians: Mapping[int, Mapping[str, str]],
    *,
    rules: Sequence[NamingRule],
    keep: Mapping[int, tuple[str, str]],
    avoid: Collection[str],
) -> tuple[list[NamingRule | None], list[str]]:
    """Each segment's rule (None: kept or named in words) and default name, in segment order:
    the most specific rule whose levels hold and no earlier segment took, then told apart."""
    taken: set[str] = set(avoid) | {name for name, _ in keep.values()}
    picked: list[NamingRule | None] = []
    names: list[str] = []
    for cluster in profiles.index:
        c = int(cluster)
        if c in keep:
            picked.append(None)
            names.append(keep[c][0])
            continue
        asserted = dict(levels.get(c, {}))
        rule = _pick(asserted, rules, taken)
        picked.append(rule)
        names.append(rule.name if rule else _generated(asserted, medians.get(c, {})))
        taken.add(names[-1])
    fixed = {i for i, c in enumerate(profiles.index) if int(c) in keep}
    return picked, _tell_apart(names, profiles, fixed=fixed)


def _worded(
    c: int,
    row: pd.Series,
    rule: NamingRule | None,
    default: str,
    *,
    asserted: dict[str, str],
    medians: dict[str, str],
    override: Mapping[str, Mapping[str, str]],
    keep: Mapping[int, tuple[str, str]],
    share: float,
    unit: FrequencyUnit,
) -> SegmentName:
    """A segment's name, description and action: its rule's (or a kept name's), in words
    from its levels, with any override applied."""
    if c in keep:
        rule = next((r for r in DEFAULT_RULES if r.name == keep[c][0]), None)
    base = rule.name if rule else default
    ov = override.get(default, override.get(base, {}))
    name = ov.get("name", default)
    if "description" in ov:
        description = _fill(ov["description"], _template_values(row, unit) | {"name": name}, name)
    else:
        who = rule.description if rule else "customers"
        description = _description(who, asserted, row, medians, unit)
    fallback = keep[c][1] if c in keep else rule.action if rule else _action(asserted)
    return SegmentName(c, name, description, ov.get("action", fallback), medians, asserted, share)


def _all_customers(
    profiles: pd.DataFrame,
    overrides: Mapping[str, Mapping[str, str]],
    unit: FrequencyUnit = "orders",
) -> SegmentName:
    """k = 1: one segment, named for what it is."""
    row = profiles.iloc[0]
    ov = overrides.get("All customers", {})
    values = _template_values(row, unit)
    description = (
        f"Every customer is in this one segment ({values['customers']:,}): k = 1 does not "
        "split customers who should be treated differently, so it is rarely useful; let k "
        "be chosen or pass --k 2 or more. In all, " + _numbers(values)
    )
    return SegmentName(
        int(profiles.index[0]),
        ov.get("name", "All customers"),
        ov.get("description", description),
        ov.get("action", "Split them first: run again without --k, or with --k 2 or more."),
    )


# --------------------------------------------------------------------------------------------
# RFM score segments: the industry's rule table
# --------------------------------------------------------------------------------------------


def _rule(name: str, r: tuple[int, ...], f: tuple[int, ...]) -> ScoreRule:
    return ScoreRule(name=name, r=r, f=f)


#: The default rule tables over (R, F) scores, by number of bins: every cell once (R 5 = most
#: recent). Quintiles follow the 11-segment table of the RFM screens of Shopify, Klaviyo and
#: the ``rfm`` package; quartiles fold it onto a 4 x 4 grid.
SCORE_RULES: dict[int, tuple[ScoreRule, ...]] = {
    5: (
        _rule("Champions", (5,), (4, 5)),
        _rule("Loyal customers", (3, 4), (4, 5)),
        _rule("Potential loyalists", (4, 5), (2, 3)),
        _rule("New customers", (5,), (1,)),
        _rule("Promising", (4,), (1,)),
        _rule("Need attention", (3,), (3,)),
        _rule("About to sleep", (3,), (1, 2)),
        _rule("Can't lose them", (1, 2), (5,)),
        _rule("At risk", (1, 2), (3, 4)),
        _rule("Hibernating", (2,), (1, 2)),
        _rule("Lost", (1,), (1, 2)),
    ),
    4: (
        _rule("Champions", (4,), (4,)),
        _rule("Loyal customers", (3,), (3, 4)),
        _rule("Potential loyalists", (4,), (2, 3)),
        _rule("New customers", (4,), (1,)),
        _rule("Need attention", (3,), (2,)),
        _rule("About to sleep", (3,), (1,)),
        _rule("Can't lose them", (1, 2), (4,)),
        _rule("At risk", (1, 2), (3,)),
        _rule("Hibernating", (2,), (1, 2)),
        _rule("Lost", (1,), (1, 2)),
    ),
}

#: Who the rule segments are and what to do, by name (other names: generic words).
_RULE_TEXT: dict[str, tuple[str, str]] = {
    rule.name: (rule.description, rule.action) for rule in DEFAULT_RULES
} | {
    "Promising": (
        "fairly recent customers",
        "Build the relationship: a welcome series, a second-order incentive, brand content.",
    ),
}


def _cells(rule: ScoreRule) -> str:
    parts = [f"R {'/'.join(map(str, rule.r))}", f"F {'/'.join(map(str, rule.f))}"]
    if rule.m:
        parts.append(f"M {'/'.join(map(str, rule.m))}")
    return ", ".join(parts)


def name_rule_segments(
    profiles: pd.DataFrame,
    rules: Sequence[ScoreRule],
    levels: Mapping[int, Mapping[str, str]],
    *,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    shares: Mapping[int, float] | None = None,
    median_levels: Mapping[int, Mapping[str, str]] | None = None,
    frequency_unit: FrequencyUnit = "orders",
) -> list[SegmentName]:
    """Names, descriptions and actions of RFM score segments: the rule table's names.

    Segment ``i`` is row ``i`` of ``rules``; a segment without customers says so.
    """
    overrides = dict(overrides or {})
    _check_overrides(overrides)
    out = []
    for cluster, row in profiles.iterrows():
        c = int(cluster)  # type: ignore[call-overload]
        rule = rules[c]
        ov = overrides.get(rule.name, {})
        asserted = dict(levels.get(c, {}))
        who, action = _RULE_TEXT.get(rule.name, ("customers", _action(asserted)))
        name = ov.get("name", rule.name)
        if not row["customers"]:
            description = f"No customer falls in this segment ({_cells(rule)})."
        elif "description" in ov:
            values = _template_values(row, frequency_unit) | {"name": name}
            description = _fill(ov["description"], values, name)
        else:
            medians = dict((median_levels or levels).get(c, {}))
            description = _description(who, asserted, row, medians, frequency_unit)
        lv = dict((median_levels or levels).get(c, {}))
        share = float((shares or {}).get(c, 0.0))
        out.append(SegmentName(c, name, description, ov.get("action", action), lv, asserted, share))
    return out


def describe_segments(
    rfm: pd.DataFrame,
    labels: np.ndarray,
    model: ClusterModel,
    *,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    asserted: Mapping[int, Mapping[str, str]] | None = None,
    keep: Mapping[int, tuple[str, str]] | None = None,
    avoid: Collection[str] = (),
    frequency_unit: FrequencyUnit = "orders",
) -> tuple[pd.DataFrame, list[SegmentName]]:
    """Profiles and names of a model's segments: rule names for RFM scores, levels otherwise.

    ``asserted`` are the levels the names may assert (default: the model's, else computed
    from ``labels``); the contradiction shares are measured over every member;
    ``frequency_unit`` words the descriptions ("orders" or "purchase days").

    Returns
    -------
    profiles : DataFrame
        See :func:`profile_segments` (every rule segment listed for RFM scores).
    names : list of SegmentName
    """
    state = model.state
    profiles = profile_segments(rfm, labels, k=model.k if isinstance(state, ScoreState) else None)
    medians = segment_levels(profiles, rfm)
    if asserted is None and model.assertions is not None:
        asserted = dict(enumerate(model.assertions))
    if asserted is None:
        asserted = segment_assertions(rfm, labels)
    own = customer_levels(rfm, model.level_cuts or level_cuts(rfm))
    shares = contradiction_shares(own, np.asarray(labels), asserted)
    if isinstance(state, ScoreState):
        return profiles, name_rule_segments(
            profiles,
            state.rules,
            asserted,
            overrides=overrides,
            shares=shares,
            median_levels=medians,
            frequency_unit=frequency_unit,
        )
    return profiles, name_segments(
        profiles,
        asserted,
        overrides=overrides,
        shares=shares,
        median_levels=medians,
        keep=keep,
        avoid=avoid,
        frequency_unit=frequency_unit,
    )


def _levels_of(levels: Mapping[str, str]) -> dict[str, Level]:
    return {f: cast(Level, v) for f, v in levels.items()}


def place_outliers(rfm: pd.DataFrame, fit: ClusterFit) -> ClusterFit:
    """Give the model the levels its names may assert (from the non-outliers) and place every
    outlier in the nearest segment whose name it does not contradict.

    RFM score segments are left as they are: each customer's own scores place it.
    """
    if isinstance(fit.model.state, ScoreState):
        cuts = level_cuts(rfm)
        asserted = segment_assertions(rfm, fit.labels)
        model = dataclasses.replace(
            fit.model,
            level_cuts=cuts,
            assertions=tuple(_levels_of(asserted.get(c, {})) for c in range(fit.model.k)),
        )
        return dataclasses.replace(fit, model=model)
    asserted = segment_assertions(rfm, fit.labels, rows=~np.asarray(fit.outlier))
    model = dataclasses.replace(
        fit.model,
        level_cuts=level_cuts(rfm),
        assertions=tuple(_levels_of(asserted.get(c, {})) for c in range(fit.model.k)),
    )
    found = model.assign(rfm[list(model.features)])
    return dataclasses.replace(fit, model=model, labels=found.labels)
