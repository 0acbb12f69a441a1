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


def test_groceries_member_number_is_the_customer() -> None:
    cmap = detect_columns(["Member_number", "Date", "itemDescription", "Amount"])
    assert (cmap.customer, cmap.date, cmap.amount) == ("Member_number", "Date", "Amount")


@pytest.mark.parametrize(
    ("headers", "explicit", "hint"),
    [
        # 'Date' is the date and 'itemDescription' reads as a product: 'Kunde' is left.
        (["itemDescription", "Date", "Kunde", "Amount"], {}, "Kunde"),
        # A column worded for the role wins over the closest spelling.
        (["Date", "Shopper_code", "Price", "Qty"], {}, "Shopper_code"),
        # 'Date' is a date's name even when the user took another column for the date.
        (["Date", "Kunde", "Wert"], {"date": "Wert"}, "Kunde"),
    ],
)
def test_missing_role_hint_never_names_a_column_of_another_role(
    headers: list[str], explicit: dict[str, str], hint: str
) -> None:
    with pytest.raises(SchemaError, match=rf"Pass --customer-col '{hint}'\.$"):
        detect_columns(headers, explicit)


def test_missing_customer_hint_never_names_a_descriptive_column() -> None:
    # The Kaggle layout without its CustomerID: 'Country' is spelt like 'customer', but a
    # country never identifies one.
    headers = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice"]
    with pytest.raises(SchemaError, match=r"Pass --customer-col NAME\.$"):
        detect_columns([*headers, "Country"])
    with pytest.raises(SchemaError, match=r"Pass --customer-col 'Kundennummer'\.$"):
        detect_columns([*headers, "Country", "Kundennummer"])


def test_missing_role_hint_says_name_when_nothing_is_free() -> None:
    with pytest.raises(SchemaError, match=r"Pass --date-col NAME\.$"):
        detect_columns(["CustomerID", "Invoice", "Price", "Quantity"])


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
