"""Figure data: the numbers each plot draws, computed from all customers in O(n) or on a sample.

Pure functions of arrays (NumPy, and matplotlib's own box statistics): no figures, no files.
The silhouette and the PCA projection are written here in NumPy rather than taken from
scikit-learn, so that drawing a report never imports scikit-learn or SciPy; both follow
scikit-learn's definitions (``silhouette_samples``; ``PCA`` with its deterministic signs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib import cbook

__all__ = [
    "Projection",
    "box_stats",
    "histogram_data",
    "is_skewed",
    "principal_components",
    "profile_ratios",
    "sample_indices",
    "silhouette_values",
]

#: Rows of the distance matrix computed at once by :func:`silhouette_values`: 128 x 5,000
#: float64 is 5 MB, which measured faster than larger blocks.
_CHUNK = 128


def sample_indices(n: int, size: int, *, seed: int) -> np.ndarray:
    """Sorted indices of a seeded sample of ``min(n, size)`` of ``range(n)`` (all when n <= size).

    Examples
    --------
    >>> sample_indices(5, 10, seed=0).tolist()
    [0, 1, 2, 3, 4]
    >>> len(sample_indices(100, 10, seed=0))
    10
    """
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def is_skewed(values: np.ndarray) -> bool:
    """Whether a positive feature is right-skewed enough for a log axis (skewness > 2).

    Examples
    --------
    >>> is_skewed(np.array([1.0, 1, 1, 1, 2, 2, 3, 2, 1, 400]))
    True
    >>> is_skewed(np.array([1.0, 2, 3, 4]))
    False
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size < 3 or float(v.min()) <= 0 or float(v.max()) / float(v.min()) < 10:
        return False
    z = v - v.mean()
    m2 = float(z @ z) / v.size
    # The third moment as a dot product: one temporary array for a million values, not four.
    return m2 > 0 and float((z * z) @ z) / v.size / m2**1.5 > 2.0


def box_stats(
    values: np.ndarray, label: str, *, max_fliers: int = 300, seed: int = 0
) -> dict[str, Any]:
    """Tukey box statistics for ``Axes.bxp`` from all values in O(n).

    :func:`matplotlib.cbook.boxplot_stats` computes them (whiskers at the most extreme values
    within 1.5 IQR of the quartiles); of the fliers beyond the whiskers a seeded sample of at
    most ``max_fliers`` (always with the minimum and maximum) is kept, so that a million
    customers do not become a million markers.

    Examples
    --------
    >>> s = box_stats(np.array([1.0, 2, 3, 4, 100]), "all")
    >>> s["med"], s["whishi"], s["fliers"].tolist()
    (3.0, 4.0, [100.0])
    """
    v = np.asarray(values, dtype=np.float64)
    stats = cbook.boxplot_stats([v], labels=[label])[0]
    fliers = np.asarray(stats["fliers"], dtype=np.float64)
    if fliers.size > max_fliers:
        keep = sample_indices(fliers.size, max_fliers - 2, seed=seed)
        fliers = np.concatenate([fliers[keep], [fliers.min(), fliers.max()]])
    # Plain floats: these numbers go into captions and doctests, not only into bxp.
    out: dict[str, Any] = {k: float(stats[k]) for k in ("med", "q1", "q3", "whislo", "whishi")}
    return {"label": label, **out, "fliers": fliers}


