"""How much a segmentation depends on chance: refits with other seeds and on resamples.

Every run measures it (:func:`stability`): the method is fitted again at the run's k with
:data:`SEEDS` other seeds, and on :data:`RESAMPLES` bootstrap resamples of the customers
(seeded), and each refit's segments of every customer are compared with the run's by the
adjusted Rand index (1: the same partition; 0: as alike as chance). Above
:data:`SAMPLE_LIMIT` customers the refits run on a seeded sample of that many. A mean below
:data:`WARN_BELOW` gets a warning: the segments are then partly an accident of the seed or
of which customers happened to be in the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import ClusterConfig

__all__ = [
    "MIN_CUSTOMERS",
    "RESAMPLES",
    "SAMPLE_LIMIT",
    "SEEDS",
    "WARN_BELOW",
    "Stability",
    "stability",
]

SEEDS = 4
RESAMPLES = 4
SAMPLE_LIMIT = 20_000
WARN_BELOW = 0.8
#: Fewer customers than this and resampling them says little: stability is not measured.
MIN_CUSTOMERS = 100


@dataclass(frozen=True)
class Stability:
    """Adjusted Rand indices of refits against the run's segments.

    Attributes
    ----------
    seeds : list of float
        One per refit with another seed (seeds ``random_state + 1`` ...).
    resamples : list of float
        One per refit on a bootstrap resample of the customers.
    sample : int or None
        Customers the refits were measured on, when a seeded sample.
    deterministic : bool
        The method does not depend on the seed here (Ward on every customer, RFM scores):
        no seed refits are needed, and ``seeds`` is empty.
    """

    seeds: list[float]
    resamples: list[float]
    sample: int | None = None
    deterministic: bool = False

    @property
    def seed_mean(self) -> float:
        """Mean ARI over the seeds."""
        return float(np.mean(self.seeds)) if self.seeds else 1.0

    @property
    def resample_mean(self) -> float:
        """Mean ARI over the resamples."""
        return float(np.mean(self.resamples)) if self.resamples else 1.0

    @property
    def low(self) -> bool:
        """Whether either mean is below :data:`WARN_BELOW`."""
        return min(self.seed_mean, self.resample_mean) < WARN_BELOW

    def note(self) -> str:
        """One sentence for the warnings and the report."""
        seeds = (
            "the method does not depend on the seed"
            if self.deterministic
            else f"refits with {len(self.seeds)} other seeds agree with these segments at a "
            f"mean adjusted Rand index of {self.seed_mean:.3f}"
        )
        where = "" if self.sample is None else f" (measured on a seeded sample of {self.sample:,})"
        return (
            f"Stability: {seeds}; refits on {len(self.resamples)} bootstrap resamples of the "
            f"customers agree at {self.resample_mean:.3f}{where}."
        )


def stability(
    rfm: pd.DataFrame, labels: np.ndarray, *, config: ClusterConfig, k: int
) -> Stability | None:
    """Refit at ``k`` with other seeds and on resamples; ARI of each against ``labels``.

    None (not measured) below :data:`MIN_CUSTOMERS` customers.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(c, 0.3, size=(50, 3)) for c in (1.0, 5.0, 9.0)])
    >>> rfm = pd.DataFrame(np.abs(X), columns=["recency", "frequency", "monetary"])
    >>> from custseg.cluster import fit_segments
    >>> cfg = ClusterConfig(k=3, transform="none", select="auto", outliers="none")
    >>> fit = fit_segments(rfm, config=cfg)
    >>> s = stability(rfm, fit.labels, config=cfg, k=3)
    >>> round(s.seed_mean, 3), round(s.resample_mean, 3)
    (1.0, 1.0)
    """
    from sklearn.metrics import adjusted_rand_score

    from .cluster import fit_labels
    from .methods import get_method

    n = len(rfm)
    if n < MIN_CUSTOMERS:
        return None
    seed = config.random_state or 0
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, SAMPLE_LIMIT, replace=False)) if n > SAMPLE_LIMIT else None
    X = rfm if sample is None else rfm.iloc[sample]
    base = labels if sample is None else labels[sample]
    limit = get_method(config).sweep_limit  # above it, a refit's sample depends on the seed
    deterministic = config.method == "rfm-scores" or (
        config.method == "hierarchical" and (limit is None or len(X) <= limit)
    )
    seeds = (
        []
        if deterministic
        else [
            adjusted_rand_score(
                base, fit_labels(X, config=config.replace(random_state=seed + i), k=k)
            )
            for i in range(1, SEEDS + 1)
        ]
    )
    resamples = []
    for _ in range(RESAMPLES):
        rows = rng.integers(0, len(X), len(X))
        resamples.append(adjusted_rand_score(base, fit_labels(X, config=config, k=k, rows=rows)))
    return Stability(
        [float(a) for a in seeds],
        [float(a) for a in resamples],
        None if sample is None else len(sample),
        deterministic,
    )
