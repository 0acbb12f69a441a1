"""Property tests: random transaction tables against a tiny pandas reference of the contract.

The reference (REFERENCE.md section 3, the first-reason-wins rules of :mod:`custseg.clean`) is
written out here in plain Python, row by row, so that the engine's one-expression version is
checked against something independent of Ibis and DuckDB.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custseg import engine
from custseg.clean import DROP_REASON, DROP_REASONS, mark_drops
from custseg.config import CleanConfig, ClusterConfig, RunConfig
from custseg.errors import CustsegWarning, EmptyDataError
from custseg.features import compute_rfm_and_ledger
from custseg.load import SOURCE_PREFIX, load_transactions
from custseg.pipeline import run

# --- generated tables -------------------------------------------------------------------------

WINDOW_START = dt.datetime(2020, 1, 1)
WINDOW_END = dt.datetime(2020, 3, 31, 23, 59)
TEXT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

# Text ids: blanks and None are missing customers, "12.0" is customer "12", " abc " is "abc".
TEXT_IDS = ["17850", "12346", "12", "12.0", "12.00", " abc ", "abc", "ABC", "-7", "-7.0", "\tx"]
BLANK_IDS = ["", "  ", None]
# Float ids, as pandas stores a customer column holding NaN: 17850.0 is customer "17850".
FLOAT_IDS = [17850.0, 12346.0, 12.0, -7.0, 1.5]
# No blank invoice ids here: see test_blank_invoice_ids_count_as_orders.
INVOICES = ["1001", "1002", "1003", "1007.0", "c1006", "A1008"]
CANCELLED = ["C1004", " C1005", "C"]
STOCK_CODES = ["A", "B", "post", "POST", " Post ", "M", "m", "DOT", "", None]
SPECIAL_NUMBERS = [0.0, -0.0, math.nan, math.inf, -math.inf]
NUMBER_TEXTS = ["abc", "", " 2 ", "1e2", "+4", ".5", "1,5", "nan", "inf", "-inf", "-0", "\t3"]
BAD_DATE_TEXTS = ["notadate", "", "2020-02-30 10:00:00", " 2020-01-05 08:00:00 ", "2020-01-05"]


@dataclass(frozen=True)
class Layout:
    """How a generated table is shaped."""

    invoice: bool
    amount: bool
    stock_code: bool
    float_ids: bool
    text_numbers: bool
    text_dates: bool


def mostly(
    good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], odds: int
) -> st.SearchStrategy[Any]:
    """``bad`` one time in ``odds``, else ``good``: each table draws its own odds, so some are
    dense with bad cells (and their combinations) and others keep many purchase lines."""
    return st.integers(1, odds).flatmap(lambda i: bad if i == 1 else good)


minutes = st.integers(0, int((WINDOW_END - WINDOW_START).total_seconds() // 60))
good_dates = minutes.map(lambda m: WINDOW_START + dt.timedelta(minutes=m))
good_quantities = st.integers(1, 12).map(float)
bad_quantities = st.one_of(st.sampled_from(SPECIAL_NUMBERS), st.integers(-3, 0).map(float))
good_prices = st.integers(1, 2_000).map(lambda c: c / 100)
bad_prices = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS), st.integers(-300, 0).map(lambda c: c / 100)
)


def _as_text(value: float) -> str:
    return (
        str(int(value))
        if math.isfinite(value) and value == int(value) and value != 0
        else str(value)
    )


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    return Layout(
        invoice=draw(st.booleans()),
        amount=draw(st.booleans()),
        stock_code=draw(st.booleans()),
        float_ids=draw(st.booleans()),
        text_numbers=draw(st.booleans()),
        text_dates=draw(st.booleans()),
    )


@st.composite
def tables(
    draw: st.DrawFn, *, max_rows: int = 25, layout: Layout | None = None
) -> tuple[pd.DataFrame, Layout]:
    """A random transaction DataFrame and its layout (some rows repeated, for duplicates)."""
    lay = layout or draw(layouts())
    odds = draw(st.sampled_from([10, 3, 2]))
    n = draw(st.integers(1, max_rows))

    def number(
        good: st.SearchStrategy[float], bad: st.SearchStrategy[float]
    ) -> st.SearchStrategy[Any]:
        value = mostly(good, bad, odds)
        return (
            mostly(value.map(_as_text), st.sampled_from(NUMBER_TEXTS), odds)
            if lay.text_numbers
            else value
        )

    dates = mostly(good_dates, st.none(), odds)
    row = {
        "CustomerID": (
            mostly(st.sampled_from(FLOAT_IDS), st.just(math.nan), odds)
            if lay.float_ids
            else mostly(st.sampled_from(TEXT_IDS), st.sampled_from(BLANK_IDS), odds)
        ),
        "InvoiceDate": (
            mostly(
                dates.map(lambda d: d.strftime(TEXT_DATE_FORMAT) if d else None),
                st.sampled_from(BAD_DATE_TEXTS),
                odds,
            )
            if lay.text_dates
            else dates
        ),
    }
    if lay.invoice:
        row["InvoiceNo"] = mostly(st.sampled_from(INVOICES), st.sampled_from(CANCELLED), odds)
    if lay.amount:
        row["Amount"] = number(good_prices, bad_prices)
    else:
        row["Quantity"] = number(good_quantities, bad_quantities)
        row["UnitPrice"] = number(good_prices, bad_prices)
    if lay.stock_code:
        row["StockCode"] = st.sampled_from(STOCK_CODES)
    rows = draw(st.lists(st.fixed_dictionaries(row), min_size=n, max_size=n))
    repeats = draw(st.lists(st.integers(0, n - 1), max_size=4))
    rows += [rows[i] for i in repeats]
    df = pd.DataFrame(rows, columns=list(row))
    for col in df.columns:
        values = df[col].tolist()
        if col == "InvoiceDate" and not lay.text_dates:
            df[col] = pd.to_datetime(pd.Series(values, dtype=object))
        elif (col == "CustomerID" and lay.float_ids) or (
            col in ("Quantity", "UnitPrice", "Amount") and not lay.text_numbers
        ):
            df[col] = df[col].astype("float64")
        else:
            # An all-None object column has no type (see test_untyped_columns_are_an_input_error);
            # pandas' string dtype keeps one.
            all_null = all(v is None for v in values)
            kind = "string" if all_null or draw(st.booleans()) else object
            df[col] = pd.Series(values, dtype=kind)
    return df, lay


@st.composite
def clean_configs(draw: st.DrawFn, *, stock_code: bool) -> CleanConfig:
    """Default settings half of the time, else a random window, excluded codes, duplicates,
    returns mode and frequency unit."""
    if draw(st.booleans()):
        return CleanConfig()
    day = st.one_of(
        st.none(), st.integers(0, 95).map(lambda d: WINDOW_START.date() + dt.timedelta(days=d))
    )
    since, until, as_of = draw(day), draw(day), draw(day)
    if since and until and since > until:
        since, until = until, since
    if as_of and since and as_of <= since:
        as_of = since + dt.timedelta(days=1)
    codes = (
        draw(st.lists(st.sampled_from(["POST", "m", " dot ", "a", " "]), min_size=1, max_size=3))
        if stock_code
        else []
    )
    return CleanConfig(
        as_of=as_of,
        since=since,
        until=until,
        exclude_codes=tuple(codes),
        drop_duplicates=draw(st.booleans()),
        returns=draw(st.sampled_from(["drop", "net"])),
        frequency_unit=draw(st.sampled_from(["orders", "days"])),
    )


# --- the reference -----------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def ref_text(value: Any) -> str | None:
    if _missing(value):
        return None
    text = str(value).strip()
    return text or None


def ref_customer(value: Any) -> str | None:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value == int(value) else repr(value)
    text = ref_text(value)
    return None if text is None else re.sub(r"^(-?\d+)\.0+$", r"\1", text)


def ref_number(value: Any) -> float | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return float(value)


def ref_date(value: Any) -> dt.datetime | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        try:
            return dt.datetime.strptime(value.strip(), TEXT_DATE_FORMAT)
        except ValueError:
            return None
    return pd.Timestamp(value).to_pydatetime()


def _bad(x: float | None) -> bool:
    return x is None or math.isnan(x) or math.isinf(x)


def ref_reason(row: dict[str, Any], config: CleanConfig) -> str | None:
    """The first drop reason a canonical row meets (before duplicates), or None."""
    if row["customer"] is None:
        return "missing_customer"
    if row.get("invoice") is not None and row["invoice"].startswith("C"):
        return "cancellation"
    values = [row["amount"]] if "amount" in row else [row["quantity"], row["price"]]
    if any(_bad(v) for v in values):
        return "invalid_number"
    if "amount" not in row:
        if row["quantity"] <= 0:
            return "non_positive_quantity"
        if row["price"] <= 0:
            return "non_positive_price"
    elif row["amount"] <= 0:
        return "non_positive_amount"
    date = row["date"]
    if date is None:
        return "unparseable_date"
    if config.since is not None and date < dt.datetime.combine(config.since, dt.time()):
        return "outside_window"
    ends = []
    if config.until is not None:
        ends.append(config.until + dt.timedelta(days=1))
    if config.as_of is not None:
        ends.append(config.as_of)
    if ends and date >= dt.datetime.combine(min(ends), dt.time()):
        return "outside_window"
    codes = {c.strip().upper() for c in config.exclude_codes if c.strip()}
    if codes and row.get("stock_code") is not None and row["stock_code"].upper() in codes:
        return "excluded_code"
    return None


def ref_return(row: dict[str, Any], config: CleanConfig) -> bool:
    """Whether a cancellation is a return line: every later rule but the sign tests passes."""
    if row["reason"] != "cancellation":
        return False
    values = [row["amount"]] if "amount" in row else [row["quantity"], row["price"]]
    if any(_bad(v) for v in values) or _value(row) == 0:
        return False
    # the same row with a positive value and no cancellation: kept by the date and code rules
    probe = {**row, "invoice": None, **({"amount": 1.0} if "amount" in row else {})}
    if "amount" not in row:
        probe.update(quantity=1.0, price=1.0)
    return ref_reason(probe, config) is None


def _value(row: dict[str, Any]) -> float:
    return float(row["amount"] if "amount" in row else row["quantity"] * row["price"])


def _key(values: Any) -> tuple[str | None, ...]:
    """A row's source cells as comparable text (None for a missing cell)."""
    out: list[str | None] = []
    for v in values:
        if _missing(v):
            out.append(None)
        elif isinstance(v, pd.Timestamp | dt.datetime):
            out.append(pd.Timestamp(v).isoformat())
        elif isinstance(v, float | np.floating):
            out.append(repr(float(v)))
        else:
            out.append(str(v))
    return tuple(out)


