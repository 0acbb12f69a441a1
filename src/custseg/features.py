"""Purchase lines -> one row per customer: recency, frequency and monetary value.

The definitions (REFERENCE.md section 3) live in one Ibis aggregation; only the per-customer
table comes back to Python.

- ``as_of``: the day after the last purchase in the data, unless given.
- ``recency``: days from the customer's last purchase date to ``as_of`` (an integer >= 1).
- ``frequency``: distinct invoices (rows, where the data has no invoice id).
- ``monetary``: sum of line values, quantity x price or amount.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.datatypes as idt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .clean import DROP_REASON, DROP_REASONS, Ledger, check_not_empty
from .errors import EmptyDataError, InputError
from .schema import AMOUNT, CUSTOMER, DATE, INVOICE, PRICE, QUANTITY

__all__ = ["RFM_COLUMNS", "compute_rfm", "compute_rfm_and_ledger"]

RFM_COLUMNS: tuple[str, str, str] = ("recency", "frequency", "monetary")
_LAST = "last_purchase"
# Line values are summed as decimals: exact, so the totals do not depend on the order in which
# parallel threads add them up, and CSV and Parquet copies of a file give identical bytes.
_MONEY = idt.Decimal(38, 6)


def _rfm_aggregates(t: Any, used: Any) -> dict[str, Any]:
    cols = set(t.columns)
    value = t[AMOUNT] if AMOUNT in cols else t[QUANTITY] * t[PRICE]
    value = value.round(6).cast(_MONEY)
    if INVOICE in cols:
        frequency = t[INVOICE].nunique(where=used)
    else:
        frequency = used.sum()
    return {
        _LAST: t[DATE].max(where=used),
        "frequency": frequency,
        "monetary": value.sum(where=used),
    }


def compute_rfm(lines: ir.Table, *, as_of: dt.date | None = None) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer from purchase lines.

    Parameters
    ----------
    lines : Table
        Purchase lines, as returned by :func:`custseg.clean.clean_transactions`.
    as_of : date, optional
        Reference date; default the day after the last purchase.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``, columns ``recency``, ``frequency``, ``monetary``.

    Raises
    ------
    EmptyDataError
        If there are no purchase lines.
    InputError
        If a purchase falls on or after ``as_of``.
    """
    used = ibis.literal(True)
    per_customer = lines.group_by(lines[CUSTOMER]).aggregate(**_rfm_aggregates(lines, used))
    df = per_customer.to_pandas()
    if df.empty:
        raise EmptyDataError("No purchase lines to compute RFM from.")
    rfm, _ = _finish(df, as_of)
    return rfm


def compute_rfm_and_ledger(
    marked: ir.Table, *, as_of: dt.date | None = None
) -> tuple[pd.DataFrame, Ledger, dt.date]:
    """RFM per customer and the ledger, from a table marked by :func:`custseg.clean.mark_drops`.

    One pass over the rows: the aggregation is grouped by customer (guest rows form one group
    with a NULL id), and the ledger is summed from the per-customer counts.

    Returns
    -------
    rfm : DataFrame
        As :func:`compute_rfm`.
    ledger : Ledger
    as_of : date
        The reference date used.
    """
    t: Any = marked
    reason = t[DROP_REASON]
    used = reason.isnull()
    aggs = _rfm_aggregates(t, used)
    aggs["rows"] = t.count()
    aggs["rows_used"] = used.sum()
    for r in DROP_REASONS:
        aggs[r] = (reason == r).sum()
    aggs["first_purchase"] = t[DATE].min(where=used)
    df = marked.group_by(t[CUSTOMER]).aggregate(**aggs).to_pandas()
    counts: dict[str, int] = {
        "rows_read": int(df["rows"].sum()),
        "rows_used": int(df["rows_used"].sum()),
        "customers_seen": int(df[CUSTOMER].notna().sum()),
        "customers_segmented": int((df[CUSTOMER].notna() & (df["rows_used"] > 0)).sum()),
    }
    for r in DROP_REASONS:
        counts[r] = int(df[r].sum())
    buyers = df[df["rows_used"] > 0]
    ledger = Ledger.from_counts(
        counts,
        date_min=_to_datetime(buyers["first_purchase"].min()) if len(buyers) else None,
        date_max=_to_datetime(buyers[_LAST].max()) if len(buyers) else None,
    )
    check_not_empty(ledger)
    rfm, used_as_of = _finish(buyers[[CUSTOMER, _LAST, "frequency", "monetary"]], as_of)
    return rfm, ledger, used_as_of


def _to_datetime(value: Any) -> dt.datetime | None:
    return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def _finish(df: pd.DataFrame, as_of: dt.date | None) -> tuple[pd.DataFrame, dt.date]:
    last = pd.to_datetime(df[_LAST]).dt.normalize()
    latest = last.max().date()
    if as_of is None:
        as_of = latest + dt.timedelta(days=1)
    elif latest >= as_of:
        raise InputError(
            f"Purchases dated {latest} are on or after as_of {as_of}. "
            "Pass a later --as-of, or drop them with --until."
        )
    as_of_ts = pd.Timestamp(as_of)
    recency = (as_of_ts - last).dt.days.astype("int64")
    out = pd.DataFrame(
        {
            "recency": recency.to_numpy(),
            "frequency": df["frequency"].astype("int64").to_numpy(),
            "monetary": df["monetary"].astype("float64").to_numpy(),
        },
        index=pd.Index(df[CUSTOMER].astype(str).to_numpy(), name=CUSTOMER),
    )
    return out.iloc[_customer_order(out.index)], as_of


def _customer_order(ids: pd.Index) -> np.ndarray:
    """Numeric ids in numeric order, others in text order: stable and human-friendly."""
    values = ids.to_numpy(dtype=object)
    if all(isinstance(v, str) and v.isdigit() for v in values):
        return np.lexsort((values, np.array([len(v) for v in values])))
    return np.argsort(values, kind="stable")
