"""Read transactions from a file, folder, glob or in-memory table into a canonical engine table.

Loading renames and types columns; it drops nothing (that is :mod:`custseg.clean`'s job, where
every dropped row is counted). Unparseable numbers and dates become NULL here and are counted
by reason there.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob as _glob
import gzip
import hashlib
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ibis.expr.datatypes as idt
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from .engine import Engine, EngineSpec, ops_for
from .engine import connect as connect_engine
from .engine.base import DECIMAL_COMMA_REGEX, NUMBER_REGEX, WHITESPACE, headerless_names
from .engine.files import sniff_delimiter
from .errors import ConfigError, CustsegWarning, InputError, SchemaError
from .ids import (
    CUSTOMER_KEY,
    INVOICE_KEY,
    canonical_text,
    customer_missing,
    customer_text,
    invoice_text,
)
from .schema import (
    AMOUNT,
    CUSTOMER,
    DATE,
    INVOICE,
    PRICE,
    QUANTITY,
    STOCK_CODE,
    ColumnMap,
    detect_columns,
)

__all__ = [
    "CUSTOMER_KEY",
    "INVOICE_KEY",
    "CatalogTable",
    "SourceInfo",
    "Transactions",
    "customer_missing",
    "customer_text",
    "detect_date_format",
    "invoice_text",
    "load_transactions",
]

Format = Literal["csv", "parquet", "excel", "memory", "table"]
SOURCE_PREFIX = "src__"

_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz", ".csv.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")

# Candidate formats, most common first. US month-first comes before day-first: with no day
# above 12 in the sample the two cannot be told apart, and the Kaggle copy is US.
DATE_FORMATS: tuple[str, ...] = (
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%m/%d/%y %H:%M",
    "%m/%d/%y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%d/%m/%y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y%m%d",
    "%Y%m%d%H%M%S",
)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_SAMPLE_ROWS = 20_000
# Inputs up to this size get a SHA-256 for the record; beyond it only name and size are kept.
# Hashing runs at ~1 GB/s: a 836 MB CSV took 0.9 s, a sixth of the whole RFM query on it.
CHECKSUM_MAX_BYTES = 256 << 20


@dataclass(frozen=True)
class CatalogTable:
    """A table of the engine's catalog as input (a database table, a Spark table or view)."""

    name: str


@dataclass(frozen=True)
class SourceInfo:
    """Where the rows came from: for the ledger, the report and reproducibility."""

    name: str
    format: Format
    files: tuple[str, ...] = ()
    size_bytes: int = 0
    encoding: str | None = None
    sheet: str | None = None
    sha256: str | None = None
    #: Whether the first row named the columns (without one: ``column_1``, ``column_2``, ...).
    header: bool = True


@dataclass(frozen=True)
class Transactions:
    """A canonical transaction table and how it was built.

    ``table`` has the canonical columns of :mod:`custseg.schema` (``customer_id`` text,
    ``invoice_id`` text if the data has invoices, ``date`` timestamp, ``quantity`` and
    ``price`` or ``amount`` float, ``stock_code`` text if known), NULL where a cell did not
    parse; the stored ids under :data:`CUSTOMER_KEY` and :data:`INVOICE_KEY` (for grouping);
    and every source column under a ``src__`` prefix (for exact-duplicate checks). Columns
    a query does not use cost nothing: the engine never computes them.
    """

    table: ir.Table
    columns: ColumnMap
    source: SourceInfo
    date_format: str | None
    source_columns: tuple[str, ...] = field(default=())
    engine: Engine | None = field(default=None, repr=False, compare=False)

    @property
    def has_invoice(self) -> bool:
        """Whether rows carry an invoice id (without one, each row is one order)."""
        return self.columns.invoice is not None


