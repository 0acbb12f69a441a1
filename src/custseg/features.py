"""Purchase lines -> one row per customer: recency, frequency and monetary value.

The definitions (docs/REFERENCE.md section 3) live in one Ibis aggregation; only the per-customer
table comes back to Python.

- ``as_of``: the day after the last purchase in the data, unless given.
- ``recency``: days from the customer's last purchase date to ``as_of`` (an integer >= 1).
- ``frequency``: distinct invoices (rows, where the data has no invoice id); with
  ``frequency_unit="days"``, distinct calendar days with a purchase line.
- ``monetary``: sum of line values, quantity x price or amount; with ``returns="net"``, minus
  ``returned`` and floored at 0.
- ``returned``: the value of the customer's cancellation lines (positive; every run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .clean import DROP_REASON, DROP_REASONS, RETURN_LINE, Ledger, check_not_empty
from .config import FrequencyUnit, Returns
from .engine import ops_for
from .errors import ConfigError, EmptyDataError, InputError
from .ids import CUSTOMER_KEY, INVOICE_KEY, customer_text, invoice_text
from .schema import AMOUNT, CUSTOMER, DATE, INVOICE, PRICE, QUANTITY

__all__ = [
    "RFM_COLUMNS",
    "GroupedLines",
    "basket_note",
    "compute_rfm",
    "compute_rfm_and_ledger",
    "compute_rfm_split",
    "group_lines",
    "order_customers",
    "rfm_table_and_ledger",
]

RFM_COLUMNS: tuple[str, str, str] = ("recency", "frequency", "monetary")
_LAST = "last_purchase"
# Line values are summed as whole millionths (64-bit integers, rounded per line): exact, so the
# totals do not depend on the order in which parallel threads add them up, and CSV and Parquet
# copies of a file give identical bytes. Integers sum at a fraction of the cost of 128-bit
# decimals (measured in bench/bench.py); a single line may be worth up to 9.2 trillion.
_MICROS = 1_000_000
#: The stage-1 groups of return lines (cancellations in the ledger), beside the drop reasons.
_RETURN_GROUP = "_return"
_SIDE = "_after_split"
_DAY = "_day"


def _line_value(t: Any) -> Any:
    return t[AMOUNT] if AMOUNT in set(t.columns) else t[QUANTITY] * t[PRICE]


def _line_value_micros(t: Any, ops: Any) -> Any:
    """A purchase line's value in millionths; at least one, so a tiny positive value stays > 0."""
    return ibis.greatest(ops.round_half_away(_line_value(t) * _MICROS).cast("int64"), 1)


def _return_value_micros(t: Any, ops: Any) -> Any:
    """A return line's value in millionths: positive, whichever sign the data gives it."""
    return ops.round_half_away(_line_value(t).abs() * _MICROS).cast("int64")


