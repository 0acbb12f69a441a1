"""DuckDB, the embedded default: scans CSV and Parquet out of core on one machine."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from ..errors import ConfigError, InputError
from .base import Engine, arrow_table, headerless_names

__all__ = ["DEFAULT_MEMORY_LIMIT", "MAX_LINE_BYTES", "DuckDBEngine", "connect_duckdb"]

MAX_LINE_BYTES = 64 << 20
#: The engine's memory budget unless CUSTSEG_MEMORY_LIMIT or connect(memory_limit=) says
#: otherwise (see docs/benchmarks.md: it keeps a 100M-row run under 2 GB of RSS).
DEFAULT_MEMORY_LIMIT = "500MB"


def connect_duckdb(*, threads: int | None = None, memory_limit: str | None = None) -> DuckDBEngine:
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
    # Nothing is ever downloaded at run time: no extension auto-install from the network.
    raw.execute("SET autoinstall_known_extensions = false")
    raw.execute("SET autoload_known_extensions = false")
    return DuckDBEngine(con, owned=True, label="duckdb")


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, fmt: str) -> dt.datetime:  # type: ignore[empty-body]
    """DuckDB's strptime that yields NULL instead of failing."""


@ibis.udf.scalar.builtin(name="round")
def _round(value: float) -> float:  # type: ignore[empty-body]
    """DuckDB's one-argument ROUND (halves away from zero): Ibis always passes the digits,
    and ROUND(x, 0) takes the slower path that scales by 10**digits."""


