"""Cluster profiles -> names, descriptions and marketing actions, by a deterministic rule table.

Each segment gets a level per feature, ``"low"``, ``"medium"`` or ``"high"``, from where its
median falls among all customers' values (:func:`segment_levels`). **Low recency means recent**
(few days since the last purchase); high recency means lapsed.

The rules of :data:`DEFAULT_RULES`, first match wins (R = recency level, F = frequency, M =
monetary; ``*`` = any):

=========================  =========  =========  =========
name                       R          F          M
=========================  =========  =========  =========
Champions                  low        high       high
Loyal customers            low/med    high       *
Potential loyalists        low        medium     *
New customers              low        low        *
Needs attention            medium     medium     *
Needs attention            medium     low        high
Occasional buyers          medium     low        low/med
Can't lose them            high       high       high
At risk                    high       high       *
At risk                    high       *          high
At risk                    high       medium     medium
Hibernating                high       *          *
Customers (catch-all)      *          *          *
=========================  =========  =========  =========

They speak the reference tutorial's language: its high-value, frequent, recent buyers (possibly
resellers: cross-sell, up-sell) are Champions / Loyal customers; its formerly frequent buyers who
stopped coming (churn risk) are At risk / Can't lose them; its recent newcomers (new-user
promotions) are New customers; its occasional buyers are Occasional buyers / Hibernating.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .model import ClusterModel

from .config import ScoreRule
from .errors import ConfigError, EmptyDataError, InputError, SchemaError
from .methods.scores import ScoreState

__all__ = [
    "DEFAULT_RULES",
    "LEVELS",
    "PROFILE_COLUMNS",
    "SCORE_RULES",
    "NamingRule",
    "SegmentName",
    "describe_segments",
    "name_rule_segments",
    "name_segments",
    "profile_segments",
    "segment_levels",
]

_RFM = ("recency", "frequency", "monetary")
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


def _check_rfm(rfm: pd.DataFrame) -> None:
    """SchemaError unless rfm has the three RFM columns."""
    missing = [c for c in _RFM if c not in rfm.columns]
    if missing:
        raise SchemaError(
            f"RFM table lacks column(s) {missing}: found {[str(c) for c in rfm.columns]}. "
            "Pass the output of compute_rfm (recency, frequency, monetary)."
        )


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
        ``{feature}_median`` for recency, frequency, monetary.

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
    _check_rfm(rfm)
    lab = np.asarray(labels)
    if lab.ndim != 1 or len(lab) != len(rfm):
        raise InputError(
            f"Got {lab.size} cluster labels for {len(rfm)} customers. Pass one label per row."
        )
    if len(rfm) == 0:
        raise EmptyDataError("No customers to profile: the RFM table has 0 rows.")
    df = pd.DataFrame(
        {c: np.asarray(rfm[c], dtype=np.float64) for c in _RFM} | {"cluster": lab.astype(np.int64)}
    )
    g = df.groupby("cluster", sort=True)
    out = pd.DataFrame({"customers": g.size().astype(np.int64)})
    total_rev = float(df["monetary"].sum())
    out["share_customers"] = out["customers"] / len(df)
    out["revenue"] = g["monetary"].sum()
    out["share_revenue"] = out["revenue"] / total_rev if total_rev else 0.0
    for c in _RFM:
        out[f"{c}_mean"] = g[c].mean()
        out[f"{c}_median"] = g[c].median()
    out.index = out.index.astype(np.int64)
    out.index.name = "cluster"
    out = out[list(PROFILE_COLUMNS)]
    if k is not None:
        out = out.reindex(pd.RangeIndex(k, name="cluster"))
        for col in ("customers", "share_customers", "revenue", "share_revenue"):
            out[col] = out[col].fillna(0)
        out["customers"] = out["customers"].astype(np.int64)
    return out


def _percentile_rank(sorted_values: np.ndarray, x: float) -> float:
    """Share of values below x, counting ties as half (scipy percentileofscore kind='mean')."""
    below = np.searchsorted(sorted_values, x, side="left")
    upto = np.searchsorted(sorted_values, x, side="right")
    return float((below + upto) / 2 / len(sorted_values))


def segment_levels(profiles: pd.DataFrame, rfm: pd.DataFrame) -> dict[int, dict[str, str]]:
    """Level of each segment on each feature: ``"low"``, ``"medium"`` or ``"high"``.

    The level comes from the percentile rank of the segment's median among all customers'
    values (ties counted as half): below 1/3 is low, above 2/3 high, otherwise medium.
    Low recency means recent (few days since the last purchase).

    Parameters
    ----------
    profiles : DataFrame
        Output of :func:`profile_segments` (index cluster, ``{feature}_median`` columns).
    rfm : DataFrame
        All customers, with ``recency``, ``frequency``, ``monetary``.

    Returns
    -------
    dict
        ``{cluster: {"recency": level, "frequency": level, "monetary": level}}``.

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
    _check_rfm(rfm)
    missing = [f"{c}_median" for c in _RFM if f"{c}_median" not in profiles.columns]
    if missing:
        raise SchemaError(
            f"Profiles lack column(s) {missing}. Pass the output of profile_segments."
        )
    if len(rfm) == 0:
        raise EmptyDataError("No customers to compare segments with: the RFM table is empty.")
    sorted_values = {c: np.sort(np.asarray(rfm[c], dtype=np.float64)) for c in _RFM}
    levels: dict[int, dict[str, str]] = {}
    for cluster, row in profiles.iterrows():
        lv: dict[str, str] = {}
        if not row.get("customers", 1):
            levels[int(cluster)] = lv  # type: ignore[call-overload]  # empty: no levels
            continue
        for c in _RFM:
            p = _percentile_rank(sorted_values[c], float(row[f"{c}_median"]))
            lv[c] = "low" if p < 1 / 3 else "high" if p > 2 / 3 else "medium"
        levels[int(cluster)] = lv  # type: ignore[call-overload]
    return levels