def load_transactions(
    source: str | Path | pd.DataFrame | pa.Table | ir.Table,
    *,
    columns: ColumnMap | Mapping[str, str | None] | None = None,
    date_format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
    header: bool | None = None,
    sheet: str | int | None = None,
    need_stock_code: bool = False,
    monetary: bool = True,
    engine: EngineSpec = None,
    con: BaseBackend | Engine | None = None,
) -> Transactions:
    """Load transactions into a canonical engine table.

    Parameters
    ----------
    source : path, glob, folder, DataFrame, Arrow table, Ibis table or CatalogTable
        CSV (``.csv``, ``.csv.gz``, ``.tsv``), Parquet, Excel (``.xlsx``), a folder of CSV or
        Parquet files, a glob such as ``"exports/*.parquet"``, or a table of the engine's
        catalog (``CatalogTable("sales")``; on Spark a name that is not a file works too).
    columns : ColumnMap or mapping role -> column, optional
        Explicit column choices; unnamed roles are detected from the header.
    date_format : str, optional
        A strptime format such as ``"%d/%m/%Y %H:%M"``; detected from the values if omitted.
    encoding : str, optional
        CSV text encoding; detected (UTF-8, else ISO-8859-1) if omitted.
    delimiter : str, optional
        CSV delimiter; sniffed if omitted. ``"whitespace"`` splits columns on runs of spaces
        and tabs (whitespace-aligned text such as CDNOW's).
    decimal : {".", ","}, optional
        The decimal mark of numbers held as text: ``","`` reads ``1.234,56`` and ``12,5``
        (European exports). Default ``"."``; a text column whose values mostly need ``","``
        is refused with a hint to pass it.
    header : bool, optional
        Whether the first row of a CSV or text file names the columns. Detected if omitted:
        a first row of numbers and dates only is data. Headerless columns are named
        ``column_1``, ``column_2``, ... (name their roles with ``columns``).
    sheet : str or int, optional
        Excel sheet name or 0-based index (default: the first sheet).
    need_stock_code : bool
        Require a stock code column (for excluded codes).
    monetary : bool
        False: no value will be computed (``--no-monetary``; see
        :func:`custseg.schema.detect_columns`).
    engine : Engine, str, Ibis backend or SparkSession, optional
        Where the rows are read and aggregated (see :func:`custseg.engine.connect`); a fresh
        DuckDB engine by default. ``Transactions.engine`` holds it: close it when done.
    con : Ibis backend or Engine, optional
        The same as ``engine`` (kept for callers that pass a connection).

    Returns
    -------
    Transactions

    Raises
    ------
    InputError
        If the source does not exist or cannot be read as a table.
    SchemaError
        If required columns are missing or ambiguous.

    Examples
    --------
    >>> from custseg.datasets import online_retail_path
    >>> tx = load_transactions(online_retail_path())
    >>> tx.columns.customer
    'CustomerID'
    """
    eng = connect_engine(engine if engine is not None else con)
    raw, info = _read(
        eng, source, encoding=encoding, delimiter=delimiter, header=header, sheet=sheet
    )
    headers = [str(c) for c in raw.columns]
    if not headers:
        raise InputError(f"{info.name} has no columns. Check that it is a table with a header row.")
    explicit = _explicit(columns)
    try:
        cmap = detect_columns(headers, explicit, need_stock_code=need_stock_code, monetary=monetary)
    except SchemaError as exc:
        raise _header_hint(exc, info, raw, eng) from None
    comma = _decimal_comma(decimal)
    # Text value columns are checked for decimal commas on the date's sample rows: one query.
    numbers = [] if comma else _text_value_columns(raw, cmap)
    assert cmap.date is not None  # detect_columns requires it
    fmt = date_format
    date_col = raw[cmap.date]
    if date_col.type().is_string():
        samples = _sample(raw, cmap.date, eng, also=numbers)
        fmt = date_format or detect_date_format(samples.pop(cmap.date), column=cmap.date)
    else:
        samples = _sample(raw, numbers[0], eng, also=numbers[1:]) if numbers else {}
        if date_format is not None and not date_col.type().is_integer():
            fmt = None
    _check_decimal_point(samples)
    table = _canonical(raw, cmap, fmt, decimal_comma=comma)
    return Transactions(table, cmap, info, fmt, tuple(headers), engine=eng)


