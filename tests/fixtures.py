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

# Returns, by hand. As of 2021-01-10 (the day after f's purchase on Jan 9):
#   a: 1001 (2 x 10) + 1002 (30) = 50; C1003 (-1 x 10) twice (an exact copy) -> returned 20
#      (10 with --drop-duplicates), net 30 (40)
#   b: 1004 (25); C1005 (-1 x 25) -> returned 25, net 0 (kept with monetary 0)
#   c: 1006 (5); C1007 (-2 x 10, items bought before the data) -> returned 20, net -15 (0)
#   d: 1008 (3 x 4) = 12; C1009 quantity 'abc' and C1010 price 0 are not valued; C1011
#      (-1 x 4, Jan 20) -> returned 4, net 8 (with --until 2021-01-10: outside, net 12)
#   e: only a cancellation (C1012): not segmented, nothing netted
#   f: 1015 (2 x 9) = 18; C1014 records its return with a positive quantity (1 x 6) ->
#      returned 6, net 12
#   a guest's cancellation C1013 is a missing_customer row.
RETURNS_CSV = """\
InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID
1001,A,2,2021-01-01 10:00,10,a
1002,B,1,2021-01-05 10:00,30,a
C1003,A,-1,2021-01-06 10:00,10,a
C1003,A,-1,2021-01-06 10:00,10,a
1004,A,1,2021-01-03 10:00,25,b
C1005,A,-1,2021-01-04 10:00,25,b
1006,A,1,2021-01-02 10:00,5,c
C1007,B,-2,2021-01-07 10:00,10,c
1008,A,3,2021-01-08 10:00,4,d
C1009,A,abc,2021-01-08 11:00,4,d
C1010,A,-1,2021-01-08 12:00,0,d
C1011,A,-1,2021-01-20 10:00,4,d
C1012,A,-1,2021-01-03 10:00,8,e
C1013,A,-1,2021-01-03 10:00,8,
C1014,A,1,2021-01-09 12:00,6,f
1015,A,2,2021-01-09 10:00,9,f
"""
#: customer -> (recency, frequency, gross monetary, returned, net monetary) by default.
RETURNS_EXPECTED = {
    "a": (5, 2, 50.0, 20.0, 30.0),
    "b": (7, 1, 25.0, 25.0, 0.0),
    "c": (8, 1, 5.0, 20.0, 0.0),
    "d": (2, 1, 12.0, 4.0, 8.0),
    "f": (1, 1, 18.0, 6.0, 12.0),
}
