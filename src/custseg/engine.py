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
import tempfile
import weakref
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
    "DEFAULT_MEMORY_LIMIT",
    "MAX_LINE_BYTES",
    "connect",
    "parse_timestamp",
    "query_progress",
    "read_csv",
    "read_parquet",
    "register_arrow",
    "strip_text",
    "translate_errors",
]

MAX_LINE_BYTES = 64 << 20
#: The engine's memory budget unless CUSTSEG_MEMORY_LIMIT or connect(memory_limit=) says
#: otherwise (see docs/benchmarks.md: it keeps a 100M-row run under 2 GB of RSS).
DEFAULT_MEMORY_LIMIT = "500MB"
_LATEST: list[weakref.ref[BaseBackend]] = []  # the last connection opened, for query_progress


def connect(*, threads: int | None = None, memory_limit: str | None = None) -> BaseBackend:
    """Open a fresh in-memory DuckDB connection.

    Parameters
    ----------
    threads : int, optional
        Worker threads (DuckDB's default is every core).
    memory_limit : str, optional
        For example ``"4GB"``; DuckDB spills to disk beyond it. Defaults to the environment
        variable ``CUSTSEG_MEMORY_LIMIT``, else :data:`DEFAULT_MEMORY_LIMIT`: at 100 million
        rows DuckDB's own default (80% of RAM) let the aggregation grow past 2 GB of RSS.
        Spills go to a per-process folder under the system temporary folder.
    """
    con = ibis.duckdb.connect()
    raw = con.con  # the duckdb connection: settings only, expressions stay in Ibis
    if threads:
        raw.execute(f"SET threads = {int(threads)}")
    limit = memory_limit or os.environ.get("CUSTSEG_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
    raw.execute("SET memory_limit = ?", [limit])
    # An in-memory database spills to ./.tmp by default: never the user's working folder.
    spill = Path(tempfile.gettempdir()) / f"custseg-duckdb-{os.getpid()}"
    raw.execute("SET temp_directory = ?", [str(spill)])
    # Results are one row per customer, re-sorted in Python: row order inside the engine is
    # never relied on, and keeping it costs memory on large inputs.
    raw.execute("SET preserve_insertion_order = false")
    # Progress is tracked (for query_progress) but never printed by the engine itself.
    raw.execute("SET enable_progress_bar = true")
    raw.execute("SET enable_progress_bar_print = false")
    _LATEST[:] = [weakref.ref(con)]
    # Nothing is ever downloaded at run time: no extension auto-install from the network.
    raw.execute("SET autoinstall_known_extensions = false")
    raw.execute("SET autoload_known_extensions = false")
    return con


def query_progress() -> float | None:
    """Percent done (0-100) of the query running on the latest connection, None if unknown.

    Safe to call from another thread while the query runs: the CLI polls it for its
    progress bar.
    """
    con = _LATEST[0]() if _LATEST else None
    if con is None:
        return None
    try:
        pct = float(con.con.query_progress())
    except Exception:  # a closed connection, or a backend without progress
        return None
    return pct if 0 <= pct <= 100 else None


def read_parquet(con: BaseBackend, paths: Sequence[Path]) -> ir.Table:
    """A lazy table over one or more Parquet files (union by name)."""
    files = [str(p) for p in paths]
    return con.read_parquet(files if len(files) > 1 else files[0], union_by_name=True)


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
        # DuckDB's default buffer is 16 lines of the maximum size (1 GiB here), allocated whole
        # for non-UTF-8 files: more than the memory limit. Two lines' worth reads as fast.
        "buffer_size": 2 * MAX_LINE_BYTES,
    }
    if delimiter:
        opts["delim"] = delimiter
    return con.read_csv(files if len(files) > 1 else files[0], **opts)


def register_arrow(con: BaseBackend, data: pa.Table | pd.DataFrame, name: str) -> ir.Table:
    """Register an in-memory Arrow table or DataFrame with the engine."""
    arrow = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    # An all-empty column has Arrow's null type, which no engine column can hold: read it as text.
    for i, f in enumerate(arrow.schema):
        if pa.types.is_null(f.type):
            arrow = arrow.set_column(i, f.name, arrow.column(i).cast(pa.string()))
    return con.create_table(name, arrow, temp=True, overwrite=True)


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, fmt: str) -> dt.datetime:  # type: ignore[empty-body]
    """DuckDB's strptime that yields NULL instead of failing."""


def parse_timestamp(value: ir.StringValue, fmt: str | None) -> ir.TimestampValue:
    """Parse text to a timestamp, NULL where it does not parse.

    ``fmt`` is a strptime format; ``None`` means ISO 8601 (a plain lenient cast).
    """
    if fmt is None:
        return value.try_cast("timestamp")
    return _try_strptime(value, fmt)


def strip_text(value: ir.StringValue) -> ir.StringValue:
    """``value.strip()``, with a fast path for the usual value that has nothing to strip.

    DuckDB's TRIM with a character list costs about 0.7 s per 10 million cells, more than
    the whole RFM aggregation; every stripped character sorts below ``"!"``, so a value whose
    first and last characters do not is returned as it is.
    """
    v: Any = value
    clean = (v >= "!") & (v.right(1) >= "!")
    return ibis.ifelse(clean, v, v.strip())


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
    except RuntimeError as exc:
        # DuckDB 2 reports a query stopped by Ctrl-C or SIGTERM as a plain RuntimeError.
        if is_interrupt(exc):
            raise KeyboardInterrupt from None
        raise
    except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException) as exc:
        text = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else type(exc).__name__
        hint = "Check the file's encoding, delimiter and quoting (--encoding, --delimiter)."
        if "unicode" in text.lower() or "utf" in text.lower():
            hint = "Pass --encoding latin-1 (or the file's real encoding)."
        elif "line size" in text.lower():
            hint = (
                f"Lines longer than {MAX_LINE_BYTES >> 20} MB are not supported; clean the export."
            )
        raise InputError(f"Cannot read {what}: {text}. {hint}") from None
    except duckdb.OutOfMemoryException:
        raise InputError(
            f"Ran out of memory while reading {what}. Set CUSTSEG_MEMORY_LIMIT lower "
            "(e.g. 4GB) so the engine spills to disk, or free memory."
        ) from None


def is_interrupt(exc: BaseException) -> bool:
    """Whether an engine error means the query was interrupted by a signal."""
    import duckdb

    return isinstance(exc, duckdb.InterruptException | KeyboardInterrupt) or (
        isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()
    )