def _header_hint(exc: SchemaError, info: SourceInfo, raw: ir.Table, eng: Engine) -> SchemaError:
    """A missing role in a headerless file (or one whose header looks like data) says so."""
    headers = list(raw.columns)
    if info.format != "csv" or not str(exc).startswith("No "):
        return exc
    if not info.header:
        return SchemaError(
            f"{Path(info.name).name} has no header row, so its columns are named column_1 to "
            f"column_{len(headers)}{_first_row(raw, eng)}. Name their roles with "
            "--customer-col, --date-col and --amount-col (or --quantity-col and --price-col), "
            "e.g. --customer-col column_1."
        )
    if any(_DATA_CELL.match(h.strip()) for h in headers):
        return SchemaError(
            f"The first row of {Path(info.name).name}, {headers[:5]}, looks like data, not "
            f"column names ({str(exc).split(':')[0].lower()}). Pass --no-header, then name "
            "the roles, e.g. --customer-col column_1."
        )
    return exc


def _first_row(raw: ir.Table, eng: Engine) -> str:
    """`` (first row: column_1='00001', ...)``, or nothing if it cannot be read."""
    try:
        rows = raw.limit(1).to_pyarrow().to_pylist()
    except Exception as exc:
        if eng.is_interrupt(exc):
            raise KeyboardInterrupt from None
        return ""
    if not rows:
        return ""
    return " (first row: " + ", ".join(f"{k}={_short(v)}" for k, v in rows[0].items()) + ")"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "...'"


def _explicit(columns: ColumnMap | Mapping[str, str | None] | None) -> dict[str, str | None]:
    if columns is None:
        return {}
    if isinstance(columns, ColumnMap):
        return dict(columns.used())
    return {k: v for k, v in columns.items() if v}


# --- reading ---------------------------------------------------------------------------------


def _read(
    eng: Engine,
    source: Any,
    *,
    encoding: str | None,
    delimiter: str | None,
    header: bool | None,
    sheet: str | int | None,
) -> tuple[ir.Table, SourceInfo]:
    if isinstance(source, ir.Table):
        return source, SourceInfo("table", "memory")
    if isinstance(source, pd.DataFrame | pa.Table):
        name = "dataframe" if isinstance(source, pd.DataFrame) else "arrow table"
        return eng.register_arrow(source, "input"), SourceInfo(name, "memory")
    if isinstance(source, CatalogTable) or _is_catalog_name(eng, source):
        name = source.name if isinstance(source, CatalogTable) else str(source)
        table = eng.read_table(name)
        return table, SourceInfo(f"{eng.label} table {name}", "table")
    if not isinstance(source, str | Path):
        raise InputError(
            f"Cannot read a {type(source).__name__} as transactions. "
            "Pass a file path, a folder, a glob, a pandas DataFrame or an Arrow table."
        )
    files = _expand(source)
    fmt = _format_of(files)
    size = sum(f.stat().st_size for f in files)
    name = str(source)
    digest = _checksum(files) if size <= CHECKSUM_MAX_BYTES else None
    if fmt == "parquet":
        try:
            table = eng.read_parquet(files)
            table.schema()
        except InputError:
            raise
        except Exception as exc:  # the engine's own error types vary by backend
            if eng.is_interrupt(exc):
                raise KeyboardInterrupt from None
            raise InputError(
                f"Cannot read {name} as Parquet ({_first_line(exc)}). "
                "Check the file is a complete Parquet file."
            ) from None
        return table, SourceInfo(name, "parquet", tuple(map(str, files)), size, sha256=digest)
    if fmt == "excel":
        table, sheet_name = _read_excel(eng, files[0], sheet)
        return table, SourceInfo(
            name, "excel", (str(files[0]),), size, sheet=sheet_name, sha256=digest
        )
    for f in files:
        if f.stat().st_size == 0:
            raise InputError(f"{f} is empty. Export the data again with a header row.")
    enc = encoding or _detect_encoding(files[0])
    table, has_header = _read_text(eng, files, name, enc, delimiter=delimiter, header=header)
    info = SourceInfo(
        name, "csv", tuple(map(str, files)), size, encoding=enc, sha256=digest, header=has_header
    )
    return table, info


