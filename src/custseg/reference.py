"""Names that stay put: match a new segmentation to a reference model, segment by segment.

Marketing teams re-segment every month; a segment should keep its name and id while it is
the same group of customers. With a reference model (the model.json of an earlier run),
each new segment's centroid is placed in the *reference model's* scaled space (its
transform and scaler applied to the new segment's customers), and new and old segments are
paired by the Hungarian method (:func:`scipy.optimize.linear_sum_assignment`) on the
distances between centroids. A pair holds when the new centroid lies within half the
distance from the old segment's centre to its nearest neighbour (inside the old segment's
own territory); the new segment then takes the old one's name, action and, where it fits in
0..k-1, its id. A new segment without such a match gets a new name, never one of the
reference's. RFM score segments are matched by their rule table: a run with a score model
as reference uses the same bins and rules, so every name keeps its cells.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .cluster import ClusterFit
from .config import ClusterConfig
from .errors import ConfigError
from .formats import ModelFile
from .methods.scores import ScoreState

__all__ = ["Match", "Reference", "load_reference", "match_reference", "reference_config"]


@dataclass(frozen=True)
class Reference:
    """A reference model and where it came from."""

    doc: ModelFile
    sha256: str
    file: str


@dataclass(frozen=True)
class Match:
    """How one new segment relates to the reference.

    ``old_cluster`` is None for a segment with no match; ``distance`` is to the nearest
    assigned old centre (None for rule segments, matched by their cells), ``radius`` the
    old segment's territory.
    """

    cluster: int
    old_cluster: int | None
    old_name: str | None
    distance: float | None
    radius: float | None


def load_reference(path: str | Path) -> Reference:
    """Read a reference model.json (one-line errors, as for scoring)."""
    p = Path(path)
    doc = ModelFile.read(p, fix="pass --reference the model.json of a finished `custseg run`")
    return Reference(doc, hashlib.sha256(p.read_bytes()).hexdigest(), p.name)


def reference_config(config: ClusterConfig, ref: Reference) -> ClusterConfig:
    """The settings a run with this reference needs: a score model's bins and rule table."""
    old = ref.doc.model
    if isinstance(old.state, ScoreState):
        if config.method != "rfm-scores":
            raise ConfigError(
                f"--reference is an rfm-scores model, but this run uses --method "
                f"{config.method}. Pass --method rfm-scores (names follow the rule table), or a "
                "reference made by the same kind of method."
            )
        return config.replace(score_bins=old.state.bins, score_rules=old.state.rules)
    if config.method == "rfm-scores":
        raise ConfigError(
            f"--reference is a {old.method} model and this run uses --method rfm-scores: "
            "centroids and rule cells cannot be matched. Pass a reference of the same kind."
        )
    return config


def _centroids(rfm: pd.DataFrame, labels: np.ndarray, k: int, ref: Reference) -> np.ndarray:
    """Each new segment's centroid in the reference model's scaled space (NaN if empty)."""
    Z, _ = ref.doc.model.scaled(rfm[list(ref.doc.model.features)])
    out = np.full((k, Z.shape[1]), np.nan)
    for c in range(k):
        members = labels == c
        if members.any():
            out[c] = Z[members].mean(axis=0)
    return out


def _pairs(new: np.ndarray, old: np.ndarray) -> list[tuple[int, int, float, float]]:
    """Hungarian pairs (new, old, distance, old radius) whose distance is within the radius."""
    from scipy.optimize import linear_sum_assignment

    ok_new = ~np.isnan(new).any(axis=1)
    ok_old = ~np.isnan(old).any(axis=1)
    ni, oi = np.flatnonzero(ok_new), np.flatnonzero(ok_old)
    if not len(ni) or not len(oi):
        return []
    d = np.sqrt(((new[ni][:, None, :] - old[oi][None, :, :]) ** 2).sum(axis=2))
    between = np.sqrt(((old[oi][:, None, :] - old[oi][None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(between, np.inf)
    radius = 0.5 * between.min(axis=1)
    rows, cols = linear_sum_assignment(d)
    return [
        (int(ni[r]), int(oi[c]), float(d[r, c]), float(radius[c]))
        for r, c in zip(rows, cols, strict=True)
        if d[r, c] <= radius[c]
    ]


def _new_ids(k: int, pairs: list[tuple[int, int, float, float]]) -> np.ndarray:
    """perm[new id] = current id: matched segments at their old id where it fits in 0..k-1."""
    target: dict[int, int] = {}
    for new, old, _, _ in pairs:
        if old < k:
            target[new] = old
    free = [i for i in range(k) if i not in target.values()]
    for new in range(k):
        if new not in target:
            target[new] = free.pop(0)
    perm = np.empty(k, dtype=np.int64)
    for current, wanted in target.items():
        perm[wanted] = current
    return perm


def match_reference(
    rfm: pd.DataFrame, fit: ClusterFit, ref: Reference
) -> tuple[ClusterFit, list[Match]]:
    """Renumber ``fit``'s segments after the reference and say which new segment is which.

    Returns the renumbered fit (model, labels) and one :class:`Match` per new segment.
    """
    model = fit.model
    old = ref.doc.model
    if old.features != model.features:
        raise ConfigError(
            f"--reference segments on {list(old.features)}, this run on "
            f"{list(model.features)}: their segments cannot be matched. Pass a reference "
            "made with the same features (with or without monetary value)."
        )
    names = {s.cluster: s.name for s in ref.doc.segments}
    if isinstance(model.state, ScoreState):  # the same rule table: segment i is rule i
        matches = [Match(c, c, names.get(c), None, None) for c in range(model.k)]
        return fit, matches
    pairs = _pairs(_centroids(rfm, fit.labels, model.k, ref), old.center_array())
    perm = _new_ids(model.k, pairs)
    inverse = np.argsort(perm)
    centers = model.center_array()[perm]
    renumbered = dataclasses.replace(
        model,
        centers=tuple(tuple(c.tolist()) for c in centers),
        state=model.state.permuted(perm),
        assertions=None if model.assertions is None else tuple(model.assertions[i] for i in perm),
    )
    matches = [Match(c, None, None, None, None) for c in range(model.k)]
    for new, old_id, distance, radius in pairs:
        c = int(inverse[new])
        matches[c] = Match(c, old_id, names.get(old_id), distance, radius)
    labels = renumbered.assign(rfm[list(renumbered.features)]).labels
    return dataclasses.replace(fit, model=renumbered, labels=labels), matches
