"""Canonical transactions -> purchase lines, with a ledger of every dropped row.

Each row is tested against the drop reasons in the fixed order of :data:`DROP_REASONS`; it is
counted once, under the first reason it meets. The rules are one Ibis expression, so they run
inside the engine on data of any size.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from .config import CleanConfig
from .engine import ops_for
from .errors import CustsegWarning, EmptyDataError, InputError
from .ids import CUSTOMER_KEY, INVOICE_KEY, customer_missing, starts_with_c
from .load import SOURCE_PREFIX
from .schema import AMOUNT, CUSTOMER, DATE, INVOICE, PRICE, QUANTITY, STOCK_CODE, ColumnMap

__all__ = [
    "DROP_REASON",
    "DROP_REASONS",
    "RETURN_LINE",
    "Ledger",
    "clean_transactions",
    "explain_drops",
    "mark_drops",
]

DROP_REASON = "drop_reason"
#: True for a cancellation line that counts as a return (see :func:`mark_drops`).
RETURN_LINE = "return_line"

#: The reasons a row is not a purchase line, in the order they are tested.
DROP_REASONS: tuple[str, ...] = (
    "missing_customer",  # no customer id: a guest or an internal adjustment
    "cancellation",  # invoice id starts with "C"
    "invalid_number",  # quantity, price or amount missing, not a number, NaN or infinite
    "non_positive_quantity",  # returns and stock adjustments
    "non_positive_price",  # free items, bad-debt adjustments
    "non_positive_amount",  # refunds where the data carries an amount per line
    "unparseable_date",  # missing or unreadable date
    "outside_window",  # before --since, after --until, or on/after --as-of
    "excluded_code",  # a stock code listed in --exclude-codes
    "duplicate",  # an exact copy of an earlier row (with --drop-duplicates)
)


@dataclass(frozen=True)
class Ledger:
    """Where every input row and customer went.

    It balances: ``rows_read == rows_used + sum(rows_dropped.values())`` and
    ``customers_seen == customers_segmented + customers_without_purchase``. Of the customers
    without a purchase line, ``customers_outside_window`` had purchases, all outside the date
    window (after ``--as-of`` or ``--until``, before ``--since``).

    ``customers_with_baskets`` counts, in data without an invoice column, the customers with
    several purchase lines at one timestamp (see :func:`custseg.features.basket_note`); it is
    a diagnostic for a warning, not written to summary.json.

    With ``returns="net"``, ``rows_netted`` counts the cancellation lines subtracted from a
    segmented customer's monetary value (they stay counted as ``cancellation`` in
    ``rows_dropped``) and ``customers_net_nonpositive`` the segmented customers whose net
    value is 0 or below (kept, with monetary 0); both are None otherwise.
    """

    rows_read: int
    rows_used: int
    rows_dropped: dict[str, int] = field(default_factory=dict)
    customers_seen: int = 0
    customers_segmented: int = 0
    customers_without_purchase: int = 0
    customers_outside_window: int = 0
    date_min: dt.datetime | None = None
    date_max: dt.datetime | None = None
    customers_with_baskets: int = 0
    rows_netted: int | None = None
    customers_net_nonpositive: int | None = None

    def __post_init__(self) -> None:
        dropped = sum(self.rows_dropped.values())
        if self.rows_read != self.rows_used + dropped:
            raise AssertionError(
                f"ledger does not balance: {self.rows_read} read, {self.rows_used} used, "
                f"{dropped} dropped"
            )
        if self.customers_seen != self.customers_segmented + self.customers_without_purchase:
            raise AssertionError("ledger customer counts do not balance")
        if not 0 <= self.customers_outside_window <= self.customers_without_purchase:
            raise AssertionError("ledger counts more customers outside the window than without")

    def to_dict(self) -> dict[str, Any]:
        """The ``ledger`` object of summary.json."""
        d = asdict(self)
        d.pop("customers_with_baskets")
        for key in ("date_min", "date_max"):
            value = d.pop(key)
            d[key.replace("date_", "purchase_date_")] = value.isoformat(sep=" ") if value else None
        return d

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, Any],
        *,
        date_min: dt.datetime | None = None,
        date_max: dt.datetime | None = None,
    ) -> Ledger:
        """Build from the aggregate of :func:`ledger_aggregates` (a mapping of counts)."""
        dropped = {reason: int(counts.get(reason) or 0) for reason in DROP_REASONS}
        seen = int(counts.get("customers_seen") or 0)
        segmented = int(counts.get("customers_segmented") or 0)
        return cls(
            rows_read=int(counts.get("rows_read") or 0),
            rows_used=int(counts.get("rows_used") or 0),
            rows_dropped=dropped,
            customers_seen=seen,
            customers_segmented=segmented,
            customers_without_purchase=seen - segmented,
            customers_outside_window=int(counts.get("customers_outside_window") or 0),
            date_min=date_min,
            date_max=date_max,
            customers_with_baskets=int(counts.get("customers_with_baskets") or 0),
            rows_netted=_optional(counts.get("rows_netted")),
            customers_net_nonpositive=_optional(counts.get("customers_net_nonpositive")),
        )


def _optional(value: Any) -> int | None:
    return None if value is None else int(value)


def mark_drops(table: ir.Table, *, config: CleanConfig) -> ir.Table:
    """Add a ``drop_reason`` column: NULL for purchase lines, else the first reason met.

    Parameters
    ----------
    table : Table
        A canonical table from :func:`custseg.load.load_transactions`.
    config : CleanConfig
        The date window, excluded codes and duplicate handling.

    Returns
    -------
    Table
        ``table`` with ``drop_reason`` and ``return_line`` added (lazy; nothing is executed).

    Notes
    -----
    ``return_line`` marks the cancellation lines whose value is returned (``returned`` in
    segments.csv, subtracted from monetary with ``returns="net"``): a cancellation of a known
    customer whose value is a finite non-zero number, with a readable date inside the window,
    not of an excluded stock code, and (with ``drop_duplicates``) not a copy of another such
    line. Its value is ``|quantity x price|`` (or ``|amount|``), whatever sign the data gives
    cancellations. Every cancellation line stays counted as ``cancellation`` in the ledger.
    """
    cols = set(table.columns)
    t: Any = table
    ops = ops_for(table)
    # The tests read the stored ids where the table has them (tables from load_transactions):
    # the same answers as on the canonical text, without building that text for every row.
    missing = customer_missing(t[CUSTOMER_KEY]) if CUSTOMER_KEY in cols else t[CUSTOMER].isnull()
    branches: list[tuple[ir.BooleanValue, str]] = [(missing, "missing_customer")]
    cancelled: Any = ibis.literal(False)
    if INVOICE in cols:
        cancelled = (
            starts_with_c(t[INVOICE_KEY].cast("string"))
            if INVOICE_KEY in cols
            else t[INVOICE].startswith("C")
        )
        # No fill_null: a NULL condition is not met, and a COALESCE stops DuckDB short-circuiting.
        branches.append((cancelled, "cancellation"))
    # Data without a value column (a customer and a date per row) has no number to test.
    values = [AMOUNT] if AMOUNT in cols else [QUANTITY, PRICE] if QUANTITY in cols else []
    invalid = ibis.literal(False)
    for name in values:
        invalid = invalid | ops.not_finite(t[name])
    if values:
        branches.append((invalid, "invalid_number"))
    if AMOUNT in cols:
        branches.append((t[AMOUNT] <= 0, "non_positive_amount"))
    elif values:
        branches.append((t[QUANTITY] <= 0, "non_positive_quantity"))
        branches.append((t[PRICE] <= 0, "non_positive_price"))
    # A cancellation is a return when every later test but the sign would pass.
    returnable: Any = ~invalid & (_line_value(t) != 0) if values else ibis.literal(False)
    branches.append((t[DATE].isnull(), "unparseable_date"))
    returnable = returnable & t[DATE].notnull()
    window = _outside_window(t[DATE], config)
    if window is not None:
        branches.append((window, "outside_window"))
        returnable = returnable & ~window
    if config.exclude_codes:
        codes = [c.strip().upper() for c in config.exclude_codes if c.strip()]
        excluded = t[STOCK_CODE].upper().isin(codes).fill_null(False)
        branches.append((excluded, "excluded_code"))
        returnable = returnable & ~excluded
    reason = ibis.cases(*branches, else_=ibis.null("string"))
    # Tested on the reason (not on the id tests again), and the rest only on cancellations: a
    # CASE, where an AND under a COALESCE made DuckDB test every row (0.3 CPU s per 10M rows).
    returned = ibis.ifelse(reason == "cancellation", returnable, False)
    marked = table.mutate(**{DROP_REASON: reason, RETURN_LINE: returned})
    if config.drop_duplicates:
        marked = _mark_duplicates(marked)
    return marked


def _line_value(t: Any) -> Any:
    """A row's value: its amount, or quantity x price."""
    return t[AMOUNT] if AMOUNT in set(t.columns) else t[QUANTITY] * t[PRICE]


