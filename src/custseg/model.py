"""A fitted segmentation as data: what model.json holds, and how it scores new customers.

Everything here is plain NumPy (no scikit-learn, no SciPy), so reading a run folder or scoring
customers with a saved model stays quick to import. The classes are pydantic dataclasses:
the same definition validates a model built by :mod:`custseg.cluster` and one read back from
a file, and :meth:`ClusterModel.from_dict` turns any malformed document into one
:class:`ModelFileError` line.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from .config import OutlierMethod, TransformMethod
from .errors import ConfigError, InputError, ModelFileError, SchemaError
from .methods.base import CentroidState, MethodName, nearest_center
from .methods.gmm import GaussianState
from .methods.scores import ScoreState
from .schema import RFM_COLUMNS, feature_columns

__all__ = [
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "Assignment",
    "ClusterModel",
    "KSelection",
    "OutlierRule",
    "as_float_matrix",
    "features_matrix",
    "nearest_center",
    "standardize",
    "transform_features",
]

MODEL_FORMAT = "custseg-cluster-model"
MODEL_VERSION = 1

Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Level = Literal["low", "medium", "high"]
Bound = Annotated[float | None, Field(strict=True, allow_inf_nan=False)]
StrictInt = Annotated[int, Field(strict=True)]
_FROZEN = ConfigDict(extra="forbid", arbitrary_types_allowed=False)


def transform_features(X: np.ndarray, *, transform: TransformMethod) -> np.ndarray:
    """Apply the feature transform (a new array; ``X`` is not modified).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Raw feature values (recency, frequency, monetary for RFM).
    transform : {"none", "log"}
        ``"log"`` applies ``numpy.log1p``, which tames the long right tails of F and M.

    Returns
    -------
    ndarray of float64, same shape as ``X``.

    Raises
    ------
    ConfigError
        If ``transform`` is unknown, or ``"log"`` meets negative values.

    Examples
    --------
    >>> transform_features(np.array([[0.0, 1.0, 9.0]]), transform="log").round(3)
    array([[0.   , 0.693, 2.303]])
    """
    arr = np.array(X, dtype=np.float64, copy=True)
    if transform == "none":
        return arr
    if transform == "log":
        if arr.size and np.nanmin(arr) < 0:
            raise ConfigError(
                f"transform='log' needs non-negative values, found a minimum of "
                f"{float(np.nanmin(arr)):g}. Use transform='none' or shift the features first."
            )
        return np.log1p(arr)
    raise ConfigError(f"Unknown transform {transform!r}. Use none or log.")


def as_float_matrix(X: Any) -> np.ndarray:
    """A 2-D float64 array of finite values (InputError otherwise)."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            "The features are not all numeric. Pass numbers for recency, frequency, monetary."
        ) from None
    if arr.ndim != 2:
        raise InputError(
            f"Expected a 2-D table of features, got an array of shape {arr.shape}. "
            "Pass one row per customer."
        )
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise InputError(
            f"The features hold {bad} missing or infinite value(s). Drop or fill them first."
        )
    return arr


