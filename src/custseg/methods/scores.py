"""RFM quantile scores and a rule table of named segments (the industry's RFM screens).

Each customer gets an R, F and M score from 1 to ``bins`` (5: quintiles, 4: quartiles); R is
reversed, so 5 is the most recent. **Ties**: a customer's score is ``1 + floor(bins x share of
all customers with a strictly worse value)``. The same value always gets the same score, and
where one value is shared by more than a bin's worth of customers (about 35% of Online Retail
customers bought exactly once) the next scores start where that group ends: a score can then
be empty, never silently merged, and :func:`score_notes` says which. The scores are kept as
thresholds in the features' own units (days, orders, money), so a saved model scores new
customers with the training data's edges.

The segments are the rows of a rule table over the R and F scores (optionally M), every cell
covered exactly once (:data:`custseg.naming.SCORE_RULES`; overridable from the config file).
Segment ids are the rows' positions in the table, stable across runs; a row that no customer
falls in is an empty segment.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from ..config import ScoreRule
from .base import Fit, Method, MethodName

__all__ = ["ScoreMethod", "ScoreState", "score_notes", "thresholds"]

Threshold = Annotated[float | None, Field(strict=True, allow_inf_nan=False)]


def thresholds(values: np.ndarray, bins: int, *, higher_is_better: bool) -> tuple[float, ...]:
    """Score thresholds: a value scores ``1 + #{j: value reaches threshold j}``.

    Threshold ``j`` (1 .. bins-1) is the first value (in the better direction) with at least
    ``j / bins`` of all customers strictly worse; ``inf`` where no value has.

    Examples
    --------
    >>> thresholds(np.array([1, 1, 1, 1, 2, 3, 4, 5, 6, 9.0]), 5, higher_is_better=True)
    (2.0, 2.0, 4.0, 6.0)
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    if not higher_is_better:
        v = -v[::-1]
    distinct, first = np.unique(v, return_index=True)
    share_below = first / len(v)
    out = []
    for j in range(1, bins):
        reached = np.flatnonzero(share_below >= j / bins)
        t = float(distinct[reached[0]]) if reached.size else math.inf
        out.append(t if higher_is_better else -t)
    return tuple(out)


def _scores(values: np.ndarray, edges: tuple[float, ...], *, higher_is_better: bool) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if higher_is_better:
        reached = v[:, np.newaxis] >= e[np.newaxis, :]
    else:
        reached = v[:, np.newaxis] <= e[np.newaxis, :]
    return 1 + reached.sum(axis=1).astype(np.int64)


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class ScoreState:
    """Score thresholds per feature (in its own units) and the rule table.

    ``recency`` thresholds are upper bounds (fewer days score higher); ``frequency`` and
    ``monetary`` thresholds are lower bounds. ``None`` (infinite) thresholds are never reached.
    """

    bins: int
    recency: tuple[Threshold, ...]
    frequency: tuple[Threshold, ...]
    monetary: tuple[Threshold, ...]
    rules: tuple[ScoreRule, ...]

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """R, F, M scores (columns) of raw features in recency, frequency, monetary order."""
        inf = math.inf
        r = _scores(
            raw[:, 0], tuple(-inf if t is None else t for t in self.recency), higher_is_better=False
        )
        f = _scores(
            raw[:, 1], tuple(inf if t is None else t for t in self.frequency), higher_is_better=True
        )
        m = _scores(
            raw[:, 2], tuple(inf if t is None else t for t in self.monetary), higher_is_better=True
        )
        return np.stack([r, f, m], axis=1)

    def lookup(self) -> np.ndarray:
        """Rule index of every (r, f, m) cell, shape (bins, bins, bins)."""
        table = np.full((self.bins,) * 3, -1, dtype=np.int64)
        every = range(1, self.bins + 1)
        for i, rule in enumerate(self.rules):
            for r in rule.r:
                for f in rule.f:
                    for m in rule.m or every:
                        table[r - 1, f - 1, m - 1] = i
        return table

    def predict(self, raw: np.ndarray, Z: np.ndarray, centers: np.ndarray) -> np.ndarray:
        """The rule segment of each customer's score cell."""
        s = self.scores(raw) - 1
        labels: np.ndarray = self.lookup()[s[:, 0], s[:, 1], s[:, 2]]
        return labels

    def permuted(self, perm: np.ndarray) -> ScoreState:
        """Rule segments keep their ids (the table's order): nothing to renumber."""
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (infinite thresholds as null)."""
        return {
            "bins": self.bins,
            "recency": list(self.recency),
            "frequency": list(self.frequency),
            "monetary": list(self.monetary),
            "rules": [rule.model_dump(exclude_none=True) for rule in self.rules],
        }


def _finite(edges: tuple[float, ...]) -> tuple[float | None, ...]:
    return tuple(None if math.isinf(e) else e for e in edges)


def score_notes(state: ScoreState, raw: np.ndarray) -> list[str]:
    """Sentences about scores that ties left empty (so no bin collapses silently)."""
    notes = []
    scores = state.scores(raw)
    for j, feature in enumerate(("recency", "frequency", "monetary")):
        counts = np.bincount(scores[:, j], minlength=state.bins + 1)[1:]
        empty = [s + 1 for s in range(state.bins) if counts[s] == 0]
        if empty:
            v = raw[:, j]
            values, n = np.unique(v, return_counts=True)
            top = int(np.argmax(n))
            notes.append(
                f"{feature.capitalize()} score(s) {', '.join(map(str, empty))} are empty: "
                f"{int(n[top]):,} customers ({n[top] / len(v):.0%}) share the value "
                f"{values[top]:g}, and equal values always get the same score."
            )
    return notes


class ScoreMethod(Method):
    """R, F, M scores and the rule table: k is the number of rules."""

    name: ClassVar[MethodName] = "rfm-scores"
    auto_rule: ClassVar[str] = "rules"
    rules: ClassVar[tuple[str, ...]] = ("auto",)
    #: Scores rank every customer, outliers included.
    fits_outliers: ClassVar[bool] = True

    def table(self) -> tuple[ScoreRule, ...]:
        """The rule table in use (the config's, or the default for the number of bins)."""
        from ..naming import SCORE_RULES

        return self.config.score_rules or SCORE_RULES[self.config.score_bins]

    def params(self) -> dict[str, Any]:
        return {"bins": self.config.score_bins}

    def fit(self, Z: np.ndarray, k: int, raw: np.ndarray, *, start: Fit | None = None) -> Fit:
        bins = self.config.score_bins
        state = ScoreState(
            bins=bins,
            recency=_finite(thresholds(raw[:, 0], bins, higher_is_better=False)),
            frequency=_finite(thresholds(raw[:, 1], bins, higher_is_better=True)),
            monetary=_finite(thresholds(raw[:, 2], bins, higher_is_better=True)),
            rules=self.table(),
        )
        labels = state.predict(raw, Z, np.empty((0, Z.shape[1])))
        n_rules = len(state.rules)
        centers = np.full((n_rules, Z.shape[1]), np.nan)
        for i in np.unique(labels):
            centers[i] = Z[labels == i].mean(axis=0)
        return Fit(n_rules, centers, state, labels, {}, tuple(score_notes(state, raw)))
