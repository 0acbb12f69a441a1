from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from custseg.clean import clean_transactions, mark_drops
from custseg.config import CleanConfig
from custseg.errors import InputError
from custseg.features import compute_rfm, compute_rfm_and_ledger
from custseg.load import load_transactions
from fixtures import TINY_DROPS, TINY_EXPECTED


def _expected(expected: dict[str, tuple[int, int, float]]) -> pd.DataFrame:
    df = pd.DataFrame.from_dict(
        expected, orient="index", columns=["recency", "frequency", "monetary"]
    )
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
    pd.testing.assert_frame_equal(rfm, _expected(TINY_EXPECTED), check_index_type=False)
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
    assert rfm.loc["C2"].tolist() == [1, 2, 35.0]
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
    assert rfm.loc["a"].tolist() == [2, 2, 12.0]
    assert rfm.loc["b"].tolist() == [1, 1, 1.0]
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
    assert rfm.loc["12346"].tolist() == [326, 1, 77183.6]  # the one-order wholesaler
