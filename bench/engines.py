"""Time the RFM stage (load, clean, aggregate) on each engine, start-up costs apart.

    python bench/engines.py           # 10M rows: duckdb, spark-local, spark-standalone, postgres
    python bench/engines.py --rows 1M --engines duckdb,spark-local

PostgreSQL needs CUSTSEG_TEST_POSTGRES_URL (``.ci/pg-test-server start DIR`` prints one); its
rows are first loaded into a table (timed apart: a warehouse holds them already), then
aggregated where they are. The standalone cluster is the test suite's: a master and two
one-core workers on 127.0.0.1. Prints a Markdown table and writes bench/data/engines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from custseg import engine  # noqa: E402
from custseg.clean import mark_drops  # noqa: E402
from custseg.config import CleanConfig  # noqa: E402
from custseg.errors import CustsegWarning  # noqa: E402
from custseg.features import compute_rfm_and_ledger  # noqa: E402
from custseg.generate import generate_transactions  # noqa: E402
from custseg.load import CatalogTable, load_transactions  # noqa: E402


def _rows(text: str) -> int:
    text = text.upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def _rfm(source: Any, eng: Any) -> tuple[float, int]:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustsegWarning)
        tx = load_transactions(source, engine=eng)
        with eng.translate_errors(str(source)):
            rfm, _, _ = compute_rfm_and_ledger(mark_drops(tx.table, config=CleanConfig()))
    return time.perf_counter() - start, len(rfm)


def bench_duckdb(path: Path) -> dict[str, Any]:
    start = time.perf_counter()
    eng = engine.connect()
    started = time.perf_counter() - start
    seconds, customers = _rfm(path, eng)
    eng.close()
    return {"start_s": started, "rfm_s": seconds, "customers": customers}


def bench_spark(path: Path, mode: str) -> dict[str, Any]:
    from tests.engines import spark_engine

    start = time.perf_counter()
    with spark_engine(mode) as eng:
        started = time.perf_counter() - start
        first, customers = _rfm(path, eng)
        second, _ = _rfm(path, eng)  # the JVM warmed up
    return {"start_s": started, "rfm_s": second, "rfm_first_s": first, "customers": customers}


def bench_postgres(path: Path) -> dict[str, Any]:
    url = os.environ.get("CUSTSEG_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("set CUSTSEG_TEST_POSTGRES_URL (see .ci/pg-test-server)")
    start = time.perf_counter()
    eng = engine.connect(url)
    started = time.perf_counter() - start
    raw = eng.raw  # type: ignore[attr-defined]
    raw.execute("DROP TABLE IF EXISTS bench_sales")
    t0 = time.perf_counter()
    temp = eng.read_parquet([path]).get_name()
    raw.execute(f'CREATE TABLE bench_sales AS SELECT * FROM pg_temp."{temp}"')
    raw.execute("ANALYZE bench_sales")
    loaded = time.perf_counter() - t0
    seconds, customers = _rfm(CatalogTable("bench_sales"), eng)
    raw.execute("DROP TABLE bench_sales")
    eng.close()
    return {"start_s": started, "load_s": loaded, "rfm_s": seconds, "customers": customers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="10M")
    parser.add_argument("--engines", default="duckdb,spark-local,spark-standalone,postgres")
    args = parser.parse_args()
    rows = _rows(args.rows)
    data = ROOT / "bench" / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"tx_{args.rows}.parquet"
    if not path.exists():
        generate_transactions(path, rows=rows, seed=0)
    results: dict[str, Any] = {}
    for name in args.engines.split(","):
        if name == "duckdb":
            results[name] = bench_duckdb(path)
        elif name.startswith("spark-"):
            results[name] = bench_spark(path, name.split("-", 1)[1])
        elif name == "postgres":
            results[name] = bench_postgres(path)
        print(name, json.dumps(results[name]), flush=True)
    print(f"\n| engine ({args.rows} rows, Parquet) | start-up | load | RFM stage | customers |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        load = f"{r['load_s']:.1f} s" if "load_s" in r else "-"
        print(
            f"| {name} | {r['start_s']:.1f} s | {load} | {r['rfm_s']:.1f} s | {r['customers']:,} |"
        )
    (data / "engines.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