def histogram_data(
    values: np.ndarray, *, log: bool, bins: int = 40
) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges and counts; log-spaced bins when ``log`` (integers get integer-centred bins).

    Examples
    --------
    >>> edges, counts = histogram_data(np.array([1.0, 1, 2, 3]), log=False)
    >>> edges.tolist(), counts.tolist()
    ([0.5, 1.5, 2.5, 3.5], [2, 1, 1])
    """
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    integer = bool(np.all(v == np.round(v)))
    if integer and (hi - lo) <= bins:
        edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
    elif log and lo > 0:
        if integer:
            edges = np.unique(np.floor(np.geomspace(lo, hi + 1, bins + 1))) - 0.5
            edges = edges[edges > 0] if lo > 0.5 else edges
            if edges[-1] < hi:
                edges = np.append(edges, hi + 0.5)
        else:
            edges = np.geomspace(lo, hi * (1 + 1e-9), bins + 1)
    else:
        edges = np.histogram_bin_edges(v, bins=bins if hi > lo else 1)
    counts, edges = np.histogram(v, bins=edges)
    return edges, counts


def profile_ratios(
    means: Mapping[str, Sequence[float]], overall: Mapping[str, float]
) -> np.ndarray:
    """Segment mean / mean over all customers, shape (n_segments, n_features).

    Parameters
    ----------
    means : mapping of feature -> segment means
        One sequence per feature, in segment order (the input of ``plot_segment_means``).
    overall : mapping of feature -> mean over all customers
        A zero mean counts as 1 (the ratio is then the segment mean itself).

    Examples
    --------
    >>> profile_ratios({"recency": [10], "frequency": [4], "monetary": [50]},
    ...                {"recency": 20, "frequency": 2, "monetary": 100}).tolist()
    [[0.5, 2.0, 0.5]]
    """
    feats = list(means)
    out = np.array([[float(v) for v in means[f]] for f in feats], dtype=float).T
    base = np.array([float(overall[f]) or 1.0 for f in feats])
    return out / base


def silhouette_values(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Silhouette coefficient of each row, as ``sklearn.metrics.silhouette_samples``.

    ``(b - a) / max(a, b)`` with ``a`` the mean Euclidean distance to the other rows of the
    same label and ``b`` the smallest mean distance to the rows of another label; 0 for a row
    alone in its label. Exact distances between all pairs, a block of rows at a time: meant
    for a sample of a few thousand rows of a few features.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    labels : ndarray of shape (n,)
        At least 2 distinct labels and fewer than n.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [10.0], [12.0]])
    >>> silhouette_values(X, np.array([0, 0, 1, 1])).round(3).tolist()
    [0.909, 0.9, 0.789, 0.826]
    """
    # Rows sorted by label, so that each label's distances are one slice of a row. No BLAS
    # call on purpose: thousands of tiny matrix products ran 3-8x slower with OpenBLAS's
    # threads on a busy 2-core machine than this elementwise NumPy.
    order = np.argsort(np.asarray(labels), kind="stable")
    Xs = np.asarray(X, dtype=np.float64)[order]
    _, codes, counts = np.unique(np.asarray(labels)[order], return_inverse=True, return_counts=True)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n, rows = len(Xs), np.arange(len(Xs))
    sums = np.empty((n, len(counts)))
    for start in range(0, n, _CHUNK):
        part = slice(start, min(start + _CHUNK, n))
        d = np.zeros((part.stop - start, n))
        for j in range(Xs.shape[1]):
            diff = np.subtract.outer(Xs[part, j], Xs[:, j])
            d += diff * diff
        np.sqrt(d, out=d)
        sums[part] = np.add.reduceat(d, starts, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[rows, codes] / (counts[codes] - 1)
        others = sums / counts
        others[rows, codes] = np.inf
        b = others.min(axis=1)
        s = np.nan_to_num((b - a) / np.maximum(a, b))  # alone in its label: 0, as scikit-learn
    out = np.empty(n)
    out[order] = s
    return out


@dataclass(frozen=True)
class Projection:
    """A linear projection onto principal components (see :func:`principal_components`).

    Attributes
    ----------
    mean : ndarray of shape (d,)
    components : ndarray of shape (m, d)
        One unit vector per row, by decreasing variance.
    explained : tuple of float
        Share of the total variance along each component (NaN when the data do not vary).
    """

    mean: np.ndarray
    components: np.ndarray
    explained: tuple[float, ...]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Coordinates of the rows of ``X`` along the components, shape (n, m)."""
        return (np.asarray(X, dtype=np.float64) - self.mean) @ self.components.T


def principal_components(X: np.ndarray, n_components: int = 2) -> Projection:
    """The first principal components of ``X``, as ``sklearn.decomposition.PCA`` finds them.

    From the eigenvectors of the covariance matrix (O(n d^2): cheap for a million rows of three
    features), each signed so that its largest entry in absolute value is positive, which is
    scikit-learn's rule: the same picture, not its mirror image.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [2.0, 0.1], [4.0, -0.1], [6.0, 0.0]])
    >>> p = principal_components(X, 1)
    >>> p.components.round(3).tolist(), round(p.explained[0], 3)
    ([[1.0, -0.01]], 0.999)
    """
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    Xc = X - mean
    C = Xc.T @ Xc / max(len(X) - 1, 1)
    values, vectors = np.linalg.eigh(C)
    values = np.clip(values[::-1], 0.0, None)
    components = vectors[:, ::-1].T[:n_components]
    biggest = np.argmax(np.abs(components), axis=1)
    components = components * np.sign(components[np.arange(len(components)), biggest])[:, None]
    total = float(values.sum())
    ratios = values[:n_components] / total if total > 0 else np.full(n_components, np.nan)
    return Projection(mean, components, tuple(float(r) for r in ratios))
