"""Shared test data: a small hand-computed transaction table and the real Online Retail files.

Tests import these names directly (``from fixtures import TINY_CSV``); conftest.py turns them
into pytest fixtures.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "online_retail"
RETAIL_PARQUET = SHARED / "online_retail.parquet"
RETAIL_CSV = SHARED / "data.csv.gz"

# 13 rows, each a case of the contract. Expected, as of 2021-02-01 (the day after the last
# purchase, 2021-01-31):
#   C1: invoices 1001 (10 + 3.5) and 1002 (5) -> last 2021-01-10, recency 22, F 2, M 18.5
#   C2: invoices 1004 (20) and 1005 (POST 15) -> last 2021-01-20, recency 12, F 2, M 35
#   C5: invoice 1009 twice (an exact duplicate, 9 each) -> recency 1, F 1, M 18 (9 if deduped)
#   C3 zero price, C4 negative quantity, C6 bad date: seen, without a purchase line.
TINY_CSV = """\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
1001,A,Thing,2,2021-01-01 10:00,5.00,C1,UK
1001,B,Other,1,2021-01-01 10:00,3.50,C1,UK
1002,A,Thing,1,2021-01-10 09:00,5.00,C1,UK
C1003,A,Thing,-1,2021-01-11 09:00,5.00,C1,UK
1004,A,Thing,10,2021-01-05 12:00,2.00,C2,FR
1005,POST,Postage,1,2021-01-20 08:00,15.00,C2,FR
1006,A,Thing,3,2021-01-15 11:00,0,C3,DE
1007,A,Thing,3,2021-01-16 11:00,4.00,,UK
1008,A,Thing,-2,2021-01-17 11:00,4.00,C4,UK
1009,B,Other,4,2021-01-31 23:59,2.25,C5,UK
1009,B,Other,4,2021-01-31 23:59,2.25,C5,UK
1010,A,Thing,1,notadate,5.00,C6,UK
1011,A,Thing,abc,2021-01-12 10:00,5.00,C1,UK
"""

TINY_EXPECTED = {
    "C1": (22, 2, 18.5),
    "C2": (12, 2, 35.0),
    "C5": (1, 1, 18.0),
}
TINY_DROPS = {
    "missing_customer": 1,
    "cancellation": 1,
    "invalid_number": 1,
    "non_positive_quantity": 1,
    "non_positive_price": 1,
    "unparseable_date": 1,
}
