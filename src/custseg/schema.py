"""Column roles, their canonical names, and detection of a data set's layout by header names.

Every stage after :mod:`custseg.load` sees only the canonical names defined here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from .errors import SchemaError

__all__ = [
    "AMOUNT",
    "CUSTOMER",
    "DATE",
    "INVOICE",
    "PRICE",
    "QUANTITY",
    "RFM_COLUMNS",
    "RF_COLUMNS",
    "ROLES",
    "STOCK_CODE",
    "ColumnMap",
    "detect_columns",
    "feature_columns",
]

# Canonical column names of the engine table that load_transactions returns.
CUSTOMER = "customer_id"
INVOICE = "invoice_id"
DATE = "date"
QUANTITY = "quantity"
PRICE = "price"
AMOUNT = "amount"
STOCK_CODE = "stock_code"

#: The per-customer features, in the order every table and array of them uses.
RFM_COLUMNS: tuple[str, str, str] = ("recency", "frequency", "monetary")
#: The features of data without money (no value column, or ``--no-monetary``).
RF_COLUMNS: tuple[str, str] = ("recency", "frequency")


def feature_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """The features a per-customer table holds: R, F and M, or R and F without monetary.

    Examples
    --------
    >>> feature_columns(["recency", "frequency", "returned"])
    ('recency', 'frequency')
    """
    return RFM_COLUMNS if "monetary" in columns else RF_COLUMNS


Role = Literal["customer", "invoice", "date", "quantity", "price", "amount", "stock_code"]
ROLES: tuple[Role, ...] = (
    "customer",
    "invoice",
    "date",
    "quantity",
    "price",
    "amount",
    "stock_code",
)
FLAGS: dict[Role, str] = {role: f"--{role.replace('_', '-')}-col" for role in ROLES}

# Synonyms compared after lower-casing and removing everything but letters and digits, so
# "Customer ID", "customer_id" and "CustomerID" are one name. Earlier entries win.
SYNONYMS: dict[Role, tuple[str, ...]] = {
    "customer": (
        "customerid",
        "customer",
        "cust",
        "custid",
        "customerno",
        "customernumber",
        "customercode",
        "custno",
        "clientid",
        "client",
        "clientno",
        "userid",
        "user",
        "buyerid",
        "buyer",
        "memberid",
        "membernumber",
        "memberno",
        "member",
        "accountid",
        "account",
        "shopperid",
        "contactid",
    ),
    "invoice": (
        "invoiceno",
        "invoice",
        "invoiceid",
        "invoicenumber",
        "orderid",
        "order",
        "orderno",
        "ordernumber",
        "transactionid",
        "transaction",
        "transactionno",
        "receiptid",
        "receipt",
        "receiptno",
        "basketid",
        "billno",
        "billid",
        "saleid",
        "ticketid",
    ),
    "date": (
        "invoicedate",
        "orderdate",
        "transactiondate",
        "purchasedate",
        "saledate",
        "date",
        "datetime",
        "timestamp",
        "orderdatetime",
        "createdat",
        "orderedat",
        "purchasedat",
        "eventtime",
        "eventdate",
        "eventtimestamp",
        "time",
        "day",
    ),
    "quantity": (
        "quantity",
        "qty",
        "quantityordered",
        "units",
        "unitssold",
        "numberofitems",
        "itemcount",
        "itemsquantity",
        "pieces",
    ),
    "price": (
        "unitprice",
        "price",
        "priceeach",
        "itemprice",
        "unitcost",
        "priceperunit",
        "unitprices",
        "sellingprice",
    ),
    "amount": (
        "amount",
        "revenue",
        "sales",
        "totalamount",
        "total",
        "linetotal",
        "totalprice",
        "salesamount",
        "value",
        "ordervalue",
        "spend",
        "netamount",
        "grossamount",
        "totalsales",
    ),
    "stock_code": (
        "stockcode",
        "sku",
        "productid",
        "productcode",
        "itemcode",
        "itemid",
        "product",
        "articleid",
        "article",
    ),
}


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


@dataclass(frozen=True)
class ColumnMap:
    """Which source column plays each role (``None``: the data has no such column).

    ``quantity`` and ``price`` give line values as their product; ``amount`` gives them
    directly; with none of the three, the data has no money (customers are segmented on
    recency and frequency). ``invoice`` is optional: without it each row is one order.
    """

    customer: str | None = None
    invoice: str | None = None
    date: str | None = None
    quantity: str | None = None
    price: str | None = None
    amount: str | None = None
    stock_code: str | None = None

    @property
    def value_mode(self) -> Literal["quantity_price", "amount", "none"]:
        """``"amount"`` when line values come from an amount column, ``"quantity_price"`` from
        quantity x price, ``"none"`` when the data has no value column."""
        if self.amount is not None:
            return "amount"
        return "quantity_price" if self.quantity is not None else "none"

    @property
    def has_values(self) -> bool:
        """Whether lines have a value (quantity x price or amount): monetary can be computed."""
        return self.value_mode != "none"

    def used(self) -> dict[str, str]:
        """Role -> source column, for the roles that are mapped."""
        return {role: col for role, col in asdict(self).items() if col is not None}


def detect_columns(
    headers: Sequence[str],
    explicit: Mapping[str, str | None] | None = None,
    *,
    need_stock_code: bool = False,
    monetary: bool = True,
) -> ColumnMap:
    """Map roles to columns: explicit choices first, then known names.

    Parameters
    ----------
    headers : sequence of str
        The column names of the input.
    explicit : mapping, optional
        Role -> column name given by the user (``--customer-col`` ...); these always win.
    need_stock_code : bool
        Require a stock code column (``--exclude-codes`` needs one).
    monetary : bool
        False (``--no-monetary``): no value is computed, so quantity without price (or the
        reverse) is no error; the unpaired column is left unmapped. Complete value columns
        stay mapped: their rules still decide which rows are purchase lines.

    Returns
    -------
    ColumnMap

    Raises
    ------
    SchemaError
        If an explicit column does not exist, two roles share a column, a required role
        (customer, date) has no column, or only one of quantity and price has one.

    Notes
    -----
    Data with neither quantity, price nor amount (a grocery or app-event log: a customer and
    a date per row) is accepted: its customers are segmented on recency and frequency.

    Examples
    --------
    >>> detect_columns(["InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]).price
    'UnitPrice'
    """
    headers = list(headers)
    given: dict[str, str] = {k: v for k, v in (explicit or {}).items() if v is not None}
    _check_header(headers, given)
    chosen = dict(given)
    _add_known_names(chosen, headers)
    # Line values come from quantity x price when both exist, else from an amount column;
    # the columns of the other mode are then not used (unless the user named them).
    if "amount" in chosen:
        for role in ("quantity", "price"):
            if role not in given:
                chosen.pop(role, None)
    shared = {c for c in chosen.values() if list(chosen.values()).count(c) > 1}
    if shared:
        roles = sorted(r for r, c in chosen.items() if c in shared)
        raise SchemaError(
            f"Column {sorted(shared)[0]!r} is mapped to several roles {roles}. "
            "Give each role its own column with the --*-col flags."
        )
    if not monetary and "amount" not in chosen and len({"quantity", "price"} & set(chosen)) == 1:
        chosen.pop("quantity", None)
        chosen.pop("price", None)
    cmap = ColumnMap(**chosen)
    _require(cmap, headers, need_stock_code=need_stock_code)
    return cmap


def _check_header(headers: list[str], explicit: Mapping[str, str]) -> None:
    """Refuse unknown roles, repeated header names and explicit columns that do not exist."""
    unknown_roles = sorted(set(explicit) - set(ROLES))
    if unknown_roles:
        raise SchemaError(f"Unknown column role(s) {unknown_roles}; roles are {list(ROLES)}.")
    dupes = sorted({h for h in headers if headers.count(h) > 1})
    if dupes:
        raise SchemaError(
            f"Duplicated column name(s) {dupes} in the header. Rename them so each is unique."
        )
    for role, col in explicit.items():
        if col not in headers:
            close = difflib.get_close_matches(col, headers, n=3, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise SchemaError(
                f"Column {col!r} given with {FLAGS[role]} is not in the input; "  # type: ignore[index]
                f"found {headers}.{hint}"
            )


def _add_known_names(chosen: dict[str, str], headers: list[str]) -> None:
    """Fill the roles not chosen yet from the synonyms, never reusing a taken column."""
    taken = set(chosen.values())
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(_norm(h), h)
    for role in ROLES:
        if role in chosen or (role == "amount" and {"quantity", "price"} <= set(chosen)):
            continue
        for syn in SYNONYMS[role]:
            found = by_norm.get(syn)
            if found is not None and found not in taken:
                chosen[role] = found
                taken.add(found)
                break


# Words that mark a column as a candidate for a role in a "did you mean" hint.
_HINT_WORDS: dict[Role, tuple[str, ...]] = {
    "customer": ("cust", "client", "user", "buyer", "member", "account", "shopper", "contact"),
    "invoice": ("invoice", "order", "transaction", "receipt", "basket", "bill", "ticket"),
    "date": ("date", "time", "day", "created", "ordered", "purchased"),
    "quantity": ("quantity", "qty", "units", "count", "pieces"),
    "price": ("price", "cost"),
    "amount": ("amount", "revenue", "sales", "total", "value", "spend"),
    "stock_code": ("stock", "sku", "product", "item", "article"),
}


# Words of columns that describe a customer or a line but never identify one: never suggested
# for the customer or the invoice (a 'Country' column is not the customer id).
_NEVER_IDS: tuple[str, ...] = (
    "country", "city", "region", "state", "province", "zip", "postcode", "currency",
    "description", "category", "status", "channel", "gender", "comment", "note",
)  # fmt: skip


def _missing(role: Role, headers: list[str], taken: set[str]) -> SchemaError:
    """No column for ``role``; the hint suggests only a column no other role uses.

    A column is suggested when its name holds a word of the role (``Member_number`` for the
    customer); otherwise the closest name, among the columns that neither play nor are named
    like another role (a ``Date`` column is never suggested as the customer).
    """
    free = [h for h in headers if h not in taken and not _named_for_other_role(h, role)]
    if role in ("customer", "invoice"):
        free = [h for h in free if not any(w in _norm(h) for w in _NEVER_IDS)]
    guesses = [h for h in free if any(w in _norm(h) for w in _HINT_WORDS[role])]
    # Columns worded like another role (itemDescription: a product) are guessed last.
    plain = [h for h in free if not _worded_for_other_role(h, role)]
    for pool in (plain, free):
        guesses = guesses or difflib.get_close_matches(role.replace("_", " "), pool, 3, 0.3)
        by_norm = {_norm(h): h for h in pool}
        close = difflib.get_close_matches(SYNONYMS[role][0], list(by_norm), n=1, cutoff=0.3)
        guesses = guesses or [by_norm[g] for g in close]
    hint = f"'{guesses[0]}'" if guesses else "NAME"
    return SchemaError(
        f"No {role.replace('_', ' ')} column: found {headers}. Pass {FLAGS[role]} {hint}."
    )


def _named_for_other_role(header: str, role: Role) -> bool:
    """Whether the header is a known name of another role (``Date`` for the date)."""
    norm = _norm(header)
    return any(norm in SYNONYMS[other] for other in ROLES if other != role)


def _worded_for_other_role(header: str, role: Role) -> bool:
    """Whether the header holds a word of another role (``itemDescription``: a product)."""
    norm = _norm(header)
    return any(w in norm for other in ROLES if other != role for w in _HINT_WORDS[other])


def _require(cmap: ColumnMap, headers: list[str], *, need_stock_code: bool) -> None:
    taken = set(cmap.used().values())
    if cmap.customer is None:
        raise _missing("customer", headers, taken)
    if cmap.date is None:
        raise _missing("date", headers, taken)
    if cmap.amount is None and (cmap.quantity is None) != (cmap.price is None):
        # A line value needs both; with neither, the data has no money (recency, frequency).
        role: Role = "quantity" if cmap.quantity is None else "price"
        err = _missing(role, headers, taken)
        raise SchemaError(
            f"{str(err).rstrip('.')}, or --no-monetary to segment on recency and frequency."
        )
    if need_stock_code and cmap.stock_code is None:
        raise SchemaError(
            f"--exclude-codes needs a stock code column: found {headers}. "
            "Pass --stock-code-col NAME."
        )
