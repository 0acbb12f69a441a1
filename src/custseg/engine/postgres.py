"""PostgreSQL: cleaning and aggregation run inside the database; only customers leave it.

Files and in-memory tables are copied into temporary tables with COPY (PostgreSQL reads no
files of the client's). PostgreSQL has no lenient cast (Ibis compiles ``try_cast`` to a plain
CAST, so one bad cell would fail the whole query): numbers and dates are parsed only where a
regular expression has proved that the cast cannot fail, and are NULL elsewhere, so bad cells
are counted in the ledger as on DuckDB.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse, urlunparse

import ibis
import ibis.expr.datatypes as idt
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import ConfigError, InputError, OutputError
from . import dates
from . import files as _files
from .base import Engine, _read_parquet_arrow, arrow_table, first_line, headerless_names

__all__ = ["PostgresEngine", "connect_postgres", "redact_url"]

# At most 200 characters and a two-digit exponent: the value lies within double precision's
# range (1e-299 .. 1e299), where PostgreSQL's float8 input never fails.
_SAFE_NUMBER = r"^[+-]?(?:[0-9]+(?:_[0-9]+)*[.]?[0-9]*|[.][0-9]+)(?:[eE][+-]?[0-9]{1,2})?$"


def redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunparse(parts._replace(netloc=f"{user}@{netloc}" if user else netloc))


def connect_postgres(url: str) -> PostgresEngine:
    """Connect to PostgreSQL with a libpq URL, e.g. ``postgresql://user@host:5432/db``.

    The password may be in the URL, in ``PGPASSWORD`` or in ``~/.pgpass``.

    Raises
    ------
    InputError
        If the server cannot be reached or refuses the credentials.
    """
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "A postgresql:// input needs psycopg: pip install 'custseg[postgres]'."
        ) from None
    label = redact_url(url)
    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise InputError(f"Cannot connect to {label}: {_pg_reason(exc)}") from None
    con = ibis.postgres.from_connection(raw)
    eng = PostgresEngine(con, owned=True, label=label)
    eng.prepare()
    return eng


def _pg_reason(exc: BaseException) -> str:
    text = first_line(exc, 240).rstrip(".")
    low = str(exc).lower()
    if "password" in low or "authentication" in low:
        hint = "Check the user name and password (in the URL, PGPASSWORD or ~/.pgpass)."
    elif "does not exist" in low and "database" in low:
        hint = "Check the database name at the end of the URL."
    elif "refused" in low or "timeout" in low or "could not translate" in low or "no route" in low:
        hint = "Check the host and port, and that PostgreSQL is running there."
    else:
        hint = "Check the URL."
    return f"{text}. {hint}"


_PG_TYPES = {
    "bool": "boolean",
    "int8": "smallint",
    "int16": "smallint",
    "int32": "integer",
    "int64": "bigint",
    "uint8": "smallint",
    "uint16": "integer",
    "uint32": "bigint",
    "float": "real",
    "halffloat": "real",
    "double": "double precision",
    "date32[day]": "date",
}


def _pg_type(t: pa.DataType) -> tuple[str, pa.DataType]:
    """The column type for an Arrow type, and the Arrow type its CSV text is written from."""
    if str(t) in _PG_TYPES:
        return _PG_TYPES[str(t)], t
    if pa.types.is_timestamp(t):
        return ("timestamptz" if t.tz else "timestamp"), t
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})", t
    if pa.types.is_dictionary(t):
        return _pg_type(t.value_type)
    return "text", pa.string()


class PostgresEngine(Engine):
    """The PostgreSQL engine (psycopg 3)."""

    backends: ClassVar[tuple[str, ...]] = ("postgres",)
    kind: ClassVar[str] = "postgres"

    def prepare(self) -> None:
        """Create the session-local parsing function (a user without TEMP rights gets none:
        then only text dates fail, with the database's message)."""
        with contextlib.suppress(Exception):
            self.raw.execute(_TIMESTAMP_FUNCTION)

    @property
    def raw(self) -> Any:
        """The psycopg connection."""
        return self.con.con

    def _drop_temporary(self) -> None:
        for name in self._temporary:
            with contextlib.suppress(Exception):
                self.raw.execute(f'DROP TABLE IF EXISTS pg_temp."{name}"')
        self._temporary.clear()

    def cancel(self) -> None:
        """Ask the server to stop the running query."""
        with contextlib.suppress(Exception):
            self.raw.cancel_safe(timeout=5)

    # --- reading: COPY into temporary tables ------------------------------------------------

    def _copy_in(self, stem: str, columns: dict[str, str], chunks: Iterator[bytes]) -> ir.Table:
        """CREATE TEMP TABLE and COPY CSV rows (UTF-8, no header) into it."""
        name = self._temp_name(stem)
        cols = ", ".join(f'"{_ident(c)}" {t}' for c, t in columns.items())
        try:
            with self.raw.transaction(), self.raw.cursor() as cur:
                cur.execute(f'CREATE TEMP TABLE "{name}" ({cols})')
                with cur.copy(f"COPY \"{name}\" FROM STDIN (FORMAT csv, ENCODING 'UTF8')") as cp:
                    for chunk in chunks:
                        cp.write(chunk)
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise InputError(
                    f"PostgreSQL refused the rows of {stem}: {first_line(exc)}. "
                    "Check the delimiter, quoting and encoding (--delimiter, --encoding)."
                ) from None
            raise
        return self.con.table(name)

    def read_csv(
        self,
        paths: Sequence[Path],
        *,
        encoding: str = "utf-8",
        delimiter: str | None = None,
        header: bool = True,
    ) -> ir.Table:
        """CSV files copied into a temporary table of text columns (united by header names)."""
        sep = delimiter or _files.sniff_delimiter(paths[0], encoding)
        if not header:
            width = len(_files.header_cells(paths[0], encoding, sep))
            plain = dict.fromkeys(headerless_names(width), "text")
            return self._copy_in("csv", plain, _csv_chunks(paths, encoding, sep, skip=0))
        groups = _files.group_by_header(paths, encoding, sep)
        names: dict[str, str] = {}
        for cells in groups:
            for cell in cells:
                names.setdefault(cell, "text")
        if len(groups) > 1:
            return self._csv_union(groups, names, encoding, sep)
        (first,) = groups
        if len(set(first)) != len(first):
            dupes = sorted({c for c in first if first.count(c) > 1})
            raise InputError(
                f"Duplicated column name(s) {dupes} in the header of {paths[0].name}. "
                "Rename them so each is unique."
            )
        return self._copy_in("csv", names, _csv_chunks(paths, encoding, sep))

    def read_whitespace(
        self,
        paths: Sequence[Path],
        *,
        encoding: str = "utf-8",
        names: Sequence[str],
        header_line: str | None = None,
    ) -> ir.Table:
        """Whitespace-aligned text split on the client as it is copied in (``str.split``)."""
        columns = dict.fromkeys(names, "text")
        chunks = _whitespace_chunks(paths, encoding, len(columns), header_line)
        return self._copy_in("text", columns, chunks)

    def _csv_union(
        self, groups: dict[tuple[str, ...], list[Path]], names: dict[str, str], enc: str, sep: str
    ) -> ir.Table:
        tables = []
        for header, group in groups.items():
            cols = dict.fromkeys(header, "text")
            t = self._copy_in("csv", cols, _csv_chunks(group, enc, sep))
            tables.append(
                t.select(*[t[c] if c in cols else ibis.null("string").name(c) for c in names])
            )
        out = tables[0]
        for t in tables[1:]:
            out = out.union(t)
        return out

    def read_parquet(self, paths: Sequence[Path]) -> ir.Table:
        """Parquet files read on the client and copied into a temporary table."""
        return self.register_arrow(_read_parquet_arrow(paths), "parquet")

    def register_arrow(self, data: pa.Table | pd.DataFrame, name: str) -> ir.Table:
        """An Arrow table or DataFrame copied into a temporary table (typed columns)."""
        arrow = arrow_table(data)
        columns: dict[str, str] = {}
        arrays = []
        for field, column in zip(arrow.schema, arrow.columns, strict=True):
            pg, as_type = _pg_type(field.type)
            columns[field.name] = pg
            arrays.append(column.cast(as_type) if as_type != field.type else column)
        if len(set(columns)) != len(arrow.schema):
            raise InputError("Duplicated column names in the input. Rename them so each is unique.")
        table = pa.Table.from_arrays(arrays, names=arrow.schema.names)
        return self._copy_in(name, columns, _arrow_chunks(table))

    def read_table(self, name: str) -> ir.Table:
        """A table or view of the database; ``schema.table`` names another schema."""
        schema, _, table = name.rpartition(".")
        try:
            return self.con.table(table, database=schema or None)
        except Exception:
            raise InputError(
                f"No table {name!r} in {self.label}; its tables are {self._list_tables()[:12]}. "
                "Pass --table with an existing table (schema.table for another schema)."
            ) from None

    def has_table(self, name: str) -> bool:
        """Whether the table or view exists (``schema.table`` allowed)."""
        with self.raw.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (_qualified(name),))
            row = cur.fetchone()
        return bool(row and row[0])

    def write_table(self, name: str, data: pd.DataFrame, *, force: bool = False) -> None:
        """Write a new table in one transaction: it appears whole, or not at all.

        Raises
        ------
        OutputError
            If the table exists and ``force`` is false, or the database refuses the write.
        """
        import psycopg

        arrow = arrow_table(data)
        cols = ", ".join(f'"{_ident(f.name)}" {_pg_type(f.type)[0]}' for f in arrow.schema)
        target = _qualified(name)
        try:
            with self.raw.transaction(), self.raw.cursor() as cur:
                cur.execute("SELECT to_regclass(%s) IS NOT NULL", (target,))
                exists = bool(cur.fetchone()[0])
                if exists and not force:
                    raise OutputError(
                        f"Table {name!r} already exists in {self.label}. Pass --force to "
                        "replace it, or choose another --out-table."
                    )
                if exists:
                    cur.execute(f"DROP TABLE {target}")
                cur.execute(f"CREATE TABLE {target} ({cols})")
                with cur.copy(f"COPY {target} FROM STDIN (FORMAT csv, ENCODING 'UTF8')") as cp:
                    for chunk in _arrow_chunks(arrow):
                        cp.write(chunk)
        except psycopg.Error as exc:
            raise OutputError(
                f"Cannot write table {name!r} in {self.label}: {first_line(exc)}. "
                "Check that the user may create tables there."
            ) from None

    def _list_tables(self) -> list[str]:
        with contextlib.suppress(Exception), self.raw.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = ANY (current_schemas(false)) ORDER BY 1"
            )
            return [r[0] for r in cur.fetchall()]
        return []

    # --- spellings -------------------------------------------------------------------------

    @classmethod
    def parse_number(cls, text: ir.StringValue) -> ir.FloatingValue:
        """A plain CAST, only where :data:`_SAFE_NUMBER` proves it cannot fail."""
        t: Any = text
        safe = t.re_search(_SAFE_NUMBER) & (t.length() <= 200)
        digits = ibis.ifelse(t.contains("_"), t.replace("_", ""), t)
        return ibis.ifelse(safe, digits.cast(idt.float64), ibis.null("float64"))

    @classmethod
    def parse_timestamp(cls, text: ir.StringValue, fmt: str | None) -> ir.TimestampValue:
        """The rules of :mod:`custseg.engine.dates`, in one function call per value.

        Spelled in Ibis, every use of a captured field repeats its regular expression in the
        SQL (PostgreSQL evaluates each copy): a session-local function (``pg_temp``, gone
        when the connection closes) matches once and checks the fields.
        """
        pattern = dates.ISO_PATTERN if fmt is None else dates.compile_strptime(fmt)
        slow = _pg_timestamp(text, pattern.regex, list(pattern.groups))
        sure = dates.SURE_ISO if fmt is None else dates.sure_regex(fmt)
        template = None if fmt is None else _pg_template(fmt)
        if sure is None or (fmt is not None and template is None):
            return slow
        # The usual value is certainly valid (a pattern without groups says so, a hundred
        # times faster than capturing them): PostgreSQL's own parser reads it. Only the rest
        # (February 29th, bad text) goes through the function.
        t: Any = text
        quick = t.cast("timestamp") if template is None else _to_timestamp(t, template)
        return ibis.ifelse(t.re_search(sure), quick.cast("timestamp"), slow)

    @classmethod
    def sum_exact(cls, value: ir.IntegerValue) -> ir.NumericValue:
        """PostgreSQL sums bigints into numeric: no overflow."""
        return value.sum()

    # --- errors ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def translate_errors(self, what: str) -> Iterator[None]:
        """The database's errors about the data become one-line InputErrors."""
        import psycopg

        try:
            yield
        except KeyboardInterrupt:
            self.cancel()
            raise
        except psycopg.errors.QueryCanceled:
            raise KeyboardInterrupt from None
        except psycopg.Error as exc:
            raise InputError(
                f"PostgreSQL could not process {what}: {first_line(exc)}. Check the table's "
                "columns and the connection."
            ) from None

    def is_interrupt(self, exc: BaseException) -> bool:
        """Whether the query was cancelled."""
        import psycopg

        return isinstance(exc, KeyboardInterrupt | psycopg.errors.QueryCanceled)


