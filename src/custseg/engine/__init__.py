"""The execution engines: the one package that knows which backend runs the expressions.

DuckDB is the embedded default: it scans CSV and Parquet out of core, so the transaction rows
never have to fit in pandas. Spark runs the same expressions on a cluster, PostgreSQL inside
the database that holds the rows. Every other module builds backend-neutral Ibis expressions
and asks the engine of its table (:func:`ops_for`) for the operations whose spelling differs
between backends; the caller holds the :class:`Engine` (its connection, progress, errors) and
closes it.

Examples
--------
>>> from custseg import engine
>>> with engine.connect() as eng:  # DuckDB
...     eng.kind
'duckdb'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeAlias

import ibis.expr.types as ir
from ibis.backends import BaseBackend

from ..errors import ConfigError, InputError
from .base import Engine
from .duckdb import (
    DEFAULT_MEMORY_LIMIT,
    MAX_LINE_BYTES,
    DuckDBEngine,
    connect_duckdb,
    is_duckdb_interrupt,
    translate_duckdb_errors,
)

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "ENGINES",
    "MAX_LINE_BYTES",
    "DuckDBEngine",
    "Engine",
    "EngineSpec",
    "connect",
    "from_backend",
    "is_interrupt",
    "is_url",
    "opened",
    "ops_for",
    "translate_errors",
]

#: The engine names ``connect`` and ``--engine`` accept besides a database URL.
ENGINES = ("duckdb", "spark")

#: What :func:`connect` accepts: an engine name or URL, an Engine, an Ibis backend, a
#: SparkSession (typed loosely: PySpark is optional), or None for DuckDB.
EngineSpec: TypeAlias = Any


def is_url(text: str) -> bool:
    """Whether ``text`` is a database URL such as ``postgresql://user@host/db``."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.replace("+", "").isalnum() and scheme.lower() != "file"


def connect(
    spec: EngineSpec = None,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    spark_master: str | None = None,
) -> Engine:
    """Open an engine.

    Parameters
    ----------
    spec : str, Engine, Ibis backend or SparkSession, optional
        ``"duckdb"`` (default), ``"spark"``, a database URL (``postgresql://user@host/db``;
        any other Ibis backend's URL works too), an Ibis backend you opened, or a
        ``SparkSession``. An :class:`Engine` is returned as it is.
    threads, memory_limit : optional
        DuckDB's worker threads and memory cap.
    spark_master : str, optional
        ``local[N]`` (default ``local[2]``) or ``spark://host:port``.

    Returns
    -------
    Engine
        Close it (or use it in a ``with`` block) when done.

    Raises
    ------
    ConfigError
        For an unknown engine name or a missing optional dependency.
    InputError
        If the database or the Spark master cannot be reached.
    """
    if isinstance(spec, Engine):
        return spec
    if isinstance(spec, BaseBackend):
        return from_backend(spec)
    if spec is not None and not isinstance(spec, str):
        if type(spec).__name__ == "SparkSession":
            from .spark import connect_spark

            return connect_spark(session=spec)
        raise ConfigError(
            f"Cannot use a {type(spec).__name__} as an engine. Pass 'duckdb', 'spark', a "
            "database URL, an Ibis backend or a SparkSession."
        )
    name = (spec or "duckdb").strip()
    if spark_master and name != "spark":
        raise ConfigError(f"--spark-master needs --engine spark, not --engine {name}.")
    if name == "duckdb":
        return connect_duckdb(threads=threads, memory_limit=memory_limit)
    if name == "spark":
        from .spark import connect_spark

        return connect_spark(spark_master)
    if is_url(name):
        return _connect_url(name)
    raise ConfigError(
        f"Unknown engine {name!r}. Use duckdb, spark, or a database URL such as "
        "postgresql://user@host:5432/db."
    )


def _connect_url(url: str) -> Engine:
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        from .postgres import connect_postgres

        return connect_postgres(url)
    import ibis

    try:
        con = ibis.connect(url)
    except ImportError as exc:
        raise ConfigError(
            f"The {scheme} backend is not installed ({exc}). "
            f"pip install 'ibis-framework[{scheme}]'."
        ) from None
    except Exception as exc:
        raise InputError(f"Cannot connect to {url.split('@')[-1]}: {str(exc)[:200]}.") from None
    return Engine(con, owned=True, label=scheme)


def _engine_classes() -> list[type[Engine]]:
    from .postgres import PostgresEngine
    from .spark import SparkEngine

    return [DuckDBEngine, SparkEngine, PostgresEngine]


def _class_for(backend_name: str) -> type[Engine]:
    if backend_name == "duckdb":  # the common case, without importing the others
        return DuckDBEngine
    for cls in _engine_classes():
        if backend_name in cls.backends:
            return cls
    return Engine


def from_backend(con: BaseBackend) -> Engine:
    """Wrap an Ibis backend the caller opened (closing the engine leaves it open)."""
    if con.name == "pyspark":
        from .spark import SparkEngine

        return SparkEngine(con, owned=False, label=f"spark {con._session.sparkContext.master}")
    return _class_for(con.name)(con, owned=False)


@contextlib.contextmanager
def opened(spec: EngineSpec) -> Iterator[Engine]:
    """The engine a call uses: ``spec`` itself if it is an :class:`Engine` (left open), else
    one :func:`connect` opens for the call and closes after it."""
    if isinstance(spec, Engine):
        yield spec
        return
    with connect(spec) as eng:
        yield eng


def ops_for(expr: ir.Expr) -> type[Engine]:
    """The engine class whose spellings fit the backend ``expr`` runs on."""
    try:
        backend = expr._find_backend(use_default=True)
    except Exception:
        return DuckDBEngine
    return _class_for(backend.name)


def translate_errors(what: str) -> Any:
    """DuckDB's error translation (see :meth:`Engine.translate_errors` for the others)."""
    return translate_duckdb_errors(what)


def is_interrupt(exc: BaseException) -> bool:
    """Whether an engine error means the query was interrupted by a signal (any engine)."""
    if isinstance(exc, KeyboardInterrupt) or is_duckdb_interrupt(exc):
        return True
    text = str(exc).lower()
    return "cancel" in text and ("job" in text or "statement" in text)