def _read_text(
    eng: Engine,
    files: list[Path],
    name: str,
    enc: str,
    *,
    delimiter: str | None,
    header: bool | None,
) -> tuple[ir.Table, bool]:
    """Delimited or whitespace-aligned text files, and whether they have a header row."""
    first = _first_text_line(files[0], enc)
    whitespace = delimiter is not None and delimiter.lower() == WHITESPACE
    cells = first.split() if whitespace else _cells(files[0], enc, first, delimiter)
    has_header = header if header is not None else not _row_of_data(cells)
    try:
        if whitespace:
            names = cells if has_header else headerless_names(len(cells))
            _check_unique(files[0], names)
            table = eng.read_whitespace(
                files, encoding=enc, names=names, header_line=first if has_header else None
            )
        else:
            table = eng.read_csv(files, encoding=enc, delimiter=delimiter, header=has_header)
        schema = table.schema()
    except InputError:
        raise
    except Exception as exc:
        if eng.is_interrupt(exc):
            raise KeyboardInterrupt from None
        raise InputError(
            f"Cannot read {name} as CSV ({_first_line(exc)}). "
            "Check the file is delimited text; pass --delimiter or --encoding if detection failed."
        ) from None
    if has_header and not whitespace:
        _check_csv_header(files[0], enc, list(schema.names))
    if len(schema) == 1 and delimiter is None:
        only = first if not has_header else schema.names[0]
        if any(sep in only for sep in (";", "\t", "|", ",")):
            raise InputError(
                f"{name} was read as a single column {only!r}. Pass --delimiter with the "
                "character that separates its columns."
            )
        if len(only.split()) > 1:
            raise InputError(
                f"{name} was read as a single column {only.strip()[:60]!r}: its columns are "
                "aligned with spaces. Pass --delimiter whitespace."
            )
    return table, has_header


def _first_text_line(path: Path, encoding: str) -> str:
    """The first non-blank line (byte order mark and line end removed), ``""`` if none."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding=encoding, errors="replace", newline="") as fh:
            for _, line in zip(range(1000), fh, strict=False):
                if line.strip():
                    return line.lstrip("\ufeff").rstrip("\r\n")
    except (OSError, EOFError, LookupError):
        pass
    return ""


def _cells(path: Path, encoding: str, line: str, delimiter: str | None) -> list[str]:
    """The line's cells, split by the delimiter given or sniffed."""
    sep = delimiter or sniff_delimiter(path, encoding)
    return next(csv.reader([line], delimiter=sep), []) if line else []


_DATA_CELL = re.compile(r"^[+-]?[0-9]+(?:[.,:/ T-][0-9]+)*$")


def _row_of_data(cells: list[str]) -> bool:
    """Whether a first row holds numbers and dates only: data, not column names."""
    values = [c.strip() for c in cells]
    return bool(values) and all(_DATA_CELL.match(v) for v in values)


def _check_unique(path: Path, names: list[str]) -> None:
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise SchemaError(
            f"Duplicated column name(s) {dupes} in the header of {path.name}. "
            "Rename them so each is unique."
        )


def _is_catalog_name(eng: Engine, source: Any) -> bool:
    """A name that is no file but a table of the engine (Spark: ``sales``, ``db.sales``)."""
    if eng.kind != "spark" or not isinstance(source, str) or any(c in source for c in "*?[/"):
        return False
    return not Path(source).exists() and eng.has_table(source)