_TEMPLATE = {"Y": "YYYY", "y": "YY", "m": "MM", "d": "DD", "H": "HH24", "M": "MI", "S": "SS"}


def _pg_template(fmt: str) -> str | None:
    """The to_timestamp template of a strptime format (None if it has no exact one)."""
    out = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt) and fmt[i + 1] in _TEMPLATE:
            out.append(_TEMPLATE[fmt[i + 1]])
            i += 2
        elif fmt[i].isalnum() or fmt[i] in '\\"%':
            return None
        else:
            out.append(" " if fmt[i].isspace() else fmt[i])
            i += 1
    return "".join(out)


@ibis.udf.scalar.builtin(name="to_timestamp")
def _to_timestamp(text: str, template: str) -> idt.Timestamp(timezone="UTC"):  # type: ignore[valid-type]
    """PostgreSQL's to_timestamp (a timestamptz in the session's UTC)."""


@ibis.udf.scalar.builtin(name="custseg_timestamp", database="pg_temp")
def _pg_timestamp(text: str, regex: str, fields: list[str]) -> dt.datetime:  # type: ignore[empty-body]
    """:data:`_TIMESTAMP_FUNCTION`."""


# The checks of dates.build_timestamp, in PL/pgSQL. Never raises: NULL for no date.
_TIMESTAMP_FUNCTION = r"""
CREATE OR REPLACE FUNCTION pg_temp.custseg_timestamp(t text, rx text, fields text[])
RETURNS timestamp LANGUAGE plpgsql IMMUTABLE PARALLEL RESTRICTED AS $body$
DECLARE
  m text[]; v text; n int;
  y int := 1900; mo int := 1; d int := 1; h int := 0; mi int := 0; s int := 0; us int := 0;
BEGIN
  IF NOT t ~ rx THEN RETURN NULL; END IF;  -- a plain match is fast; capturing is not
  m := regexp_match(t, rx);
  IF m IS NULL THEN RETURN NULL; END IF;
  FOR i IN 1 .. cardinality(fields) LOOP
    v := m[i];
    IF fields[i] = 'fraction' THEN
      us := left(coalesce(v, '') || '000000', 6)::int;
      CONTINUE;
    END IF;
    n := CASE WHEN v IS NULL OR v = '' THEN 0 ELSE v::int END;
    CASE fields[i]
      WHEN 'year' THEN y := n;
      WHEN 'year2' THEN y := CASE WHEN n < 69 THEN n + 2000 ELSE n + 1900 END;
      WHEN 'month' THEN mo := n;
      WHEN 'day' THEN d := n;
      WHEN 'hour' THEN h := n;
      WHEN 'minute' THEN mi := n;
      ELSE s := n;
    END CASE;
  END LOOP;
  IF y < 1 OR mo NOT BETWEEN 1 AND 12 OR d < 1 OR h > 23 OR mi > 59 OR s > 59 THEN
    RETURN NULL;
  END IF;
  IF d > extract(day FROM make_date(y, mo, 1) + interval '1 month - 1 day') THEN
    RETURN NULL;
  END IF;
  RETURN make_timestamp(y, mo, d, h, mi, s + us / 1000000.0);
END
$body$
"""


