"""Do the segments predict what customers do next? A holdout backtest on the user's own data.

Definitions (docs/backtest.md has the worked example):

- **holdout**: the last ``H`` days of the data. ``cutoff`` = the last purchase date minus
  ``H`` days; segments are fitted on the purchase lines dated on or before the cutoff
  (``as_of`` = cutoff + 1 day) with every run option as given; the holdout is the purchase
  lines dated after the cutoff up to the last purchase date, cleaned by the same rules.
- **outcomes** of each customer known at the cutoff: *buys again* (at least one purchase line
  in the holdout), holdout *orders* and *revenue*. Customers first seen in the holdout cannot
  be segmented at the cutoff; they are counted apart (``new_customers``).
- **segment value**: the mean training monetary value of the segment's members; ranking
  customers by their segment means ranking them by that value (every member of a segment
  ties).
- **data without money** (features recency and frequency): revenue means nothing, so the
  *target* is the holdout orders (purchase days with ``--frequency-unit days``) instead of
  revenue, the segment value is the members' mean training frequency, and the baselines are
  frequency, recency and the RF score sum (R + F).
- **evidence**: the Spearman correlation of a ranking with holdout revenue, and the AUC of
  the same ranking for *buys again* (ties count half), for the segments and for the
  baselines: the customer's own monetary value, frequency, recency (fewer days ranks
  higher), and RFM quintile score sum (R + F + M, 1-5 each, as :mod:`custseg.methods.scores`
  scores them). Differences segments - baseline come with seeded bootstrap intervals
  (customers resampled with replacement; percentile 95% intervals).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .clean import mark_drops
from .config import CleanConfig, ClusterConfig
from .errors import InputError
from .features import GroupedLines, compute_rfm_split
from .schema import feature_columns

__all__ = [
    "BASELINES",
    "Evidence",
    "Outcomes",
    "auc",
    "baseline_scores",
    "choose_k_by_holdout",
    "customer_value",
    "evidence",
    "holdout_outcomes",
    "segment_outcomes",
    "segment_values",
    "spearman",
]

#: The baselines every segmentation is compared with, in the order they are shown.
BASELINES: tuple[str, ...] = ("monetary", "frequency", "recency", "rfm_score")
#: Customers above which the bootstrap resamples a seeded subsample of this many.
BOOTSTRAP_CUSTOMERS = 20_000


@dataclass(frozen=True)
class Outcomes:
    """What the customers known at the cutoff did in the holdout.

    Attributes
    ----------
    cutoff : date
        The last day of the training data (segments are fitted as of ``cutoff`` + 1 day).
    end : date
        The last purchase date (the holdout's last day).
    holdout_days : int
    train : DataFrame
        Training RFM, one row per customer known at the cutoff (index ``customer_id``).
    revenue, orders : ndarray
        Holdout revenue (None for data without money) and orders of each training customer
        (0 if none).
    new_customers : int
        Customers whose first purchase line falls in the holdout.
    new_revenue : float or None
        Their holdout revenue (None without money).
    """

    cutoff: dt.date
    end: dt.date
    holdout_days: int
    train: pd.DataFrame
    revenue: np.ndarray | None
    orders: np.ndarray
    new_customers: int
    new_revenue: float | None

    @property
    def target_name(self) -> str:
        """What the rankings are measured against: ``"revenue"``, or ``"orders"`` for data
        without money."""
        return "orders" if self.revenue is None else "revenue"

    @property
    def target(self) -> np.ndarray:
        """Each training customer's holdout revenue (orders, for data without money)."""
        if self.revenue is None:
            return self.orders.astype(np.float64)
        return self.revenue

    @property
    def buys(self) -> np.ndarray:
        """Whether each training customer bought again in the holdout."""
        return self.orders > 0

    @property
    def as_of(self) -> dt.date:
        """The training data's reference date."""
        return self.cutoff + dt.timedelta(days=1)


def holdout_outcomes(
    table: ir.Table, *, clean: CleanConfig, holdout_days: int, first: dt.date, last: dt.date
) -> Outcomes:
    """Training RFM at the cutoff and every customer's holdout outcome.

    Parameters
    ----------
    table : Table
        A canonical table from :func:`custseg.load.load_transactions`.
    clean : CleanConfig
        The run's cleaning rules (its window is narrowed to the training and holdout spans).
    holdout_days : int
    first, last : date
        The first and last purchase dates of the data (under ``clean``).

    Raises
    ------
    InputError
        If the data spans too little time for the holdout (the training span must be at
        least as long as the holdout).
    """
    cutoff = last - dt.timedelta(days=holdout_days)
    train_as_of = cutoff + dt.timedelta(days=1)
    span = (last - first).days + 1
    if (cutoff - first).days + 1 < holdout_days:
        raise InputError(
            f"The data spans {span} days of purchases, too little for a {holdout_days}-day "
            f"holdout (it needs at least {2 * holdout_days} days: as long a history before "
            f"the cutoff as after). Pass a shorter --holdout, e.g. --holdout "
            f"{max(1, span // 2)}d."
        )
    # One aggregation: the rows marked under the whole window, aggregated by customer and side
    # of the cutoff (the same RFM as marking and aggregating each span apart); from a run's
    # grouped lines, without reading a row again.
    end = last + dt.timedelta(days=1)
    if isinstance(table, GroupedLines):
        train, hold = table.split(train_as_of, end)
    else:
        marked = mark_drops(table, config=clean.replace(as_of=end, until=None))
        train, hold = compute_rfm_split(marked, split=train_as_of, as_of=end, **clean.aggregation())
    # Each holdout buyer's row in the training table (-1: a new customer): one look-up.
    at = train.index.get_indexer(hold.index)
    known = at >= 0
    money = "monetary" in train.columns
    revenue = _placed(hold["monetary"].to_numpy(np.float64), at, len(train)) if money else None
    orders = _placed(hold["frequency"].to_numpy(np.int64), at, len(train))
    return Outcomes(
        cutoff=cutoff,
        end=last,
        holdout_days=holdout_days,
        train=train,
        revenue=revenue,
        orders=orders,
        new_customers=int((~known).sum()),
        new_revenue=float(hold["monetary"][~known].sum()) if money else None,
    )


def _placed(values: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    """``values`` put at rows ``at`` of ``n`` zeros (rows -1 left out)."""
    out = np.zeros(n, dtype=values.dtype)
    known = at >= 0
    out[at[known]] = values[known]
    return out


# --- rankings and their evidence ---------------------------------------------------------------


def _ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) along the last axis: ties share the mean of their positions."""
    a = np.asarray(a)
    if a.ndim == 1:
        # From the distinct values and their counts: 2-3x faster than rankdata on a segment
        # value (a handful of distinct values), the same ranks.
        _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
        return np.asarray((np.cumsum(counts) - (counts - 1) / 2)[inverse], dtype=np.float64)
    from scipy.stats import rankdata

    return np.asarray(rankdata(a, axis=-1), dtype=np.float64)


def spearman(score: np.ndarray, y: np.ndarray, *, y_ranks: np.ndarray | None = None) -> float:
    """Spearman's rank correlation (ties averaged); 0 when either side is constant.
    ``y_ranks`` (``_ranks(y)``) saves ranking ``y`` again when several scores are compared."""
    rs, ry = _ranks(score), _ranks(y) if y_ranks is None else y_ranks
    return _pearson(rs, ry)


def _pearson(a: np.ndarray, b: np.ndarray) -> Any:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (a * b).sum(axis=-1) / np.where(den > 0, den, 1), 0.0)
    return float(r) if np.ndim(r) == 0 else r


def auc(score: np.ndarray, positive: np.ndarray) -> Any:
    """Area under the ROC curve of ``score`` for ``positive`` (ties count half): the
    Mann-Whitney U statistic over the product of class sizes; 0.5 when a class is empty."""
    ranks = _ranks(score)
    pos = np.asarray(positive, dtype=bool)
    n_pos = pos.sum(axis=-1)
    n_neg = pos.shape[-1] - n_pos
    u = (ranks * pos).sum(axis=-1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where((n_pos > 0) & (n_neg > 0), u / np.maximum(n_pos * n_neg, 1), 0.5)
    return float(out) if np.ndim(out) == 0 else out


def baseline_scores(train: pd.DataFrame) -> dict[str, np.ndarray]:
    """The baselines' customer scores (higher = expected to be worth more); for data without
    money, frequency, recency and the RF score sum (``rf_score``)."""
    from .methods.scores import _scores, thresholds

    features = feature_columns(list(train.columns))
    raw = train[list(features)].to_numpy(dtype=np.float64)
    total = np.zeros(len(raw), dtype=np.int64)
    for j, better_high in enumerate((False, True, True)[: len(features)]):
        edges = thresholds(raw[:, j], 5, higher_is_better=better_high)
        total += _scores(raw[:, j], edges, higher_is_better=better_high)
    money = {"monetary": raw[:, 2]} if "monetary" in features else {}
    return {
        **money,
        "frequency": raw[:, 1],
        "recency": -raw[:, 0],
        ("rfm_score" if money else "rf_score"): total.astype(np.float64),
    }


def customer_value(train: pd.DataFrame) -> np.ndarray:
    """What a segment's value averages: each customer's monetary value (frequency, for data
    without money)."""
    column = "monetary" if "monetary" in train.columns else "frequency"
    return train[column].to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class Evidence:
    """Spearman and AUC of the segments and of each baseline, with bootstrap differences.

    ``differences[baseline]`` holds ``spearman`` and ``auc`` triples ``(estimate, low,
    high)`` of segments minus baseline (a 95% percentile interval).
    """

    spearman: dict[str, float]
    auc: dict[str, float]
    differences: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)
    bootstrap: int = 0
    bootstrap_customers: int = 0
    seed: int | None = 0
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (without the bootstrap samples)."""
        d = dataclasses.asdict(self)
        d.pop("samples")
        return d


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense codes of ``values`` in increasing order, and how many distinct there are."""
    distinct, codes = np.unique(values, return_inverse=True)
    return codes.ravel(), len(distinct)


def _resampled_ranks(codes: np.ndarray, n_codes: int, idx: np.ndarray) -> np.ndarray:
    """Average ranks within each resample (rows of ``idx``) of coded values, by counting.

    A value's rank in a sample is the count of smaller values plus the middle of its ties:
    one bincount per resample, all of them at once, instead of a sort per resample.
    """
    b = idx.shape[0]
    sampled = codes[idx]
    flat = (sampled + n_codes * np.arange(b)[:, np.newaxis]).ravel()
    counts = np.bincount(flat, minlength=b * n_codes).reshape(b, n_codes).astype(np.float64)
    below = np.cumsum(counts, axis=1) - counts
    mid = below + (counts + 1) / 2
    return np.take_along_axis(mid, sampled, axis=1)


def _auc_from_ranks(ranks: np.ndarray, positive: np.ndarray) -> np.ndarray:
    n_pos = positive.sum(axis=-1)
    n_neg = positive.shape[-1] - n_pos
    u = (ranks * positive).sum(axis=-1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / np.maximum(n_pos * n_neg, 1), 0.5)


def evidence(
    scores: Mapping[str, np.ndarray],
    revenue: np.ndarray,
    buys: np.ndarray,
    *,
    bootstrap: int = 1000,
    seed: int | None = 0,
) -> Evidence:
    """Spearman with revenue and AUC for buying again, for each ranking in ``scores``.

    ``scores["segments"]`` is compared with every other entry: the differences are bootstrap
    estimates over customers resampled with replacement (``bootstrap`` times, seeded; above
    :data:`BOOTSTRAP_CUSTOMERS` customers on a seeded subsample of that many).
    """
    names = list(scores)
    S = [np.asarray(scores[n], dtype=np.float64) for n in names]
    revenue_ranks = _ranks(revenue)
    sp = {n: spearman(S[i], revenue, y_ranks=revenue_ranks) for i, n in enumerate(names)}
    au = {n: auc(S[i], buys) for i, n in enumerate(names)}
    n = len(revenue)
    rng = np.random.default_rng(seed)
    base = (
        np.arange(n)
        if n <= BOOTSTRAP_CUSTOMERS
        else rng.choice(n, BOOTSTRAP_CUSTOMERS, replace=False)
    )
    m = len(base)
    coded = [_codes(v[base]) for v in S]
    y_codes, y_n = _codes(revenue[base])
    sp_b = np.empty((len(names), bootstrap))
    au_b = np.empty((len(names), bootstrap))
    for start in range(0, bootstrap, 100):  # 100 resamples at a time keep memory flat
        stop = min(start + 100, bootstrap)
        idx = rng.integers(0, m, size=(stop - start, m))
        ry = _resampled_ranks(y_codes, y_n, idx)
        pos = buys[base][idx]
        for i, (codes, n_codes) in enumerate(coded):
            rs = _resampled_ranks(codes, n_codes, idx)
            sp_b[i, start:stop] = _pearson(rs, ry)
            au_b[i, start:stop] = _auc_from_ranks(rs, pos)
    diffs: dict[str, dict[str, tuple[float, float, float]]] = {}
    if "segments" in names:
        seg = names.index("segments")
        for i, name in enumerate(names):
            if i != seg:
                diffs[name] = {
                    "spearman": _interval(sp["segments"] - sp[name], sp_b[seg] - sp_b[i]),
                    "auc": _interval(au["segments"] - au[name], au_b[seg] - au_b[i]),
                }
    samples = {name: sp_b[i] for i, name in enumerate(names)}
    return Evidence(sp, au, diffs, bootstrap, m, seed, samples)


def _interval(estimate: float, samples: np.ndarray) -> tuple[float, float, float]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(estimate), float(lo), float(hi)


def segment_outcomes(
    labels: np.ndarray, names: Mapping[int, str], outcomes: Outcomes
) -> pd.DataFrame:
    """Per segment: customers, share buying again, orders and revenue per customer, share of
    the holdout revenue (of customers known at the cutoff), and the segment's value. For
    data without money: no revenue columns, and the share of the holdout orders."""
    df = pd.DataFrame(
        {
            "cluster": labels,
            "buys": outcomes.buys,
            "orders": outcomes.orders,
            "target": outcomes.target,
            "value": customer_value(outcomes.train),
        }
    )
    g = df.groupby("cluster", sort=True)
    total = float(df["target"].sum())
    share = g["target"].sum() / total if total else 0.0
    money = outcomes.revenue is not None
    out = pd.DataFrame(
        {
            "customers": g.size(),
            "share_buying_again": g["buys"].mean(),
            "orders_per_customer": g["orders"].mean(),
            **(
                {"revenue_per_customer": g["target"].mean(), "share_of_holdout_revenue": share}
                if money
                else {"share_of_holdout_orders": share}
            ),
            "value": g["value"].mean(),
        }
    )
    out.insert(0, "segment", [names.get(int(c), str(c)) for c in out.index])
    return out


def segment_values(labels: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """Each customer's segment value: the mean monetary value of the segment's members."""
    lab = np.unique(labels, return_inverse=True)[1].ravel()
    sums = np.bincount(lab, weights=monetary)
    counts = np.bincount(lab)
    return np.asarray((sums / counts)[lab], dtype=np.float64)


def choose_k_by_holdout(
    outcomes: Outcomes, config: ClusterConfig, *, seed: int | None = 0, bootstrap: int = 200
) -> tuple[int, dict[str, list[float | None]], str]:
    """k whose training segments best rank holdout revenue (orders, for data without money):
    the smallest k within one bootstrap standard error of the best Spearman (Breiman's
    one-standard-error rule).

    Returns k, the holdout Spearman and AUC per k swept, and a sentence for the notes.
    """
    from .cluster import sweep_partitions

    train = outcomes.train
    ks, partitions = sweep_partitions(train, config=config)
    value = customer_value(train)
    values = [segment_values(labels, value) for labels in partitions]
    target = outcomes.target
    target_ranks = _ranks(target)
    sp = [spearman(v, target, y_ranks=target_ranks) for v in values]
    au = [auc(v, outcomes.buys) for v in values]
    best = int(np.argmax(sp))
    ev = evidence({"segments": values[best]}, target, outcomes.buys, bootstrap=bootstrap, seed=seed)
    se = float(np.std(ev.samples["segments"])) if ev.samples else 0.0
    pick = next(i for i, s in enumerate(sp) if s >= sp[best] - se)
    note = (
        f"k = {ks[pick]} by backtest: segments fitted on purchases up to {outcomes.cutoff} "
        f"ranked the next {outcomes.holdout_days} days' {outcomes.target_name} with Spearman "
        f"{sp[pick]:.3f} "
        f"(AUC for buying again {au[pick]:.3f}); the best k, {ks[best]}, reached "
        f"{sp[best]:.3f}, and k = {ks[pick]} is the smallest within one "
        f"bootstrap standard error ({se:.3f})."
    )
    return ks[pick], {"holdout_spearman": list(sp), "holdout_auc": list(au)}, note