def _check_csv_header(path: Path, encoding: str, names: list[str]) -> None:
    """The engine renames repeated header names (Quantity, Quantity_1): refuse them instead."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding=encoding, errors="replace", newline="") as fh:
            first = fh.readline(1 << 20)
    except (OSError, EOFError):
        return
    first = first.lstrip("\ufeff").rstrip("\r\n")
    if len(names) < 2:
        return
    for sep in (",", ";", "\t", "|"):
        cells = next(csv.reader([first], delimiter=sep))
        if len(cells) == len(names):
            stripped = [c.strip() for c in cells]
            dupes = sorted({c for c in stripped if stripped.count(c) > 1})
            if dupes:
                raise SchemaError(
                    f"Duplicated column name(s) {dupes} in the header of {path.name}. "
                    "Rename them so each is unique."
                )
            return


def _expand(source: str | Path) -> list[Path]:
    text = str(source)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in _glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise InputError(f"No files match {text!r}. Check the pattern and the folder.")
        return files
    path = Path(source)
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and _suffix(p) in _CSV_SUFFIXES + _PARQUET_SUFFIXES
        )
        if not files:
            raise InputError(
                f"Folder {text!r} holds no CSV or Parquet files. Point at a folder of exports."
            )
        return files
    if not path.exists():
        raise InputError(f"No such file: {text!r}. Check the path.")
    if not path.is_file():
        raise InputError(f"{text!r} is not a regular file. Pass a file, a folder or a glob.")
    return [path]


def _checksum(files: list[Path]) -> str:
    """SHA-256 of the files' bytes, in order (one file: its usual checksum)."""
    h = hashlib.sha256()
    for f in files:
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(
        _CSV_SUFFIXES + _PARQUET_SUFFIXES + _EXCEL_SUFFIXES, key=len, reverse=True
    ):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def _format_of(files: list[Path]) -> Format:
    kinds = set()
    for f in files:
        suffix = _suffix(f)
        if suffix in _PARQUET_SUFFIXES:
            kinds.add("parquet")
        elif suffix in _EXCEL_SUFFIXES:
            kinds.add("excel")
        elif suffix in _CSV_SUFFIXES:
            kinds.add("csv")
        else:
            kinds.add(_sniff_format(f))
    if len(kinds) > 1:
        raise InputError(
            f"Mixed file kinds {sorted(kinds)} in the input. Load one kind of file at a time."
        )
    if "excel" in kinds and len(files) > 1:
        raise InputError("Several Excel files were given. Load one workbook at a time.")
    return kinds.pop()  # type: ignore[return-value]


def _sniff_format(path: Path) -> Format:
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "excel"
    if head.startswith(b"\x1f\x8b") or not _looks_binary(path):
        return "csv"
    raise InputError(
        f"{path} is not a table custseg can read (not CSV, Parquet or Excel). "
        "Export the data as CSV or Parquet."
    )


def _looks_binary(path: Path) -> bool:
    with path.open("rb") as fh:
        chunk = fh.read(4096)
    return b"\x00" in chunk