@dataclass
class Reference:
    rows: pd.DataFrame  # canonical values, reason and key per input row
    rfm: pd.DataFrame
    as_of: dt.date | None
    customers_seen: int


def reference(df: pd.DataFrame, config: CleanConfig) -> Reference:
    records = []
    for src in df.to_dict(orient="records"):
        row: dict[str, Any] = {
            "customer": ref_customer(src["CustomerID"]),
            "date": ref_date(src["InvoiceDate"]),
        }
        if "InvoiceNo" in src:
            row["invoice"] = ref_text(src["InvoiceNo"])
        if "Amount" in src:
            row["amount"] = ref_number(src["Amount"])
        else:
            row["quantity"], row["price"] = (
                ref_number(src["Quantity"]),
                ref_number(src["UnitPrice"]),
            )
        if "StockCode" in src:
            row["stock_code"] = ref_text(src["StockCode"])
        row["reason"] = ref_reason(row, config)
        row["returned"] = abs(_value(row)) if ref_return(row, config) else 0.0
        row["key"] = _key(src.values())
        records.append(row)
    if config.drop_duplicates:  # an exact copy of an earlier kept row (or return line)
        kept: set[tuple[str | None, ...]] = set()
        returned: set[tuple[str | None, ...]] = set()
        for row in records:
            if row["reason"] is None:
                if row["key"] in kept:
                    row["reason"] = "duplicate"
                kept.add(row["key"])
            elif row["returned"]:
                if row["key"] in returned:
                    row["returned"] = 0.0
                returned.add(row["key"])
    rows = pd.DataFrame(records)
    used = rows[rows["reason"].isna()].copy()
    seen = rows["customer"].dropna().nunique()
    if used.empty:
        return Reference(rows, pd.DataFrame(), None, seen)
    used["value"] = used["amount"] if "amount" in used else used["quantity"] * used["price"]
    used["day"] = used["date"].map(lambda d: d.date())
    as_of = config.as_of or used["day"].max() + dt.timedelta(days=1)
    groups = used.groupby("customer")
    days = config.frequency_unit == "days"
    returned = rows.groupby("customer")["returned"].sum().reindex(groups.size().index)
    monetary = groups["value"].sum().astype("float64")
    if config.returns == "net":
        monetary = (monetary - returned).clip(lower=0.0)
    rfm = pd.DataFrame(
        {
            "recency": groups["day"].max().map(lambda d: (as_of - d).days).astype("int64"),
            "frequency": (
                groups["day"].nunique()
                if days
                else groups["invoice"].nunique()
                if "invoice" in used
                else groups.size()
            ).astype("int64"),
            "monetary": monetary,
            "returned": returned.fillna(0.0).astype("float64"),
        }
    )
    rfm.index.name = "customer_id"
    return Reference(rows, rfm.sort_index(), as_of, seen)


