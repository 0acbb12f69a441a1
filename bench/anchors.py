"""Anchor timings for the RFM table: what the same work costs without custseg.

Each method computes the RFM table of REFERENCE.md section 3 from a transactions file in the
UCI Online Retail schema (Parquet or CSV):

- ``duckdb``: one hand-written DuckDB SQL query over ``read_parquet`` / ``read_csv`` (the 1.00x
  baseline; :func:`duckdb_sql_rfm` is reused by the custseg benchmark);
- ``pandas``: ``pd.read_parquet`` / ``pd.read_csv`` of the whole file, then a groupby;
- ``lifetimes``: the same pandas load and filter, then
  ``lifetimes.utils.summary_data_from_transaction_data``;
- ``pymc``: the same pandas load and filter, then ``pymc_marketing.clv.utils.rfm_summary``.

lifetimes and pymc-marketing aggregate by customer and *day*: their frequency counts purchase
days, not invoices (so it can be lower than ours), and their monetary value is a mean per day,
which is turned back into a sum here. Recency matches ours exactly.

Each run is a fresh subprocess, so peak RSS (the worker's own ``ru_maxrss``) and times are not
polluted by earlier runs. ``time`` is the worker's wall time from reading the file to the finished
table (imports excluded); ``proc`` is the whole subprocess, interpreter start and imports included.

Usage::

    python bench/anchors.py FILE [--repeat 3] [--only duckdb,pandas,lifetimes,pymc]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

METHODS = ("duckdb", "pandas", "lifetimes", "pymc")
RFM_COLUMNS = ["customer_id", "recency", "frequency", "monetary"]

__all__ = ["METHODS", "duckdb_sql_rfm", "lifetimes_rfm", "main", "pandas_rfm", "pymc_rfm"]


# --------------------------------------------------------------------------------------------
# the methods


def _is_csv(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith(".csv") or name.endswith(".csv.gz") or name.endswith(".txt")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def duckdb_sql_rfm(
    path: str | Path, *, encoding: str = "utf-8", threads: int | None = None
) -> pd.DataFrame:
    """RFM table of a transactions file with one hand-written DuckDB SQL query.

    Purchase lines: customer id present, invoice not starting with ``C``, quantity > 0 and unit
    price > 0. ``as_of`` is the date of the last purchase plus one day; recency is days from the
    customer's last purchase date to ``as_of``, frequency the distinct invoices, monetary the sum
    of quantity x unit price.

    Parameters
    ----------
    path : str or Path
        Parquet file (or glob), or CSV (``.csv``, ``.csv.gz``) in the Online Retail schema.
        ``InvoiceDate`` may be a timestamp, an ISO string or a ``12/1/2010 8:26`` string.
    encoding : str, default "utf-8"
        Encoding of a CSV file (``"latin-1"`` for the original Kaggle export).
    threads : int, optional
        DuckDB threads; default: all cores.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id, recency, frequency, monetary``, one row per customer, sorted by
        customer id.

    Examples
    --------
    >>> rfm = duckdb_sql_rfm("online_retail.parquet")  # doctest: +SKIP
    >>> len(rfm), round(rfm["recency"].mean(), 2)  # doctest: +SKIP
    (4338, 93.06)
    """
    import duckdb

    con = duckdb.connect()
    if threads is not None:
        con.sql(f"SET threads = {int(threads)}")
    location = _sql_string(str(path))
    if _is_csv(path):
        source = (
            f"read_csv({location}, header = true, encoding = {_sql_string(encoding)}, "
            "types = {'InvoiceNo': 'VARCHAR', 'StockCode': 'VARCHAR'})"
        )
    else:
        source = f"read_parquet({location})"
    # Only a schema lookup: which expression turns InvoiceDate into a timestamp.
    kind = con.sql(f"DESCRIBE SELECT InvoiceDate FROM {source}").fetchall()[0][1]
    if str(kind).upper().startswith(("TIMESTAMP", "DATE")):
        ts = "InvoiceDate"
    else:
        ts = (
            "coalesce(try_cast(InvoiceDate AS TIMESTAMP), "
            "try_strptime(InvoiceDate, '%m/%d/%Y %H:%M'))"
        )
    query = f"""
        WITH purchases AS (
            SELECT CustomerID AS customer_id,
                   InvoiceNo AS invoice,
                   {ts} AS ts,
                   Quantity * UnitPrice AS amount
            FROM {source}
            WHERE CustomerID IS NOT NULL
              AND NOT starts_with(CAST(InvoiceNo AS VARCHAR), 'C')
              AND Quantity > 0
              AND UnitPrice > 0
        ),
        per_customer AS (
            SELECT customer_id,
                   CAST(max(ts) AS DATE) AS last_day,
                   count(DISTINCT invoice) AS frequency,
                   sum(amount) AS monetary
            FROM purchases
            GROUP BY customer_id
        )
        SELECT customer_id,
               date_diff('day', last_day, (SELECT max(last_day) + 1 FROM per_customer))
                   AS recency,
               frequency,
               monetary
        FROM per_customer
        ORDER BY customer_id
    """
    result = con.sql(query).df()
    con.close()
    return result


def _pandas_purchase_lines(path: str | Path, encoding: str) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Whole file into pandas, purchase lines kept, line amounts and timestamps added."""
    if _is_csv(path):
        df = pd.read_csv(path, encoding=encoding, dtype={"InvoiceNo": str, "StockCode": str})
    else:
        df = pd.read_parquet(path)
    keep = (
        df["CustomerID"].notna()
        & ~df["InvoiceNo"].astype(str).str.startswith("C")
        & (df["Quantity"] > 0)
        & (df["UnitPrice"] > 0)
    )
    lines = df.loc[keep, ["CustomerID", "InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice"]]
    del df
    lines["InvoiceDate"] = pd.to_datetime(lines["InvoiceDate"])
    lines["amount"] = lines["Quantity"] * lines["UnitPrice"]
    as_of = lines["InvoiceDate"].max().normalize() + pd.Timedelta(days=1)
    return lines, as_of


