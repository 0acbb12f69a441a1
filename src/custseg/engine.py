"""The execution engine: the one module that knows which backend runs the expressions.

DuckDB is the embedded default: it scans CSV and Parquet out of core, so the transaction rows
never have to fit in pandas. Every other module builds backend-neutral Ibis expressions and
asks this module for the few operations whose spelling differs between backends (reading
files, lenient date parsing).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from .errors import InputError

__all__ = [
    "MAX_LINE_BYTES",
    "connect",
    "parse_timestamp",
    "read_csv",
    "read_parquet",
    "register_arrow",
    "translate_errors",
]

MAX_LINE_BYTES = 64 << 20


def connect(*, threads: int | None = None, memory_limit: str | None = None) -> BaseBackend:
    """Open a fresh in-memory DuckDB connection.

    Parameters
    ----------
    threads : int, optional
        Worker threads (DuckDB's default is every core).
    memory_limit : str, optional
        For example ``"4GB"``; DuckDB spills to disk beyond it. Defaults to the environment
        variable ``CUSTSEG_MEMORY_LIMIT`` or DuckDB's own default (80% of RAM).
    """
    con = ibis.duckdb.connect()
    raw = con.con  # the duckdb connection: settings only, expressions stay in Ibis
    if threads:
        raw.execute(f"SET threads = {int(threads)}")
    limit = memory_limit or os.environ.get("CUSTSEG_MEMORY_LIMIT")
    if limit:
        raw.execute("SET memory_limit = ?", [limit])
    # Nothing is ever downloaded at run time: no extension auto-install from the network.
    raw.execute("SET autoinstall_known_extensions = false")
    raw.execute("SET autoload_known_extensions = false")
    return con


def read_parquet(con: BaseBackend, paths: Sequence[Path]) -> ir.Table:
    """A lazy table over one or more Parquet files (union by name)."""
    files = [str(p) for p in paths]
    return con.read_parquet(files if len(files) > 1 else files[0], union_by_name=True)  # type: ignore[attr-defined]


def read_csv(
    con: BaseBackend,
    paths: Sequence[Path],
    *,
    encoding: str = "utf-8",
    delimiter: str | None = None,
) -> ir.Table:
    """A lazy table over CSV files, every column read as text.

    Text columns let the cleaning stage count unparseable numbers and dates in the ledger
    instead of failing the whole read on the first bad cell.
    """
    files = [str(p) for p in paths]
    opts: dict[str, Any] = {
        "all_varchar": True,
        "header": True,
        "encoding": encoding,
        "union_by_name": len(files) > 1,
        # DuckDB's default (2 MB) rejects exports with very long description cells.
        "max_line_size": MAX_LINE_BYTES,
    }
    if delimiter:
        opts["delim"] = delimiter
    return con.read_csv(files if len(files) > 1 else files[0], **opts)  # type: ignore[attr-defined]


def register_arrow(con: BaseBackend, data: pa.Table | pd.DataFrame, name: str) -> ir.Table:
    """Register an in-memory Arrow table or DataFrame with the engine."""
    arrow = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    return con.create_table(name, arrow, temp=True, overwrite=True)  # type: ignore[attr-defined]


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, fmt: str) -> dt.datetime:  # type: ignore[empty-body]
    """DuckDB's strptime that yields NULL instead of failing."""


def parse_timestamp(value: ir.StringValue, fmt: str | None) -> ir.TimestampValue:
    """Parse text to a timestamp, NULL where it does not parse.

    ``fmt`` is a strptime format; ``None`` means ISO 8601 (a plain lenient cast).
    """
    if fmt is None:
        return value.try_cast("timestamp")  # type: ignore[return-value]
    return _try_strptime(value, fmt)  # type: ignore[no-any-return]


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn the engine's errors about the data into a one-line :class:`InputError`.

    Reading is lazy: a bad byte deep in a file surfaces only when a query runs, so every
    query over the input runs inside this guard. ``what`` names the input in the message.
    """
    import duckdb

    try:
        yield
    except duckdb.InterruptException:
        raise KeyboardInterrupt from None
    except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException) as exc:
        text = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else type(exc).__name__
        hint = "Check the file's encoding, delimiter and quoting (--encoding, --delimiter)."
        if "unicode" in text.lower() or "utf" in text.lower():
            hint = "Pass --encoding latin-1 (or the file's real encoding)."
        elif "line size" in text.lower():
            hint = f"Lines longer than {MAX_LINE_BYTES >> 20} MB are not supported; clean the export."
        raise InputError(f"Cannot read {what}: {text}. {hint}") from None
    except duckdb.OutOfMemoryException:
        raise InputError(
            f"Ran out of memory while reading {what}. Set CUSTSEG_MEMORY_LIMIT lower "
            "(e.g. 4GB) so the engine spills to disk, or free memory."
        ) from None