def _ident(name: str) -> str:
    return name.replace('"', '""')


def _qualified(name: str) -> str:
    schema, _, table = name.rpartition(".")
    return (f'"{_ident(schema)}".' if schema else "") + f'"{_ident(table)}"'


def _whitespace_chunks(
    paths: Sequence[Path], encoding: str, width: int, header_line: str | None
) -> Iterator[bytes]:
    """Lines split on runs of whitespace into ``width`` cells, as UTF-8 CSV (header skipped)."""
    import csv

    header = header_line.strip() if header_line is not None else None

    def rows(fh: Iterator[str]) -> Iterator[list[str]]:
        for line in fh:
            text = line.strip()
            if text and text != header:
                cells = text.split()[:width]
                yield cells + [""] * (width - len(cells))

    for path in paths:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        try:
            with _files.open_text(path, encoding) as fh:
                for i, row in enumerate(rows(fh)):
                    writer.writerow(row)
                    if i % 50_000 == 49_999:
                        yield buf.getvalue().encode("utf-8")
                        buf.seek(0)
                        buf.truncate()
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise InputError(
                f"Cannot read {path}: {str(exc)[:200]}. Check the file is complete and "
                "pass --encoding with its real encoding (e.g. latin-1)."
            ) from None
        yield buf.getvalue().encode("utf-8")


