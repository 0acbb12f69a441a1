from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from custseg.clean import DROP_REASONS, Ledger, clean_transactions, mark_drops
from custseg.config import CleanConfig
from custseg.errors import ConfigError, EmptyDataError
from custseg.load import load_transactions
from fixtures import TINY_DROPS


def _clean(path: Path, **kw: object) -> tuple[object, Ledger]:
    tx = load_transactions(path)
    return clean_transactions(tx.table, config=CleanConfig(**kw))  # type: ignore[arg-type]


def test_clean_transactions_ledger_by_reason(tiny_csv: Path) -> None:
    lines, ledger = _clean(tiny_csv)
    assert ledger.rows_read == 13
    assert ledger.rows_used == 7
    assert {r: n for r, n in ledger.rows_dropped.items() if n} == TINY_DROPS
    assert list(ledger.rows_dropped) == list(DROP_REASONS)
    assert (
        ledger.customers_seen,
        ledger.customers_segmented,
        ledger.customers_without_purchase,
    ) == (6, 3, 3)
    assert lines.count().execute() == 7  # type: ignore[attr-defined]


def test_clean_transactions_drop_duplicates(tiny_csv: Path) -> None:
    _, ledger = _clean(tiny_csv, drop_duplicates=True)
    assert ledger.rows_dropped["duplicate"] == 1 and ledger.rows_used == 6


def test_clean_transactions_exclude_codes(tiny_csv: Path) -> None:
    _, ledger = _clean(tiny_csv, exclude_codes=("post",))
    assert ledger.rows_dropped["excluded_code"] == 1 and ledger.rows_used == 6


def test_clean_transactions_window(tiny_csv: Path) -> None:
    _, ledger = _clean(tiny_csv, since=dt.date(2021, 1, 6), until=dt.date(2021, 1, 20))
    # kept: 1002 (Jan 10) and 1005 (Jan 20); out: 1001 x2, 1004 (Jan 5), 1009 x2 (Jan 31)
    assert ledger.rows_dropped["outside_window"] == 5 and ledger.rows_used == 2


def test_clean_transactions_as_of_drops_later_rows(tiny_csv: Path) -> None:
    _, ledger = _clean(tiny_csv, as_of=dt.date(2021, 1, 20))
    # on or after Jan 20: 1005 and the two 1009 rows
    assert ledger.rows_dropped["outside_window"] == 3


def test_clean_transactions_first_reason_wins(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    # a cancellation with no customer and a negative quantity counts once, as missing_customer
    path.write_text(
        "CustomerID,InvoiceNo,InvoiceDate,Quantity,UnitPrice\n,C1,2021-01-01,-1,0\n1,2,2021-01-01,1,1\n"
    )
    _, ledger = _clean(path)
    assert ledger.rows_dropped["missing_customer"] == 1
    assert sum(ledger.rows_dropped.values()) == 1


def test_clean_transactions_everything_dropped(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "CustomerID,InvoiceNo,InvoiceDate,Quantity,UnitPrice\n1,C1,2021-01-01,-1,2\n2,C2,2021-01-01,-1,2\n"
    )
    with pytest.raises(
        EmptyDataError, match=r"No purchase lines left: all 2 rows were dropped \(2 cancellation\)"
    ):
        _clean(path)


def test_clean_transactions_header_only(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("CustomerID,InvoiceNo,InvoiceDate,Quantity,UnitPrice\n")
    with pytest.raises(EmptyDataError, match="header but no rows"):
        _clean(path)


def test_clean_config_rejects_reversed_window() -> None:
    with pytest.raises(ConfigError, match="--since 2021-02-01 is after --until 2021-01-01"):
        CleanConfig(since=dt.date(2021, 2, 1), until=dt.date(2021, 1, 1))


def test_mark_drops_is_lazy_and_adds_the_reason_and_return_flag(tiny_csv: Path) -> None:
    table = load_transactions(tiny_csv).table
    marked = mark_drops(table, config=CleanConfig())
    assert list(marked.columns) == [*table.columns, "drop_reason", "return_line"]


def test_ledger_must_balance() -> None:
    with pytest.raises(AssertionError, match="does not balance"):
        Ledger(rows_read=3, rows_used=1, rows_dropped={"cancellation": 1})


def test_clean_transactions_real_data_ledger(retail_parquet: Path) -> None:
    _, ledger = _clean(retail_parquet)
    assert ledger.rows_read == 541_909
    assert ledger.rows_dropped["missing_customer"] == 135_080
    # Of the 9,288 cancellation rows, 383 have no customer and count there first.
    assert ledger.rows_dropped["cancellation"] == 8_905
    assert ledger.customers_seen == 4_372 and ledger.customers_segmented == 4_338
    assert ledger.rows_used == 397_884


def _return_lines(path: Path, config: CleanConfig) -> list[str]:
    marked = mark_drops(load_transactions(path).table, config=config)
    rows = marked.filter(marked["return_line"]).select("invoice_id").to_pyarrow().to_pylist()
    return sorted(r["invoice_id"] for r in rows)


def test_mark_drops_flags_the_cancellations_that_are_returns(returns_csv: Path) -> None:
    # not returns: C1009 (quantity 'abc'), C1010 (price 0), C1013 (a guest's); the positive
    # quantity of C1014 is a return all the same
    assert _return_lines(returns_csv, CleanConfig()) == [
        "C1003", "C1003", "C1005", "C1007", "C1011", "C1012", "C1014",
    ]  # fmt: skip
    # outside the window, of an excluded code, or a copy: not returned
    window = CleanConfig(until=dt.date(2021, 1, 10), exclude_codes=("B",), drop_duplicates=True)
    assert _return_lines(returns_csv, window) == ["C1003", "C1005", "C1012", "C1014"]
    # every cancellation stays counted as one
    _, ledger = clean_transactions(load_transactions(returns_csv).table, config=window)
    assert ledger.rows_dropped["cancellation"] == 9
