"""Settings of each pipeline stage, and the config file that sets them.

Each stage's settings are one frozen pydantic model: the same model validates the library's
keyword arguments, the CLI's flags, the TOML/JSON config file and the ``settings`` object that
summary.json and model.json carry, so a rule is written once and every entry point gives the
same one-line :class:`ConfigError`. Precedence is defaults < config file < CLI flags; the CLI
builds these objects, the stages only read them.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import json
import numbers
import reprlib
import tomllib
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .choices import (
    ClusterEngine,
    ClusterMethod,
    FrequencyUnit,
    OutlierMethod,
    Preset,
    Returns,
    SelectMethod,
    TransformMethod,
)
from .errors import ConfigError

__all__ = [
    "METHOD_RULES",
    "PRESETS",
    "CleanConfig",
    "ClusterConfig",
    "ClusterEngine",
    "ClusterMethod",
    "FrequencyUnit",
    "NameOverride",
    "OutlierMethod",
    "Preset",
    "Returns",
    "RunConfig",
    "ScoreRule",
    "SelectMethod",
    "Settings",
    "TransformMethod",
    "build_run_config",
    "load_config_file",
    "unknown_choice",
]

#: The rules each method can choose k by (besides a fixed ``k``).
METHOD_RULES: dict[str, tuple[str, ...]] = {
    "kmeans": ("auto", "knee", "silhouette", "backtest"),
    "hierarchical": ("auto", "merge-gap", "knee", "silhouette", "backtest"),
    "gmm": ("auto", "bic", "silhouette", "backtest"),
    # The rule table fixes k: the default "backtest" has nothing to choose and is accepted.
    "rfm-scores": ("auto", "backtest"),
}

#: Names a value in a message: a CLI flag, a config-file key, a keyword argument.
Label = Callable[[str], str]
# The label of the validation under way (pydantic calls a custom __init__ for nested models
# too, so the label travels in a context variable rather than as an argument).
_LABEL: ContextVar[Label] = ContextVar("custseg_label", default=str)


def _fail(text: str) -> PydanticCustomError:
    """A validation error whose message is ``text`` as it is (no template fields)."""
    return PydanticCustomError("custseg", "{text}", {"text": text})


def _at_least(minimum: int, what: str = "at least") -> Callable[[Any], Any]:
    """A validator refusing numbers below ``minimum`` with ``must be {what} {minimum}``."""

    def check(value: Any) -> Any:
        if value is not None and value < minimum:
            raise _fail(f"must be {what} {minimum}, got {value!r}")
        return value

    return check


_INTEGER = "an integer of at least"


def _integer(value: Any) -> Any:
    """Integers, NumPy's included; never a bool (True is not a number of clusters)."""
    if isinstance(value, bool):
        raise _fail(f"must be an integer, got {value!r}")
    return int(value) if isinstance(value, numbers.Integral) else value


Integer = Annotated[int, BeforeValidator(_integer)]

#: The largest seed NumPy's and scikit-learn's random states take (2**32 - 1).
MAX_SEED = 2**32 - 1


def _seed(value: int | None) -> int | None:
    """A seed NumPy accepts: 0 to 2**32 - 1."""
    if value is not None and not 0 <= value <= MAX_SEED:
        raise _fail(f"must be a whole number from 0 to {MAX_SEED:,}, got {value!r}")
    return value


def _positive(value: float) -> float:
    if not value > 0:
        raise _fail(f"must be positive, got {value:g}. Use e.g. 3")
    return value


def _k_values(values: tuple[int, ...]) -> tuple[int, ...]:
    if not values or min(values) < 1 or list(values) != sorted(set(values)):
        raise _fail(
            f"must be increasing positive integers: sort them increasing without repeats, got "
            f"{reprlib.repr(list(values))}. Example: --k-range 1-10 or k_values=range(1, 11)",
        )
    return values