def pandas_rfm(path: str | Path, *, encoding: str = "utf-8") -> pd.DataFrame:
    """RFM table with a straightforward pandas read and groupby (same columns as duckdb)."""
    lines, as_of = _pandas_purchase_lines(path, encoding)
    per_customer = lines.groupby("CustomerID").agg(
        last=("InvoiceDate", "max"),
        frequency=("InvoiceNo", "nunique"),
        monetary=("amount", "sum"),
    )
    recency = (as_of - per_customer["last"].dt.normalize()).dt.days
    out = pd.DataFrame(
        {
            "customer_id": per_customer.index.to_numpy(),
            "recency": recency.to_numpy(),
            "frequency": per_customer["frequency"].to_numpy(),
            "monetary": per_customer["monetary"].to_numpy(),
        }
    )
    return out


def lifetimes_rfm(path: str | Path, *, encoding: str = "utf-8") -> pd.DataFrame:
    """RFM table via ``lifetimes.utils.summary_data_from_transaction_data`` (frequency = days)."""
    from lifetimes.utils import summary_data_from_transaction_data

    lines, as_of = _pandas_purchase_lines(path, encoding)
    summary = summary_data_from_transaction_data(
        lines,
        "CustomerID",
        "InvoiceDate",
        monetary_value_col="amount",
        observation_period_end=as_of,
        freq="D",
        include_first_transaction=True,
    )
    # lifetimes: recency = last - first purchase, T = as_of - first purchase (in days).
    return pd.DataFrame(
        {
            "customer_id": summary.index.to_numpy(),
            "recency": (summary["T"] - summary["recency"]).to_numpy(),
            "frequency": summary["frequency"].to_numpy(),
            "monetary": (summary["monetary_value"] * summary["frequency"]).to_numpy(),
        }
    )


def pymc_rfm(path: str | Path, *, encoding: str = "utf-8") -> pd.DataFrame:
    """RFM table via ``pymc_marketing.clv.utils.rfm_summary`` (frequency = purchase days)."""
    from pymc_marketing.clv.utils import rfm_summary

    lines, as_of = _pandas_purchase_lines(path, encoding)
    summary = rfm_summary(
        lines,
        "CustomerID",
        "InvoiceDate",
        monetary_value_col="amount",
        observation_period_end=as_of,
        time_unit="D",
        include_first_transaction=True,
    )
    # With include_first_transaction, recency is already days since the last purchase.
    return pd.DataFrame(
        {
            "customer_id": summary["customer_id"].to_numpy(),
            "recency": summary["recency"].to_numpy(),
            "frequency": summary["frequency"].to_numpy(),
            "monetary": (summary["monetary_value"] * summary["frequency"]).to_numpy(),
        }
    )


_RUNNERS: dict[str, Callable[..., pd.DataFrame]] = {
    "duckdb": duckdb_sql_rfm,
    "pandas": pandas_rfm,
    "lifetimes": lifetimes_rfm,
    "pymc": pymc_rfm,
}
_IMPORTS = {
    "duckdb": "duckdb",
    "pandas": "pandas",
    "lifetimes": "lifetimes",
    "pymc": "pymc_marketing.clv.utils",
}


