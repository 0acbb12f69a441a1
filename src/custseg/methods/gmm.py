"""Gaussian mixtures (full covariance): k at the lowest BIC, customers by highest posterior.

scikit-learn's ``GaussianMixture`` fits (k-means initialisation, seeded); the state kept in
model.json is the weights, means and covariances, and prediction is the same log-density
formula in NumPy, so scoring new customers needs no scikit-learn. Each customer's
probability of its segment is written to segments.csv (``segment_probability``). Above
:data:`SWEEP_SAMPLE` customers the k sweep runs on a seeded sample, and the chosen k is fitted
starting from the sample's mixture, on everyone up to :data:`FIT_SAMPLE` customers and on a
seeded sample of that many beyond; everyone is then assigned by posterior.
"""

from __future__ import annotations

import math
import warnings
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from .base import Fit, Method, MethodName

__all__ = ["FIT_SAMPLE", "SWEEP_SAMPLE", "GaussianMixtureMethod", "GaussianState"]

#: Customers above which the k sweep runs on a seeded sample of this many: BIC on 20,000
#: customers already separates the k, and each EM fit costs time in proportion to the rows.
SWEEP_SAMPLE = 20_000
#: Customers above which the chosen k is fitted on a seeded sample of this many: each EM step
#: costs about a second per million customers and ten components, and from the sweep's
#: mixture the estimates on 200,000 customers no longer move.
FIT_SAMPLE = 200_000
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class GaussianState:
    """Mixture weights and full covariance matrices (the means are the model's centres)."""

    weights: tuple[Finite, ...]
    covariances: tuple[tuple[tuple[Finite, ...], ...], ...]

    def log_resp(self, Z: np.ndarray, centers: np.ndarray) -> np.ndarray:
        """Weighted log densities, shape (n, k): scikit-learn's full-covariance formula."""
        n, d = Z.shape
        out = np.empty((n, len(self.weights)))
        for j, cov in enumerate(np.asarray(self.covariances, dtype=np.float64)):
            prec_chol = np.linalg.inv(np.linalg.cholesky(cov)).T
            y = Z @ prec_chol - centers[j] @ prec_chol
            log_det = float(np.log(np.diag(prec_chol)).sum())
            out[:, j] = np.einsum("ij,ij->i", y, y)
            out[:, j] *= -0.5
            out[:, j] += log_det - 0.5 * d * math.log(2 * math.pi)
        return out + np.log(np.asarray(self.weights))

    def predict(self, raw: np.ndarray, Z: np.ndarray, centers: np.ndarray) -> np.ndarray:
        """The component of highest posterior probability."""
        return np.asarray(np.argmax(self.log_resp(Z, centers), axis=1), dtype=np.int64)

    def posterior(self, Z: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The most likely component of each row and its posterior probability."""
        lr = self.log_resp(Z, centers)
        labels = np.asarray(np.argmax(lr, axis=1), dtype=np.int64)
        p = np.exp(lr - lr[np.arange(len(lr)), labels][:, np.newaxis])
        return labels, 1.0 / p.sum(axis=1)

    def permuted(self, perm: np.ndarray) -> GaussianState:
        """The same mixture with components renumbered (``perm[new] = old``)."""
        return GaussianState(
            tuple(self.weights[i] for i in perm), tuple(self.covariances[i] for i in perm)
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "weights": [float(w) for w in self.weights],
            "covariances": [[[float(v) for v in row] for row in c] for c in self.covariances],
        }


class GaussianMixtureMethod(Method):
    """A Gaussian mixture with full covariances."""

    name: ClassVar[MethodName] = "gmm"
    auto_rule: ClassVar[str] = "bic"
    rules: ClassVar[tuple[str, ...]] = ("bic", "silhouette")
    sweep_limit: ClassVar[int | None] = SWEEP_SAMPLE
    fit_limit: ClassVar[int | None] = FIT_SAMPLE

    def params(self) -> dict[str, Any]:
        return {"covariance_type": "full", "n_init": 1, "init_params": "kmeans"}

    def fit(self, Z: np.ndarray, k: int, raw: np.ndarray, *, start: Fit | None = None) -> Fit:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits

        init: dict[str, Any] = {}
        if start is not None:
            init = {
                # The given start overrides any initialisation: skip k-means on every row.
                "init_params": "random_from_data",
                "weights_init": np.asarray(start.state.weights),
                "means_init": start.centers,
                "precisions_init": np.linalg.inv(np.asarray(start.state.covariances)),
            }
        gm = GaussianMixture(
            n_components=k, covariance_type="full", random_state=self.config.random_state, **init
        )
        with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            gm.fit(Z)
        notes = tuple(f"k={k}: {str(w.message).splitlines()[0]}" for w in caught)
        state = GaussianState(
            tuple(float(w) for w in gm.weights_),
            tuple(tuple(tuple(float(v) for v in row) for row in c) for c in gm.covariances_),
        )
        centers = np.asarray(gm.means_, dtype=np.float64)
        labels = state.predict(Z, Z, centers)
        resid = Z - centers[labels]
        criterion = {
            "sse": float((resid**2).sum()),
            "bic": float(gm.bic(Z)),
            "aic": float(gm.aic(Z)),
        }
        return Fit(k, centers, state, labels, criterion, notes)
