"""Seeded, streaming synthetic transaction logs in the UCI Online Retail schema.

The generator exists for benchmarks and tests at sizes the real data cannot reach (10M, 100M
rows). It writes chunk by chunk, so peak memory depends on ``chunk_rows`` and the customer
population, never on ``rows``.

The structure mimics the real log:

- a customer population with heavy-tailed purchase rates (a few wholesalers with hundreds of
  invoices, most customers with one to three), each active in a window of the year: some were
  buying before the log starts, some churn early, some arrive late;
- multi-line invoices (lines per invoice geometric, mean about 20), guest invoices without a
  customer id (about 22% of rows), about 2% cancellation invoices (``C`` prefix, negative
  quantities) that reverse lines of an earlier invoice of the same customer;
- one year of dates (2010-12-01 .. 2011-12-09) with a weekly pattern (closed on Saturdays),
  a pre-Christmas peak, shop holidays and trading hours; invoice numbers increase with time;
- non-product stock codes (``POST``, ``DOT``, ``M``, ``C2``), about 0.4% zero prices (some of them
  stock adjustments without description and with a negative quantity, as in the real log).
"""

from __future__ import annotations

import contextlib
import gzip as gzip_module
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from custseg.errors import ConfigError

__all__ = ["SCHEMA", "generate_transactions"]

Format = Literal["parquet", "csv"]

SCHEMA = pa.schema(
    [
        ("InvoiceNo", pa.string()),
        ("StockCode", pa.string()),
        ("Description", pa.string()),
        ("Quantity", pa.int64()),
        ("InvoiceDate", pa.timestamp("us")),
        ("UnitPrice", pa.float64()),
        ("CustomerID", pa.float64()),
        ("Country", pa.string()),
    ]
)
"""Arrow schema of a generated file (as read back; strings are dictionary-encoded on disk)."""

# Written with dictionary-typed string columns so the Parquet writer reuses the dictionaries
# instead of hashing every value; store_schema=False makes readers see plain strings.
_WRITE_SCHEMA = pa.schema(
    [
        ("InvoiceNo", pa.dictionary(pa.int32(), pa.string())),
        ("StockCode", pa.dictionary(pa.int32(), pa.string())),
        ("Description", pa.dictionary(pa.int32(), pa.string())),
        ("Quantity", pa.int64()),
        ("InvoiceDate", pa.timestamp("us")),
        ("UnitPrice", pa.float64()),
        ("CustomerID", pa.float64()),
        ("Country", pa.dictionary(pa.int32(), pa.string())),
    ]
)

_START = date(2010, 12, 1)
_END = date(2011, 12, 9)
_FIRST_INVOICE = 536365
_FIRST_CUSTOMER_ID = 12346
_N_PRODUCTS = 3684

_MEAN_LINES = 20.0  # lines per customer invoice
_MEAN_GUEST_LINES = 40.0  # guest invoices are fewer but longer, as in the real log
_GUEST_INVOICE_SHARE = 0.125  # -> about 22% of rows without a customer id
_CANCEL_SHARE = 0.02  # of all invoices
_ZERO_PRICE_SHARE = 0.004  # of rows
_WHOLESALER_SHARE = 0.005  # of the customer population

_COUNTRIES = (
    ("United Kingdom", 0.895),
    ("Germany", 0.022),
    ("France", 0.020),
    ("EIRE", 0.004),
    ("Spain", 0.007),
    ("Belgium", 0.006),
    ("Switzerland", 0.005),
    ("Portugal", 0.005),
    ("Netherlands", 0.002),
    ("Italy", 0.004),
    ("Finland", 0.003),
    ("Norway", 0.003),
    ("Austria", 0.003),
    ("Australia", 0.002),
    ("Denmark", 0.002),
    ("Sweden", 0.002),
    ("Channel Islands", 0.002),
    ("Cyprus", 0.002),
    ("Japan", 0.002),
    ("Poland", 0.002),
    ("USA", 0.001),
    ("Canada", 0.001),
    ("Unspecified", 0.001),
    ("Hong Kong", 0.001),
    ("Israel", 0.001),
    ("Greece", 0.001),
    ("Singapore", 0.001),
    ("Iceland", 0.001),
    ("Lithuania", 0.001),
    ("Brazil", 0.001),
    ("RSA", 0.001),
    ("Malta", 0.001),
    ("Bahrain", 0.001),
    ("Czech Republic", 0.001),
    ("Lebanon", 0.001),
    ("Saudi Arabia", 0.001),
    ("United Arab Emirates", 0.001),
    ("European Community", 0.001),
)

