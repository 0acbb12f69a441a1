from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from custseg.clean import Ledger, clean_transactions, mark_drops
from custseg.config import CleanConfig
from custseg.errors import InputError
from custseg.features import (
    basket_note,
    compute_rfm,
    compute_rfm_and_ledger,
    compute_rfm_split,
)
from custseg.formats import LedgerRecord
from custseg.load import load_transactions
from fixtures import RETURNS_EXPECTED, TINY_DROPS, TINY_EXPECTED


def _expected(
    expected: dict[str, tuple[int, int, float]], returned: dict[str, float] | None = None
) -> pd.DataFrame:
    df = pd.DataFrame.from_dict(
        expected, orient="index", columns=["recency", "frequency", "monetary"]
    )
    df["returned"] = [(returned or {}).get(c, 0.0) for c in df.index]
    df.index.name = "customer_id"
    return df


def test_compute_rfm_hand_computed(tiny_csv: Path) -> None:
    lines, _ = clean_transactions(load_transactions(tiny_csv).table, config=CleanConfig())
    rfm = compute_rfm(lines)
    pd.testing.assert_frame_equal(rfm, _expected(TINY_EXPECTED), check_index_type=False)


def test_compute_rfm_and_ledger_one_pass_matches(tiny_csv: Path) -> None:
    marked = mark_drops(load_transactions(tiny_csv).table, config=CleanConfig())
    rfm, ledger, as_of = compute_rfm_and_ledger(marked)
    assert as_of == dt.date(2021, 2, 1)
    # C1's cancellation C1003 (-1 x 5) is returned; purchase lines alone return nothing
    expected = _expected(TINY_EXPECTED, returned={"C1": 5.0})
    pd.testing.assert_frame_equal(rfm, expected, check_index_type=False)
    assert {r: n for r, n in ledger.rows_dropped.items() if n} == TINY_DROPS
    assert ledger.customers_without_purchase == 3
    assert ledger.customers_outside_window == 0
    assert ledger.date_min == dt.datetime(2021, 1, 1, 10) and ledger.date_max == dt.datetime(
        2021, 1, 31, 23, 59
    )


def test_compute_rfm_as_of_given(tiny_csv: Path) -> None:
    marked = mark_drops(
        load_transactions(tiny_csv).table, config=CleanConfig(as_of=dt.date(2021, 1, 21))
    )
    rfm, ledger, as_of = compute_rfm_and_ledger(marked, as_of=dt.date(2021, 1, 21))
    assert as_of == dt.date(2021, 1, 21)
    # C5 bought only after as_of: left out by the window, not a customer without purchases.
    assert (ledger.customers_without_purchase, ledger.customers_outside_window) == (4, 1)
    # C2's POST line on Jan 20 is kept (before as_of); C5's Jan 31 lines are dropped.
    assert rfm.loc["C2"].tolist() == [1, 2, 35.0, 0.0]
    assert "C5" not in rfm.index


def test_compute_rfm_after_as_of_is_an_error(tiny_csv: Path) -> None:
    lines, _ = clean_transactions(load_transactions(tiny_csv).table, config=CleanConfig())
    with pytest.raises(InputError, match="on or after as_of 2021-01-15"):
        compute_rfm(lines, as_of=dt.date(2021, 1, 15))


def test_compute_rfm_without_invoice_counts_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "customer,date,amount\na,2021-01-01,5\na,2021-01-01,7\nb,2021-01-03,-2\nb,2021-01-02,1\n"
    )
    marked = mark_drops(load_transactions(path).table, config=CleanConfig())
    rfm, ledger, _ = compute_rfm_and_ledger(marked)
    # the last purchase is b's on Jan 2 (its Jan 3 refund is dropped): as_of is Jan 3
    assert rfm.loc["a"].tolist() == [2, 2, 12.0, 0.0]
    assert rfm.loc["b"].tolist() == [1, 1, 1.0, 0.0]
    assert ledger.rows_dropped["non_positive_amount"] == 1