def _outside_window(date: Any, config: CleanConfig) -> ir.BooleanValue | None:
    conds = []
    if config.since is not None:
        conds.append(date < _midnight(config.since))
    end = None
    if config.until is not None:
        end = config.until + dt.timedelta(days=1)
    if config.as_of is not None:
        end = min(end, config.as_of) if end else config.as_of
    if end is not None:
        conds.append(date >= _midnight(end))
    if not conds:
        return None
    out = conds[0]
    for c in conds[1:]:
        out = out | c
    return out


def _midnight(day: dt.date) -> ir.TimestampValue:
    return ibis.timestamp(dt.datetime.combine(day, dt.time()))


def _mark_duplicates(marked: ir.Table) -> ir.Table:
    """Rows that are exact copies of an earlier kept row become ``duplicate``.

    Only rows that passed every other test compete; a copy of a dropped row is dropped for the
    same reason as its original anyway. Copies of a return line are returned once.
    """
    source_cols = [c for c in marked.columns if c.startswith(SOURCE_PREFIX)]
    keep = marked[DROP_REASON].isnull()
    ret = marked[RETURN_LINE]
    # Grouped by reason and return flag: purchase lines compete only with purchase lines (as
    # grouping by "kept" would), return lines only with return lines.
    rank = ibis.row_number().over(
        group_by=[marked[DROP_REASON], ret, *[marked[c] for c in source_cols]]
    )
    reason = ibis.ifelse(keep & (rank > 0), "duplicate", marked[DROP_REASON])
    return marked.mutate(**{DROP_REASON: reason, RETURN_LINE: ret & (rank == 0)})