class DuckDBEngine(Engine):
    """The DuckDB engine (in-memory database, files scanned in place)."""

    backends: ClassVar[tuple[str, ...]] = ("duckdb",)
    kind: ClassVar[str] = "duckdb"

    def __init__(self, con: BaseBackend, *, owned: bool = False, label: str | None = None) -> None:
        super().__init__(con, owned=owned, label=label)
        self._held: list[str] = []

    def query_progress(self) -> float | None:
        """Percent done (0-100) of the running query, None if unknown.

        Safe to call from another thread while the query runs: the CLI polls it for its
        progress bar.
        """
        try:
            pct = float(self.con.con.query_progress())
        except Exception:  # a closed connection
            return None
        return pct if 0 <= pct <= 100 else None

    def close(self) -> None:
        """Drop the held tables and close the connection if custseg opened it."""
        if not self._closed:
            self.release_held()
        if self._owned and not self._closed:
            with contextlib.suppress(Exception):
                self.con.disconnect()
        self._closed = True

    def hold(self, expr: ir.Table) -> ir.Table:
        """``expr`` computed once into a temporary table (dropped by :meth:`release_held`
        or when the connection closes)."""
        name = self._temp_name("held")
        self._held.append(name)
        return self.con.create_table(name, expr, temp=True)

    def release_held(self) -> None:
        """Drop the tables :meth:`hold` made."""
        for name in self._held:
            with contextlib.suppress(Exception):
                self.con.drop_table(name, force=True)
            with contextlib.suppress(ValueError):
                self._temporary.remove(name)
        self._held.clear()

    def check_out_table(self, name: str, *, force: bool) -> None:
        """An in-memory DuckDB table would vanish with the run: refuse --out-table."""
        raise ConfigError(
            f"--out-table {name} needs a database engine (a postgresql:// INPUT or --engine URL); "
            "DuckDB runs in memory here and the table would vanish. segments.csv has the same rows."
        )

    def cancel(self) -> None:
        """Interrupt the running query."""
        with contextlib.suppress(Exception):
            self.con.con.interrupt()

    def read_parquet(self, paths: Sequence[Path]) -> ir.Table:
        """A lazy table over one or more Parquet files (union by name)."""
        files = [str(p) for p in paths]
        return self.con.read_parquet(files if len(files) > 1 else files[0], union_by_name=True)

    def read_csv(
        self,
        paths: Sequence[Path],
        *,
        encoding: str = "utf-8",
        delimiter: str | None = None,
        header: bool = True,
    ) -> ir.Table:
        """A lazy table over CSV files, every column read as text.

        Text columns let the cleaning stage count unparseable numbers and dates in the ledger
        instead of failing the whole read on the first bad cell. Without a header the columns
        are ``column_1``, ``column_2``, ...
        """
        files = [str(p) for p in paths]
        opts = self._csv_options(files, encoding)
        opts["header"] = header
        if delimiter:
            opts["delim"] = delimiter
        table = self.con.read_csv(files if len(files) > 1 else files[0], **opts)
        if header:
            return table
        names = headerless_names(len(table.columns))
        return table.rename(dict(zip(names, table.columns, strict=True)))

    def read_lines(self, paths: Sequence[Path], *, encoding: str = "utf-8") -> ir.Table:
        """The files' lines as one text column ``line``: no quoting, no delimiter."""
        files = [str(p) for p in paths]
        opts = self._csv_options(files, encoding)
        # A unit separator never occurs in such text files: each line is one cell.
        opts.update(header=False, delim="\x1f", quote="", escape="", columns={"line": "VARCHAR"})
        opts.update(auto_detect=False, union_by_name=False)
        return self.con.read_csv(files if len(files) > 1 else files[0], **opts)

    @staticmethod
    def _csv_options(files: list[str], encoding: str) -> dict[str, Any]:
        return {
            "all_varchar": True,
            "encoding": encoding,
            "union_by_name": len(files) > 1,
            # DuckDB's default (2 MB) rejects exports with very long description cells.
            "max_line_size": MAX_LINE_BYTES,
            # DuckDB's default buffer is 16 lines of the maximum size (1 GiB here), allocated
            # whole for non-UTF-8 files: more than the memory limit. Two lines' worth reads as
            # fast.
            "buffer_size": 2 * MAX_LINE_BYTES,
        }

    def register_arrow(self, data: pa.Table | pd.DataFrame, name: str) -> ir.Table:
        """Register an in-memory Arrow table or DataFrame with the engine."""
        return self.con.create_table(
            f"custseg_{name}", arrow_table(data), temp=True, overwrite=True
        )

    @classmethod
    def parse_timestamp(cls, text: ir.StringValue, fmt: str | None) -> ir.TimestampValue:
        """Parse text to a timestamp, NULL where it does not parse.

        ``fmt`` is a strptime format; ``None`` means ISO 8601 (a plain lenient cast).
        """
        if fmt is None:
            return text.try_cast("timestamp")
        return _try_strptime(text, fmt)

    @classmethod
    def parse_number(cls, text: ir.StringValue) -> ir.FloatingValue:
        """DuckDB's lenient cast (NULL where the text is not a number)."""
        return text.try_cast("float64")

    @classmethod
    def strip_text(cls, value: ir.StringValue) -> ir.StringValue:
        """``value.strip()``, with a fast path for the usual value that has nothing to strip.

        DuckDB's TRIM with a character list costs about 0.7 s per 10 million cells, more than
        the whole RFM aggregation; every stripped character sorts below ``"!"``, so a value
        whose first and last characters do not is returned as it is.
        """
        v: Any = value
        clean = (v >= "!") & (v.right(1) >= "!")
        return ibis.ifelse(clean, v, v.strip())

    @classmethod
    def below_bang(cls, value: ir.StringValue) -> ir.BooleanValue:
        """``value < "!"`` (DuckDB compares text by code point)."""
        v: Any = value
        return v < "!"

    @classmethod
    def round_half_away(cls, value: ir.FloatingValue) -> ir.NumericValue:
        """DuckDB's ROUND rounds halves away from zero (one argument: about 0.1 s per 10M
        values less than ``ROUND(x, 0)``, the same results)."""
        return _round(value)

    @classmethod
    def sum_exact(cls, value: ir.IntegerValue) -> ir.NumericValue:
        """DuckDB sums 64-bit integers into 128 bits: no overflow however many are summed."""
        return value.sum()

    @contextlib.contextmanager
    def translate_errors(self, what: str) -> Iterator[None]:
        """Turn DuckDB's errors about the data into a one-line :class:`InputError`.

        Reading is lazy: a bad byte deep in a file surfaces only when a query runs, so every
        query over the input runs inside this guard. ``what`` names the input in the message.
        """
        with translate_duckdb_errors(what):
            yield

    def is_interrupt(self, exc: BaseException) -> bool:
        """Whether a DuckDB error means the query was interrupted by a signal."""
        return is_duckdb_interrupt(exc)


@contextlib.contextmanager
def translate_duckdb_errors(what: str) -> Iterator[None]:
    """:meth:`DuckDBEngine.translate_errors`, without an engine object."""
    import duckdb

    try:
        yield
    except duckdb.InterruptException:
        raise KeyboardInterrupt from None
    except RuntimeError as exc:
        # DuckDB 2 reports a query stopped by Ctrl-C or SIGTERM as a plain RuntimeError.
        if is_duckdb_interrupt(exc):
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


def is_duckdb_interrupt(exc: BaseException) -> bool:
    """Whether a DuckDB error means the query was interrupted by a signal."""
    import duckdb

    return isinstance(exc, duckdb.InterruptException | KeyboardInterrupt) or (
        isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()
    )


def as_duckdb(con: BaseBackend) -> DuckDBEngine:
    """Wrap a DuckDB Ibis backend the caller opened (it stays open on close)."""
    return DuckDBEngine(con, owned=False, label="duckdb")