def compute_rfm(
    lines: ir.Table,
    *,
    as_of: dt.date | None = None,
    frequency_unit: FrequencyUnit = "orders",
    monetary: bool = True,
) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer from purchase lines.

    Parameters
    ----------
    lines : Table
        Purchase lines, as returned by :func:`custseg.clean.clean_transactions`.
    as_of : date, optional
        Reference date; default the day after the last purchase.
    frequency_unit : {"orders", "days"}
        Count distinct orders (invoices; rows without an invoice column) or distinct
        calendar purchase days.
    monetary : bool
        False: recency and frequency only (as for data without a value column).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``, columns ``recency``, ``frequency``, ``monetary`` and
        ``returned`` (0: purchase lines hold no cancellations); ``recency`` and
        ``frequency`` only for data without a value column.

    Raises
    ------
    EmptyDataError
        If there are no purchase lines.
    InputError
        If a purchase falls on or after ``as_of``.
    """
    # Purchase lines are rows no reason drops: the one aggregation below serves both entry points.
    try:
        rfm, _, _ = compute_rfm_and_ledger(
            lines.mutate(**{DROP_REASON: ibis.null("string")}),
            as_of=as_of,
            frequency_unit=frequency_unit,
            monetary=monetary,
        )
    except EmptyDataError:
        raise EmptyDataError("No purchase lines to compute RFM from.") from None
    return rfm


def compute_rfm_and_ledger(
    marked: ir.Table,
    *,
    as_of: dt.date | None = None,
    frequency_unit: FrequencyUnit = "orders",
    returns: Returns = "drop",
    monetary: bool = True,
) -> tuple[pd.DataFrame, Ledger, dt.date]:
    """RFM per customer and the ledger, from a table marked by :func:`custseg.clean.mark_drops`.

    One pass over the rows: the aggregation is grouped by customer (guest rows form one group
    with a NULL id), and the ledger is summed from the per-customer counts.

    Parameters
    ----------
    marked : Table
        A table with ``drop_reason`` (:func:`custseg.clean.mark_drops`) and, optionally,
        ``return_line``.
    as_of : date, optional
        Reference date; default the day after the last purchase.
    frequency_unit : {"orders", "days"}
        What frequency counts (see :class:`custseg.config.CleanConfig`). Without an invoice
        column, counting orders also counts, in the same pass, the customers with several
        purchase lines at one timestamp (``Ledger.customers_with_baskets``; see
        :func:`basket_note`).
    returns : {"drop", "net"}
        ``net``: monetary is the value of the purchase lines minus ``returned``, floored at 0;
        the ledger counts the return lines netted (``rows_netted``) and the customers whose
        net value is 0 or below (``customers_net_nonpositive``), who are kept with monetary 0.
    monetary : bool
        False, or a table without value columns: recency and frequency only (no
        ``monetary``, no ``returned``; ``returns`` does not apply).

    Returns
    -------
    rfm : DataFrame
        As :func:`compute_rfm`, with ``returned``: the value of the customer's return lines
        (positive; see :func:`custseg.clean.mark_drops`), whatever ``returns`` is. Without
        money, ``recency`` and ``frequency`` only.
    ledger : Ledger
    as_of : date
        The reference date used.
    """
    lines = group_lines(marked, frequency_unit=frequency_unit, returns=returns, monetary=monetary)
    return lines.rfm_and_ledger(as_of)


def compute_rfm_split(
    marked: ir.Table,
    *,
    split: dt.date,
    as_of: dt.date,
    frequency_unit: FrequencyUnit = "orders",
    returns: Returns = "drop",
    monetary: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """RFM before ``split`` (as of ``split``) and from it up to ``as_of`` (as of ``as_of``).

    The same as :func:`compute_rfm_and_ledger` on the rows dated before ``split`` and on the
    rows from ``split`` to the day before ``as_of`` (both marked under one window; a copy of a
    row has its date, so duplicates and returns fall on the side of their original): one
    aggregation instead of two, the backtest's training and holdout.
    """
    options: dict[str, Any] = {"frequency_unit": frequency_unit, "monetary": monetary}
    lines = group_lines(marked, returns=returns, by_day=True, **options)
    return lines.split(split, as_of)


def group_lines(
    marked: ir.Table,
    *,
    frequency_unit: FrequencyUnit = "orders",
    returns: Returns = "drop",
    monetary: bool = True,
    by_day: bool = False,
    hold: Callable[[ir.Table], ir.Table] | None = None,
) -> GroupedLines:
    """The rows of a marked table grouped for the per-customer aggregation (lazy, unless
    ``hold`` keeps it in the engine, e.g. :meth:`custseg.engine.Engine.hold`).

    ``by_day`` also groups purchase and return lines by their day, so that
    :meth:`GroupedLines.split` can aggregate the days before and after a cutoff from the same
    groups.
    """
    cols = set(marked.columns)
    money = monetary and (AMOUNT in cols or QUANTITY in cols)
    days = frequency_unit == "days"
    has_invoice = INVOICE in cols
    flags = {
        "by_invoice": has_invoice and not days,
        "days": days,
        "baskets": not has_invoice and not days,
        "money": money,
    }
    stage = _stage1(marked, by_day=by_day, **flags)
    return GroupedLines(hold(stage) if hold is not None else stage, returns, by_day, **flags)


@dataclass(frozen=True)
class GroupedLines:
    """One row per (stored customer id, drop reason, invoice or day of a purchase line, and
    with ``by_day`` the day of a purchase or return line): see :func:`group_lines`."""

    table: ir.Table
    returns: Returns
    by_day: bool
    by_invoice: bool
    days: bool
    baskets: bool
    money: bool

    def per_customer(self, table: ir.Table | None = None, *, ledger: bool = True) -> ir.Table:
        """One row per customer (guests: one NULL row), and side if ``table`` has one; without
        ``ledger``, only what RFM needs (no rows per drop reason)."""
        s: Any = self.table if table is None else table
        flags = {"by_invoice": self.by_invoice, "days": self.days, "money": self.money}
        aggs = _customer_aggs(s, baskets=self.baskets and ledger, ledger=ledger, **flags)
        by = [s[CUSTOMER], *([s[_SIDE]] if _SIDE in set(s.columns) else [])]
        return s.group_by(by).aggregate(**aggs)

    def rfm_and_ledger(self, as_of: dt.date | None) -> tuple[pd.DataFrame, Ledger, dt.date]:
        """As :func:`compute_rfm_and_ledger`."""
        df = _fetch(self.per_customer(), self.money)
        options: dict[str, Any] = {"baskets": self.baskets, "money": self.money}
        return _rfm_of_frame(df, as_of, returns=self.returns, **options)

    def split(self, split: dt.date, end: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
        """As :func:`compute_rfm_split` (needs ``by_day``): the purchase and return lines
        dated before ``split``, and from it to the day before ``end``."""
        if not self.by_day:
            raise ValueError("GroupedLines.split needs lines grouped by_day")
        s: Any = self.table
        # Only purchase and return lines have a day: dropped rows count in no RFM.
        s = s.filter(s[_DAY] < end).mutate(**{_SIDE: s[_DAY] >= split})
        df = _fetch(self.per_customer(s, ledger=False), self.money)
        after = df[_SIDE].eq(True).to_numpy()
        before_rfm = _rfm_only(df[~after], split, money=self.money, returns=self.returns)
        after_rfm = _rfm_only(df[after], end, money=self.money, returns=self.returns)
        return before_rfm, after_rfm


def _fetch(per: ir.Table, money: bool) -> pd.DataFrame:
    """The per-customer table in pandas, counts as floats with 0 for NULL."""
    # Fetched as Arrow and converted here: Ibis' to_pandas() builds Python lists of every column
    # holding a NULL (the per-reason counts are NULL for most customers), about 1.2 s per 100k
    # customers of a 10M-row file.
    # split_blocks + self_destruct: each column freed as it is converted (a lower peak).
    df = per.to_pyarrow().to_pandas(split_blocks=True, self_destruct=True)
    counted = ("rows", "rows_used", "frequency", *DROP_REASONS)
    for col in (*counted, *(("returned", "_netted") if money else ())):
        if col in df.columns:  # a table without the ledger's counts: GroupedLines.split
            df[col] = df[col].astype("float64").fillna(0.0)
    return df


def _rfm_only(df: pd.DataFrame, as_of: dt.date, *, money: bool, returns: Returns) -> pd.DataFrame:
    """RFM as of ``as_of`` from a fetched per-customer table without the ledger's counts."""
    buyers = df[df["rows_used"] > 0]
    if buyers.empty:
        raise EmptyDataError(f"No purchase lines on one side of {as_of}: nothing to aggregate.")
    return _rfm_of_buyers(buyers, as_of, money=money, returns=returns)[0]


