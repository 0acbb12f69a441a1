"""Tests of the synthetic transaction generator (custseg.generate)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from custseg.errors import ConfigError
from custseg.generate import SCHEMA, generate_transactions

STRUCTURE_ROWS = 200_000


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200k-row Parquet log written in several chunks."""
    path = tmp_path_factory.mktemp("gen") / "tx.parquet"
    return generate_transactions(path, rows=STRUCTURE_ROWS, seed=7, chunk_rows=60_000)


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    rows = con.sql(sql).fetchall()
    assert len(rows) == 1
    return rows[0]


def test_generate_transactions_same_seed_identical_bytes(tmp_path: Path) -> None:
    for name in ("a.parquet", "a.csv", "a.csv.gz"):
        first = generate_transactions(tmp_path / "1" / name, rows=5_000, seed=3, chunk_rows=2_000)
        second = generate_transactions(tmp_path / "2" / name, rows=5_000, seed=3, chunk_rows=2_000)
        assert first.read_bytes() == second.read_bytes(), name


def test_generate_transactions_other_seed_differs(tmp_path: Path) -> None:
    a = generate_transactions(tmp_path / "a.parquet", rows=5_000, seed=1)
    b = generate_transactions(tmp_path / "b.parquet", rows=5_000, seed=2)
    assert a.read_bytes() != b.read_bytes()


@pytest.mark.parametrize(("rows", "chunk_rows"), [(1, 1_000), (7, 3), (12_345, 1_000)])
def test_generate_transactions_exact_row_count(tmp_path: Path, rows: int, chunk_rows: int) -> None:
    path = generate_transactions(tmp_path / "t.parquet", rows=rows, chunk_rows=chunk_rows)
    assert pq.ParquetFile(path).metadata.num_rows == rows


def test_generate_transactions_schema(sample: Path) -> None:
    assert pq.read_schema(sample).remove_metadata().equals(SCHEMA)
    table = pq.read_table(sample)
    assert table.schema.remove_metadata().equals(SCHEMA)
    assert table.column("InvoiceNo").null_count == 0
    assert table.column("Quantity").null_count == 0
    assert table.column("InvoiceDate").null_count == 0


def test_generate_transactions_returns_path_and_reports_progress(tmp_path: Path) -> None:
    seen: list[int] = []
    out = generate_transactions(
        str(tmp_path / "sub" / "t.parquet"), rows=2_500, chunk_rows=1_000, progress=seen.append
    )
    assert out == tmp_path / "sub" / "t.parquet"
    assert seen == [1_000, 2_000, 2_500]
    assert [p.name for p in out.parent.iterdir()] == ["t.parquet"]  # no temp file left