@dataclass(frozen=True)
class NamingRule:
    """One row of the naming table.

    Parameters
    ----------
    name : str
        Segment name.
    when : mapping of feature -> tuple of levels
        The rule matches when each listed feature's level is among those given (features not
        listed match any level). An empty mapping matches everything (a catch-all).
    description : str
        A template filled with the segment profile by ``str.format``: ``{customers}``,
        ``{share_customers}``, ``{revenue}``, ``{share_revenue}``, ``{recency_mean}``,
        ``{recency_median}``, ... ``{monetary_median}``, and ``{times}`` (the median frequency
        in words: "once", "twice", "3 times").
    action : str
        One sentence: the marketing action suggested.
    """

    name: str
    when: Mapping[str, tuple[str, ...]]
    description: str
    action: str

    def matches(self, levels: Mapping[str, str]) -> bool:
        """Whether the segment levels satisfy this rule."""
        return all(levels.get(f) in allowed for f, allowed in self.when.items())


_LAST = (
    "last bought {recency_median:,.0f} days ago, bought {times} and spent "
    "{monetary_median:,.0f} on median ({share_revenue:.0%} of revenue)."
)

_LO, _MED, _HI = ("low",), ("medium",), ("high",)

DEFAULT_RULES: tuple[NamingRule, ...] = (
    NamingRule(
        "Champions",
        {"recency": _LO, "frequency": _HI, "monetary": _HI},
        "{customers:,} recent, frequent, high-spending customers: they " + _LAST,
        "Reward them with early access and loyalty perks, up-sell and cross-sell premium lines, "
        "ask for reviews and referrals, and check for resellers to offer volume terms.",
    ),
    NamingRule(
        "Loyal customers",
        {"recency": ("low", "medium"), "frequency": _HI},
        "{customers:,} customers who buy often: they " + _LAST,
        "Cross-sell related products and enrol them in a loyalty programme to keep them buying.",
    ),
    NamingRule(
        "Potential loyalists",
        {"recency": _LO, "frequency": _MED},
        "{customers:,} recent customers with a few orders each: they " + _LAST,
        "Offer membership or a loyalty programme and recommend products to make them regulars.",
    ),
    NamingRule(
        "New customers",
        {"recency": _LO, "frequency": _LO},
        "{customers:,} recent newcomers with few purchases: they " + _LAST,
        "Welcome them with onboarding and a new-customer promotion to earn a second order.",
    ),
    NamingRule(
        "Needs attention",
        {"recency": _MED, "frequency": _MED},
        "{customers:,} middling customers who have not bought lately: they " + _LAST,
        "Send limited-time offers and recommendations based on past purchases before they lapse.",
    ),
    NamingRule(
        "Needs attention",
        {"recency": _MED, "frequency": _LO, "monetary": _HI},
        "{customers:,} big-ticket customers who have not bought lately: they " + _LAST,
        "Send limited-time offers and recommendations based on past purchases before they lapse.",
    ),
    NamingRule(
        "Occasional buyers",
        {"recency": _MED, "frequency": _LO, "monetary": ("low", "medium")},
        "{customers:,} occasional buyers with small baskets: they " + _LAST,
        "Keep them in low-cost newsletters and seasonal campaigns; test small incentives.",
    ),
    NamingRule(
        "Can't lose them",
        {"recency": _HI, "frequency": _HI, "monetary": _HI},
        "{customers:,} formerly top customers who stopped coming: they " + _LAST,
        "Win them back now with personal outreach and tailored offers; ask what went wrong.",
    ),
    NamingRule(
        "At risk",
        {"recency": _HI, "frequency": _HI},
        "{customers:,} formerly frequent buyers who stopped coming (churn risk): they " + _LAST,
        "Send personalised reactivation offers and win-back campaigns before they churn.",
    ),
    NamingRule(
        "At risk",
        {"recency": _HI, "monetary": _HI},
        "{customers:,} formerly high-spending buyers who stopped coming (churn risk): they "
        + _LAST,
        "Send personalised reactivation offers and win-back campaigns before they churn.",
    ),
    NamingRule(
        "At risk",
        {"recency": _HI, "frequency": _MED, "monetary": _MED},
        "{customers:,} formerly regular buyers who stopped coming (churn risk): they " + _LAST,
        "Send personalised reactivation offers and win-back campaigns before they churn.",
    ),
    NamingRule(
        "Hibernating",
        {"recency": _HI},
        "{customers:,} lapsed customers with few, small purchases: they " + _LAST,
        "Try one low-cost reactivation campaign, then let them go from paid channels.",
    ),
    NamingRule(
        "Customers",
        {},
        "{customers:,} customers who " + _LAST,
        "Review this segment's profile and choose a campaign that fits it.",
    ),
)