def _rfm_of_frame(
    df: pd.DataFrame, as_of: dt.date | None, *, baskets: bool, money: bool, returns: Returns
) -> tuple[pd.DataFrame, Ledger, dt.date]:
    """RFM, ledger and as_of from the fetched per-customer table."""
    buyers = df[df["rows_used"] > 0]
    counts = _counts(df, buyers, baskets=baskets)
    if money and returns == "net":
        net = buyers["monetary"] - buyers["returned"]
        counts["rows_netted"] = int(buyers["_netted"].sum())
        counts["customers_net_nonpositive"] = int((net <= 0).sum())
    ledger = Ledger.from_counts(
        counts,
        date_min=_to_datetime(buyers["first_purchase"].min()) if len(buyers) else None,
        date_max=_to_datetime(buyers[_LAST].max()) if len(buyers) else None,
    )
    check_not_empty(ledger)
    rfm, used_as_of = _rfm_of_buyers(buyers, as_of, money=money, returns=returns)
    return rfm, ledger, used_as_of


def _rfm_of_buyers(
    buyers: pd.DataFrame, as_of: dt.date | None, *, money: bool, returns: Returns
) -> tuple[pd.DataFrame, dt.date]:
    """The RFM table of the customers with a purchase line (``returns="net"``: monetary less
    returned, floored at 0) and the as_of used."""
    features = [CUSTOMER, _LAST, "frequency", *(("monetary", "returned") if money else ())]
    table = buyers[features].copy()
    if money and returns == "net":
        table["monetary"] = (table["monetary"] - table["returned"]).clip(lower=0.0)
    return _finish(table, as_of)