def test_compute_rfm_numeric_ids_in_numeric_order(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("customer,date,amount\n100,2021-01-01,5\n99,2021-01-01,7\n1000,2021-01-01,1\n")
    rfm, _, _ = compute_rfm_and_ledger(
        mark_drops(load_transactions(path).table, config=CleanConfig())
    )
    assert rfm.index.tolist() == ["99", "100", "1000"]


@pytest.mark.parametrize("which", ["parquet", "csv"])
def test_compute_rfm_real_data_reference_figures(
    which: str, retail_parquet: Path, retail_csv: Path
) -> None:
    path = retail_parquet if which == "parquet" else retail_csv
    marked = mark_drops(load_transactions(path).table, config=CleanConfig())
    rfm, ledger, as_of = compute_rfm_and_ledger(marked)
    assert as_of == dt.date(2011, 12, 10)
    assert len(rfm) == 4_338 == ledger.customers_segmented
    assert rfm["recency"].mean() == pytest.approx(93.06, abs=0.005)
    assert rfm["frequency"].mean() == pytest.approx(4.272, abs=0.0005)
    assert rfm["monetary"].mean() == pytest.approx(2054.27, abs=0.005)
    assert rfm["recency"].min() >= 1
    # the one-order wholesaler, who cancelled the order 16 minutes later
    assert rfm.loc["12346"].tolist() == [326, 1, 77183.6, 77183.6]


# Two invoices on one day count as two orders but one purchase day:
#   x: invoices 1 and 2 on Jan 1 (9:00 and 17:00), 3 on Jan 3 -> 3 orders, 2 days
#   y: invoice 4 on Jan 2, two lines                          -> 1 order, 1 day
DAYS_CSV = """\
InvoiceNo,InvoiceDate,CustomerID,Quantity,UnitPrice
1,2021-01-01 09:00,x,1,10
2,2021-01-01 17:00,x,1,10
3,2021-01-03 10:00,x,2,5
4,2021-01-02 11:00,y,1,4
4,2021-01-02 11:00,y,3,2
"""


def test_compute_rfm_frequency_in_days_counts_distinct_purchase_days(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(DAYS_CSV)
    marked = mark_drops(load_transactions(path).table, config=CleanConfig())
    orders, _, _ = compute_rfm_and_ledger(marked)
    days, _, _ = compute_rfm_and_ledger(marked, frequency_unit="days")
    assert orders["frequency"].to_dict() == {"x": 3, "y": 1}
    assert days["frequency"].to_dict() == {"x": 2, "y": 1}
    # recency and monetary do not depend on the unit
    pd.testing.assert_frame_equal(
        days[["recency", "monetary"]], orders[["recency", "monetary"]], check_index_type=False
    )
    assert days.loc["x"].tolist() == [1, 2, 30.0, 0.0]


def test_compute_rfm_days_ignores_dropped_rows_and_lines(tiny_csv: Path) -> None:
    # C1's cancellation (Jan 11) and unreadable quantity (Jan 12) are not purchase days
    lines, _ = clean_transactions(load_transactions(tiny_csv).table, config=CleanConfig())
    rfm = compute_rfm(lines, frequency_unit="days")
    assert rfm["frequency"].to_dict() == {"C1": 2, "C2": 2, "C5": 1}


def test_compute_rfm_counts_basket_customers_without_invoice(tmp_path: Path) -> None:
    # a: 3 rows at 10:00 on Jan 1 (one basket) and one on Jan 5; b: 2 rows at 2 timestamps;
    # c: its 2 rows at one timestamp, but one is a refund (dropped): no basket left
    path = tmp_path / "t.csv"
    path.write_text(
        "customer,date,amount\n"
        "a,2021-01-01 10:00,5\na,2021-01-01 10:00,7\na,2021-01-01 10:00,1\na,2021-01-05 09:00,2\n"
        "b,2021-01-03 12:00,4\nb,2021-01-02 08:00,1\n"
        "c,2021-01-04 08:00,3\nc,2021-01-04 08:00,-3\n"
    )
    marked = mark_drops(load_transactions(path).table, config=CleanConfig())
    rfm, ledger, _ = compute_rfm_and_ledger(marked)
    assert rfm["frequency"].to_dict() == {"a": 4, "b": 2, "c": 1}
    assert ledger.customers_with_baskets == 1
    note = basket_note(ledger)
    assert note is not None and "1 customer (33%) has several rows" in note
    assert "--frequency-unit days" in note
    days, ledger_days, _ = compute_rfm_and_ledger(marked, frequency_unit="days")
    assert days["frequency"].to_dict() == {"a": 2, "b": 2, "c": 1}
    assert ledger_days.customers_with_baskets == 0 and basket_note(ledger_days) is None
    assert "customers_with_baskets" not in ledger.to_dict()


def test_basket_note_silent_with_an_invoice_column(tiny_csv: Path) -> None:
    # C5's two identical lines share a timestamp, but the invoice says they are one order
    marked = mark_drops(load_transactions(tiny_csv).table, config=CleanConfig())
    _, ledger, _ = compute_rfm_and_ledger(marked)
    assert ledger.customers_with_baskets == 0 and basket_note(ledger) is None


def _returns_rfm(path: Path, config: CleanConfig, returns: str) -> tuple[pd.DataFrame, Ledger]:
    marked = mark_drops(load_transactions(path).table, config=config)
    rfm, ledger, as_of = compute_rfm_and_ledger(marked, returns=returns)  # type: ignore[arg-type]
    assert as_of == dt.date(2021, 1, 10)
    return rfm, ledger


def test_returns_are_valued_in_every_run_and_netted_on_request(returns_csv: Path) -> None:
    dropped, ledger = _returns_rfm(returns_csv, CleanConfig(), "drop")
    for c, (r, f, gross, returned, _) in RETURNS_EXPECTED.items():
        assert dropped.loc[c].tolist() == [r, f, gross, returned], c
    assert ledger.rows_netted is None and ledger.customers_net_nonpositive is None
    assert "rows_netted" not in LedgerRecord(**ledger.to_dict()).model_dump(mode="json")

    net, ledger = _returns_rfm(returns_csv, CleanConfig(), "net")
    for c, (r, f, _, returned, monetary) in RETURNS_EXPECTED.items():
        assert net.loc[c].tolist() == [r, f, monetary, returned], c
    # a: 2, b, c, d (C1011), f: 6 return lines netted; e has no purchase to net against
    assert ledger.rows_netted == 6
    assert ledger.customers_net_nonpositive == 2  # b (net 0) and c (net -15), kept
    assert sorted(net.index) == ["a", "b", "c", "d", "f"]
    assert ledger.rows_dropped["cancellation"] == 9 and ledger.customers_without_purchase == 1
    assert LedgerRecord(**ledger.to_dict()).model_dump(mode="json")["rows_netted"] == 6


@pytest.mark.parametrize("dedupe", [False, True])
def test_rfm_split_is_each_side_aggregated_apart(returns_csv: Path, dedupe: bool) -> None:
    # Split at Jan 6: before it a (1001, 1002; nothing returned yet), b (1004, C1005: net 0),
    # c (1006), e (a cancellation only); from it on a's C1003 copies, c's C1007, d, f.
    clean = CleanConfig(drop_duplicates=dedupe)
    split, end = dt.date(2021, 1, 6), dt.date(2021, 1, 21)
    before, after = compute_rfm_split(
        mark_drops(load_transactions(returns_csv).table, config=clean),
        split=split,
        as_of=end,
        returns="net",
    )
    assert before.loc["a"].tolist() == [1, 2, 50.0, 0.0]
    assert before.loc["b"].tolist() == [3, 1, 0.0, 25.0]
    assert sorted(before.index) == ["a", "b", "c"]
    # After the split, a has returns but no purchase: not a buyer of that side.
    assert sorted(after.index) == ["d", "f"]
    assert after.loc["d"].tolist() == [13, 1, 8.0, 4.0]
    # Each side equals marking and aggregating its span alone.
    for side, window, as_of in (
        (before, clean.replace(as_of=split), split),
        (after, clean.replace(since=split, as_of=end), end),
    ):
        marked = mark_drops(load_transactions(returns_csv).table, config=window)
        alone, _, _ = compute_rfm_and_ledger(marked, as_of=as_of, returns="net")
        pd.testing.assert_frame_equal(side, alone)


def test_returns_follow_the_cleaning_rules(returns_csv: Path) -> None:
    deduped, ledger = _returns_rfm(returns_csv, CleanConfig(drop_duplicates=True), "net")
    assert deduped.loc["a", "returned"] == 10.0 and deduped.loc["a", "monetary"] == 40.0
    assert ledger.rows_netted == 5
    windowed, ledger = _returns_rfm(returns_csv, CleanConfig(until=dt.date(2021, 1, 10)), "net")
    assert windowed.loc["d"].tolist() == [2, 1, 12.0, 0.0]  # C1011 (Jan 20) is outside
    assert ledger.rows_netted == 5


def test_returns_with_an_amount_column(tmp_path: Path) -> None:
    # refunds as negative amounts (C2) or as positive ones (C4): returned either way
    path = tmp_path / "t.csv"
    path.write_text(
        "order,date,customer,amount\n1,2021-01-01,x,50\nC2,2021-01-02,x,-20\n"
        "3,2021-01-03,y,10\nC4,2021-01-04,y,10\nC5,2021-01-04,y,nan\n"
    )
    marked = mark_drops(load_transactions(path).table, config=CleanConfig())
    rfm, ledger, _ = compute_rfm_and_ledger(marked, returns="net")
    assert rfm.loc["x"].tolist() == [3, 1, 30.0, 20.0]
    assert rfm.loc["y"].tolist() == [1, 1, 0.0, 10.0]
    assert ledger.rows_netted == 2 and ledger.customers_net_nonpositive == 1


def test_data_without_money_gives_recency_and_frequency(tmp_path: Path) -> None:
    # a customer and a date per row: every row is a purchase line (no value to test)
    path = tmp_path / "t.csv"
    path.write_text("member_id,date\nm1,2021-01-01\nm1,2021-01-04\nm2,2021-01-02\n,2021-01-03\n")
    marked = mark_drops(load_transactions(path).table, config=CleanConfig())
    rfm, ledger, as_of = compute_rfm_and_ledger(marked, frequency_unit="days", returns="net")
    assert as_of == dt.date(2021, 1, 5)
    assert list(rfm.columns) == ["recency", "frequency"]
    assert rfm.to_dict("index") == {
        "m1": {"recency": 1, "frequency": 2},
        "m2": {"recency": 3, "frequency": 1},
    }
    assert ledger.rows_used == 3 and ledger.rows_dropped["missing_customer"] == 1
    assert ledger.rows_netted is None  # nothing to net without money


def test_no_monetary_keeps_the_purchase_lines_of_a_run_with_money(tiny_csv: Path) -> None:
    marked = mark_drops(load_transactions(tiny_csv).table, config=CleanConfig())
    rf, ledger, _ = compute_rfm_and_ledger(marked, monetary=False)
    rfm, ledger_rfm, _ = compute_rfm_and_ledger(marked)
    pd.testing.assert_frame_equal(rf, rfm[["recency", "frequency"]])
    assert ledger == ledger_rfm  # the same rows are purchase lines