def ledger_aggregates(marked: ir.Table) -> dict[str, ir.Scalar]:
    """Aggregates over a marked table whose values make a :class:`Ledger`."""
    reason: Any = marked[DROP_REASON]
    used = reason.isnull()
    aggs: dict[str, Any] = {
        "rows_read": marked.count(),
        "rows_used": used.sum(),
        "customers_seen": marked[CUSTOMER].nunique(),
        "customers_segmented": marked[CUSTOMER].nunique(where=used),
    }
    for r in DROP_REASONS:
        aggs[r] = (reason == r).sum()
    return aggs


def clean_transactions(
    table: ir.Table, *, config: CleanConfig | None = None
) -> tuple[ir.Table, Ledger]:
    """Keep the purchase lines and count every dropped row by reason.

    Parameters
    ----------
    table : Table
        A canonical table from :func:`custseg.load.load_transactions`.
    config : CleanConfig, optional
        Date window, excluded codes, duplicates.

    Returns
    -------
    lines : Table
        The purchase lines (lazy).
    ledger : Ledger
        Counts of rows read, used and dropped by reason, and of customers.

    Raises
    ------
    EmptyDataError
        If no purchase line is left.
    """
    marked = mark_drops(table, config=config or CleanConfig())
    counts = marked.aggregate(**ledger_aggregates(marked)).to_pyarrow().to_pylist()[0]
    ledger = Ledger.from_counts(counts)
    check_not_empty(ledger)
    lines = marked.filter(marked[DROP_REASON].isnull()).drop(DROP_REASON, RETURN_LINE)
    return lines, ledger