@dataclass(frozen=True)
class SegmentName:
    """Name, description and action of one cluster.

    Parameters
    ----------
    cluster : int
        Cluster id.
    name : str
        Segment name, unique within a run.
    description : str
        One sentence with the segment's numbers.
    action : str
        One sentence: the suggested marketing action.
    levels : dict
        ``{"recency", "frequency", "monetary"} -> "low" | "medium" | "high"`` (low recency =
        recent).
    """

    cluster: int
    name: str
    description: str
    action: str
    levels: dict[str, str] = field(default_factory=dict)


_QUALIFIERS = {
    # feature: (word if this segment's median is higher, word if lower)
    "monetary": ("higher spend", "lower spend"),
    "frequency": ("more frequent", "less frequent"),
    "recency": ("less recent", "more recent"),
}


def _qualifier(row: pd.Series, holder: pd.Series) -> str:
    """Words telling a segment from the one already holding its name: its largest relative gap."""
    best, word = -1.0, "other"
    for f in ("monetary", "frequency", "recency"):
        a, b = float(row[f"{f}_median"]), float(holder[f"{f}_median"])
        gap = abs(a - b) / max(abs(a), abs(b), 1e-12)
        if gap > best:
            best, word = gap, _QUALIFIERS[f][0 if a > b else 1]
    return word if best > 0 else "other"


