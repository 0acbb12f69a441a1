"""Ward hierarchical clustering, the alternative the reference tutorial names.

Ward linkage (SciPy's, as scikit-learn's ``AgglomerativeClustering(linkage="ward")`` uses) on
the scaled features; one tree serves every k of the sweep. k is chosen at the **largest gap
in the merge heights**: cutting the tree into k segments is best where merging them into k-1
would cost the most more than the merge that made them (``height(k -> k-1) - height(k+1 ->
k)``), among the k swept. New customers, and the fitted ones, are assigned to the nearest
segment centroid, so a saved model reproduces every customer's segment.

Ward needs every pairwise distance: O(n^2) memory (10,000 customers: 0.4 GB). Above
:data:`WARD_SAMPLE` customers the tree is built on a seeded sample and everyone is assigned
to the nearest centroid of the sample's segments; the notes say so.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from .base import CentroidState, Fit, Method, MethodName, nearest_center

__all__ = [
    "DENDROGRAM_LEAVES",
    "WARD_SAMPLE",
    "WardMethod",
    "merge_heights",
    "top_merges",
    "ward_cut",
    "ward_tree",
]

#: Customers above which the tree is built on a seeded sample of this many (0.4 GB of distances).
WARD_SAMPLE = 10_000
#: Branches at the bottom of the report's dendrogram: the tree above its last merges.
DENDROGRAM_LEAVES = 12


def merge_heights(linkage: np.ndarray, k: int) -> float | None:
    """Height of the merge that would take k segments to k-1 (None for k = 1)."""
    n = linkage.shape[0] + 1
    return float(linkage[n - k, 2]) if 2 <= k <= n else None


def ward_tree(Z: np.ndarray) -> np.ndarray:
    """SciPy's Ward linkage matrix of the rows of ``Z`` (empty for fewer than 2 rows)."""
    from scipy.cluster.hierarchy import linkage

    return linkage(Z, method="ward") if Z.shape[0] > 1 else np.zeros((0, 4))


def top_merges(tree: np.ndarray, leaves: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``leaves - 1`` merges of a linkage matrix, over the branches they join.

    Returns a SciPy linkage matrix whose leaves 0..p-1 are those branches (p = ``leaves``, or
    fewer for a small tree), and the number of rows in each branch.

    Examples
    --------
    >>> tree = ward_tree(np.array([[0.0], [0.1], [5.0], [5.2], [20.0]]))
    >>> small, sizes = top_merges(tree, 3)
    >>> small.shape, sorted(sizes.tolist())
    ((2, 4), [1.0, 2.0, 2.0])
    """
    n = tree.shape[0] + 1
    p = min(leaves, n)
    top = tree[n - p :]
    made = {n + i for i in range(n - p, n - 1)}
    branches = sorted({int(c) for c in top[:, :2].ravel()} - made)
    index = {c: i for i, c in enumerate(branches)} | {
        n + i: p + j for j, i in enumerate(range(n - p, n - 1))
    }
    small = np.zeros((p - 1, 4))
    leaves_under = [1.0] * p  # column 4 counts the branches below a merge, as SciPy needs
    for j, (a, b, h, _) in enumerate(top):
        left, right = index[int(a)], index[int(b)]
        leaves_under.append(leaves_under[left] + leaves_under[right])
        small[j] = (left, right, h, leaves_under[-1])
    sizes = np.array([1.0 if c < n else float(tree[c - n, 3]) for c in branches])
    return small, sizes


def ward_cut(tree: np.ndarray, n: int, k: int) -> np.ndarray:
    """The branch (0..k-1) of each of the ``n`` rows when the tree is cut into k segments."""
    from scipy.cluster.hierarchy import fcluster

    if k <= 1 or tree.shape[0] == 0:
        return np.zeros(n, dtype=np.int64)
    return np.asarray(fcluster(tree, t=k, criterion="maxclust") - 1, dtype=np.int64)


class WardMethod(Method):
    """Ward linkage, cut at k, predicted by nearest centroid."""

    name: ClassVar[MethodName] = "hierarchical"
    auto_rule: ClassVar[str] = "merge-gap"
    rules: ClassVar[tuple[str, ...]] = ("merge-gap", "knee", "silhouette")
    sweep_limit: ClassVar[int | None] = WARD_SAMPLE

    def params(self) -> dict[str, object]:
        return {"linkage": "ward", "sample_limit": WARD_SAMPLE}

    def sweep(self, Z: np.ndarray, ks: list[int], raw: np.ndarray) -> list[Fit]:
        tree = ward_tree(Z)
        fits = [_fit_from_cut(Z, k, ward_cut(tree, len(Z), k), tree) for k in ks]
        if fits and tree.shape[0]:
            small, sizes = top_merges(tree, DENDROGRAM_LEAVES)
            top = {"dendrogram_merges": small.ravel().tolist(), "dendrogram_sizes": sizes.tolist()}
            fits[0] = dataclasses.replace(fits[0], sweep_figures=top)
        return fits

    def fit(self, Z: np.ndarray, k: int, raw: np.ndarray, *, start: Fit | None = None) -> Fit:
        if start is None:
            return self.sweep(Z, [k], raw)[0]
        labels = nearest_center(Z, start.centers)
        note = (
            f"The tree was built on a seeded sample of {len(start.labels):,} customers (Ward "
            f"needs all pairwise distances); all {len(Z):,} were then assigned to the nearest "
            "centroid of its segments."
        )
        return Fit(k, start.centers, CentroidState(), labels, start.criterion, (), (note,))


def _fit_from_cut(Z: np.ndarray, k: int, cut: np.ndarray, tree: np.ndarray) -> Fit:
    """The segments of a tree cut: centroids, nearest-centroid labels, merge height, SSE."""
    centers = np.stack([Z[cut == c].mean(axis=0) for c in range(k)])
    labels = nearest_center(Z, centers)
    sse = float(sum(((Z[cut == c] - centers[c]) ** 2).sum() for c in range(k)))
    criterion = {"sse": sse}
    height = merge_heights(tree, k) if tree.shape[0] else None
    below = merge_heights(tree, k + 1) if tree.shape[0] else None
    if height is not None:
        criterion["merge_height"] = height
        if below is not None:
            criterion["merge_gap"] = height - below
    moved = int((labels != cut).sum())
    notes: tuple[str, ...] = ()
    if moved:
        notes = (
            f"{moved:,} of {len(Z):,} customers are nearer another segment's centroid than "
            "their own branch of the Ward tree; like new customers, they are assigned to the "
            "nearest centroid.",
        )
    return Fit(k, centers, CentroidState(), labels, criterion, (), notes)