# --- the system under test ---------------------------------------------------------------------


@functools.cache
def _con() -> Any:
    """One engine connection for every example (a fresh one costs more than the query)."""
    return engine.connect(threads=1)


def _load(df: pd.DataFrame, lay: Layout) -> Any:
    return load_transactions(
        df, date_format=TEXT_DATE_FORMAT if lay.text_dates else None, con=_con()
    )


def _engine_reasons(marked: Any) -> Counter[tuple[tuple[str | None, ...], str | None]]:
    src = [c for c in marked.columns if c.startswith(SOURCE_PREFIX)]
    got = marked.select(*src, DROP_REASON).to_pandas()
    return Counter(
        (_key(r[:-1]), None if _missing(r[-1]) else r[-1])
        for r in got.itertuples(index=False, name=None)
    )


def _compute(df: pd.DataFrame, lay: Layout, config: CleanConfig) -> tuple[Any, Any, Any, Any]:
    marked = mark_drops(_load(df, lay).table, config=config)
    try:
        rfm, ledger, as_of = compute_rfm_and_ledger(
            marked, as_of=config.as_of, **config.aggregation()
        )
    except EmptyDataError:
        return marked, None, None, None
    return marked, rfm, ledger, as_of


# --- properties ---------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_rfm_and_ledger_match_the_reference(data: st.DataObject) -> None:
    df, lay = data.draw(tables())
    config = data.draw(clean_configs(stock_code=lay.stock_code))
    ref = reference(df, config)
    marked, rfm, ledger, as_of = _compute(df, lay, config)

    expected_reasons = Counter(
        zip(
            ref.rows["key"], ref.rows["reason"].where(ref.rows["reason"].notna(), None), strict=True
        )
    )
    assert _engine_reasons(marked) == expected_reasons

    if rfm is None:
        assert ref.rfm.empty, "the engine found no purchase line, the reference did"
        return
    assert not ref.rfm.empty, "the engine found purchase lines, the reference none"
    # the ledger balances and agrees with the reference's counts
    assert ledger.rows_read == len(df) == ledger.rows_used + sum(ledger.rows_dropped.values())
    assert ledger.customers_seen == ledger.customers_segmented + ledger.customers_without_purchase
    assert list(ledger.rows_dropped) == list(DROP_REASONS)
    counts = ref.rows["reason"].value_counts()
    assert ledger.rows_dropped == {r: int(counts.get(r, 0)) for r in DROP_REASONS}
    assert ledger.rows_used == int(ref.rows["reason"].isna().sum())
    assert ledger.customers_seen == ref.customers_seen
    assert ledger.customers_segmented == len(ref.rfm)
    used = ref.rows[ref.rows["reason"].isna()]
    assert ledger.date_min == used["date"].min() and ledger.date_max == used["date"].max()
    # one row per customer, the RFM invariants
    assert rfm.index.is_unique and rfm.index.name == "customer_id"
    assert rfm["recency"].dtype == np.int64 and rfm["frequency"].dtype == np.int64
    net = config.returns == "net"
    assert (
        (rfm["recency"] >= 1).all()
        and (rfm["frequency"] >= 1).all()
        and ((rfm["monetary"] >= 0) if net else (rfm["monetary"] > 0)).all()
        and (rfm["returned"] >= 0).all()
    )
    values = used["amount"] if lay.amount else used["quantity"] * used["price"]
    if not net:
        assert rfm["monetary"].sum() == pytest.approx(values.sum(), rel=1e-6)
    else:  # the return lines netted, and the customers left at 0, are counted
        assert ledger.customers_net_nonpositive == int((ref.rfm["monetary"] <= 1e-9).sum())
        netted = ref.rows["returned"].gt(0) & ref.rows["customer"].isin(ref.rfm.index)
        assert ledger.rows_netted == int(netted.sum())
    # and the table itself
    assert as_of == ref.as_of
    pd.testing.assert_frame_equal(
        rfm.sort_index(), ref.rfm, check_index_type=False, check_exact=False, rtol=1e-9, atol=1e-6
    )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_row_order_does_not_change_rfm_or_ledger(data: st.DataObject) -> None:
    df, lay = data.draw(tables())
    config = data.draw(clean_configs(stock_code=lay.stock_code))
    order = data.draw(st.permutations(range(len(df))))
    shuffled = df.iloc[list(order)].reset_index(drop=True)
    _, rfm, ledger, as_of = _compute(df, lay, config)
    _, rfm2, ledger2, as_of2 = _compute(shuffled, lay, config)
    if rfm is None:
        assert rfm2 is None
        return
    pd.testing.assert_frame_equal(rfm, rfm2, check_exact=True)
    assert ledger == ledger2 and as_of == as_of2