def _template_values(row: pd.Series) -> dict[str, Any]:
    """Profile numbers for description templates, plus ``times`` ("once", "twice", "3 times")."""
    values: dict[str, Any] = {str(k): float(row[k]) for k in row.index if k in PROFILE_COLUMNS}
    values["customers"] = round(values.get("customers", 0))
    f = float(values.get("frequency_median", 0.0))
    values["times"] = {1.0: "once", 2.0: "twice"}.get(f, f"{f:,.0f} times")
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


def name_segments(
    profiles: pd.DataFrame,
    levels: Mapping[int, Mapping[str, str]],
    *,
    rules: Sequence[NamingRule] = DEFAULT_RULES,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> list[SegmentName]:
    """Name each cluster by the first rule its levels match; names are unique within a run.

    Clusters are named in id order (with canonical ids, the highest spenders first). When a
    cluster's first matching name is already taken, it takes its next matching rule with an
    unused name (catch-all rules excepted); when none is left, it keeps its first name with a
    qualifier telling it from the segment holding that name, e.g. ``"Champions (lower spend)"``.

    Parameters
    ----------
    profiles : DataFrame
        Output of :func:`profile_segments`.
    levels : mapping
        Output of :func:`segment_levels`.
    rules : sequence of NamingRule
        Ordered rule table; the last rule should be a catch-all (empty ``when``).
    overrides : mapping, optional
        ``{default name: {"name": ..., "description": ..., "action": ...}}`` (each key
        optional); a description override is a template like the rules'.

    Returns
    -------
    list of SegmentName, one per profile row, in cluster order.

    Raises
    ------
    ConfigError
        If no rule matches a cluster, an override is malformed, or overrides would make two
        segments share a name.

    Examples
    --------
    >>> rfm = pd.DataFrame({"recency": [1, 50, 300], "frequency": [9, 3, 1],
    ...                     "monetary": [900.0, 90.0, 9.0]})
    >>> prof = profile_segments(rfm, np.array([0, 1, 2]))
    >>> [s.name for s in name_segments(prof, segment_levels(prof, rfm))]
    ['Champions', 'Needs attention', 'Hibernating']
    """
    overrides = dict(overrides or {})
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
    taken: dict[str, int] = {}
    chosen: list[tuple[int, NamingRule, str, pd.Series]] = []
    for cluster, row in profiles.iterrows():
        c = int(cluster)  # type: ignore[call-overload]
        lv = levels.get(c)
        if lv is None:
            raise ConfigError(f"No levels for cluster {c}. Pass the output of segment_levels.")
        matching = [r for r in rules if r.matches(lv)]
        if not matching:
            raise ConfigError(
                f"No naming rule matches cluster {c} with levels {dict(lv)}. "
                "End the rule table with a catch-all rule (empty when)."
            )
        pick: tuple[NamingRule, str] | None = None
        for r in matching:
            if r.name not in taken and (r is matching[0] or r.when):
                pick = (r, r.name)
                break
        if pick is None:
            first = matching[0]
            holder = chosen[taken[first.name]][3]
            base = f"{first.name} ({_qualifier(row, holder)})"
            name, i = base, 2
            while name in taken:
                name, i = f"{base[:-1]} {i})", i + 1
            pick = (first, name)
        taken[pick[1]] = len(chosen)
        chosen.append((c, pick[0], pick[1], row))

    out: list[SegmentName] = []
    for c, rule, default_name, row in chosen:
        ov = overrides.get(default_name, {})
        name = ov.get("name", default_name)
        values = _template_values(row)
        values["cluster"] = c
        values["name"] = name
        description = _fill(ov.get("description", rule.description), values, name)
        out.append(
            SegmentName(
                cluster=c,
                name=name,
                description=description,
                action=ov.get("action", rule.action),
                levels=dict(levels[c]),
            )
        )
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"Segment name overrides give two segments the name(s) {dupes}. "
            "Choose names that differ from each other and from the other segments."
        )
    return out


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