def check_not_empty(ledger: Ledger) -> None:
    """Raise :class:`EmptyDataError` with the ledger's story when no purchase line is left."""
    if ledger.rows_used > 0:
        return
    if ledger.rows_read == 0:
        raise EmptyDataError("The input has a header but no rows. Check the export.")
    top = sorted(((n, r) for r, n in ledger.rows_dropped.items() if n), reverse=True)[:3]
    story = ", ".join(f"{n:,} {r.replace('_', ' ')}" for n, r in top)
    raise EmptyDataError(
        f"No purchase lines left: all {ledger.rows_read:,} rows were dropped ({story}). "
        "Check the column mapping and the --since/--until/--as-of window."
    )


def _examples(marked: ir.Table, reason: str, columns: list[str], limit: int = 3) -> str:
    """A few source values of rows dropped for ``reason``, e.g. ``Quantity='abc'``."""
    src = [SOURCE_PREFIX + c for c in columns if SOURCE_PREFIX + c in marked.columns]
    if not src:
        return ""
    rows = (
        marked.filter(marked[DROP_REASON] == reason)
        .select(*src)
        .limit(limit)
        .to_pyarrow()
        .to_pylist()
    )
    shown = []
    for row in rows:
        cells = [f"{k[len(SOURCE_PREFIX) :]}={_short(v)}" for k, v in row.items()]
        shown.append(", ".join(cells))
    return "; ".join(shown)


def _short(value: Any) -> str:
    text = repr(value if value is None or isinstance(value, str) else str(value))
    return text if len(text) <= 40 else text[:37] + "...'"


def explain_drops(
    marked: ir.Table, ledger: Ledger, columns: ColumnMap, *, config: CleanConfig
) -> None:
    """Say, with examples, why rows with unreadable numbers or dates were dropped.

    Warns (:class:`CustsegWarning`) by default; raises under ``config.strict``.

    Raises
    ------
    InputError
        With ``strict``, if any number or date did not parse.
    """
    notes: list[str] = []
    bad_numbers = ledger.rows_dropped.get("invalid_number", 0)
    if bad_numbers:
        value_cols = [c for c in (columns.quantity, columns.price, columns.amount) if c]
        notes.append(
            f"{bad_numbers:,} rows have a missing or non-numeric value in {value_cols} "
            f"(e.g. {_examples(marked, 'invalid_number', value_cols)})"
            + ("." if config.strict else "; they are counted as invalid_number.")
        )
    bad_dates = ledger.rows_dropped.get("unparseable_date", 0)
    if bad_dates and columns.date:
        notes.append(
            f"{bad_dates:,} rows have a missing or unreadable date in {columns.date!r} "
            f"(e.g. {_examples(marked, 'unparseable_date', [columns.date])})"
            + ("." if config.strict else "; they are counted as unparseable_date.")
            + " Pass --date-format if the dates mix formats."
        )
    if config.strict and notes:
        raise InputError(
            " ".join(notes) + " --strict refuses such rows: fix them, or run without --strict "
            "to count them in the ledger."
        )
    outside = ledger.rows_dropped.get("outside_window", 0)
    if outside and config.as_of is not None:
        window = [
            *([f"from --since {config.since}"] if config.since else []),
            *([f"to --until {config.until}"] if config.until else []),
            f"before --as-of {config.as_of}",
        ]
        notes.append(
            f"{outside:,} rows fall outside the window ({', '.join(window)}) and were left out."
        )
    for note in notes:
        warnings.warn(note, CustsegWarning, stacklevel=2)