# --------------------------------------------------------------------------------------------
# one run in a subprocess


def _worker(method: str, path: str, encoding: str) -> None:
    """Run one method in this process and print one JSON line with time, memory and means."""
    import importlib
    import warnings

    warnings.simplefilter("ignore")  # library deprecation chatter must not fail a timing run
    start = time.perf_counter()
    importlib.import_module(_IMPORTS[method])
    imported = time.perf_counter()
    rfm = _RUNNERS[method](path, encoding=encoding)
    done = time.perf_counter()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "seconds": done - imported,
                "import_seconds": imported - start,
                "peak_mib": peak_kib / 1024,
                "customers": len(rfm),
                "recency": float(rfm["recency"].mean()),
                "frequency": float(rfm["frequency"].mean()),
                "monetary": float(rfm["monetary"].mean()),
            }
        )
    )


def _run_once(method: str, path: str, encoding: str, timeout: float) -> dict[str, Any]:
    """One subprocess run; the result dict, or ``{"error": ...}``."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        method,
        path,
        "--encoding",
        encoding,
    ]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:150]}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    return result


def _available(method: str) -> str | None:
    """None if the method's library imports, else why not."""
    import importlib.util

    module = _IMPORTS[method].split(".")[0]
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    return None


def _format_table(path: str, rows: list[dict[str, Any]], repeat: int) -> str:
    """A plain-text table of medians and ratios to the DuckDB SQL baseline."""
    base = next((r for r in rows if r["method"] == "duckdb" and "seconds" in r), None)
    header = (
        f"{'method':<10} {'time s':>8} {'x duckdb':>8} {'peak MiB':>9} {'x duckdb':>8} "
        f"{'proc s':>7} {'customers':>10} {'recency':>8} {'frequency':>9} {'monetary':>10}"
    )
    lines = [
        f"RFM anchors on {path} (median of {repeat} runs; peak RSS = median of per-run maxima)",
        header,
        "-" * len(header),
    ]
    for r in rows:
        if "seconds" not in r:
            lines.append(f"{r['method']:<10} {r.get('error', 'not run')}")
            continue
        secs, mem = float(r["seconds"]), float(r["peak_mib"])
        t_ratio = f"{secs / float(base['seconds']):.2f}x" if base else "-"
        m_ratio = f"{mem / float(base['peak_mib']):.2f}x" if base else "-"
        lines.append(
            f"{r['method']:<10} {secs:>8.2f} {t_ratio:>8} {mem:>9.0f} {m_ratio:>8} "
            f"{float(r['process_seconds']):>7.2f} {int(r['customers']):>10,} "
            f"{float(r['recency']):>8.2f} {float(r['frequency']):>9.3f} "
            f"{float(r['monetary']):>10.2f}"
        )
    lines.append("lifetimes/pymc count purchase days as frequency (not invoices).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("file", help="transactions file (Parquet, CSV or CSV.GZ)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method (default 3)")
    parser.add_argument(
        "--only", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}"
    )
    parser.add_argument("--encoding", default="utf-8", help="CSV encoding (default utf-8)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds before a run is abandoned (default 3600)",
    )
    parser.add_argument("--json", dest="json_out", help="also write the results to this JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        _worker(args.worker, args.file, args.encoding)
        return 0
    methods = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if not Path(args.file).exists():
        parser.error(f"no such file: {args.file}")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")

    rows: list[dict[str, Any]] = []
    for method in methods:
        missing = _available(method)
        if missing:
            rows.append({"method": method, "error": f"skipped: {missing}"})
            print(f"{method}: skipped ({missing})", file=sys.stderr, flush=True)
            continue
        runs = []
        for i in range(args.repeat):
            run = _run_once(method, args.file, args.encoding, args.timeout)
            print(f"{method} run {i + 1}/{args.repeat}: {run}", file=sys.stderr, flush=True)
            if "error" in run:
                runs = [run]
                break
            runs.append(run)
        if "error" in runs[0]:
            rows.append({"method": method, **runs[0]})
            continue
        summary: dict[str, Any] = {"method": method, "runs": runs}
        for key in ("seconds", "process_seconds", "peak_mib", "import_seconds"):
            summary[key] = statistics.median(float(r[key]) for r in runs)
        for key in ("customers", "recency", "frequency", "monetary"):
            summary[key] = runs[0][key]
        rows.append(summary)

    table = _format_table(args.file, rows, args.repeat)
    print(table)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"file": args.file, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