def rfm_table_and_ledger(
    marked: ir.Table,
    *,
    as_of: dt.date | None = None,
    hold: Callable[[ir.Table], ir.Table] | None = None,
    frequency_unit: FrequencyUnit = "orders",
    returns: Returns = "drop",
    monetary: bool = True,
) -> tuple[ir.Table, Ledger, dt.date]:
    """As :func:`compute_rfm_and_ledger`, but the RFM table stays in the engine.

    The ledger is summed by the engine from the same per-customer expression (one row comes
    back); the RFM table is an expression over it (``customer_id``, ``recency``,
    ``frequency``, ``monetary``, ``returned``, in no particular order: :func:`order_customers`
    gives the order of :func:`compute_rfm`). Used by ``--cluster-engine spark``, where the
    customers need not fit the driver. ``hold`` (e.g. :meth:`custseg.engine.Engine.hold`) is
    given the per-customer table, which is read twice.
    """
    lines = group_lines(marked, frequency_unit=frequency_unit, returns=returns, monetary=monetary)
    baskets, found = lines.baskets, lines.per_customer()
    if not lines.money:
        raise ConfigError(
            "--cluster-engine spark segments on recency, frequency and monetary value; this "
            "input has no value column. Run it with --cluster-engine local."
        )
    per: Any = hold(found) if hold is not None else found
    buys = per["rows_used"] > 0
    returned = per["returned"].fill_null(0)
    net = per["monetary"] - returned

    def total(col: str, where: Any = None) -> Any:
        return per[col].sum(where=where).fill_null(0)

    sums: dict[str, Any] = {
        "rows_read": total("rows"),
        "rows_used": total("rows_used"),
        "customers_seen": per[CUSTOMER].count(),
        "customers_segmented": per[CUSTOMER].count(where=buys),
        "customers_outside_window": per[CUSTOMER].count(
            where=~buys.fill_null(False) & (per["outside_window"] > 0).fill_null(False)
        ),
        **{r: total(r) for r in DROP_REASONS},
        "date_min": per["first_purchase"].min(where=buys),
        "date_max": per[_LAST].max(where=buys),
    }
    if baskets:
        sums["customers_with_baskets"] = per[CUSTOMER].count(
            where=buys & (per["rows_used"] > per["_stamps"].fill_null(0))
        )
    if returns == "net":
        sums["rows_netted"] = total("_netted", where=buys)
        sums["customers_net_nonpositive"] = per[CUSTOMER].count(where=buys & (net <= 0))
    row = per.aggregate(**sums).to_pyarrow().to_pandas().iloc[0]
    counts = {name: int(row[name]) for name in sums if not name.startswith("date_")}
    ledger = Ledger.from_counts(
        counts, date_min=_to_datetime(row["date_min"]), date_max=_to_datetime(row["date_max"])
    )
    check_not_empty(ledger)
    assert ledger.date_max is not None  # there are purchase lines
    used_as_of = _as_of(ledger.date_max.date(), as_of)
    b: Any = per.filter(buys)
    value: Any = (
        ibis.greatest(b["monetary"] - b["returned"].fill_null(0), 0)
        if returns == "net"
        else b["monetary"]
    )
    rfm = b.select(
        b[CUSTOMER].cast("string").name(CUSTOMER),
        ibis.date(used_as_of).delta(b[_LAST].date(), unit="day").cast("int64").name("recency"),
        b["frequency"].cast("int64").name("frequency"),
        (value.cast("float64") / _MICROS).name("monetary"),
        (b["returned"].fill_null(0).cast("float64") / _MICROS).name("returned"),
    )
    return rfm, ledger, used_as_of


def order_customers(rfm: pd.DataFrame) -> pd.DataFrame:
    """An RFM table (index ``customer_id``) in the order of :func:`compute_rfm`."""
    return rfm.iloc[_customer_order(rfm.index)]


def _as_of(latest: dt.date, as_of: dt.date | None) -> dt.date:
    """The reference date: the day after ``latest``, or ``as_of`` checked to be after it."""
    if as_of is None:
        return latest + dt.timedelta(days=1)
    if latest >= as_of:
        raise InputError(
            f"Purchases dated {latest} are on or after as_of {as_of}. "
            "Pass a later --as-of, or drop them with --until."
        )
    return as_of