def _csv_chunks(
    paths: Sequence[Path], encoding: str, sep: str, *, skip: int = 1
) -> Iterator[bytes]:
    """The files' rows after the header (``skip`` rows), re-written as UTF-8 CSV."""
    import csv

    for path in paths:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        with _files.open_text(path, encoding) as fh:
            reader = csv.reader(fh, delimiter=sep)
            for _ in range(skip):
                next(reader, None)
            try:
                for i, row in enumerate(reader):
                    # An empty cell is NULL in COPY; csv.writer writes "" as empty too.
                    writer.writerow(row)
                    if i % 50_000 == 49_999:
                        yield buf.getvalue().encode("utf-8")
                        buf.seek(0)
                        buf.truncate()
            except (UnicodeDecodeError, csv.Error, OSError, EOFError) as exc:
                raise InputError(
                    f"Cannot read {path}: {str(exc)[:200]}. Check the file is complete and "
                    "pass --encoding with its real encoding (e.g. latin-1)."
                ) from None
        yield buf.getvalue().encode("utf-8")


def _arrow_chunks(table: pa.Table) -> Iterator[bytes]:
    """Arrow rows as CSV text: NULL unquoted and empty, text always quoted ("" is empty text)."""
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for batch in table.to_batches(max_chunksize=100_000):
        sink = io.BytesIO()
        pacsv.write_csv(pa.Table.from_batches([batch], schema=table.schema), sink, options)
        yield sink.getvalue()