PIPELINE_LAYOUT = st.builds(
    Layout,
    invoice=st.booleans(),
    amount=st.booleans(),
    stock_code=st.just(False),
    float_ids=st.booleans(),
    text_numbers=st.just(False),
    text_dates=st.just(False),
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_run_segments_every_buyer_once(data: st.DataObject) -> None:
    lay = data.draw(PIPELINE_LAYOUT)
    df, _ = data.draw(tables(max_rows=40, layout=lay))
    ref = reference(df, CleanConfig())
    config = RunConfig(cluster=ClusterConfig(k_values=(1, 2, 3), n_init=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustsegWarning)  # drop explanations and k-sweep notes
        if ref.rfm.empty:
            with pytest.raises(EmptyDataError, match="No purchase lines left"):
                run(df, config=config, con=_con())
            return
        result = run(df, config=config, con=_con())
    customers = result.customers
    assert customers.index.is_unique
    assert sorted(customers.index) == sorted(ref.rfm.index)
    assert customers["cluster"].between(0, result.k - 1).all()
    assert set(customers["cluster"]) <= {s.cluster for s in result.segments}
    assert len({s.name for s in result.segments}) == len(result.segments) == result.k
    by_cluster = customers.groupby("cluster")["segment"].nunique()
    by_segment = customers.groupby("segment")["cluster"].nunique()
    assert (by_cluster == 1).all() and (by_segment == 1).all()
    names = {s.cluster: s.name for s in result.segments}
    assert all(
        names[c] == s for c, s in zip(customers["cluster"], customers["segment"], strict=True)
    )
    assert result.ledger.customers_segmented == len(customers)


# --- edge cases found by the properties above ---------------------------------------------------------------------------


def test_blank_invoice_ids_count_as_orders() -> None:
    day = pd.Timestamp("2020-01-02")
    df = pd.DataFrame(
        {
            "CustomerID": ["a", "a", "b"],
            "InvoiceNo": [None, " ", "1"],
            "InvoiceDate": [day, day, day],
            "Quantity": [1.0, 1.0, 1.0],
            "UnitPrice": [2.0, 3.0, 4.0],
        }
    )
    rfm, ledger, _ = compute_rfm_and_ledger(
        mark_drops(load_transactions(df).table, config=CleanConfig())
    )
    assert ledger.rows_used == 3
    assert rfm["frequency"].to_dict() == {"a": 2, "b": 1}  # each line without an id is an order


def test_untyped_columns_are_an_input_error() -> None:
    df = pd.DataFrame(
        {
            "CustomerID": [None, None],
            "InvoiceNo": ["1", "2"],
            "InvoiceDate": pd.to_datetime(["2020-01-01", "2020-01-02"]),
            "Quantity": [1.0, 1.0],
            "UnitPrice": [1.0, 1.0],
        }
    )
    with pytest.raises(EmptyDataError, match="No purchase lines left"):
        compute_rfm_and_ledger(mark_drops(load_transactions(df).table, config=CleanConfig()))


def test_tiny_line_values_keep_monetary_positive() -> None:
    df = pd.DataFrame(
        {
            "CustomerID": ["a", "b"],
            "InvoiceNo": ["1", "2"],
            "InvoiceDate": pd.to_datetime(["2020-01-01", "2020-01-02"]),
            "Quantity": [1.0, 1.0],
            "UnitPrice": [1e-7, 1.0],
        }
    )
    rfm, _, _ = compute_rfm_and_ledger(
        mark_drops(load_transactions(df).table, config=CleanConfig())
    )
    assert (rfm["monetary"] > 0).all(), rfm


def test_nan_customer_ids_are_missing_customers() -> None:
    table = pa.table(
        {
            "CustomerID": pa.array([math.nan, 5.0], type=pa.float64(), from_pandas=False),
            "InvoiceNo": ["1", "2"],
            "InvoiceDate": pa.array([dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 2)]),
            "Quantity": [1.0, 1.0],
            "UnitPrice": [1.0, 1.0],
        }
    )
    rfm, ledger, _ = compute_rfm_and_ledger(
        mark_drops(load_transactions(table).table, config=CleanConfig())
    )
    assert ledger.rows_dropped["missing_customer"] == 1 and list(rfm.index) == ["5"], rfm