def _counts(df: pd.DataFrame, buyers: pd.DataFrame, *, baskets: bool) -> dict[str, int]:
    """The ledger's counts from the per-customer table."""
    counts: dict[str, int] = {
        "rows_read": int(df["rows"].sum()),
        "rows_used": int(df["rows_used"].sum()),
        "customers_seen": int(df[CUSTOMER].notna().sum()),
        "customers_segmented": int((df[CUSTOMER].notna() & (df["rows_used"] > 0)).sum()),
        # Customers whose purchases all fall outside the date window (after --as-of, ...).
        "customers_outside_window": int(
            (df[CUSTOMER].notna() & (df["rows_used"] == 0) & (df["outside_window"] > 0)).sum()
        ),
    }
    for r in DROP_REASONS:
        counts[r] = int(df[r].sum())
    if baskets:
        stamps = buyers["_stamps"].astype("float64").fillna(0.0)
        counts["customers_with_baskets"] = int((buyers["rows_used"] > stamps).sum())
    return counts


def _stage1(
    marked: ir.Table, *, by_invoice: bool, days: bool, baskets: bool, money: bool, by_day: bool
) -> Any:
    """One row per (stored customer id, drop reason, invoice or day of a purchase line; with
    ``by_day``, the day of every purchase and return line).

    Counting invoices (or days) as groups costs less than a COUNT(DISTINCT) with a filter,
    the reasons become a group key instead of ten comparisons per row, and dropped rows
    collapse into one group per customer and reason. Then the ids of these groups (not of
    every row) become canonical text, which may merge groups (" 17850" and "17850.0"); the
    caller then makes one row per customer, counting distinct canonical invoices.
    """
    t: Any = marked
    ops = ops_for(marked)
    cols = set(t.columns)
    by_key = CUSTOMER_KEY in cols
    customer = t[CUSTOMER_KEY] if by_key else t[CUSTOMER]
    purchase = t[DROP_REASON].isnull()
    reason = t[DROP_REASON]
    value = ibis.ifelse(purchase, _line_value_micros(t, ops), ibis.null("int64")) if money else None
    if money and RETURN_LINE in cols:
        # Return lines get groups of their own (a key, not an aggregate more for every row):
        # their "_micros" is the value returned, their "_rows" the lines netted.
        ret = t[RETURN_LINE]
        reason = ibis.ifelse(ret, _RETURN_GROUP, reason)
        value = ibis.cases(
            (purchase, _line_value_micros(t, ops)),
            (ret, _return_value_micros(t, ops)),
            else_=ibis.null("int64"),
        )
    keys: dict[str, Any] = {"_customer": customer, DROP_REASON: reason}
    if by_invoice:
        invoice = t[INVOICE_KEY] if INVOICE_KEY in cols else t[INVOICE]
        keys["_invoice"] = ibis.ifelse(purchase, invoice, ibis.null(invoice.type()))
    if days or by_day:
        # One group per purchase day: distinct days are then counted over groups, not rows
        # (return lines too, with by_day: GroupedLines.split puts them on their side).
        dated = purchase | t[RETURN_LINE] if by_day and money and RETURN_LINE in cols else purchase
        keys[_DAY] = ibis.ifelse(dated, t[DATE].date(), ibis.null("date"))
    per_group: dict[str, Any] = {
        "_last": t[DATE].max(),
        "_first": t[DATE].min(),
        "_rows": t.count(),
    }
    if value is not None:
        # Only purchase and return lines are valued: another row's value may be NaN.
        per_group["_micros"] = ops.sum_exact(value)
    if baskets:
        # Rows of one customer at one timestamp are lines of one basket, not orders: counted
        # in this pass (distinct timestamps per group), for the warning of basket_note.
        per_group["_stamps"] = t[DATE].nunique()
    stage1: Any = marked.group_by(**keys).aggregate(**per_group)
    named: dict[str, Any] = {
        CUSTOMER: customer_text(stage1["_customer"]) if by_key else stage1["_customer"]
    }
    if by_invoice:
        named["_invoice"] = (
            invoice_text(stage1["_invoice"]) if INVOICE_KEY in cols else stage1["_invoice"]
        )
    # The stored id is not needed once it is text: not carried (nor held in the engine).
    return stage1.mutate(**named).drop("_customer")