def test_generate_transactions_structure(sample: Path) -> None:
    con = duckdb.connect()
    src = f"read_parquet('{sample}')"
    guest_share, zero_share, lo, hi = _one(
        con,
        f"select avg((CustomerID is null)::int), avg((UnitPrice = 0)::int), "
        f"min(InvoiceDate), max(InvoiceDate) from {src}",
    )
    assert 0.18 <= guest_share <= 0.28
    assert 0.001 <= zero_share <= 0.01
    assert str(lo.date()) >= "2010-12-01" and str(hi.date()) <= "2011-12-09"
    assert (hi - lo).days > 360

    n_inv, cancel_share, lines = _one(
        con,
        f"select count(*), avg(starts_with(InvoiceNo, 'C')::int), avg(n) from "
        f"(select InvoiceNo, count(*) n from {src} group by 1)",
    )
    assert 0.01 <= cancel_share <= 0.03
    assert 15 <= lines <= 30
    assert n_inv > 5_000

    # Cancellations: negative quantities, a customer, and the same customer bought earlier.
    bad = _one(
        con,
        f"select count(*) from {src} where starts_with(InvoiceNo, 'C') "
        f"and (Quantity >= 0 or CustomerID is null)",
    )[0]
    assert bad == 0
    orphans = _one(
        con,
        f"""select count(*) from (select distinct CustomerID, InvoiceDate from {src}
            where starts_with(InvoiceNo, 'C')) c
            where not exists (select 1 from {src} p where p.CustomerID = c.CustomerID
                              and not starts_with(p.InvoiceNo, 'C')
                              and p.InvoiceDate <= c.InvoiceDate)""",
    )[0]
    assert orphans == 0

    # Pareto-ish frequency: the top 1% of customers hold a large share of invoices, while
    # most customers have only a few.
    top1, median_f, max_f, n_customers = _one(
        con,
        f"""with f as (select CustomerID, count(distinct InvoiceNo) f from {src}
                       where CustomerID is not null and not starts_with(InvoiceNo, 'C')
                       group by 1),
            o as (select f, row_number() over (order by f desc) rn, count(*) over () n from f)
            select sum(f) filter (where rn <= n * 0.01) / sum(f), median(f), max(f), max(n)
            from o""",
    )
    assert top1 >= 0.08
    assert median_f <= 3
    assert max_f >= 50
    assert 0.8 * (STRUCTURE_ROWS // 100) <= n_customers <= STRUCTURE_ROWS // 100

    # Non-product codes and dates sorted with invoice numbers.
    codes = {r[0] for r in con.sql(f"select distinct StockCode from {src}").fetchall()}
    assert {"POST", "DOT", "M"} <= codes
    dates = pq.read_table(sample, columns=["InvoiceDate"]).column(0).to_numpy()
    assert np.all(np.diff(dates) >= np.timedelta64(0))
    saturdays = _one(con, f"select count(*) from {src} where dayofweek(InvoiceDate) = 6")[0]
    assert saturdays == 0


def test_generate_transactions_csv_and_parquet_read_by_duckdb(tmp_path: Path) -> None:
    paths = [
        generate_transactions(tmp_path / name, rows=3_000, seed=5, chunk_rows=1_000)
        for name in ("t.parquet", "t.csv", "t.csv.gz")
    ]
    con = duckdb.connect()
    stats = [
        _one(
            con,
            f"select count(*), count(CustomerID), count(distinct InvoiceNo), "
            f"sum(Quantity), round(sum(UnitPrice), 2), max(InvoiceDate)::varchar from '{p}'",
        )
        for p in paths
    ]
    assert stats[0] == stats[1] == stats[2]
    assert stats[0][0] == 3_000
    header = paths[1].read_text().splitlines()[0]
    assert header == ",".join(SCHEMA.names)


def test_generate_transactions_fmt_overrides_suffix(tmp_path: Path) -> None:
    path = generate_transactions(tmp_path / "t.dat", rows=100, fmt="csv")
    assert path.read_text().startswith("InvoiceNo,")
    assert isinstance(
        pq.read_table(generate_transactions(tmp_path / "t.bin", rows=100, fmt="parquet")), pa.Table
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rows": 0}, "rows must be an integer >= 1"),
        ({"rows": 10.5}, "rows must be an integer"),
        ({"rows": 10, "customers": 0}, "customers must be"),
        ({"rows": 10, "seed": -1}, "seed must be"),
        ({"rows": 10, "chunk_rows": 0}, "chunk_rows must be"),
        ({"rows": 10, "fmt": "json"}, "Unknown format 'json'"),
    ],
)
def test_generate_transactions_bad_args_raise(
    tmp_path: Path, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        generate_transactions(tmp_path / "t.parquet", **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_generate_transactions_unknown_suffix_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Cannot tell the format of 't\.json'"):
        generate_transactions(tmp_path / "t.json", rows=10)


def test_generate_transactions_failure_leaves_no_file(tmp_path: Path) -> None:
    def boom(done: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        generate_transactions(tmp_path / "t.parquet", rows=3_000, chunk_rows=1_000, progress=boom)
    assert list(tmp_path.iterdir()) == []


def test_generate_command_writes_the_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from custseg.cli import app

    out = tmp_path / "tx.csv"
    result = CliRunner().invoke(
        app, ["generate", "--rows", "3000", "--customers", "50", "--seed", "5", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 3,000 rows" in result.output
    expected = generate_transactions(tmp_path / "api.csv", rows=3_000, customers=50, seed=5)
    assert out.read_bytes() == expected.read_bytes()


def test_generate_command_bad_rows_is_an_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from custseg.cli import app

    result = CliRunner().invoke(
        app, ["generate", "--rows", "0", "--out", str(tmp_path / "x.parquet")]
    )
    assert result.exit_code == 1
    assert "error:" in result.output and not (tmp_path / "x.parquet").exists()
