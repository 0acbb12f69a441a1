"""A scikit-learn compatible facade over :mod:`custseg.cluster` and :mod:`custseg.naming`.

:class:`RFMSegmenter` follows the estimator contract (parameters stored verbatim in
``__init__``, validation and work in ``fit``, fitted attributes ending in ``_``) so that it fits
in pipelines, grid searches and ``clone``. On R, F, M features it also names the segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from .cluster import FEATURES, ClusterModel, KSelection, fit_segments
from .config import ClusterConfig, ClusterMethod, OutlierMethod, SelectMethod, TransformMethod
from .errors import ConfigError
from .methods.gmm import GaussianState
from .methods.scores import ScoreState
from .naming import SegmentName, describe_segments, place_outliers

__all__ = ["RFMSegmenter"]


class RFMSegmenter(ClusterMixin, TransformerMixin, BaseEstimator):
    """RFM customer segmentation: outliers, scaling, a clustering method, named segments.

    The method of :func:`custseg.cluster.fit_segments`: optional log transform, outliers
    flagged and left out of the fit (then assigned by the model), standardisation, k chosen
    by the method's rule (or by silhouette, or fixed), the method, segments renumbered
    canonically (0 = highest mean of the last feature, i.e. monetary).

    Parameters
    ----------
    n_clusters : int or "auto", default="auto"
        Number of segments, or ``"auto"`` to choose it from ``k_values`` (RFM scores: always
        "auto", the rule table's rows).
    method : {"kmeans", "hierarchical", "gmm", "rfm-scores"}, default="kmeans"
        K-Means, Ward hierarchical clustering, a Gaussian mixture, or RFM quantile scores
        with the rule table of named segments (see :mod:`custseg.methods`).
    outliers : {"zscore", "iqr", "none"}, default="zscore"
        Outlier rule (|z| >= 3 on any feature by default).
    feature_transform : {"none", "log"}, default="none"
        ``"log"`` applies log1p to the features first (needs non-negative values). Named so
        because ``transform`` is the transformer method.
    select : {"auto", "knee", "merge-gap", "bic", "silhouette"}, default="auto"
        How k is chosen when ``n_clusters="auto"`` (auto: the method's own rule).
    k_values : sequence of int, optional
        Candidate k (default 1..10).
    n_init : int, default=10
        K-Means restarts.
    silhouette_sample : int, default=10_000
        Largest number of rows the silhouette is computed on.
    score_bins : {4, 5}, default=5
        Score bins for ``method="rfm-scores"``.
    random_state : int, RandomState or None, default=0
        Seed for the method and the silhouette sample.

    Attributes
    ----------
    model_ : ClusterModel
        Everything needed to score new customers (JSON round-trip via ``to_dict``).
    scaler_mean_, scaler_scale_ : ndarray of shape (n_features,)
        Standardisation, in transformed space.
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        Segment centres in scaled space, canonical order (NaN rows for empty rule segments).
    labels_ : ndarray of shape (n_samples,)
        Segment of each training row (outliers included).
    outliers_ : ndarray of bool, shape (n_samples,)
        Outlier flag of each training row.
    k_selection_ : KSelection
        The k sweep.
    n_clusters_ : int
        Number of segments found.
    segment_names_ : list of str
        Segment names (R, F, M input), or ``"Segment i"`` for other features.
    segments_ : list of SegmentName or None
        Names, descriptions and actions (R, F, M input only).
    metrics_ : dict
        Silhouette, Calinski-Harabasz, Davies-Bouldin of the final model.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names, when ``X`` was a DataFrame with string column names.

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"recency": [3, 5, 200, 250], "frequency": [12, 9, 1, 2],
    ...                     "monetary": [5000.0, 4000.0, 80.0, 120.0]})
    >>> seg = RFMSegmenter(n_clusters=2, outliers="none").fit(rfm)
    >>> seg.labels_.tolist()
    [0, 0, 1, 1]
    >>> seg.predict(rfm).tolist()
    [0, 0, 1, 1]
    >>> seg.get_feature_names_out().tolist()
    ['distance_to_segment_0', 'distance_to_segment_1']
    """

    def __init__(
        self,
        n_clusters: int | Literal["auto"] = "auto",
        *,
        method: ClusterMethod = "kmeans",
        outliers: OutlierMethod = "zscore",
        feature_transform: TransformMethod = "none",
        select: SelectMethod = "auto",
        k_values: Sequence[int] | None = None,
        n_init: int = 10,
        silhouette_sample: int = 10_000,
        score_bins: int = 5,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.method = method
        self.outliers = outliers
        self.feature_transform = feature_transform
        self.select = select
        self.k_values = k_values
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample
        self.score_bins = score_bins
        self.random_state = random_state

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _rfm_view(X: Any) -> Any:
        """A DataFrame holding R, F, M columns, reduced to those three in order; else X."""
        if isinstance(X, pd.DataFrame) and all(c in X.columns for c in FEATURES):
            return X.loc[:, list(FEATURES)]
        return X

    def _config(self) -> ClusterConfig:
        """The ClusterConfig for the current parameters (ConfigError if one is invalid)."""
        n = self.n_clusters
        if n == "auto":
            k = None
        elif isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1:
            k = int(n)
        else:
            raise ConfigError(f"n_clusters must be 'auto' or an integer >= 1, got {n!r}.")
        if isinstance(self.random_state, int | np.integer) and not isinstance(
            self.random_state, bool
        ):
            seed = int(self.random_state)
        else:
            # None or a RandomState: draw one seed, as scikit-learn estimators do.
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        k_values = tuple(range(1, 11)) if self.k_values is None else tuple(self.k_values)
        return ClusterConfig(
            method=self.method,
            outliers=self.outliers,
            transform=self.feature_transform,
            k=k,
            k_values=k_values,
            select=self.select,
            random_state=seed,
            n_init=self.n_init,
            silhouette_sample=self.silhouette_sample,
            score_bins=self.score_bins,
        )

    def _validated(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        arr: np.ndarray = validate_data(self, self._rfm_view(X), reset=False, dtype=np.float64)
        return arr

    def _scaled(self, X: Any) -> np.ndarray:
        """Validated X in the model's scaled space."""
        arr = self._validated(X)
        Z, _ = self.model_.scaled(arr)
        return Z

    # ---------------------------------------------------------------- API

    def fit(self, X: Any, y: Any = None) -> Self:
        """Fit the segmentation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or DataFrame
            Features; a DataFrame with recency, frequency, monetary columns is reduced to
            those three (in that order), and an array of 3 columns is taken as R, F, M.
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        ConfigError
            If a parameter is invalid or n_clusters exceeds the number of distinct rows.
        ValueError
            If X is empty, not numeric or not finite (scikit-learn's validation).
        """
        config = self._config()
        arr = validate_data(self, self._rfm_view(X), dtype=np.float64)
        fit = fit_segments(arr, config=config)
        if arr.shape[1] == len(FEATURES):
            fit = place_outliers(pd.DataFrame(arr, columns=list(FEATURES)), fit)
        model: ClusterModel = fit.model
        self.model_ = model
        self.scaler_mean_ = np.asarray(model.scaler_mean, dtype=np.float64)
        self.scaler_scale_ = np.asarray(model.scaler_scale, dtype=np.float64)
        self.cluster_centers_ = model.center_array()
        self.labels_ = np.asarray(fit.labels, dtype=np.int64)
        self.outliers_ = np.asarray(fit.outlier, dtype=bool)
        self.k_selection_: KSelection = fit.selection
        self.n_clusters_ = int(model.k)
        self.metrics_ = dict(fit.metrics)
        self.segments_: list[SegmentName] | None
        if arr.shape[1] == len(FEATURES):
            rfm = pd.DataFrame(arr, columns=list(FEATURES))
            _, segments = describe_segments(rfm, self.labels_, model)
            self.segments_ = list(segments)
            self.segment_names_ = [s.name for s in segments]
        else:
            self.segments_ = None
            self.segment_names_ = [f"Segment {i}" for i in range(self.n_clusters_)]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Segment of each row (nearest centre, most likely component, or score cell's rule).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of int64, shape (n_samples,)
        """
        arr = self._validated(X)
        return self.model_.assign(arr).labels

    @available_if(lambda self: self.method == "gmm")
    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior probability of each segment (``method="gmm"`` only).

        Returns
        -------
        ndarray of shape (n_samples, n_clusters_)
        """
        Z = self._scaled(X)
        state = self.model_.state
        assert isinstance(state, GaussianState)  # available only for method="gmm"
        lr = state.log_resp(Z, self.cluster_centers_)
        p = np.exp(lr - lr.max(axis=1, keepdims=True))
        result: np.ndarray = p / p.sum(axis=1, keepdims=True)
        return result

    def transform(self, X: Any) -> np.ndarray:
        """Distance of each row to each segment centre, in scaled space (like KMeans).

        For ``method="gmm"`` the posterior probability of each segment; for
        ``method="rfm-scores"`` the R, F and M scores (see :meth:`get_feature_names_out`).
        """
        arr = self._validated(X)
        if isinstance(self.model_.state, ScoreState):
            return np.asarray(self.model_.state.scores(arr), dtype=np.float64)
        Z, _ = self.model_.scaled(arr)
        if isinstance(self.model_.state, GaussianState):
            lr = self.model_.state.log_resp(Z, self.cluster_centers_)
            p = np.exp(lr - lr.max(axis=1, keepdims=True))
            return np.asarray(p / p.sum(axis=1, keepdims=True))
        return np.sqrt(((Z[:, np.newaxis, :] - self.cluster_centers_) ** 2).sum(axis=2))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the columns :meth:`transform` returns."""
        check_is_fitted(self)
        if isinstance(self.model_.state, ScoreState):
            return np.asarray(["r_score", "f_score", "m_score"], dtype=object)
        what = "probability_of" if isinstance(self.model_.state, GaussianState) else "distance_to"
        return np.asarray([f"{what}_segment_{i}" for i in range(self.n_clusters_)], dtype=object)

    def score(self, X: Any, y: Any = None) -> float:
        """Higher is better: the mean log-likelihood for mixtures, else the opposite of the sum
        of squared distances of rows to their segment's centre."""
        Z = self._scaled(X)
        if isinstance(self.model_.state, GaussianState):
            lr = self.model_.state.log_resp(Z, self.cluster_centers_)
            top = lr.max(axis=1, keepdims=True)
            return float((top[:, 0] + np.log(np.exp(lr - top).sum(axis=1))).mean())
        labels = self.predict(X)
        centers = np.nan_to_num(self.cluster_centers_)
        return -float(((Z - centers[labels]) ** 2).sum())

    def outlier_mask(self, X: Any) -> np.ndarray:
        """Whether each row is beyond the fitted outlier bounds."""
        arr = self._validated(X)
        return self.model_.scaled(arr)[1]
