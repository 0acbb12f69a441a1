from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from custseg.errors import InputError, SchemaError
from custseg.load import detect_date_format, load_transactions
from fixtures import TINY_CSV


def _rows(tx) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return tx.table.select("customer_id", "invoice_id", "date", "quantity", "price").to_pandas()


def test_load_transactions_csv_canonical_columns(tiny_csv: Path) -> None:
    tx = load_transactions(tiny_csv)
    df = _rows(tx)
    assert len(df) == 13
    assert tx.columns.customer == "CustomerID" and tx.source.format == "csv"
    assert df["customer_id"].iloc[0] == "C1"
    assert df["date"].iloc[0] == pd.Timestamp("2021-01-01 10:00")
    assert pd.isna(df["date"].iloc[11])  # "notadate" becomes NULL, counted later
    assert pd.isna(df["quantity"].iloc[12])  # "abc" becomes NULL, counted later
    assert pd.isna(df["customer_id"].iloc[7])


def test_load_transactions_parquet_float_ids_lose_dot_zero(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "CustomerID": [17850.0, None],
            "InvoiceNo": ["1", "2"],
            "InvoiceDate": ["2011-01-01", "2011-01-02"],
            "Quantity": [1, 2],
            "UnitPrice": [1.5, 2.0],
        }
    )
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    out = load_transactions(path).table.select("customer_id").to_pandas()["customer_id"].tolist()
    assert out[0] == "17850" and pd.isna(out[1])


def test_load_transactions_latin1_csv_and_semicolons(tmp_path: Path) -> None:
    text = TINY_CSV.replace(",", ";").replace("Thing", "Caf\u00e9")
    path = tmp_path / "latin.csv"
    path.write_bytes(text.encode("latin-1"))
    tx = load_transactions(path)
    assert tx.source.encoding == "latin-1"
    assert len(_rows(tx)) == 13


def test_load_transactions_gzip_us_dates(tmp_path: Path) -> None:
    text = "CustomerID,InvoiceNo,InvoiceDate,Quantity,UnitPrice\n1,A,12/1/2010 8:26,1,2\n2,B,12/13/2010 14:05,1,2\n"
    path = tmp_path / "us.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    tx = load_transactions(path)
    assert tx.date_format == "%m/%d/%Y %H:%M"
    assert _rows(tx)["date"].tolist() == [
        pd.Timestamp("2010-12-01 08:26"),
        pd.Timestamp("2010-12-13 14:05"),
    ]


def test_load_transactions_explicit_date_format(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("customer,when,amount\n1,02/03/2021,5\n")
    tx = load_transactions(path, columns={"date": "when"}, date_format="%d/%m/%Y")
    assert tx.table.to_pandas()["date"].iloc[0] == pd.Timestamp("2021-03-02")


def test_load_transactions_folder_and_glob(tmp_path: Path) -> None:
    for i in range(2):
        (tmp_path / f"part{i}.csv").write_text(TINY_CSV)
    assert load_transactions(tmp_path).table.count().execute() == 26
    assert load_transactions(str(tmp_path / "part*.csv")).table.count().execute() == 26


def test_load_transactions_dataframe() -> None:
    df = pd.DataFrame({"customer": ["a"], "date": pd.to_datetime(["2020-01-01"]), "amount": [3.0]})
    tx = load_transactions(df)
    assert tx.columns.value_mode == "amount"
    assert tx.table.to_pandas()["amount"].tolist() == [3.0]


def test_load_transactions_excel(tmp_path: Path) -> None:
    import datetime as dt

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["CustomerID", "InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice"])
    ws.append([12345, "536365", dt.datetime(2010, 12, 1, 8, 26), 6, 2.55])
    path = tmp_path / "book.xlsx"
    wb.save(path)
    df = load_transactions(path).table.to_pandas()
    assert df["customer_id"].tolist() == ["12345"]
    assert df["date"].iloc[0] == pd.Timestamp("2010-12-01 08:26")
    assert df["price"].iloc[0] == pytest.approx(2.55)


def test_load_transactions_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"No such file: .*nope\.csv.*Check the path"):
        load_transactions(tmp_path / "nope.csv")