# Special (non-product) stock codes, appended after the regular catalogue.
_SPECIALS = (
    ("POST", "POSTAGE"),
    ("DOT", "DOTCOM POSTAGE"),
    ("M", "Manual"),
    ("C2", "CARRIAGE"),
)
_POST, _DOT, _MANUAL, _CARRIAGE = (_N_PRODUCTS + i for i in range(len(_SPECIALS)))

# fmt: off
_PACK_SIZES = np.array([1, 2, 3, 4, 6, 8, 10, 12, 24, 25, 36, 48, 72, 96, 144, 288], dtype=np.int64)
_PACK_PROBS = np.array(
    [0.28, 0.16, 0.08, 0.08, 0.11, 0.03, 0.04, 0.13, 0.04, 0.015, 0.01, 0.01, 0.005, 0.004,
     0.003, 0.003]
)
_PACK_PROBS /= _PACK_PROBS.sum()
_GUEST_PACK_PROBS = np.array(
    [0.60, 0.18, 0.08, 0.05, 0.04, 0.01, 0.01, 0.03, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
)
_HOUR_WEIGHTS = np.array(
    [0.01, 0.04, 0.08, 0.12, 0.14, 0.15, 0.14, 0.12, 0.09, 0.06, 0.03, 0.01, 0.01]
)  # 07:00 .. 19:59
# fmt: on

# fmt: off
_ADJECTIVES = (
    "HANGING", "VINTAGE", "REGENCY", "RETRO", "JUMBO", "SMALL", "LARGE", "MINI", "SET OF 3",
    "PACK OF 12", "GLASS", "WOODEN", "ENAMEL", "PAPER", "CERAMIC", "FELT", "METAL", "PAISLEY",
    "SPOTTY", "STRIPED", "FLORAL", "ANTIQUE", "HEART", "STAR", "CHRISTMAS", "PARTY", "DOLLY GIRL",
    "SPACEBOY", "WOODLAND", "ALPHABET",
)
_COLOURS = (
    "WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "CREAM", "BLACK", "SILVER", "GOLD",
    "PASTEL", "RETROSPOT", "POLKADOT", "LILAC", "ORANGE", "YELLOW",
)
_NOUNS = (
    "T-LIGHT HOLDER", "LANTERN", "BUNTING", "TEACUP AND SAUCER", "CAKE STAND", "LUNCH BAG",
    "JAM MAKING SET", "DOORMAT", "ALARM CLOCK", "CANDLE", "NAPKINS", "PHOTO FRAME", "SIGN",
    "STORAGE JAR", "BAKING SET", "HOT WATER BOTTLE", "CUSHION COVER", "NOTEBOOK", "PURSE",
    "SHOPPER BAG", "WALL CLOCK", "COAT HANGER", "GIFT WRAP", "PARASOL", "MUG", "PLATE",
    "BOWL", "CHARLOTTE BAG", "PEG BAG", "TISSUES", "WATER BOTTLE", "BIRD ORNAMENT",
    "CAKE CASES", "PICNIC BASKET", "TRINKET BOX", "KEY FOB", "MAGNET", "EGG CUP", "PHOTO ALBUM",
    "RIBBONS",
)
# fmt: on


@dataclass(frozen=True)
class _Population:
    """Customers, catalogue and calendar, drawn once per run."""

    ids: np.ndarray  # float64 customer id per customer index
    country: np.ndarray  # int32 country index per customer
    start: np.ndarray  # active window in time quantiles [0, 1]
    end: np.ndarray
    wholesaler: np.ndarray  # bool
    weight_cdf: np.ndarray  # cumulative purchase-rate weights (normalised)
    fallback: np.ndarray  # customers active over the whole year (never empty)
    anchor_order: np.ndarray  # customer indices sorted by anchor time
    anchor_time: np.ndarray  # sorted anchor times (one guaranteed invoice per customer)
    product_cdf: np.ndarray  # popularity of regular products
    product_price: np.ndarray  # base unit price per product (specials included)
    stock_codes: pa.Array
    descriptions: pa.Array
    countries: pa.Array
    country_cdf: np.ndarray
    day_cdf: np.ndarray  # cumulative trading intensity by day (length n_days + 1, from 0)
    minute_cdf: np.ndarray  # cumulative intraday intensity by minute (from 0)
    open_minute: int


def generate_transactions(
    out: str | Path,
    *,
    rows: int,
    customers: int | None = None,
    seed: int = 0,
    fmt: Format | None = None,
    chunk_rows: int = 1_000_000,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write a synthetic transaction log in the UCI Online Retail schema.

    Rows are generated and written chunk by chunk, so memory stays bounded whatever ``rows`` is.
    The same arguments always give a byte-identical file. The file is written beside the target
    under a temporary name and renamed at the end: a failed run leaves no partial file.

    Parameters
    ----------
    out : str or Path
        Target file. Its suffix picks the format unless ``fmt`` is given: ``.parquet``,
        ``.csv`` or ``.csv.gz`` (gzip-compressed CSV). Missing parent folders are created.
    rows : int
        Exact number of rows (invoice lines) to write, at least 1.
    customers : int, optional
        Size of the customer population; default ``max(1, rows // 100)``. Customers whose
        activity window gets no invoice do not appear, so slightly fewer distinct ids may be
        written.
    seed : int, default 0
        Seed of the random generator (a non-negative integer).
    fmt : {"parquet", "csv"}, optional
        Output format; by default taken from the suffix of ``out``.
    chunk_rows : int, default 1_000_000
        Rows generated and written per step (one Parquet row group each). Changing it changes
        the data (chunks are seeded independently), not its statistics.
    progress : callable, optional
        Called after each chunk with the number of rows written so far.

    Returns
    -------
    Path
        The path of the written file.

    Raises
    ------
    ConfigError
        If ``rows``, ``customers``, ``seed`` or ``chunk_rows`` is out of range, or the format is
        unknown.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = generate_transactions(Path(tempfile.mkdtemp()) / "tx.parquet", rows=1_000, seed=1)
    >>> import pyarrow.parquet as pq
    >>> pq.read_metadata(path).num_rows
    1000
    """
    target = Path(out)
    kind = _resolve_format(target, fmt)
    _check_int("rows", rows, 1, "Pass rows=1 or more.")
    if customers is None:
        customers = max(1, rows // 100)
    _check_int("customers", customers, 1, "Pass customers=1 or more, or leave it out.")
    _check_int("seed", seed, 0, "Pass a non-negative integer seed.")
    _check_int("chunk_rows", chunk_rows, 1, "Pass chunk_rows=1 or more (default 1_000_000).")

    population = _make_population(customers, np.random.default_rng([seed, 0]))

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with _open_writer(tmp, kind, target.name.endswith(".gz")) as write:
            state = _ChunkState(next_invoice=_FIRST_INVOICE)
            done = 0
            for index in range(-(-rows // chunk_rows)):
                n = min(chunk_rows, rows - done)
                rng = np.random.default_rng([seed, 1, index])
                batch = _make_chunk(population, state, rng, start_row=done, n_rows=n, rows=rows)
                write(batch)
                done += n
                del batch
                if progress is not None:
                    progress(done)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return target


# --------------------------------------------------------------------------------------------
# validation and writers


def _resolve_format(target: Path, fmt: str | None) -> Format:
    """The output format from ``fmt`` or the file suffix."""
    if fmt is not None:
        if fmt not in ("parquet", "csv"):
            raise ConfigError(f"Unknown format {fmt!r}. Pass fmt='parquet' or fmt='csv'.")
        return "parquet" if fmt == "parquet" else "csv"
    name = target.name.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".csv") or name.endswith(".csv.gz"):
        return "csv"
    raise ConfigError(
        f"Cannot tell the format of {target.name!r}. Use a .parquet, .csv or .csv.gz suffix, "
        "or pass fmt='parquet' or fmt='csv'."
    )


def _check_int(name: str, value: object, minimum: int, fix: str) -> None:
    """Raise ConfigError unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}. {fix}")


@contextlib.contextmanager
def _open_writer(
    path: Path, kind: Format, gzip: bool
) -> Iterator[Callable[[pa.RecordBatch], None]]:
    """Yield a function that appends one record batch to ``path``."""
    if kind == "parquet":
        with pq.ParquetWriter(
            path, _WRITE_SCHEMA, compression="snappy", store_schema=False
        ) as writer:
            yield lambda batch: writer.write_batch(batch, row_group_size=batch.num_rows)
        return
    csv_schema = pa.schema(
        [pa.field(f.name, pa.string() if f.name == "InvoiceDate" else f.type) for f in SCHEMA]
    )
    # No value of ours holds a comma or a quote, so the file looks like the real export.
    options = pacsv.WriteOptions(quoting_style="none", include_header=False)
    with open(path, "wb") as raw:
        # Fast gzip level; mtime=0 and no file name in the header keep the bytes reproducible.
        sink = (
            gzip_module.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=raw, mtime=0)
            if gzip
            else raw
        )
        sink.write((",".join(csv_schema.names) + "\n").encode())
        with sink, pacsv.CSVWriter(sink, csv_schema, write_options=options) as writer:
            yield lambda batch: writer.write_batch(_to_csv_batch(batch, csv_schema))


def _to_csv_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Plain strings and second-resolution ISO dates (``2010-12-01 08:26:00``) for CSV."""
    columns = []
    for field in schema:
        column = batch.column(field.name)
        if field.name == "InvoiceDate":
            column = column.cast(pa.timestamp("s")).cast(pa.string())
        elif pa.types.is_dictionary(column.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


# --------------------------------------------------------------------------------------------
# the population: customers, catalogue, calendar


def _make_population(n_customers: int, rng: np.random.Generator) -> _Population:
    """Draw the customers, the catalogue and the trading calendar."""
    n = n_customers
    # Purchase rates: a gamma body (negative binomial counts: many one-off buyers) and a
    # heavy lognormal boost for the top half percent (wholesalers, hundreds of invoices).
    weight = rng.gamma(0.7, 1.0, n)
    n_wholesale = max(1, round(n * _WHOLESALER_SHARE))
    top = np.argpartition(-weight, n_wholesale - 1)[:n_wholesale]
    wholesaler = np.zeros(n, dtype=bool)
    wholesaler[top] = True
    weight[top] *= rng.lognormal(0.8, 0.5, n_wholesale)

    # Activity windows in time quantiles: pre-existing or acquired during the year; some churn.
    existing = rng.random(n) < 0.45
    start = np.where(existing, 0.0, rng.random(n) ** 0.8)
    churns = rng.random(n) < 0.25
    end = np.where(churns, start + (1.0 - start) * rng.beta(1.2, 1.6, n), 1.0)
    end = np.maximum(end, np.minimum(start + 0.01, 1.0))
    existing[wholesaler], start[wholesaler], end[wholesaler] = True, 0.0, 1.0
    always = np.flatnonzero((start == 0.0) & (end == 1.0))
    # One guaranteed invoice per customer: the first purchase of newcomers, a random date
    # inside the window for the others.
    anchor = np.where(existing, start + (end - start) * rng.random(n), start)
    anchor_order = np.argsort(anchor, kind="stable")

    country_p = np.array([p for _, p in _COUNTRIES])
    country_cdf = np.cumsum(country_p / country_p.sum())
    country = _draw(country_cdf, rng.random(n)).astype(np.int32)
    ids = (_FIRST_CUSTOMER_ID + rng.permutation(n)).astype(np.float64)

    product_cdf, product_price, stock, names = _draw_catalogue(rng)
    day_cdf = _day_intensity_cdf()
    minute_weight = np.repeat(_HOUR_WEIGHTS / 60.0, 60)
    minute_cdf = np.concatenate([[0.0], np.cumsum(minute_weight / minute_weight.sum())])
    return _Population(
        ids=ids,
        country=country,
        start=start,
        end=end,
        wholesaler=wholesaler,
        weight_cdf=np.cumsum(weight / weight.sum()),
        fallback=always if always.size else np.array([int(np.argmax(weight))]),
        anchor_order=anchor_order,
        anchor_time=anchor[anchor_order],
        product_cdf=product_cdf,
        product_price=product_price,
        stock_codes=pa.array(stock, pa.string()),
        descriptions=pa.array(names, pa.string()),
        countries=pa.array([name for name, _ in _COUNTRIES], pa.string()),
        country_cdf=country_cdf,
        day_cdf=day_cdf,
        minute_cdf=minute_cdf,
        open_minute=7 * 60,
    )


def _draw_catalogue(
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """The catalogue: popularity CDF, unit prices (specials last), stock codes, names."""
    # Catalogue: Zipf-like popularity, lognormal base prices (median ~2.1).
    popularity = 1.0 / np.arange(1, _N_PRODUCTS + 1) ** 0.8
    product_cdf = np.cumsum(popularity / popularity.sum())
    base = np.round(np.clip(rng.lognormal(0.75, 0.75, _N_PRODUCTS), 0.1, 300.0), 2)
    special_prices = np.array([18.0, 150.0, 10.0, 50.0])
    product_price = np.concatenate([base, special_prices])
    codes = 10000 + rng.choice(80000, _N_PRODUCTS, replace=False)
    suffix = np.where(rng.random(_N_PRODUCTS) < 0.15, rng.integers(0, 7, _N_PRODUCTS), -1)
    letters = np.array(list("ABCDEFG"))
    stock = [
        f"{c}{letters[s]}" if s >= 0 else str(c)
        for c, s in zip(codes.tolist(), suffix.tolist(), strict=True)
    ] + [code for code, _ in _SPECIALS]
    combos = rng.choice(len(_ADJECTIVES) * len(_COLOURS) * len(_NOUNS), _N_PRODUCTS, replace=False)
    names = []
    for combo in combos.tolist():
        a, rest = divmod(combo, len(_COLOURS) * len(_NOUNS))
        c, m = divmod(rest, len(_NOUNS))
        names.append(f"{_COLOURS[c]} {_ADJECTIVES[a]} {_NOUNS[m]}")
    names += [name for _, name in _SPECIALS]
    return product_cdf, product_price, stock, names


def _day_intensity_cdf() -> np.ndarray:
    """Cumulative trading intensity per day: weekly pattern, holidays, pre-Christmas peak."""
    days = np.arange(np.datetime64(_START), np.datetime64(_END) + 1)
    weekday = (days.astype("int64") + 3) % 7  # 0 = Monday
    weekly = np.array([1.0, 1.05, 1.05, 1.15, 0.85, 0.0, 0.65])[weekday]
    day_of_year = (days - days.astype("datetime64[Y]")).astype("int64")
    season = 1.0 + 0.9 * np.exp(-(((day_of_year - 322) / 30.0) ** 2))
    season += 0.5 * np.exp(-(((day_of_year + 365 - 340) / 12.0) ** 2))  # December 2010
    closed = np.isin(
        days,
        np.array(
            ["2011-04-22", "2011-04-25", "2011-04-29", "2011-05-02", "2011-05-30", "2011-08-29"],
            dtype="datetime64[D]",
        ),
    )
    closed |= (days >= np.datetime64("2010-12-23")) & (days <= np.datetime64("2011-01-03"))
    intensity = np.where(closed, 0.0, weekly * season)
    return np.concatenate([[0.0], np.cumsum(intensity / intensity.sum())])


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn from a cumulative distribution by inversion."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1)


# --------------------------------------------------------------------------------------------
# one chunk


@dataclass
class _ChunkState:
    """What carries over from one chunk to the next."""

    next_invoice: int


@dataclass
class _Invoices:
    """One chunk's invoices (kind, lines, customer) and what their lines inherit."""

    guest: np.ndarray  # bool per invoice
    cancel: np.ndarray  # bool per invoice
    lines: np.ndarray  # lines per invoice (they fill the chunk exactly)
    offsets: np.ndarray  # first row of each invoice in the chunk
    customer: np.ndarray  # customer index per invoice, -1 for guests
    cancelled: np.ndarray  # the cancellation invoices ...
    reference: np.ndarray  # ... and the purchase each one reverses
    timestamps: np.ndarray
    country: np.ndarray  # int32 country index per invoice


def _make_chunk(
    pop: _Population,
    state: _ChunkState,
    rng: np.random.Generator,
    *,
    start_row: int,
    n_rows: int,
    rows: int,
) -> pa.RecordBatch:
    """Generate rows ``start_row .. start_row + n_rows`` of a log of ``rows`` rows.

    The steps draw from ``rng`` in a fixed order (the same seed writes the same bytes).
    """
    inv = _chunk_invoices(pop, rng, start_row=start_row, n_rows=n_rows, rows=rows)
    inv_of_row = np.repeat(np.arange(inv.lines.size, dtype=np.int32), inv.lines)
    line_no = np.arange(n_rows, dtype=np.int64) - inv.offsets[inv_of_row]
    product, quantity, price = _product_lines(pop, rng, inv, inv_of_row)
    draws = _special_lines(pop, rng, inv, inv_of_row, line_no, (product, quantity, price))
    zero = rng.random(n_rows) < _ZERO_PRICE_SHARE
    no_description = _zero_prices(rng, inv.guest[inv_of_row], zero, draws, quantity, price)
    if inv.cancelled.size:
        _copy_cancelled(pop, rng, inv, inv_of_row, line_no, zero, (product, quantity, price))
        no_description[inv.cancel[inv_of_row]] = False  # a cancellation copies a description
    return _chunk_batch(pop, state, inv, inv_of_row, product, quantity, price, no_description)


def _chunk_invoices(
    pop: _Population, rng: np.random.Generator, *, start_row: int, n_rows: int, rows: int
) -> _Invoices:
    """The chunk's invoices: kinds and lines, times, customers, cancellations, countries."""
    # Invoices: kind and number of lines, cut to fill the chunk exactly.
    guest, cancel, lines = _draw_invoices(rng, n_rows)
    ends = np.cumsum(lines)
    n_inv = int(np.searchsorted(ends, n_rows, side="left")) + 1
    guest, cancel, lines = guest[:n_inv], cancel[:n_inv], lines[:n_inv]
    lines[-1] -= int(ends[n_inv - 1]) - n_rows
    offsets = np.concatenate([[0], np.cumsum(lines)[:-1]])
    # Time quantile of each invoice from its position in the whole log: dates increase with
    # invoice numbers, and the trading calendar shapes how many invoices fall on each day.
    u = (start_row + offsets + 0.5 * lines) / rows
    timestamps = _quantile_to_time(pop, u)

    customer = np.full(n_inv, -1, dtype=np.int64)
    slots = np.flatnonzero(~guest & ~cancel)
    customer[slots] = _assign_customers(
        pop, rng, u[slots], start_row / rows, (start_row + n_rows) / rows
    )
    # Cancellations reverse the first lines of a recent earlier purchase of the same customer.
    cancel_idx = np.flatnonzero(cancel)
    back = np.searchsorted(slots, cancel_idx) - rng.geometric(0.01, cancel_idx.size)
    orphan = cancel_idx[back < 0]  # nothing to cancel yet: an ordinary purchase instead
    cancel[orphan] = False
    customer[orphan] = _assign_customers(pop, rng, u[orphan], 0.0, 0.0)
    cancel_idx, reference = cancel_idx[back >= 0], slots[back[back >= 0]]
    customer[cancel_idx] = customer[reference]
    shortened = np.minimum(lines[cancel_idx], lines[reference])
    freed = int(lines[cancel_idx].sum() - shortened.sum())
    lines[cancel_idx] = shortened
    lines[np.flatnonzero(~cancel)[-1]] += freed  # keep the row count exact
    offsets = np.concatenate([[0], np.cumsum(lines)[:-1]])

    # Guests are nearly all British, as in the real log.
    guest_country = np.where(rng.random(n_inv) < 0.97, 0, _draw(pop.country_cdf, rng.random(n_inv)))
    country = np.where(customer >= 0, pop.country[np.maximum(customer, 0)], guest_country)
    return _Invoices(
        guest,
        cancel,
        lines,
        offsets,
        customer,
        cancel_idx,
        reference,
        timestamps,
        country.astype(np.int32),
    )


def _product_lines(
    pop: _Population, rng: np.random.Generator, inv: _Invoices, inv_of_row: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Product, quantity and unit price of every line (wholesalers buy bigger packs)."""
    n_rows = inv_of_row.size
    row_guest = inv.guest[inv_of_row]
    wholesale = (inv.customer >= 0) & pop.wholesaler[np.maximum(inv.customer, 0)]
    product = _draw(pop.product_cdf, rng.random(n_rows)).astype(np.int32)
    pack = _draw(np.cumsum(_PACK_PROBS), rng.random(n_rows))
    guest_pack = _draw(np.cumsum(_GUEST_PACK_PROBS), rng.random(n_rows))
    pack = np.where(row_guest, guest_pack, pack)
    pack = np.where(wholesale[inv_of_row], np.minimum(pack + 3, _PACK_SIZES.size - 1), pack)
    quantity = _PACK_SIZES[pack]
    price = pop.product_price[product]
    # Volume tier: lines of 12 or more get the wholesale price.
    price = np.where(quantity >= 12, np.round(price * 0.85, 2), price)
    return product, quantity, np.maximum(price, 0.01)


def _special_lines(
    pop: _Population,
    rng: np.random.Generator,
    inv: _Invoices,
    inv_of_row: np.ndarray,
    line_no: np.ndarray,
    lines: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Non-product codes in the lines' product, quantity and price (in place): postage on
    foreign orders, DOTCOM postage on web (guest) orders, manual lines and carriage. Returns
    the uniform draws it used, which the zero-price step uses again."""
    product, quantity, price = lines
    n_rows = inv_of_row.size
    row_guest = inv.guest[inv_of_row]
    first = line_no == 0
    last = line_no == inv.lines[inv_of_row] - 1
    foreign = inv.country[inv_of_row] != 0
    draws = rng.random(n_rows)
    post = first & foreign & ~row_guest & (draws < 0.6)
    dot = last & row_guest & (draws < 0.5)
    carriage = first & ~foreign & ~row_guest & (draws < 0.002)
    manual = ~first & ~last & (draws < 0.0008)
    special_price = rng.lognormal(0.0, 0.6, n_rows)
    for mask, code in ((post, _POST), (dot, _DOT), (manual, _MANUAL), (carriage, _CARRIAGE)):
        product[mask] = code
        quantity[mask] = np.where(code == _POST, rng.integers(1, 4, int(mask.sum())), 1)
        price[mask] = np.round(pop.product_price[code] * special_price[mask], 2)
    return draws


def _zero_prices(
    rng: np.random.Generator,
    row_guest: np.ndarray,
    zero: np.ndarray,
    draws: np.ndarray,
    quantity: np.ndarray,
    price: np.ndarray,
) -> np.ndarray:
    """Zero prices, in place; on guest rows they are stock adjustments (no description, often
    negative). Returns the rows without a description."""
    price[zero] = 0.0
    no_description = zero & row_guest
    adjust = no_description & (draws < 0.5)
    quantity[adjust] = -rng.integers(1, 100, int(adjust.sum()))
    return no_description


def _copy_cancelled(
    pop: _Population,
    rng: np.random.Generator,
    inv: _Invoices,
    inv_of_row: np.ndarray,
    line_no: np.ndarray,
    zero: np.ndarray,
    lines: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Cancellation rows copy (a part of) the referenced lines with a negative quantity."""
    product, quantity, price = lines
    c_rows = np.flatnonzero(inv.cancel[inv_of_row])
    ref_of_row = np.zeros(inv.lines.size, dtype=np.int64)
    ref_of_row[inv.cancelled] = inv.reference
    source = inv.offsets[ref_of_row[inv_of_row[c_rows]]] + line_no[c_rows]
    product[c_rows] = product[source]
    price[c_rows] = np.where(zero[source], pop.product_price[product[source]], price[source])
    partial = rng.random(c_rows.size) < 0.2
    qty = np.abs(quantity[source])
    quantity[c_rows] = -np.where(partial, np.maximum(qty // 2, 1), qty)


def _chunk_batch(
    pop: _Population,
    state: _ChunkState,
    inv: _Invoices,
    inv_of_row: np.ndarray,
    product: np.ndarray,
    quantity: np.ndarray,
    price: np.ndarray,
    no_description: np.ndarray,
) -> pa.RecordBatch:
    """The chunk's rows as Arrow, invoice numbers continuing from the previous chunk."""
    n_inv = inv.lines.size
    has_customer = inv.customer >= 0
    ids = np.where(has_customer, pop.ids[np.maximum(inv.customer, 0)], np.nan)
    numbers = np.arange(state.next_invoice, state.next_invoice + n_inv, dtype=np.int64)
    state.next_invoice += n_inv
    invoice_str = pa.array(numbers).cast(pa.string())
    invoice_str = pc.if_else(
        pa.array(inv.cancel), pc.binary_join_element_wise("C", invoice_str, ""), invoice_str
    )
    description_idx = pa.array(product, mask=no_description)
    arrays = [
        pa.DictionaryArray.from_arrays(pa.array(inv_of_row), invoice_str),
        pa.DictionaryArray.from_arrays(pa.array(product), pop.stock_codes),
        pa.DictionaryArray.from_arrays(description_idx, pop.descriptions),
        pa.array(quantity, pa.int64()),
        pa.array(inv.timestamps[inv_of_row], pa.timestamp("us")),
        pa.array(price, pa.float64()),
        pa.array(ids[inv_of_row], pa.float64(), mask=~has_customer[inv_of_row]),
        pa.DictionaryArray.from_arrays(pa.array(inv.country[inv_of_row]), pop.countries),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=_WRITE_SCHEMA)


def _draw_invoices(
    rng: np.random.Generator, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kinds (guest, cancellation) and line counts of enough invoices to cover ``n_rows``."""
    n = int(n_rows / 21.0 * 1.15) + 64
    while True:
        guest = rng.random(n) < _GUEST_INVOICE_SHARE
        cancel = ~guest & (rng.random(n) < _CANCEL_SHARE / (1.0 - _GUEST_INVOICE_SHARE))
        lines = np.where(
            guest,
            rng.geometric(1.0 / _MEAN_GUEST_LINES, n),
            rng.geometric(1.0 / _MEAN_LINES, n),
        )
        lines = np.where(cancel, rng.geometric(0.45, n), lines).astype(np.int64)
        if lines.sum() >= n_rows:
            return guest, cancel, lines
        n *= 2


def _quantile_to_time(pop: _Population, u: np.ndarray) -> np.ndarray:
    """Map time quantiles in [0, 1) to timestamps (microseconds since the epoch)."""
    u = np.clip(u, 0.0, np.nextafter(1.0, 0.0))
    day = np.searchsorted(pop.day_cdf, u, side="right") - 1
    mass = pop.day_cdf[day + 1] - pop.day_cdf[day]
    within = np.clip((u - pop.day_cdf[day]) / np.where(mass > 0, mass, 1.0), 0.0, 1.0 - 1e-12)
    minute = np.searchsorted(pop.minute_cdf, within, side="right") - 1
    epoch_day = (np.datetime64(_START, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64)
    minutes = (epoch_day + day) * 1440 + pop.open_minute + minute
    return minutes.astype(np.int64) * 60_000_000


def _assign_customers(
    pop: _Population, rng: np.random.Generator, u: np.ndarray, lo: float, hi: float
) -> np.ndarray:
    """Customers of purchase invoices at time quantiles ``u`` (sorted).

    Customers whose anchor falls in ``[lo, hi)`` take one slot each near their anchor; the other
    slots go to customers drawn by purchase rate among those active at that time.
    """
    n = u.size
    result = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return result
    a0, a1 = np.searchsorted(pop.anchor_time, [lo, hi], side="left")
    anchored = pop.anchor_order[a0:a1][:n]
    if anchored.size:
        k = anchored.size
        slot = np.searchsorted(u, pop.anchor_time[a0 : a0 + k])
        # Distinct, ordered slots: push collisions right, then keep inside the array.
        ramp = np.arange(k)
        slot = np.maximum.accumulate(slot - ramp) + ramp
        slot = np.minimum(slot, n - k + ramp)  # still strictly increasing
        result[slot] = anchored
    todo = np.flatnonzero(result < 0)
    for _ in range(64):
        if todo.size == 0:
            break
        pick = _draw(pop.weight_cdf, rng.random(todo.size))
        ok = (pop.start[pick] <= u[todo]) & (u[todo] <= pop.end[pick])
        result[todo[ok]] = pick[ok]
        todo = todo[~ok]
    if todo.size:
        result[todo] = pop.fallback[rng.integers(0, pop.fallback.size, todo.size)]
    return result