#: Description template and action of each rule segment name (others get a generic text).
_RULE_WORDS: dict[str, tuple[str, str]] = {
    "Champions": (
        "{customers:,} customers who bought recently and often: they " + _LAST,
        DEFAULT_RULES[0].action,
    ),
    "Loyal customers": (
        "{customers:,} customers who buy often: they " + _LAST,
        DEFAULT_RULES[1].action,
    ),
    "Potential loyalists": (
        "{customers:,} recent customers with a few orders each: they " + _LAST,
        DEFAULT_RULES[2].action,
    ),
    "New customers": (
        "{customers:,} customers whose first and only orders are recent: they " + _LAST,
        DEFAULT_RULES[3].action,
    ),
    "Promising": (
        "{customers:,} fairly recent customers with one or two orders: they " + _LAST,
        "Build the relationship: a welcome series, a second-order incentive, brand content.",
    ),
    "Need attention": (
        "{customers:,} middling customers who have not bought lately: they " + _LAST,
        "Send limited-time offers and recommendations based on past purchases before they lapse.",
    ),
    "About to sleep": (
        "{customers:,} customers with few orders who are drifting away: they " + _LAST,
        "Reconnect with popular products and a time-limited discount before they go quiet.",
    ),
    "Can't lose them": (
        "{customers:,} formerly very frequent customers who stopped coming: they " + _LAST,
        "Win them back now with personal outreach and tailored offers; ask what went wrong.",
    ),
    "At risk": (
        "{customers:,} formerly regular customers who stopped coming (churn risk): they " + _LAST,
        "Send personalised reactivation offers and win-back campaigns before they churn.",
    ),
    "Hibernating": (
        "{customers:,} lapsed customers with few orders: they " + _LAST,
        "Try one low-cost reactivation campaign, then let them go from paid channels.",
    ),
    "Lost": (
        "{customers:,} long-lapsed customers with one or two orders: they " + _LAST,
        "Leave them out of paid campaigns; an occasional newsletter at most.",
    ),
}
_GENERIC = (
    "{customers:,} customers who " + _LAST,
    "Review this segment's profile and choose a campaign that fits it.",
)


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
) -> list[SegmentName]:
    """Names, descriptions and actions of RFM score segments: the rule table's names.

    Segment ``i`` is row ``i`` of ``rules``; a segment without customers says so.
    """
    out = []
    for cluster, row in profiles.iterrows():
        c = int(cluster)  # type: ignore[call-overload]
        rule = rules[c]
        ov = dict((overrides or {}).get(rule.name, {}))
        template, action = _RULE_WORDS.get(rule.name, _GENERIC)
        name = ov.get("name", rule.name)
        if not row["customers"]:
            description = f"No customer falls in this segment ({_cells(rule)})."
        else:
            values = _template_values(row) | {"cluster": c, "name": name}
            description = _fill(ov.get("description", template), values, name)
        out.append(
            SegmentName(c, name, description, ov.get("action", action), dict(levels.get(c, {})))
        )
    return out


def describe_segments(
    rfm: pd.DataFrame,
    labels: np.ndarray,
    model: ClusterModel,
    *,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[pd.DataFrame, list[SegmentName]]:
    """Profiles and names of a model's segments: rule names for RFM scores, levels otherwise.

    Returns
    -------
    profiles : DataFrame
        See :func:`profile_segments` (every rule segment listed for RFM scores).
    names : list of SegmentName
    """
    if isinstance(model.state, ScoreState):
        profiles = profile_segments(rfm, labels, k=model.k)
        levels = segment_levels(profiles, rfm)
        return profiles, name_rule_segments(
            profiles, model.state.rules, levels, overrides=overrides
        )
    profiles = profile_segments(rfm, labels)
    levels = segment_levels(profiles, rfm)
    return profiles, name_segments(profiles, levels, overrides=overrides)