def test_load_transactions_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00\x01\x02garbage" * 10)
    with pytest.raises(InputError, match="not a table custseg can read"):
        load_transactions(path)


def test_load_transactions_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Invoice,Price,Kunde,Quantity,Date\n1,2,3,4,2020-01-01\n")
    with pytest.raises(SchemaError, match="Pass --customer-col"):
        load_transactions(path)


def test_detect_date_format_day_first() -> None:
    assert detect_date_format(["13/01/2021", "02/01/2021"]) == "%d/%m/%Y"


def test_detect_date_format_compact() -> None:
    assert detect_date_format(["20210131", "20210201"]) == "%Y%m%d"


def test_detect_date_format_unknown() -> None:
    with pytest.raises(SchemaError, match="Pass --date-format"):
        detect_date_format(["soon", "later", "yesterday"], column="when")


def test_load_transactions_real_csv_and_parquet_agree(
    retail_parquet: Path, retail_csv: Path
) -> None:
    a = load_transactions(retail_parquet)
    b = load_transactions(retail_csv)
    assert b.source.encoding == "latin-1" and b.date_format == "%m/%d/%Y %H:%M"
    assert a.columns == b.columns

    def stats(t):  # type: ignore[no-untyped-def]
        agg = t.aggregate(
            n=t.count(), c=t.customer_id.nunique(), d=t.date.max(), q=t.quantity.sum()
        )
        return agg.to_pandas().to_dict()

    assert stats(a.table) == stats(b.table)


# --- awkward text inputs: decimal commas, whitespace-aligned columns, no header ---------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12,5", 12.5),
        ("1.234,56", 1234.56),
        ("1 234,56", 1234.56),
        ("-3", -3.0),
        (",5", 0.5),
        ("7,", 7.0),
        (" 2,25 ", 2.25),
        # A point decimal, bad digit groups and text are no decimal-comma numbers.
        ("12.50", None),
        ("1.23,4", None),
        ("1,2,3", None),
        ("abc", None),
        ("", None),
    ],
)
def test_decimal_comma_numbers(text: str, value: float | None, tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text(f'CustomerID;InvoiceDate;Amount\n1;2021-01-01;"{text}"\n', encoding="utf-8")
    tx = load_transactions(src, decimal=",")
    got = tx.table.select("amount").to_pandas()["amount"].tolist()
    assert got == [value] if value is not None else pd.isna(got[0])


def test_decimal_point_numbers_are_untouched_by_the_check(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text('CustomerID,InvoiceDate,Amount\n1,2021-01-01,"1,234"\n2,2021-01-02,5.5\n')
    # Half the values fail, not most: no refusal (the ledger counts the bad one).
    tx = load_transactions(src)
    assert tx.table.select("amount").to_pandas()["amount"].tolist()[1] == 5.5


def test_whitespace_file_rows_with_missing_cells_are_null(tmp_path: Path) -> None:
    src = tmp_path / "t.txt"
    src.write_text("00001 19970101  1  11.77\n00002 19970112\n")
    tx = load_transactions(
        src,
        delimiter="whitespace",
        columns={"customer": "column_1", "date": "column_2", "amount": "column_4"},
    )
    assert not tx.source.header
    df = tx.table.select("customer_id", "amount").to_pandas()
    assert df["customer_id"].tolist() == ["00001", "00002"]
    assert df["amount"].iloc[0] == 11.77 and pd.isna(df["amount"].iloc[1])


@pytest.mark.parametrize(
    ("first", "header"),
    [
        ("CustomerID,InvoiceDate,Amount", True),
        ("1,2021-01-01,12.5", False),
        ("17850,12/1/2010 8:26,3", False),
        ("C1,2021-01-01,12.5", True),  # text in a cell: read as names (--no-header says not)
    ],
)
def test_header_is_detected(first: str, header: bool, tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text(first + "\n2,2021-01-02,3\n")
    cols = ["customer", "date", "amount"]
    names = first.split(",") if header else ["column_1", "column_2", "column_3"]
    tx = load_transactions(src, columns=dict(zip(cols, names, strict=True)))
    assert tx.source.header is header
    assert tx.table.count().execute() == (1 if header else 2)