class Settings(BaseModel):
    """Base of the settings models: frozen, no unknown keys, one-line errors.

    Constructing a model with an invalid value raises :class:`ConfigError` naming the value,
    what is wrong and the fix; :meth:`build` names the value in the caller's words (a flag, a
    config-file key).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(explain(exc, type(self), label=_LABEL.get())) from None

    @classmethod
    def build(cls, data: Mapping[str, Any], *, label: Label = str) -> Self:
        """Validate ``data``; a bad value is named by ``label(field)`` in the error."""
        token = _LABEL.set(label)
        try:
            return cls(**data)
        finally:
            _LABEL.reset(token)

    def replace(self, *, label: Label = str, **changes: Any) -> Self:
        """A validated copy with ``changes`` applied (``None`` values are ignored)."""
        given = {k: v for k, v in changes.items() if v is not None}
        if not given:
            return self
        return type(self).build({**self.model_dump(), **given}, label=label)


def explain(exc: ValidationError, model: type[BaseModel], *, label: Label = str) -> str:
    """One line about the first error of ``exc``: what, the value seen, the fix."""
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]]
    field = loc[0] if loc else ""
    where = label(".".join(loc)) if loc else model.__name__
    value = err.get("input")
    kind = err["type"]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError):  # a nested settings model explained itself
        return f"{where}: {cause}"
    if kind == "custseg":
        return f"{where} {err['msg']}." if loc else f"{err['msg']}."
    if kind == "extra_forbidden":
        known = sorted(model.model_fields)
        return f"Unknown key {where!r}. Known: {known}."
    if kind == "missing":
        return f"{where} is missing."
    if kind == "literal_error":
        info = model.model_fields.get(field)
        options = [str(o) for o in get_args(info.annotation)] if info else []
        options = [o for o in options if o != "None"] or options
        return unknown_choice(str(info.title if info and info.title else where), value, options)
    return f"{where}: {err['msg'].lower()}, got {reprlib.repr(value)}."


def unknown_choice(what: str, value: Any, options: list[str]) -> str:
    """``Unknown transform 'sqrt'. Use none or log.``, with a "did you mean" where one is close.

    Examples
    --------
    >>> unknown_choice("outlier method", "zscor", ["zscore", "iqr", "none"])
    "Unknown outlier method 'zscor'. Use one of zscore, iqr, none. Did you mean 'zscore'?"
    """
    use = " or ".join(options) if len(options) == 2 else "one of " + ", ".join(options)
    close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"Unknown {what} {value!r}. Use {use}.{hint}"


def _iso_date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise _fail(f"{value!r} is not a date. Use YYYY-MM-DD, e.g. 2011-12-10") from None
    return value


Day = Annotated[dt.date | None, BeforeValidator(_iso_date)]


class CleanConfig(Settings):
    """Which rows count as purchase lines.

    Parameters
    ----------
    as_of : date, optional
        Reference date for recency. Rows on or after it are dropped as outside the window.
        Default: the day after the last purchase in the data.
    since, until : date, optional
        Keep rows dated on or after ``since`` and on or before ``until``.
    exclude_codes : tuple of str
        Stock codes that are not products (``POST``, ``M``, ...); needs a stock code column.
    drop_duplicates : bool
        Drop exact duplicate input rows after the first.
    strict : bool
        Refuse the input, instead of counting the rows in the ledger, when a number or a date
        does not parse.
    frequency_unit : {"orders", "days"}
        What frequency counts per customer: distinct orders (invoices; each row where the
        data has no invoice column) or distinct calendar days with a purchase line.
    returns : {"drop", "net"}
        ``net`` subtracts the value of a customer's cancellation lines from their monetary
        value (floored at 0: customers whose net value is 0 or below are kept with monetary 0
        and counted in the ledger); ``drop`` leaves cancellations out. Either way segments.csv
        gives each customer's ``returned`` value.
    monetary : bool
        False (``--no-monetary``): segment on recency and frequency only, with no money in
        the names, tables and report. Data without a value column is segmented so anyway.

    Notes
    -----
    Settings added after the first release are written to summary.json and model.json only
    when they differ from their default, so the files of a default run stay as they were.
    """

    as_of: Day = None
    since: Day = None
    until: Day = None
    exclude_codes: tuple[str, ...] = ()
    drop_duplicates: bool = False
    strict: bool = False
    frequency_unit: FrequencyUnit = Field(
        "orders", title="frequency unit", exclude_if=lambda v: v == "orders"
    )
    returns: Returns = Field("drop", title="returns mode", exclude_if=lambda v: v == "drop")
    monetary: bool = Field(True, exclude_if=lambda v: v is True)

    def aggregation(self) -> dict[str, Any]:
        """The options of :func:`custseg.features.compute_rfm_and_ledger` these rules set."""
        return {
            "frequency_unit": self.frequency_unit,
            "returns": self.returns,
            "monetary": self.monetary,
        }

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.since and self.until and self.since > self.until:
            raise _fail(
                f"--since {self.since} is after --until {self.until}. Swap them or drop one",
            )
        if self.as_of and self.since and self.as_of <= self.since:
            raise _fail(
                f"--as-of {self.as_of} is not after --since {self.since}. "
                "Give an as-of date after the window starts",
            )
        return self


ScoreSet = Annotated[tuple[Integer, ...], Field(min_length=1)]


class ScoreRule(Settings):
    """One row of the RFM score rule table: a segment name and the score cells it covers.

    ``r``, ``f`` and ``m`` list the scores (1 = worst, the number of bins = best; R is
    reversed so that the most recent customers score highest); ``m`` omitted covers every
    M score.
    """

    name: Annotated[str, Field(min_length=1)]
    r: ScoreSet
    f: ScoreSet
    m: ScoreSet | None = None


def check_score_rules(rules: tuple[ScoreRule, ...], bins: int) -> None:
    """Refuse a rule table that leaves a cell uncovered or covers one twice, naming the cells.

    Raises
    ------
    ConfigError
    """
    owner: dict[tuple[int, int, int], str] = {}
    overlaps: list[str] = []
    scores = range(1, bins + 1)
    for rule in rules:
        for axis, values in (("r", rule.r), ("f", rule.f), ("m", rule.m or ())):
            bad = sorted(v for v in values if v not in scores)
            if bad:
                raise ConfigError(
                    f"Score rule {rule.name!r} names {axis} score(s) {bad}; with {bins} bins "
                    f"scores run from 1 to {bins}."
                )
        for cell in itertools.product(rule.r, rule.f, rule.m or scores):
            if cell in owner:
                overlaps.append(
                    f"r={cell[0]} f={cell[1]} m={cell[2]} ({owner[cell]!r} and {rule.name!r})"
                )
            owner.setdefault(cell, rule.name)
    every = itertools.product(scores, scores, scores)
    gaps = [f"r={r} f={f} m={m}" for r, f, m in every if (r, f, m) not in owner]
    if overlaps or gaps:
        parts = []
        if gaps:
            parts.append(f"leaves {len(gaps)} cell(s) uncovered: {', '.join(gaps[:6])}")
        if overlaps:
            parts.append(f"covers {len(overlaps)} cell(s) twice: {', '.join(overlaps[:6])}")
        raise ConfigError(
            "The score rule table " + " and ".join(parts) + ". Give every (r, f, m) score cell "
            "exactly one segment."
        )


class ClusterConfig(Settings):
    """How customers are clustered.

    Parameters
    ----------
    outliers : {"zscore", "iqr", "none"}
        ``zscore`` flags |z| >= ``z_threshold`` on any feature (the reference's rule);
        ``iqr`` flags values beyond ``iqr_factor`` interquartile ranges from the quartiles.
        Outliers are left out of the fit and then assigned to their nearest segment.
    transform : {"none", "log"}
        ``log`` applies log1p to R, F, M before outlier detection and scaling.
    k : int, optional
        Fix the number of clusters; otherwise it is chosen from ``k_values``.
    k_values : tuple of int
        Candidate k for the sweep (default 1..10).
    select : {"auto", "knee", "merge-gap", "bic", "silhouette", "backtest"}
        How k is chosen: the method's own rule (``auto``), the knee of the SSE curve
        (kneed), the largest merge-height gap (Ward), the lowest BIC (mixtures), the best
        silhouette, or what the segments predict on a holdout (``backtest``). When the rule
        finds nothing the best silhouette is taken and a warning says so.
    random_state : int or None
        Seed for K-Means and for the silhouette sample (None: unseeded, not reproducible).
    n_init : int
        K-Means restarts.
    silhouette_sample : int
        Largest number of customers the silhouette is computed on (a seeded sample beyond it).
    method : {"kmeans", "hierarchical", "gmm", "rfm-scores"}
        The segmentation method (see :mod:`custseg.methods`).
    score_bins : {4, 5}
        Score bins of ``rfm-scores`` (quartiles or quintiles).
    holdout_days : int
        The holdout of ``select="backtest"`` (and of ``custseg backtest``), in days.
    score_rules : tuple of ScoreRule, optional
        The rule table of ``rfm-scores`` (default: :data:`custseg.naming.SCORE_RULES`).
    cluster_engine : {"local", "spark"}
        Where K-Means is fitted: ``local`` (scikit-learn on the driver) or ``spark`` (Spark
        MLlib K-Means, k-means||, on the Spark engine's customer table; needs
        ``--engine spark`` and ``method="kmeans"``; see :mod:`custseg.spark_cluster`). Left out
        of the files a run writes while it is ``local``, so default outputs do not change.
    """

    method: ClusterMethod = Field("kmeans", title="method")
    outliers: OutlierMethod = Field("zscore", title="outlier method")
    z_threshold: Annotated[float, AfterValidator(_positive)] = 3.0
    iqr_factor: Annotated[float, AfterValidator(_positive)] = 3.0
    transform: TransformMethod = Field("log", title="transform")
    k: Annotated[Integer | None, AfterValidator(_at_least(1))] = None
    k_values: Annotated[tuple[Integer, ...], AfterValidator(_k_values)] = tuple(range(1, 11))
    select: SelectMethod = Field("backtest", title="selection")
    random_state: Annotated[Integer | None, AfterValidator(_seed)] = 0
    n_init: Annotated[Integer, AfterValidator(_at_least(1, _INTEGER))] = 10
    silhouette_sample: Annotated[Integer, AfterValidator(_at_least(2, _INTEGER))] = 10_000
    score_bins: Literal[4, 5] = Field(5, title="number of score bins")
    holdout_days: Annotated[Integer, AfterValidator(_at_least(1))] = 90
    score_rules: tuple[ScoreRule, ...] | None = None
    cluster_engine: ClusterEngine = Field(
        "local", title="cluster engine", exclude_if=lambda v: v == "local"
    )

    @classmethod
    def preset(cls, name: Preset, **changes: Any) -> ClusterConfig:
        """A named set of settings (see :data:`PRESETS`), with ``changes`` over it."""
        return cls.build({**PRESETS[name], **{k: v for k, v in changes.items() if v is not None}})

    @model_validator(mode="after")
    def _method_options(self) -> Self:
        allowed = METHOD_RULES[self.method]
        if self.select not in allowed:
            raise _fail(
                f"--select {self.select} does not apply to --method {self.method}; use "
                + " or ".join(allowed)
            )
        if self.cluster_engine == "spark" and self.method != "kmeans":
            raise _fail(
                f"--cluster-engine spark fits Spark MLlib K-Means only, not --method "
                f"{self.method}. Use --method kmeans, or --cluster-engine local"
            )
        if self.method == "rfm-scores" and self.k is not None:
            raise _fail(
                "--k does not apply to --method rfm-scores: its segments are the rows of the "
                "score rule table. Drop --k, or use another method"
            )
        if self.score_rules is not None:
            try:
                check_score_rules(self.score_rules, self.score_bins)
            except ConfigError as exc:
                raise _fail(str(exc).rstrip(".")) from None
        return self


#: Named settings: ``default`` is the evidence-chosen default (docs/defaults.md: K-Means on
#: log R, F, M, k chosen by what the segments predict on a holdout of the user's own data);
#: ``tutorial`` is the reference tutorial's own method (z-score outliers, no transform, k at
#: the knee of the SSE curve).
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tutorial": {"method": "kmeans", "outliers": "zscore", "transform": "none", "select": "auto"},
}


class NameOverride(Settings):
    """A segment's name, description template or action, replacing the default ones."""

    name: str | None = None
    description: str | None = None
    action: str | None = None

    @field_validator("name", "description", "action")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise _fail("must be non-empty text")
        return value

    def given(self) -> dict[str, str]:
        """The fields set, as a plain mapping."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class RunConfig(Settings):
    """Everything a run needs besides its input: stage settings and segment name overrides."""

    clean: CleanConfig = Field(default_factory=CleanConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    names: dict[str, dict[str, str]] = Field(default_factory=dict)


_SECTIONS = {"clean": CleanConfig, "cluster": ClusterConfig}


def _read_document(p: Path) -> dict[str, Any]:
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"Cannot read config file {str(p)!r}: {why}. Check the path.") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"Config file {str(p)!r} is not valid {p.suffix or 'TOML'}: {exc}."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {str(p)!r} must hold a table of sections.")
    unknown = sorted(set(data) - {*_SECTIONS, "names"})
    if unknown:
        raise ConfigError(
            f"Unknown section(s) {unknown} in config file {str(p)!r}. Use clean, cluster, names."
        )
    return data


S = TypeVar("S", bound=Settings)


def _section(p: Path, name: str, base: S, values: Any) -> S:
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] in config file {str(p)!r} must be a table of keys.")
    known = set(type(base).model_fields)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"Unknown key(s) {unknown} in [{name}] of the config file {str(p)!r}. "
            f"Known: {sorted(known)}."
        )
    return type(base).build(
        {**base.model_dump(), **values}, label=lambda key: f"[{name}] {key} in {p.name}"
    )


def _names_label(key: str) -> Label:
    return lambda field: f"[names] {key!r} {field}"


def _names(p: Path, base: Mapping[str, dict[str, str]], values: Any) -> dict[str, dict[str, str]]:
    names = dict(base)
    for key, value in (values or {}).items():
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise ConfigError(
                f"[names] {key!r} in {p.name} must be a new name or a table of "
                "name/description/action."
            )
        override = NameOverride.build(value, label=_names_label(key))
        names[key] = override.given()
    return names


def load_config_file(path: str | Path, base: RunConfig | None = None) -> RunConfig:
    """Read a TOML or JSON config file over ``base``.

    The file may hold ``[clean]``, ``[cluster]`` and ``[names]`` tables whose keys are the
    fields of :class:`CleanConfig`, :class:`ClusterConfig` and :class:`NameOverride`;
    ``[names]`` maps a default segment name to ``{name, description, action}`` overrides (or
    to a plain new name).

    Raises
    ------
    ConfigError
        If the file cannot be read or holds unknown keys or invalid values; the message names
        the file, the key and the fix.
    """
    p = Path(path)
    base = base or RunConfig()
    data = _read_document(p)
    clean = _section(p, "clean", base.clean, data.get("clean", {}))
    cluster = _section(p, "cluster", base.cluster, data.get("cluster", {}))
    names = _names(p, base.names, data.get("names"))
    return RunConfig(clean=clean, cluster=cluster, names=names)


def build_run_config(
    *,
    preset: Preset | None = None,
    config_file: str | Path | None = None,
    clean: Mapping[str, Any] | None = None,
    cluster: Mapping[str, Any] | None = None,
    label: Label = str,
) -> RunConfig:
    """Settings from defaults < a config file < explicit values (``None`` values are not given).

    Parameters
    ----------
    preset : {"default", "tutorial"}, optional
        Named settings under the config file (see :data:`PRESETS`).
    config_file : path, optional
        A TOML or JSON file (see :func:`load_config_file`).
    clean, cluster : mapping, optional
        Values for :class:`CleanConfig` and :class:`ClusterConfig` fields, e.g. from CLI flags;
        ``None`` means "not given".
    label : callable
        Names a field in error messages (the CLI passes its flag names).

    Raises
    ------
    ConfigError
        If the file or a value is invalid.
    """
    base = RunConfig(cluster=ClusterConfig.preset(preset or "default"))
    if config_file:
        base = load_config_file(config_file, base)
    return RunConfig(
        clean=base.clean.replace(label=label, **(clean or {})),
        cluster=base.cluster.replace(label=label, **(cluster or {})),
        names=base.names,
    )
