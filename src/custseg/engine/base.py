"""The engine seam: a backend connection and every operation whose spelling differs by backend.

:mod:`custseg.load`, :mod:`custseg.clean` and :mod:`custseg.features` build backend-neutral
Ibis expressions; whenever Ibis spells something differently (or wrongly) on some backend, they
ask the engine of the table at hand (:func:`ops_for`). :class:`Engine` holds the generic
spellings, which any Ibis backend with regular expressions can run; each backend module
overrides what it does better or differently.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import ibis
import ibis.expr.datatypes as idt
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from ..errors import InputError, OutputError
from . import dates

__all__ = [
    "DECIMAL_COMMA_REGEX",
    "NUMBER_REGEX",
    "WHITESPACE",
    "WHITESPACE_REGEX",
    "Engine",
    "headerless_names",
    "may_be_nan",
]

#: Text that reads as a finite number on every engine: digits with an optional point, an
#: optional exponent, digit groups split by "_" (which DuckDB accepts). Anything else (NaN,
#: "inf", "1,5") is NULL and counted as invalid_number, as on DuckDB.
NUMBER_REGEX = r"^[+-]?(?:[0-9]+(?:_[0-9]+)*[.]?[0-9]*|[.][0-9]+)(?:[eE][+-]?[0-9]+)?$"

#: A number with a decimal comma (``--decimal ,``): ``12,5``, ``-3``, ``,5``, and digit groups
#: of exactly three split by points or spaces (``1.234,56``, ``1 234,56``). ``12.50`` is no
#: such number (NULL, counted as invalid_number), so a point-decimal file is never misread.
DECIMAL_COMMA_REGEX = r"^[+-]?(?:(?:[0-9]{1,3}(?:[. ][0-9]{3})+|[0-9]+)(?:,[0-9]*)?|,[0-9]+)$"

#: ``--delimiter whitespace``: columns split by runs of spaces and tabs (CDNOW's own layout).
WHITESPACE = "whitespace"
WHITESPACE_REGEX = r"[ \t]+"


def may_be_nan(value: ir.Value) -> bool:
    """Whether ``value`` can be NaN or infinite: a float, unless it is a float made of integers.

    Looks through the projections of a table (``t.quantity`` of a table that selected
    ``Quantity.cast("float64")``): a Parquet or database column of integers, read as floats,
    needs no NaN test on every row (about 5% of the RFM stage at 10M rows).
    """
    if not value.type().is_floating():
        return False
    op: Any = value.op()
    while isinstance(op, ops.Field) and isinstance(op.rel, ops.Project):
        op = op.rel.values[op.name]
    return not (isinstance(op, ops.Cast) and op.arg.dtype.is_integer())


class Engine:
    """A connection to the backend that runs the expressions, and its spellings.

    Parameters
    ----------
    con : BaseBackend
        The Ibis backend.
    owned : bool
        Whether :meth:`close` disconnects it (True when custseg opened it).
    label : str, optional
        How messages name the engine, e.g. ``"spark local[2]"``.

    Notes
    -----
    Use it as a context manager, or call :meth:`close`: that drops the temporary tables and
    views custseg registered and, when custseg opened the connection, closes it.
    """

    #: The Ibis backend names this class speaks for (``BaseBackend.name``).
    backends: ClassVar[tuple[str, ...]] = ()
    #: Short name: ``duckdb``, ``spark``, ``postgres``, or the Ibis backend's name.
    kind: ClassVar[str] = "ibis"

    def __init__(self, con: BaseBackend, *, owned: bool = False, label: str | None = None) -> None:
        self._con = con
        self._owned = owned
        self._temporary: list[str] = []
        self.label = label or con.name
        self._closed = False

    # --- the connection --------------------------------------------------------------------

    @property
    def con(self) -> BaseBackend:
        """The Ibis backend."""
        return self._con

    def close(self) -> None:
        """Drop what custseg registered and close the connection if custseg opened it."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._drop_temporary()
        if self._owned:
            with contextlib.suppress(Exception):
                self._con.disconnect()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query_progress(self) -> float | None:
        """Percent done (0-100) of the running query, None if unknown; safe from any thread."""
        return None

    def _temp_name(self, stem: str) -> str:
        name = f"custseg_{stem}_{ibis.util.guid()[:12]}"
        self._temporary.append(name)
        return name

    def _drop_temporary(self) -> None:
        for name in self._temporary:
            with contextlib.suppress(Exception):
                self._con.drop_table(name, force=True)
        self._temporary.clear()

    def hold(self, expr: ir.Table) -> ir.Table:
        """``expr`` as a table that is cheap to read more than once (Spark caches it; the
        others return it as it is)."""
        return expr

    def release_held(self) -> None:
        """Release what :meth:`hold` kept (nothing here)."""

    # --- reading ---------------------------------------------------------------------------

    def read_parquet(self, paths: Sequence[Path]) -> ir.Table:
        """A lazy table over one or more Parquet files (columns united by name)."""
        return self.register_arrow(_read_parquet_arrow(paths), "parquet")

    def read_csv(
        self,
        paths: Sequence[Path],
        *,
        encoding: str = "utf-8",
        delimiter: str | None = None,
        header: bool = True,
    ) -> ir.Table:
        """A table over CSV files, every column read as text.

        Without a ``header`` row the columns are named ``column_1``, ``column_2``, ...
        (:func:`headerless_names`).
        """
        raise InputError(
            f"The {self.label} engine does not read CSV files. Load the file into a table, "
            "or run with --engine duckdb."
        )

    def read_lines(self, paths: Sequence[Path], *, encoding: str = "utf-8") -> ir.Table:
        """The files' lines as one text column ``line`` (for :meth:`read_whitespace`)."""
        raise InputError(
            f"--delimiter whitespace is DuckDB-only for now (not on {self.label}). Run with "
            "--engine duckdb, or convert the file to CSV."
        )

    def read_whitespace(
        self,
        paths: Sequence[Path],
        *,
        encoding: str = "utf-8",
        names: Sequence[str],
        header_line: str | None = None,
    ) -> ir.Table:
        """Text files whose columns are split by runs of spaces and tabs, as text columns.

        Parameters
        ----------
        names : sequence of str
            The column names, in order; cells past the last are ignored, missing ones NULL.
        header_line : str, optional
            The header row's text: lines equal to it (the first of each file) are skipped.

        Notes
        -----
        The lines are split in the engine with a regular expression (:meth:`read_lines`,
        then Ibis' ``re_split``): any engine that reads lines reads such files.
        """
        lines: Any = self.read_lines(paths, encoding=encoding)
        t: Any = lines.mutate(_text=self.strip_text(lines["line"]))
        keep = t["_text"].notnull() & (t["_text"] != "")
        if header_line is not None:
            keep = keep & (t["_text"] != header_line.strip())
        t = t.filter(keep)
        parts = t["_text"].re_split(WHITESPACE_REGEX)
        return t.select(**{name: parts[i] for i, name in enumerate(names)})

    def register_arrow(self, data: pa.Table | pd.DataFrame, name: str) -> ir.Table:
        """Register an in-memory Arrow table or DataFrame as a temporary table."""
        arrow = arrow_table(data)
        temp = self._temp_name(name)
        return self._con.create_table(temp, arrow, temp=True)

    def has_table(self, name: str) -> bool:
        """Whether the engine's catalog holds a table (or view) of that name."""
        try:
            self._con.table(name)
        except Exception:
            return False
        return True

    def read_table(self, name: str) -> ir.Table:
        """A table of the engine's catalog.

        Raises
        ------
        InputError
            If there is no such table.
        """
        try:
            return self._con.table(name)
        except Exception:
            tables = _some(self._list_tables())
            raise InputError(
                f"No table {name!r} in {self.label}; its tables are {tables}. "
                "Pass the name of an existing table with --table."
            ) from None

    def _list_tables(self) -> list[str]:
        try:
            return sorted(self._con.list_tables())
        except Exception:
            return []

    def write_table(self, name: str, data: pd.DataFrame, *, force: bool = False) -> None:
        """Write a DataFrame as a new table (replacing one only with ``force``).

        Raises
        ------
        OutputError
            If the table exists and ``force`` is false.
        """
        if self.has_table(name) and not force:
            raise OutputError(
                f"Table {name!r} already exists in {self.label}. Pass --force to replace it, "
                "or choose another --out-table."
            )
        self._con.create_table(name, arrow_table(data), overwrite=True)

    def check_out_table(self, name: str, *, force: bool) -> None:
        """Fail early if ``name`` exists and may not be replaced."""
        if not force and self.has_table(name):
            raise OutputError(
                f"Table {name!r} already exists in {self.label}. Pass --force to replace it, "
                "or choose another --out-table."
            )

    # --- expression spellings (they depend on the backend's SQL, not on a connection) -------

    @classmethod
    def strip_text(cls, value: ir.StringValue) -> ir.StringValue:
        """``value`` without leading and trailing whitespace."""
        return value.strip()

    @classmethod
    def below_bang(cls, value: ir.StringValue) -> ir.BooleanValue:
        """Whether the text is empty or starts with a character below ``"!"`` (code point order).

        Every character :meth:`strip_text` removes sorts below ``"!"``: a value for which this
        is false has no leading whitespace.
        """
        v: Any = value
        return v.ascii_str() < 33

    @classmethod
    def drop_zero_fraction(cls, text: ir.StringValue) -> ir.StringValue:
        """``"17850.0"`` -> ``"17850"``: integer text with a zero fraction loses it."""
        return text.re_replace(r"^(-?[0-9]+)[.]0+$", r"\1")

    @classmethod
    def not_finite(cls, value: ir.NumericValue) -> ir.BooleanValue:
        """NULL, NaN or infinite (only NULL for a value that cannot be NaN: see
        :func:`may_be_nan`)."""
        v: Any = value
        if not may_be_nan(value):
            return v.isnull()
        return v.isnull() | v.isnan() | v.isinf()

    @classmethod
    def parse_number(cls, text: ir.StringValue) -> ir.FloatingValue:
        """Stripped text to a float, NULL where it is not a finite number."""
        t: Any = text
        ok = t.re_search(NUMBER_REGEX)
        digits = ibis.ifelse(t.contains("_"), t.replace("_", ""), t)
        return ibis.ifelse(ok, digits.try_cast(idt.float64), ibis.null("float64"))

    @classmethod
    def decimal_comma(cls, text: ir.StringValue) -> ir.StringValue:
        """Stripped decimal-comma text (``1.234,56``) as point-decimal text (``1234.56``).

        NULL where the text is not such a number (:data:`DECIMAL_COMMA_REGEX`); the result
        goes to :meth:`parse_number`. Plain regular expressions and replacements: every
        backend runs it as it is.
        """
        t: Any = text
        plain = t.replace(".", "").replace(" ", "").replace(",", ".")
        return ibis.ifelse(t.re_search(DECIMAL_COMMA_REGEX), plain, ibis.null("string"))

    @classmethod
    def parse_timestamp(cls, text: ir.StringValue, fmt: str | None) -> ir.TimestampValue:
        """Stripped text to a timestamp, NULL where it does not parse.

        ``fmt`` is a strptime format (DuckDB's rules: see :mod:`custseg.engine.dates`);
        ``None`` means ISO 8601 as DuckDB's cast reads it.
        """
        pattern = dates.ISO_PATTERN if fmt is None else dates.compile_strptime(fmt)
        return dates.build_timestamp(text, pattern, cls._make_timestamp, cls._regex_group)

    @classmethod
    def _make_timestamp(cls, *parts: Any) -> ir.TimestampValue:
        *ymdhms, micros = parts
        ts: Any = ibis.timestamp(*ymdhms)
        return ts if micros is None else ts + micros.as_interval("us")

    @classmethod
    def _regex_group(cls, text: ir.StringValue, regex: str, index: int) -> ir.StringValue:
        return text.re_extract(regex, index)

    @classmethod
    def round_half_away(cls, value: ir.FloatingValue) -> ir.NumericValue:
        """The nearest whole number, halves away from zero for positive values (as DuckDB).

        Spelled with floor and ceiling: PostgreSQL rounds doubles half to even, and
        ``x + 0.5`` is inexact beyond 2**52.
        """
        v: Any = value
        low = v.floor()
        return ibis.ifelse(v - low >= 0.5, v.ceil(), low)

    @classmethod
    def sum_exact(cls, value: ir.IntegerValue) -> ir.NumericValue:
        """The exact sum of 64-bit integers, however many (no overflow, no wrap-around)."""
        return value.cast(idt.Decimal(38, 0)).sum()

    # --- errors ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def translate_errors(self, what: str) -> Iterator[None]:
        """Turn the engine's errors about the data into a one-line :class:`InputError`.

        ``what`` names the input in the message. Interrupts become ``KeyboardInterrupt``.
        """
        try:
            yield
        except KeyboardInterrupt:
            self.cancel()
            raise

    def cancel(self) -> None:
        """Stop the running queries (after an interrupt)."""

    def is_interrupt(self, exc: BaseException) -> bool:
        """Whether an engine error means the query was interrupted by a signal."""
        return isinstance(exc, KeyboardInterrupt)


def arrow_table(data: pa.Table | pd.DataFrame) -> pa.Table:
    """An Arrow table for the engine: null-typed (all-empty) columns become text."""
    arrow = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    for i, f in enumerate(arrow.schema):
        if pa.types.is_null(f.type):
            arrow = arrow.set_column(i, f.name, arrow.column(i).cast(pa.string()))
    return arrow


def _read_parquet_arrow(paths: Sequence[Path]) -> pa.Table:
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset([str(p) for p in paths], format="parquet")
        return dataset.to_table()
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"Cannot read {paths[0]} as Parquet ({first_line(exc)}). "
            "Check the file is a complete Parquet file."
        ) from None


def headerless_names(n: int) -> list[str]:
    """The names of a headerless file's ``n`` columns: ``column_1`` ... ``column_n``."""
    return [f"column_{i + 1}" for i in range(n)]


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an error's text, for one-line messages."""
    text = str(exc).strip().splitlines()
    return text[0][:limit] if text else type(exc).__name__


def _some(names: list[str], limit: int = 12) -> str:
    shown = names[:limit]
    return str(shown) + (f" and {len(names) - limit} more" if len(names) > limit else "")
