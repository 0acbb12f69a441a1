"""Frozen settings for each pipeline stage.

Precedence is defaults < config file < CLI flags; the CLI builds these objects, the stages only
read them.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

__all__ = [
    "CleanConfig",
    "ClusterConfig",
    "OutlierMethod",
    "RunConfig",
    "SelectMethod",
    "TransformMethod",
    "load_config_file",
]

OutlierMethod = Literal["zscore", "iqr", "none"]
TransformMethod = Literal["none", "log"]
SelectMethod = Literal["knee", "silhouette"]


@dataclass(frozen=True)
class CleanConfig:
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
    """

    as_of: dt.date | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    exclude_codes: tuple[str, ...] = ()
    drop_duplicates: bool = False
    strict: bool = False

    def __post_init__(self) -> None:
        if self.since and self.until and self.since > self.until:
            raise ConfigError(
                f"--since {self.since} is after --until {self.until}. Swap them or drop one."
            )
        if self.as_of and self.since and self.as_of <= self.since:
            raise ConfigError(
                f"--as-of {self.as_of} is not after --since {self.since}. "
                "Give an as-of date after the window starts."
            )


@dataclass(frozen=True)
class ClusterConfig:
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
    select : {"knee", "silhouette"}
        The knee of the SSE curve (kneed), or the best silhouette. With no knee the best
        silhouette is taken and a warning says so.
    random_state : int
        Seed for K-Means and for the silhouette sample.
    n_init : int
        K-Means restarts.
    silhouette_sample : int
        Largest number of customers the silhouette is computed on (a seeded sample beyond it).
    """

    outliers: OutlierMethod = "zscore"
    z_threshold: float = 3.0
    iqr_factor: float = 3.0
    transform: TransformMethod = "none"
    k: int | None = None
    k_values: tuple[int, ...] = tuple(range(1, 11))
    select: SelectMethod = "knee"
    random_state: int = 0
    n_init: int = 10
    silhouette_sample: int = 10_000

    def __post_init__(self) -> None:
        if self.outliers not in ("zscore", "iqr", "none"):
            raise ConfigError(
                f"Unknown outlier method {self.outliers!r}. Use one of zscore, iqr, none."
            )
        if self.transform not in ("none", "log"):
            raise ConfigError(f"Unknown transform {self.transform!r}. Use none or log.")
        if self.select not in ("knee", "silhouette"):
            raise ConfigError(f"Unknown selection {self.select!r}. Use knee or silhouette.")
        if self.k is not None and self.k < 1:
            raise ConfigError(f"--k must be at least 1, got {self.k}.")
        if not self.k_values or min(self.k_values) < 1:
            raise ConfigError(
                f"--k-range must list positive integers, got {list(self.k_values)}. "
                "Example: --k-range 1-10."
            )
        if list(self.k_values) != sorted(set(self.k_values)):
            raise ConfigError(
                f"--k-range must be increasing without repeats, got {list(self.k_values)}."
            )
        if self.z_threshold <= 0 or self.iqr_factor <= 0:
            raise ConfigError("Outlier thresholds must be positive.")
        if self.n_init < 1:
            raise ConfigError(f"n_init must be at least 1, got {self.n_init}.")
        if self.silhouette_sample < 2:
            raise ConfigError(
                f"silhouette_sample must be at least 2, got {self.silhouette_sample}."
            )


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides its input: stage settings and segment name overrides."""

    clean: CleanConfig = field(default_factory=CleanConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    names: dict[str, dict[str, str]] = field(default_factory=dict)


def _coerce(section: str, cls: type, values: dict[str, Any]) -> dict[str, Any]:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"Unknown key(s) {unknown} in [{section}] of the config file. Known: {sorted(known)}."
        )
    out = dict(values)
    for key in ("as_of", "since", "until"):
        if key in out and isinstance(out[key], str):
            try:
                out[key] = dt.date.fromisoformat(out[key])
            except ValueError:
                raise ConfigError(
                    f"[{section}] {key} = {out[key]!r} is not a date. Use YYYY-MM-DD."
                ) from None
    for key in ("exclude_codes", "k_values"):
        if key in out:
            out[key] = tuple(out[key])
    return out


def load_config_file(path: str | Path, base: RunConfig | None = None) -> RunConfig:
    """Read a TOML or JSON config file over ``base``.

    The file may hold ``[clean]``, ``[cluster]`` and ``[names]`` tables; ``[names]`` maps a
    default segment name to ``{name, description, action}`` overrides (or to a plain new name).

    Raises
    ------
    ConfigError
        If the file cannot be read or holds unknown keys or invalid values.
    """
    p = Path(path)
    base = base or RunConfig()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"Cannot read config file {str(p)!r}: {exc.strerror}. Check the path."
        ) from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"Config file {str(p)!r} is not valid {p.suffix or 'TOML'}: {exc}."
        ) from None
    unknown = sorted(set(data) - {"clean", "cluster", "names"})
    if unknown:
        raise ConfigError(
            f"Unknown section(s) {unknown} in config file {str(p)!r}. Use clean, cluster, names."
        )
    try:
        clean = replace(base.clean, **_coerce("clean", CleanConfig, data.get("clean", {})))
        cluster = replace(
            base.cluster, **_coerce("cluster", ClusterConfig, data.get("cluster", {}))
        )
    except TypeError as exc:
        raise ConfigError(f"Invalid value in config file {str(p)!r}: {exc}.") from None
    names: dict[str, dict[str, str]] = dict(base.names)
    for key, value in data.get("names", {}).items():
        if isinstance(value, str):
            names[key] = {"name": value}
        elif isinstance(value, dict) and set(value) <= {"name", "description", "action"}:
            names[key] = {k: str(v) for k, v in value.items()}
        else:
            raise ConfigError(
                f"[names] {key!r} must be a new name or a table of name/description/action."
            )
    return RunConfig(clean=clean, cluster=cluster, names=names)