def _detect_encoding(path: Path) -> str:
    """UTF-8 if the first megabytes decode as UTF-8, else ISO-8859-1 (which never fails)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            chunk = fh.read(4 << 20)
    except (OSError, EOFError) as exc:
        raise InputError(
            f"Cannot read {path}: {exc}. Check that the file is complete (download or export "
            "it again)."
        ) from None
    if b"\x00" in chunk[:4096] and not chunk.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path} looks binary, not text. Export the data as CSV or Parquet.")
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(chunk) - 4:  # not just a character cut at the chunk's end
            return "latin-1"
    return "utf-8"


def _read_excel(eng: Engine, path: Path, sheet: str | int | None) -> tuple[ir.Table, str]:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:
        raise InputError(
            f"Cannot read {path} as an Excel workbook ({_first_line(exc)}). "
            "Save it again as .xlsx or export CSV."
        ) from None
    names = list(book.sheet_names)
    if sheet is None:
        chosen = names[0]
        if len(names) > 1:
            warnings.warn(
                f"{path.name} has sheets {names}; reading the first, {chosen!r}. "
                "Pass --sheet to choose another.",
                CustsegWarning,
                stacklevel=3,
            )
    elif isinstance(sheet, int) or (
        isinstance(sheet, str) and sheet.isdigit() and sheet not in names
    ):
        index = int(sheet)
        if not 0 <= index < len(names):
            raise InputError(
                f"{path.name} has no sheet {str(sheet)!r} (nor sheet number {index}); its sheets "
                f"are {names}. Pass --sheet NAME."
            )
        chosen = names[index]
    elif sheet in names:
        chosen = sheet
    else:
        raise InputError(
            f"{path.name} has no sheet {sheet!r}; its sheets are {names}. Pass --sheet NAME."
        )
    rows = book.get_sheet_by_name(chosen).to_python(skip_empty_area=True)
    if not rows:
        raise InputError(f"Sheet {chosen!r} of {path.name} is empty.")
    header = [
        str(h).strip() if h not in (None, "") else f"column_{i + 1}" for i, h in enumerate(rows[0])
    ]
    body = rows[1:]
    data = {
        h: [
            None if (r[i] if i < len(r) else None) in (None, "") else _excel_text(r[i])
            for r in body
        ]
        for i, h in enumerate(header)
    }
    arrow = pa.table({h: pa.array(v, type=pa.string()) for h, v in data.items()})
    return eng.register_arrow(arrow, "excel"), chosen


def _excel_text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# --- dates -----------------------------------------------------------------------------------


def _sample(
    table: ir.Table, column: str, eng: Engine, *, also: Sequence[str] = ()
) -> dict[str, list[str]]:
    """Distinct non-empty stripped values of ``column`` and of ``also`` (each column's own),
    from the first rows where ``column`` is not NULL: one query."""
    col = table[column]
    names = [column, *(c for c in also if c != column)]
    try:
        rows = (
            table.filter(col.notnull())
            .select(**{f"v{i}": table[c] for i, c in enumerate(names)})
            .limit(_SAMPLE_ROWS)
            .to_pyarrow()
        )
    except Exception as exc:
        if eng.is_interrupt(exc):
            raise KeyboardInterrupt from None
        raise InputError(
            f"Cannot read column {column!r} ({_first_line(exc)}). "
            "Check the file's encoding and delimiter (--encoding, --delimiter)."
        ) from None
    out: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        seen: dict[str, None] = {}
        for v in rows.column(f"v{i}").to_pylist():
            s = str(v).strip() if v is not None else ""
            if s:
                seen.setdefault(s, None)
        out[name] = list(seen)
    return out


def detect_date_format(values: list[str], *, column: str = "date") -> str | None:
    """Find the date format of text dates.

    Returns ``None`` for ISO 8601 text (read with a plain cast), else the strptime format
    that parses the most sample values.

    Raises
    ------
    SchemaError
        If no known format parses at least half of the values.

    Examples
    --------
    >>> detect_date_format(["12/1/2010 8:26", "12/13/2010 9:01"])
    '%m/%d/%Y %H:%M'
    >>> detect_date_format(["2011-12-09 12:50:00"]) is None
    True
    """
    if not values:
        return None
    iso = sum(1 for v in values if _ISO.match(v))
    best_fmt: str | None = None
    best = iso
    if iso < len(values):
        for fmt in DATE_FORMATS:
            ok = 0
            for v in values:
                try:
                    dt.datetime.strptime(v, fmt)
                    ok += 1
                except ValueError:
                    pass
            if ok > best:
                best, best_fmt = ok, fmt
            if ok == len(values):
                break
    if best * 2 < len(values):
        examples = ", ".join(repr(v) for v in values[:3])
        raise SchemaError(
            f"Cannot tell the date format of column {column!r} (values like {examples}). "
            "Pass --date-format, for example --date-format '%d/%m/%Y %H:%M'."
        )
    return best_fmt


# --- the canonical table ---------------------------------------------------------------------


def _decimal_comma(decimal: str | None) -> bool:
    """Whether numbers are read with a decimal comma (``--decimal ,``)."""
    if decimal is None or decimal == ".":
        return False
    if decimal == ",":
        return True
    raise ConfigError(f"--decimal {decimal!r} is not a decimal mark. Use '.' (default) or ','.")


def _text_value_columns(raw: ir.Table, cmap: ColumnMap) -> list[str]:
    """The quantity, price or amount columns held as text."""
    cols = [c for c in (cmap.quantity, cmap.price, cmap.amount) if c is not None]
    return [c for c in cols if raw[c].type().is_string()]


def _check_decimal_point(samples: Mapping[str, list[str]]) -> None:
    """Refuse a text value column whose sampled values mostly need ``--decimal ,``.

    Such values (``12,50``) do not parse as numbers: without the check every row would be
    dropped as invalid_number.
    """
    for col, values in samples.items():
        bad = [v for v in values if not _NUMBER.match(v)]
        comma = [v for v in bad if "," in v and _DECIMAL_COMMA.match(v)]
        if len(bad) * 2 > len(values) and len(comma) * 2 > len(bad):
            examples = ", ".join(repr(v) for v in comma[:3])
            raise SchemaError(
                f"Column {col!r} holds numbers with a decimal comma (values like {examples}). "
                "Pass --decimal ','."
            )


_NUMBER = re.compile(NUMBER_REGEX)
_DECIMAL_COMMA = re.compile(DECIMAL_COMMA_REGEX)


def _canonical(
    raw: ir.Table, cmap: ColumnMap, date_format: str | None, *, decimal_comma: bool = False
) -> ir.Table:
    cols: dict[str, ir.Value] = {CUSTOMER: customer_text(raw[cmap.customer])}
    if cmap.invoice is not None:
        cols[INVOICE] = invoice_text(raw[cmap.invoice])
    cols[DATE] = _timestamp(raw[cmap.date], date_format)
    if cmap.amount is not None:
        cols[AMOUNT] = _number(raw[cmap.amount], decimal_comma)
    elif cmap.has_values:
        cols[QUANTITY] = _number(raw[cmap.quantity], decimal_comma)
        cols[PRICE] = _number(raw[cmap.price], decimal_comma)
    if cmap.stock_code is not None:
        cols[STOCK_CODE] = canonical_text(raw[cmap.stock_code])
    cols[CUSTOMER_KEY] = raw[cmap.customer]
    if cmap.invoice is not None:
        cols[INVOICE_KEY] = raw[cmap.invoice]
    for name in raw.columns:
        cols[SOURCE_PREFIX + name] = raw[name]
    return raw.select(**cols)


def _number(col: ir.Value, decimal_comma: bool = False) -> ir.FloatingValue:
    dtype = col.type()
    if dtype.is_numeric() or dtype.is_boolean():
        return col.cast("float64")
    ops = ops_for(col)
    text = ops.strip_text(col.cast("string"))
    return ops.parse_number(ops.decimal_comma(text) if decimal_comma else text)


def _timestamp(col: ir.Value, date_format: str | None) -> ir.TimestampValue:
    dtype = col.type()
    if dtype.is_timestamp():
        return col.cast(idt.Timestamp())
    if dtype.is_date():
        return col.cast("timestamp")
    ops = ops_for(col)
    if dtype.is_integer():
        return ops.parse_timestamp(col.cast("string"), date_format or "%Y%m%d")
    return ops.parse_timestamp(ops.strip_text(col.cast("string")), date_format)