def features_matrix(
    X: np.ndarray | pd.DataFrame, features: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Features as a float matrix and their names: of a DataFrame its RFM columns (recency and
    frequency alone when it has no ``monetary``: data without money), or array columns."""
    if isinstance(X, pd.DataFrame):
        want = tuple(features) if features is not None else feature_columns(list(X.columns))
        missing = [c for c in want if c not in X.columns]
        if missing:
            raise SchemaError(
                f"Missing feature column(s) {missing}: found {[str(c) for c in X.columns]}. "
                f"Pass a table with columns {list(want)}."
            )
        try:
            values = X.loc[:, list(want)].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise InputError(
                f"Feature columns {list(want)} are not all numeric: dtypes "
                f"{[str(t) for t in X.loc[:, list(want)].dtypes]}. Convert them to numbers."
            ) from None
        return as_float_matrix(values), want
    arr = as_float_matrix(X)
    if features is not None:
        if arr.shape[1] != len(features):
            raise InputError(
                f"Expected {len(features)} feature columns ({', '.join(features)}), got "
                f"{arr.shape[1]}. Pass the columns in that order."
            )
        return arr, tuple(features)
    names = RFM_COLUMNS if arr.shape[1] == 3 else tuple(f"x{i}" for i in range(arr.shape[1]))
    return arr, names


@dataclass(frozen=True, config=_FROZEN)
class OutlierRule:
    """Per-feature bounds in transformed space; a row is an outlier iff any value is on or beyond.

    A row is flagged when, for any feature ``j``, ``x[j] <= lower[j]`` or ``x[j] >= upper[j]``.
    Bounds of ``-inf`` / ``+inf`` never flag (they are written as ``null`` in JSON).

    Parameters
    ----------
    method : {"zscore", "iqr", "none"}
        The rule the bounds came from (see :func:`custseg.cluster.fit_outlier_rule`).
    lower, upper : tuple of float
        One bound per feature.
    """

    method: OutlierMethod
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    @model_validator(mode="after")
    def _ordered(self) -> OutlierRule:
        if len(self.lower) != len(self.upper):
            raise ValueError("'lower' and 'upper' must have one bound per feature")
        if any(lo > hi for lo, hi in zip(self.lower, self.upper, strict=True)):
            raise ValueError("outlier bounds must have lower <= upper")
        return self

    def flag(self, Xt: np.ndarray) -> np.ndarray:
        """Boolean mask of outlier rows of ``Xt`` (transformed features, same columns as fitted).

        Raises
        ------
        InputError
            If ``Xt`` does not have one column per bound.
        """
        arr = np.asarray(Xt, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != len(self.lower):
            raise InputError(
                f"Outlier rule expects {len(self.lower)} feature columns, got shape "
                f"{arr.shape}. Pass the same features the rule was fitted on."
            )
        lo = np.asarray(self.lower, dtype=np.float64)
        hi = np.asarray(self.upper, dtype=np.float64)
        mask: np.ndarray = np.any((arr <= lo) | (arr >= hi), axis=1)
        return mask

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; infinite bounds are written as ``null``."""
        return {
            "method": self.method,
            "lower": [None if math.isinf(v) else float(v) for v in self.lower],
            "upper": [None if math.isinf(v) else float(v) for v in self.upper],
        }


@dataclass(frozen=True, config=_FROZEN)
class KSelection:
    """The k sweep and the choice made from it (the ``k_selection`` object of summary.json).

    Parameters
    ----------
    method : {"knee", "silhouette", "fixed", "merge-gap", "bic", "rules", "backtest"}
        How ``k`` was chosen: the knee of the SSE (or merge-height) curve, the best silhouette,
        given by the user (``"fixed"``; the sweep is still reported), the largest merge-height
        gap (Ward), the lowest BIC (mixtures), the rule table (RFM scores; no sweep), or the
        best holdout figure.
    k_values : list of int
        The k actually swept.
    sse : list of float
        K-Means inertia per k (scaled space).
    silhouette, calinski_harabasz, davies_bouldin : list of float or None
        Quality per k; ``None`` where undefined (k = 1, or k >= the number of distinct rows).
    knee : int or None
        The knee of the SSE curve found by kneed, if any.
    k : int
        The chosen number of clusters.
    note : str or None
        A sentence for humans when something was not as asked (no knee, k dropped, ...).
    """

    method: Literal["knee", "silhouette", "fixed", "merge-gap", "bic", "rules", "backtest"]
    k_values: list[int]
    sse: list[float]
    silhouette: list[float | None]
    calinski_harabasz: list[float | None]
    davies_bouldin: list[float | None]
    knee: int | None
    k: int
    note: str | None = None

    @model_validator(mode="after")
    def _aligned(self) -> KSelection:
        n = len(self.k_values)
        lists = (self.sse, self.silhouette, self.calinski_harabasz, self.davies_bouldin)
        if any(len(v) != n for v in lists):
            raise ValueError("k_values, sse and the quality lists must have the same length")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The ``k_selection`` object of summary.json (docs/REFERENCE.md section 4), k and note."""
        out: dict[str, Any] = _KSELECTION.dump_python(self, mode="json")
        return out


_KSELECTION: TypeAdapter[KSelection] = TypeAdapter(KSelection)


def standardize(Xt: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Standardise with a fitted mean and scale (the one formula used at fit and predict)."""
    return (Xt - mean) / scale


State = CentroidState | GaussianState | ScoreState
#: The state class each method keeps in model.json.
STATES: dict[str, type] = {
    "kmeans": CentroidState,
    "hierarchical": CentroidState,
    "gmm": GaussianState,
    "rfm-scores": ScoreState,
}
Center = tuple[Finite, ...] | None


@dataclasses.dataclass(frozen=True)
class Assignment:
    """Segments of customers scored with a model.

    Attributes
    ----------
    labels : ndarray of int64
        Segment id of each row.
    outlier : ndarray of bool
        Whether each row is beyond the model's outlier bounds.
    probability : ndarray of float, or None
        Posterior probability of the segment (Gaussian mixtures only).
    scores : ndarray of int64 of shape (n, 3), or None
        R, F, M scores (RFM score segments only).
    """

    labels: np.ndarray
    outlier: np.ndarray
    probability: np.ndarray | None = None
    scores: np.ndarray | None = None


@dataclass(frozen=True, config=ConfigDict(extra="forbid"), kw_only=True, repr=False)
class ClusterModel:
    """Everything needed to score new customers the way the fit did.

    Parameters
    ----------
    features : tuple of str
        Feature names, in column order.
    transform : {"none", "log"}
        Transform applied before outlier detection and scaling.
    outlier_rule : OutlierRule
        Bounds in transformed space.
    scaler_mean, scaler_scale : tuple of float
        Standardisation fitted on the non-outliers (transformed space).
    centers : tuple of (tuple of float or None)
        Each segment's centre in scaled space, in segment order (a mixture's means; None for
        a rule segment no training customer fell in).
    k : int
        Number of segments.
    random_state : int or None
        The seed the model was fitted with.
    method : {"kmeans", "hierarchical", "gmm", "rfm-scores"}
        The clustering method (see :mod:`custseg.methods`).
    params : dict
        The method's parameters.
    state : CentroidState, GaussianState or ScoreState
        What the method needs beyond the centres to predict.
    level_cuts : tuple of (float, float), optional
        Per feature, the values that divide all customers into thirds: below the first is
        the low third, at or above the second the high third (raw units).
    assertions : tuple of dict, optional
        Per segment, the levels its name asserts (see :mod:`custseg.naming`). With them,
        outliers are placed in the nearest segment whose name they do not contradict.

    Examples
    --------
    >>> from custseg.cluster import fit_segments
    >>> from custseg.config import ClusterConfig
    >>> fit = fit_segments(np.array([[1.0, 1, 10], [2, 1, 12], [300, 1, 5]]),
    ...                    config=ClusterConfig(k=2))
    >>> labels, outlier = fit.model.predict(np.array([[5.0, 1, 11]]))
    >>> int(labels[0]), bool(outlier[0])
    (0, False)
    >>> fit.model
    ClusterModel(method='kmeans', k=2, features=('recency', 'frequency', 'monetary'), \
transform='log', outliers='zscore')
    """

    features: tuple[str, ...]
    transform: TransformMethod
    outlier_rule: OutlierRule
    scaler_mean: tuple[Finite, ...]
    scaler_scale: tuple[Finite, ...]
    centers: tuple[Center, ...]
    k: StrictInt
    random_state: StrictInt | None = 0
    method: MethodName = "kmeans"
    params: dict[str, Any] = Field(default_factory=dict)
    state: State = Field(default_factory=CentroidState)
    level_cuts: tuple[tuple[Finite, Finite], ...] | None = None
    assertions: tuple[dict[str, Level], ...] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ClusterModel:
        problem = next((why for failed, why in self._checks() if failed), None)
        if problem is not None:
            raise ValueError(problem)
        _check_state(self)
        return self

    def _checks(self) -> list[tuple[bool, str]]:
        """Each consistency rule of a model file: (broken?, what the file must hold)."""
        n, k = len(self.features), self.k
        return [
            (
                not n or len(set(self.features)) != n or not all(self.features),
                "'features' must be a non-empty list of distinct names",
            ),
            (len(self.scaler_mean) != n, f"'scaler_mean' must be a list of {n} numbers"),
            (len(self.scaler_scale) != n, f"'scaler_scale' must be a list of {n} numbers"),
            (len(self.outlier_rule.lower) != n, f"'lower' must be a list of {n} numbers"),
            (any(v <= 0 for v in self.scaler_scale), "'scaler_scale' must be positive"),
            (k < 1, "'k' must be a positive integer"),
            (len(self.centers) != k, f"'centers' must be a list of k={k} rows"),
            (
                any(row is not None and len(row) != n for row in self.centers),
                f"'centers' must be a list of {n} numbers",
            ),
            (
                self.assertions is not None and len(self.assertions) != k,
                f"'assertions' must have k={k} entries",
            ),
            (
                self.level_cuts is not None and len(self.level_cuts) != n,
                f"'level_cuts' must have {n} pairs",
            ),
            (
                not isinstance(self.state, STATES[self.method]),
                f"'state' is not the state of a {self.method} model",
            ),
            (
                self.method != "rfm-scores" and any(row is None for row in self.centers),
                "'centers' must hold finite numbers",
            ),
        ]

    def __repr__(self) -> str:
        return (
            f"ClusterModel(method={self.method!r}, k={self.k}, features={self.features!r}, "
            f"transform={self.transform!r}, outliers={self.outlier_rule.method!r})"
        )

    def center_array(self) -> np.ndarray:
        """The centres as a (k, n_features) array, NaN rows for empty rule segments."""
        nan = [math.nan] * len(self.features)
        return np.asarray([nan if c is None else c for c in self.centers], dtype=np.float64)

    def scaled(self, X_raw: np.ndarray | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Scaled features and the outlier mask for raw features ``X_raw``."""
        arr, _ = features_matrix(X_raw, self.features)
        Xt = transform_features(arr, transform=self.transform)
        outlier = self.outlier_rule.flag(Xt)
        Z = standardize(Xt, np.asarray(self.scaler_mean), np.asarray(self.scaler_scale))
        return Z, outlier

    def assign(self, X_raw: np.ndarray | pd.DataFrame) -> Assignment:
        """Segment, outlier flag and, where the method has them, probability and R/F/M scores.

        Raises
        ------
        InputError
            If the features are missing, not numeric or not finite.
        """
        arr, _ = features_matrix(X_raw, self.features)
        Z, outlier = self.scaled(arr)
        centers = self.center_array()
        probability = scores = None
        if isinstance(self.state, GaussianState):
            labels, probability = self.state.posterior(Z, centers)
        else:
            labels = self.state.predict(arr, Z, centers)
        if isinstance(self.state, ScoreState):
            scores = self.state.scores(arr)
        elif self.assertions is not None and self.level_cuts is not None and outlier.any():
            labels = labels.copy()
            labels[outlier] = self._place(arr[outlier], Z[outlier], centers)
        return Assignment(labels, outlier, probability, scores)

    def levels(self, X_raw: np.ndarray) -> np.ndarray:
        """Each row's third of the training customers per feature: 0 low, 1 medium, 2 high."""
        if self.level_cuts is None:
            raise InputError("This model has no level cuts. Re-create it with custseg run.")
        cuts = np.asarray(self.level_cuts, dtype=np.float64)
        return (X_raw >= cuts[:, 0]).astype(np.int64) + (X_raw >= cuts[:, 1])

    def _place(self, raw: np.ndarray, Z: np.ndarray, centers: np.ndarray) -> np.ndarray:
        """The nearest segment (most likely, for mixtures) each row does not contradict."""
        assert self.assertions is not None
        if isinstance(self.state, GaussianState):
            preference = np.argsort(-self.state.log_resp(Z, centers), axis=1, kind="stable")
        else:
            d2 = ((Z[:, np.newaxis, :] - centers[np.newaxis, :, :]) ** 2).sum(axis=2)
            preference = np.argsort(d2, axis=1, kind="stable")
        own = self.levels(raw)
        bad = np.zeros((len(raw), self.k), dtype=bool)
        for c, asserted in enumerate(self.assertions):
            for j, feature in enumerate(self.features):
                level = asserted.get(feature)
                if level in ("low", "high"):
                    opposite = 2 if level == "low" else 0
                    bad[:, c] |= own[:, j] == opposite
        ok = ~np.take_along_axis(bad, preference, axis=1)
        first = np.where(ok.any(axis=1), ok.argmax(axis=1), 0)
        return np.asarray(preference[np.arange(len(raw)), first], dtype=np.int64)

    def predict(self, X_raw: np.ndarray | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Segment and outlier flag for each row of raw features (see :meth:`assign`).

        Parameters
        ----------
        X_raw : ndarray of shape (n_samples, n_features) or DataFrame
            Raw features in ``features`` order, or a DataFrame with those columns.

        Returns
        -------
        labels : ndarray of int64
            Segment id (the nearest centre for K-Means and Ward, the most likely component
            for mixtures, the score cell's rule for RFM scores).
        outlier : ndarray of bool
            Whether the row is beyond the outlier bounds.

        Raises
        ------
        InputError
            If the features are missing, not numeric or not finite.
        """
        found = self.assign(X_raw)
        return found.labels, found.outlier

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (lists, str, float, int, None; infinite bounds as null)."""
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "features": list(self.features),
            "transform": self.transform,
            "outliers": self.outlier_rule.to_dict(),
            "scaler_mean": [float(v) for v in self.scaler_mean],
            "scaler_scale": [float(v) for v in self.scaler_scale],
            "centers": [None if row is None else [float(v) for v in row] for row in self.centers],
            "k": int(self.k),
            "random_state": None if self.random_state is None else int(self.random_state),
            "method": self.method,
            "params": dict(self.params),
            "state": self.state.to_dict(),
            "level_cuts": None if self.level_cuts is None else [list(c) for c in self.level_cuts],
            "assertions": None if self.assertions is None else [dict(a) for a in self.assertions],
        }

    @classmethod
    def from_dict(cls, d: Any) -> ClusterModel:
        """Rebuild a model from :meth:`to_dict` output, validating every field.

        Raises
        ------
        ModelFileError
            On anything that is not a well-formed custseg cluster model (wrong type, shape,
            non-finite number, unknown key); the message is one line.
        """
        try:
            doc = _MODEL_DOC.validate_python(d)
            rule = doc.outliers
            state: State = TypeAdapter(STATES[doc.method]).validate_python(doc.state)
            return cls(
                features=doc.features,
                transform=doc.transform,
                outlier_rule=OutlierRule(
                    rule.method,
                    tuple(-math.inf if v is None else v for v in rule.lower),
                    tuple(math.inf if v is None else v for v in rule.upper),
                ),
                scaler_mean=doc.scaler_mean,
                scaler_scale=doc.scaler_scale,
                centers=doc.centers,
                k=doc.k,
                random_state=doc.random_state,
                method=doc.method,
                params=doc.params,
                state=state,
                level_cuts=doc.level_cuts,
                assertions=doc.assertions,
            )
        except ValidationError as exc:
            raise _invalid(exc, d) from None


def _check_state(model: ClusterModel) -> None:
    """The state's shapes agree with k and the features."""
    n, k = len(model.features), model.k
    state = model.state
    if isinstance(state, GaussianState):
        if len(state.weights) != k or len(state.covariances) != k:
            raise ValueError(f"a mixture's 'weights' and 'covariances' must have k={k} entries")
        if any(len(c) != n or any(len(row) != n for row in c) for c in state.covariances):
            raise ValueError(f"each covariance must be a {n} x {n} matrix")
        if any(w <= 0 for w in state.weights):
            raise ValueError("mixture 'weights' must be positive")
    if isinstance(state, ScoreState):
        if len(state.rules) != k:
            raise ValueError(f"the score rule table must have k={k} rows")
        if n != 3:
            raise ValueError("RFM scores need exactly the recency, frequency, monetary features")


@dataclass(frozen=True, config=_FROZEN)
class _RuleDoc:
    method: OutlierMethod
    lower: tuple[Bound, ...]
    upper: tuple[Bound, ...]


@dataclass(frozen=True, config=_FROZEN)
class _ModelDoc:
    """The JSON shape of a :class:`ClusterModel` (see :meth:`ClusterModel.to_dict`)."""

    format: Literal["custseg-cluster-model"]
    version: Literal[1]
    features: tuple[str, ...]
    transform: TransformMethod
    outliers: _RuleDoc
    scaler_mean: tuple[Finite, ...]
    scaler_scale: tuple[Finite, ...]
    centers: tuple[Center, ...]
    k: StrictInt
    random_state: StrictInt | None
    method: MethodName
    params: dict[str, Any]
    state: dict[str, Any]
    level_cuts: tuple[tuple[Finite, Finite], ...] | None
    assertions: tuple[dict[str, Level], ...] | None


_MODEL_DOC: TypeAdapter[_ModelDoc] = TypeAdapter(_ModelDoc)

#: What each key must be, for messages about values of the wrong type (see _invalid).
_MUST: dict[str, tuple[str, str]] = {
    # key: (what the whole value must be, what its items must be)
    "format": (f"must be {MODEL_FORMAT!r}", ""),
    "version": (f"must be {MODEL_VERSION}", ""),
    "features": ("must be a non-empty list of distinct names", "must be names"),
    "transform": ("must be 'none' or 'log'", ""),
    "outliers": ("must be an object with method, lower, upper", ""),
    "outliers.method": ("must be zscore, iqr or none", ""),
    "lower": ("must be a list of {n} numbers", "must hold numbers or null"),
    "upper": ("must be a list of {n} numbers", "must hold numbers or null"),
    "scaler_mean": ("must be a list of {n} numbers", "must hold finite numbers"),
    "scaler_scale": ("must be a list of {n} numbers", "must hold finite numbers"),
    "centers": ("must be a list of k={k} rows", "must hold finite numbers"),
    "k": ("must be a positive integer", ""),
    "random_state": ("must be an integer or null", ""),
}


_MISSING = ("missing", "missing_argument")
_UNKNOWN = ("unexpected_keyword_argument", "extra_forbidden")
_FIX = "Re-create the model file with custseg run."


def _model_error(what: str, seen: Any = None) -> ModelFileError:
    got = "" if seen is None else ", got " + reprlib.repr(seen).replace("\n", " ")
    problem = f"Invalid cluster model: {what}{got}"
    error = ModelFileError(f"{problem}. {_FIX}")
    error.problem = problem  # a file reader names its own fix (formats.ModelFile.read)
    return error


def _invalid(exc: ValidationError, doc: Any) -> ModelFileError:
    """One line about the first problem of a model document."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    kind = err["type"]
    if not isinstance(doc, dict):
        return _model_error("expected a JSON object", type(doc).__name__)
    if kind == "value_error":  # a consistency check: its message says it all
        return _model_error(str(err["ctx"]["error"]))
    if kind in _MISSING:
        missing = [".".join(map(str, e["loc"])) for e in errors if e["type"] in _MISSING]
        return _model_error(f"missing key(s) {missing}", sorted(str(x) for x in doc))
    if kind in _UNKNOWN:
        return _model_error("unknown key(s)", [".".join(map(str, err["loc"]))])
    return _model_error(_wrong_type(err["loc"], doc), err.get("input"))


def _wrong_type(loc: tuple[int | str, ...], doc: dict[str, Any]) -> str:
    """What the value at ``loc`` must be, e.g. "'centers' must hold finite numbers"."""
    keys = [p for p in loc if isinstance(p, str)]
    dotted = ".".join(keys)
    key = dotted if dotted in _MUST else (keys[-1] if keys else "")
    whole, item = _MUST.get(key, ("is invalid", "is invalid"))
    inside = any(isinstance(p, int) for p in loc)
    features = doc.get("features")
    n = len(features) if isinstance(features, list) else "n"
    return f"{key!r} " + (item if inside and item else whole).format(n=n, k=doc.get("k"))