def _customer_aggs(
    s: Any, *, by_invoice: bool, days: bool, baskets: bool, money: bool, ledger: bool = True
) -> dict[str, Any]:
    """The per-customer aggregates over the groups of :func:`_stage1` (with ``ledger``, the
    rows read and dropped per reason too)."""
    reason = s[DROP_REASON]
    used = reason.isnull()
    aggs: dict[str, Any] = {
        _LAST: s["_last"].max(where=used),
        "frequency": _frequency(s, used, by_invoice=by_invoice, days=days),
        "rows": s["_rows"].sum(),
        "rows_used": s["_rows"].sum(where=used),
        "first_purchase": s["_first"].min(where=used),
    }
    returns = reason == _RETURN_GROUP
    if money:
        # Summed exactly (Engine.sum_exact: no overflow however many lines are summed).
        aggs["monetary"] = s["_micros"].sum(where=used).cast("float64")
        aggs["returned"] = s["_micros"].sum(where=returns).cast("float64")
        aggs["_netted"] = s["_rows"].sum(where=returns)
    if baskets:
        aggs["_stamps"] = s["_stamps"].sum(where=used)
    for r in DROP_REASONS if ledger else ():
        # Return lines are cancellations in the ledger.
        aggs[r] = s["_rows"].sum(
            where=(reason == r) | returns if r == "cancellation" else reason == r
        )
    return aggs


def _frequency(s: Any, used: Any, *, by_invoice: bool, days: bool) -> Any:
    """Distinct purchase days, distinct invoices, or rows (no invoice column): per customer."""
    if days:
        return s[_DAY].nunique(where=used)
    if by_invoice:
        # A purchase line without an invoice id is an order of its own.
        return s["_invoice"].nunique(where=used) + s["_rows"].sum(
            where=used & s["_invoice"].isnull()
        ).fill_null(0)
    return s["_rows"].sum(where=used)


def basket_note(ledger: Ledger) -> str | None:
    """The warning for data without an invoice column whose customers have baskets.

    Each row then counts as an order, so several items bought at one timestamp count as
    several orders; distinct purchase days count visits instead. None when no customer has
    several purchase lines at one timestamp.
    """
    n = ledger.customers_with_baskets
    if not n:
        return None
    share = n / max(ledger.customers_segmented, 1)
    who = f"{n:,} customer ({share:.0%}) has" if n == 1 else f"{n:,} customers ({share:.0%}) have"
    return (
        f"The data has no invoice column and {who} several rows at the same timestamp (a "
        "basket of items): each row counts as an order, so frequency "
        "counts items rather than visits. Pass --frequency-unit days to count distinct "
        "purchase days, or --invoice-col if a column identifies the orders."
    )


def _to_datetime(value: Any) -> dt.datetime | None:
    return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def _finish(df: pd.DataFrame, as_of: dt.date | None) -> tuple[pd.DataFrame, dt.date]:
    last = pd.to_datetime(df[_LAST]).dt.normalize()
    as_of = _as_of(last.max().date(), as_of)
    as_of_ts = pd.Timestamp(as_of)
    recency = (as_of_ts - last).dt.days.astype("int64")
    columns: dict[str, np.ndarray] = {
        "recency": recency.to_numpy(),
        "frequency": df["frequency"].astype("int64").to_numpy(),
    }
    for money in ("monetary", "returned"):
        if money in df.columns:
            columns[money] = df[money].astype("float64").to_numpy() / _MICROS
    out = pd.DataFrame(columns, index=pd.Index(df[CUSTOMER].astype(str).to_numpy(), name=CUSTOMER))
    return out.iloc[_customer_order(out.index)], as_of


def _customer_order(ids: pd.Index) -> np.ndarray:
    """Numeric ids in numeric order, others in text order: stable and human-friendly."""
    values = ids.to_numpy(dtype=object)
    text = pa.array(values, type=pa.string())
    if len(text) and pc.all(pc.match_substring_regex(text, "^[0-9]{1,18}$")).as_py():
        # Digit strings of one length sort as their numbers: an integer sort, not a string
        # sort (7 s -> 0.3 s at a million customers); without leading zeros, the numbers
        # alone give that order.
        numbers = pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False)
        lengths = pc.utf8_length(text)
        if not pc.any(pc.and_(pc.starts_with(text, "0"), pc.greater(lengths, 1))).as_py():
            return np.argsort(numbers, kind="stable")
        return np.lexsort((numbers, lengths.to_numpy(zero_copy_only=False)))
    if len(text) and pc.all(pc.utf8_is_digit(text)).as_py():
        # Longer digit strings, or digits of other scripts ("١٢"): by length, then as text
        # or number (Python's int() reads every script's digits).
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        if lengths.max() <= 18:
            numbers = np.fromiter(map(int, values), dtype=np.int64, count=len(values))
            return np.lexsort((numbers, lengths))
        return np.lexsort((values, lengths))
    # Arrow sorts UTF-8 bytes, which is code point order (Python's), and stably.
    return pc.sort_indices(text).to_numpy(zero_copy_only=False)
