from __future__ import annotations

import pytest

from custseg.errors import SchemaError
from custseg.schema import ColumnMap, detect_columns

UCI = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
UCI_II = [
    "Invoice",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "Price",
    "Customer ID",
    "Country",
]


def test_detect_columns_uci_layout() -> None:
    cmap = detect_columns(UCI)
    assert cmap == ColumnMap(
        customer="CustomerID",
        invoice="InvoiceNo",
        date="InvoiceDate",
        quantity="Quantity",
        price="UnitPrice",
        stock_code="StockCode",
    )
    assert cmap.value_mode == "quantity_price"


def test_detect_columns_online_retail_ii_layout() -> None:
    cmap = detect_columns(UCI_II)
    assert (cmap.customer, cmap.invoice, cmap.price) == ("Customer ID", "Invoice", "Price")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            ["customer_id", "order_id", "order_date", "qty", "unit_price"],
            ("customer_id", "order_id", "order_date"),
        ),
        (
            ["Client ID", "Transaction ID", "Date", "Amount"],
            ("Client ID", "Transaction ID", "Date"),
        ),
        (["user", "timestamp", "revenue"], ("user", None, "timestamp")),
    ],
)
def test_detect_columns_synonyms(headers: list[str], expected: tuple[str | None, ...]) -> None:
    cmap = detect_columns(headers)
    assert (cmap.customer, cmap.invoice, cmap.date) == expected


def test_detect_columns_amount_only_when_no_quantity_price() -> None:
    cmap = detect_columns(["customer", "date", "amount"])
    assert cmap.value_mode == "amount" and cmap.amount == "amount"
    both = detect_columns(["customer", "date", "quantity", "price", "amount"])
    assert both.value_mode == "quantity_price" and both.amount is None


def test_detect_columns_explicit_wins() -> None:
    cmap = detect_columns(
        ["Cust No", "When", "Total", "customer"],
        {"customer": "Cust No", "date": "When", "amount": "Total"},
    )
    assert (cmap.customer, cmap.date, cmap.amount) == ("Cust No", "When", "Total")


def test_detect_columns_missing_customer_suggests_flag() -> None:
    with pytest.raises(SchemaError, match=r"No customer column: found .*Pass --customer-col"):
        detect_columns(["Invoice", "Price", "Kunde", "Quantity", "Date"])


def test_detect_columns_unknown_explicit_column() -> None:
    with pytest.raises(
        SchemaError,
        match=r"'CustomerId' given with --customer-col is not in the input.*Did you mean 'CustomerID'",
    ):
        detect_columns(UCI, {"customer": "CustomerId"})


def test_detect_columns_two_roles_one_column() -> None:
    with pytest.raises(SchemaError, match="mapped to several roles"):
        detect_columns(UCI, {"customer": "CustomerID", "invoice": "CustomerID"})


def test_detect_columns_duplicated_header() -> None:
    with pytest.raises(SchemaError, match=r"Duplicated column name\(s\) \['Quantity'\]"):
        detect_columns([*UCI, "Quantity"])


def test_detect_columns_without_value_columns_is_data_without_money() -> None:
    # a grocery or app-event log: a customer and a date per row
    cmap = detect_columns(["Member_number", "Date", "itemDescription"])
    assert (cmap.customer, cmap.date) == ("Member_number", "Date")
    assert cmap.value_mode == "none" and not cmap.has_values
    assert detect_columns(["user_id", "event_time"]).used() == {
        "customer": "user_id",
        "date": "event_time",
    }


def test_detect_columns_half_a_value_needs_the_other_half_or_no_monetary() -> None:
    with pytest.raises(SchemaError, match=r"No price column: .*or --no-monetary to segment"):
        detect_columns(["customer", "date", "qty"])
    # --no-monetary: the unpaired column is not used; complete value columns still are
    assert detect_columns(["customer", "date", "qty"], monetary=False).quantity is None
    assert detect_columns(UCI, monetary=False).value_mode == "quantity_price"


def test_detect_columns_exclude_codes_needs_stock_code() -> None:
    with pytest.raises(SchemaError, match="--stock-code-col"):
        detect_columns(["customer", "date", "amount"], need_stock_code=True)
