"""Spark (local and a standalone cluster) and PostgreSQL give DuckDB's results, byte for byte.

Each engine starts once per test session (see tests/engines.py); outside CI a missing engine
skips with the reason, under CI it fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from custseg import engine
from custseg.clean import DROP_REASON, mark_drops
from custseg.cli import app
from custseg.config import CleanConfig, ClusterConfig, RunConfig
from custseg.engine import dates
from custseg.errors import ConfigError, CustsegWarning, EmptyDataError, InputError
from custseg.features import compute_rfm_and_ledger
from custseg.load import SOURCE_PREFIX, CatalogTable, load_transactions
from custseg.output import write_outputs
from custseg.pipeline import run
from engines import postgres_engine, spark_engine
from fixtures import TINY_CSV, TINY_DROPS, TINY_EXPECTED
from test_properties import TEXT_DATE_FORMAT, _key, _missing, clean_configs, tables

runner = CliRunner()
ENGINES = ["spark-local", "spark-standalone", "postgres"]
#: For tests of Spark's own input forms: the same session-wide engines, Spark's only.
on_spark = pytest.mark.parametrize("other", ENGINES[:2], indirect=True)


@pytest.fixture(scope="session", params=ENGINES)
def other(request: pytest.FixtureRequest) -> Any:
    """Each engine in turn (pytest finishes one before it starts the next)."""
    if request.param == "postgres":
        with postgres_engine() as eng:
            yield eng
    else:
        with spark_engine(request.param.split("-")[1]) as eng:
            yield eng


@pytest.fixture(scope="session")
def duck() -> Any:
    return engine.connect(threads=1)


def _outputs(result: Any, out: Path) -> dict[str, bytes]:
    out.mkdir()
    write_outputs(result, out)
    return {n: (out / n).read_bytes() for n in ("segments.csv", "summary.json", "model.json")}


def _quiet_run(source: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustsegWarning)
        return run(source, **kw)


# --- identity on the real data ---------------------------------------------------------------


@pytest.mark.parametrize("which", ["parquet", "csv"])
def test_engine_gives_duckdbs_bytes_on_online_retail(
    other: Any, duck: Any, which: str, retail_parquet: Path, retail_csv: Path, tmp_path: Path
) -> None:
    path = retail_parquet if which == "parquet" else retail_csv
    expected = _outputs(_quiet_run(path, engine=duck), tmp_path / "duckdb")
    result = _quiet_run(path, engine=other)
    assert len(result.customers) == 4_338 and result.as_of == dt.date(2011, 12, 10)
    assert _outputs(result, tmp_path / "other") == expected  # segments.csv, summary, model


def test_score_on_the_engine_reproduces_the_run(
    other: Any, duck: Any, retail_parquet: Path, tmp_path: Path
) -> None:
    """custseg score with a DuckDB run's model, the new rows read and aggregated elsewhere."""
    from custseg.scoring import score

    fitted = _outputs(_quiet_run(retail_parquet, engine=duck), tmp_path / "fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustsegWarning)
        scored = score(tmp_path / "fit" / "model.json", retail_parquet, engine=other)
    assert _outputs(scored, tmp_path / "scored")["segments.csv"] == fitted["segments.csv"]


def test_postgres_tables_give_duckdbs_segments(
    duck: Any, retail_parquet: Path, retail_csv: Path, tmp_path: Path
) -> None:
    """The rows as a database holds them: typed (from Parquet) and all text (the Kaggle CSV)."""
    with postgres_engine() as pg:
        from engines import load_online_retail

        if not (pg.has_table("online_retail") and pg.has_table("online_retail_text")):
            load_online_retail(os.environ["CUSTSEG_TEST_POSTGRES_URL"], retail_parquet, retail_csv)
        for table, path in (("online_retail", retail_parquet), ("online_retail_text", retail_csv)):
            expected = _quiet_run(path, engine=duck)
            got = _quiet_run(CatalogTable(table), engine=pg)
            assert got.source.format == "table" and table in got.source.name
            assert got.ledger == expected.ledger
            assert got.date_format == expected.date_format
            a = _outputs(expected, tmp_path / f"d-{table}")["segments.csv"]
            assert _outputs(got, tmp_path / f"p-{table}")["segments.csv"] == a


def test_engine_hand_computed_tiny_file(other: Any, tiny_csv: Path) -> None:
    tx = load_transactions(tiny_csv, engine=other)
    rfm, ledger, as_of = compute_rfm_and_ledger(mark_drops(tx.table, config=CleanConfig()))
    assert as_of == dt.date(2021, 2, 1)
    got = rfm[["recency", "frequency", "monetary"]]
    assert {c: tuple(r) for c, r in zip(got.index, got.itertuples(index=False), strict=True)} == {
        k: v for k, v in TINY_EXPECTED.items()
    }
    assert rfm["returned"].to_dict() == {"C1": 5.0, "C2": 0.0, "C5": 0.0}
    assert {r: n for r, n in ledger.rows_dropped.items() if n} == TINY_DROPS


def test_engine_reads_awkward_text_as_duckdb(other: Any, duck: Any, tmp_path: Path) -> None:
    """Whitespace-aligned columns, no header row, decimal commas: the same rows as DuckDB."""
    cdnow = Path(__file__).parent / "data" / "cdnow_sample.txt"
    european = Path(__file__).parent / "data" / "european_sample.csv"
    headerless = tmp_path / "t.csv"
    headerless.write_text("C1,A1,2021-01-01,1,2\nC2,A2,2021-01-05,2,3\n")
    cases: list[tuple[Path, dict[str, Any]]] = [
        (
            cdnow,
            {
                "delimiter": "whitespace",
                "columns": {"customer": "column_1", "date": "column_2", "amount": "column_4"},
            },
        ),
        (european, {"decimal": ","}),
        (
            headerless,
            {
                "header": False,
                "columns": {
                    "customer": "column_1",
                    "date": "column_3",
                    "quantity": "column_4",
                    "price": "column_5",
                },
            },
        ),
    ]
    for path, kw in cases:
        got, want = (
            compute_rfm_and_ledger(
                mark_drops(load_transactions(path, engine=eng, **kw).table, config=CleanConfig())
            )[0]
            for eng in (other, duck)
        )
        pd.testing.assert_frame_equal(got, want)


# --- identity on every kind of dirty row -------------------------------------------------------


def _reasons(marked: Any) -> Counter[tuple[Any, ...]]:
    src = [c for c in marked.columns if c.startswith(SOURCE_PREFIX)]
    got = marked.select(*src, DROP_REASON).to_pandas()
    return Counter(
        (_key(r[:-1]), None if _missing(r[-1]) else r[-1])
        for r in got.itertuples(index=False, name=None)
    )


def _compute(df: pd.DataFrame, lay: Any, config: CleanConfig, eng: Any) -> tuple[Any, ...]:
    tx = load_transactions(df, date_format=TEXT_DATE_FORMAT if lay.text_dates else None, engine=eng)
    marked = mark_drops(tx.table, config=config)
    try:
        rfm, ledger, as_of = compute_rfm_and_ledger(
            marked, as_of=config.as_of, **config.aggregation()
        )
    except EmptyDataError:
        return _reasons(marked), None, None, None
    return _reasons(marked), rfm, ledger, as_of


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_engine_matches_duckdb_on_dirty_rows(other: Any, duck: Any, data: st.DataObject) -> None:
    """The property tests' tables (blank and float ids, text numbers, bad dates, NaN, infinities,
    cancellations, duplicates, windows, excluded codes) give DuckDB's reasons, RFM and ledger."""
    df, lay = data.draw(tables(max_rows=30))
    config = data.draw(clean_configs(stock_code=lay.stock_code))
    want = _compute(df, lay, config, duck)
    got = _compute(df, lay, config, other)
    assert got[0] == want[0]  # every row's drop reason
    if want[1] is None:
        assert got[1] is None
        return
    pd.testing.assert_frame_equal(got[1], want[1], check_exact=True)
    assert got[2:] == want[2:]


@pytest.mark.parametrize(
    ("fmt", "values"),
    [
        ("%m/%d/%Y %H:%M", ["12/1/2010 8:26", "12/01/2010 08:26", "1/1/2010 8:6", "12/1/2010  8:26",
                            "12/1/2010 8:26:00", "12/1/10 8:26", "13/1/2010 8:26", "2/30/2010 8:26",
                            "2/29/2012 8:26", "2/29/2011 8:26", "12/1/2010 24:00", "12/1/2010 8:60",
                            "012/1/2010 8:26", "12/1/02010 8:26", "+1/1/2010 8:26", "12/1/2010T8:26",
                            "0/1/2010 8:26", "12/0/2010 8:26", "12/1/20108:26", "2/29/1900 1:00",
                            "2/29/2000 1:00"]),
        ("%Y-%m-%d %H:%M:%S", ["2020-02-30 10:00:00", "2020-01-05", "2020-1-5 8:0:0",
                               "2020-01-05 08:00:00.5", "2020-01-05 08:00:60", "2020-12-31 23:59:59"]),
        ("%d/%m/%y", ["13/01/21", "13/01/69", "13/01/68", "13/1/5", "13/01/2021", "29/02/00"]),
        ("%Y%m%d", ["20210131", "2021131", "202101310", "20211301", "20200229", "20210229"]),
        ("%Y%m%d%H%M%S", ["20210131101112", "2021013110111"]),
        ("%d.%m.%Y", ["1.2.2021", "01.02.2021", "31.04.2021"]),
        (None, ["2020-01-05", "2020-01-05 08:00", "2020-01-05 8:00", "2020-01-05T08:00:00Z",
                "2020-01-05 08:00:00+02:00", "2020-01-05 08:00:00.123456", "2020-01-05 08:00:00.1234567",
                "2020-1-5", "2020", "2020-01-05 08", "2020-02-30", "20200105", "2020-01-05T08:00",
                "2020-01-05 08:00:00 UTC", "2020-01-05 08:00:00."]),
    ],
    ids=["us", "iso-format", "two-digit-year", "compact", "compact-time", "dotted", "iso"],
)  # fmt: skip
def test_engine_parses_dates_as_duckdb(
    other: Any, duck: Any, fmt: str | None, values: list[str]
) -> None:
    df = pd.DataFrame({"v": values})

    def parsed(eng: Any) -> list[Any]:
        # Fields, not timestamps: year 10 is a date, but not one pandas can hold.
        t = eng.register_arrow(df, "dates")
        ts = type(eng).parse_timestamp(t.v, fmt)
        out = t.select(t.v, text=ts.cast("string")).to_pyarrow().to_pylist()
        return sorted((row["v"], row["text"]) for row in out)

    assert parsed(other) == parsed(duck)


#: Halves, the doubles either side of one, and values past 2**52 (where ``x + 0.5`` is inexact).
ROUNDING_VALUES = [0.5, 1.5, 2.5, 2.4999999999999996, 0.49999999999999994, 12345678.5,
                   4503599627370495.5, 2.0**53 + 2, 1e15 + 0.5, 7.0]  # fmt: skip


def test_engine_rounds_money_as_duckdb_and_as_the_contract(other: Any, duck: Any) -> None:
    """Micro-units round halves away from zero, the exact double (not its decimal print)."""
    from decimal import ROUND_HALF_UP, Decimal

    df = pd.DataFrame({"v": ROUNDING_VALUES})

    def rounded(eng: Any) -> list[int]:
        t = eng.register_arrow(df, "rounding")
        r = type(eng).round_half_away(t.v).cast("int64")
        out = t.select(t.v, r=r).to_pyarrow().to_pylist()
        return [row["r"] for row in sorted(out, key=lambda row: row["v"])]

    expected = [int(Decimal(v).quantize(Decimal(1), ROUND_HALF_UP)) for v in sorted(df.v)]
    assert rounded(duck) == expected
    assert rounded(other) == expected


def test_unsupported_date_directive_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"uses %b, which this engine cannot parse.*--engine duckdb"
    ):
        dates.compile_strptime("%d %b %Y")


# --- Spark input forms -------------------------------------------------------------------------


@on_spark
def test_spark_reads_folders_globs_and_its_own_tables(
    other: Any, duck: Any, tmp_path: Path
) -> None:
    lines = TINY_CSV.splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    order = [6, 0, 4, 3, 5, 1, 2, 7]  # the second file has its columns in another order
    (tmp_path / "a.csv").write_text(TINY_CSV)
    second = [",".join(r[i] for i in order) for r in [header, *rows]]
    (tmp_path / "b.csv").write_text("\n".join(second) + "\n")
    for source in (tmp_path, str(tmp_path / "*.csv")):
        got = load_transactions(source, engine=other).table.count().to_pyarrow().as_py()
        assert got == 26
    rfm_spark = compute_rfm_and_ledger(
        mark_drops(load_transactions(tmp_path, engine=other).table, config=CleanConfig())
    )
    rfm_duck = compute_rfm_and_ledger(
        mark_drops(load_transactions(tmp_path, engine=duck).table, config=CleanConfig())
    )
    pd.testing.assert_frame_equal(rfm_spark[0], rfm_duck[0], check_exact=True)
    # a table the session knows, by name
    other.session.read.csv(str(tmp_path / "a.csv"), header=True).createOrReplaceTempView(
        "custseg_test_sales"
    )
    try:
        tx = load_transactions("custseg_test_sales", engine=other)
        assert tx.source.format == "table"
        assert tx.table.count().to_pyarrow().as_py() == 13
    finally:
        other.session.catalog.dropTempView("custseg_test_sales")


@on_spark
def test_spark_views_are_dropped_on_close(other: Any, tiny_csv: Path) -> None:
    import ibis

    from custseg.engine.spark import SparkEngine

    before = {t.name for t in other.session.catalog.listTables()}
    with SparkEngine(ibis.pyspark.connect(other.session), owned=False) as eng:
        load_transactions(tiny_csv, engine=eng).table.count().to_pyarrow()
        assert {t.name for t in other.session.catalog.listTables()} - before
    assert {t.name for t in other.session.catalog.listTables()} == before
    assert other.session.sparkContext._jsc is not None  # the session is still running


def test_spark_cli_local_leaves_nothing_behind(duck: Any, tiny_csv: Path, tmp_path: Path) -> None:
    """custseg run --engine spark in a fresh process: local[2], and no Spark folders in cwd."""
    from engines import need_spark

    need_spark()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    out = tmp_path / "out"
    args = ["run", str(tiny_csv), "--engine", "spark", "--out", str(out), "--k", "2",
            "--no-report", "-q"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "custseg", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(cwd.iterdir()) == []  # no spark-warehouse/, metastore_db/, derby.log
    expected = tmp_path / "expected"
    res = runner.invoke(app, [*args[:2], "--out", str(expected), "--k", "2", "--no-report", "-q"])
    assert res.exit_code == 0, res.output
    assert (out / "segments.csv").read_bytes() == (expected / "segments.csv").read_bytes()


# --- PostgreSQL: the segments back into the database, and the errors ---------------------------


def _pg_url() -> str:
    url = os.environ.get("CUSTSEG_TEST_POSTGRES_URL")
    if not url:
        from engines import unavailable

        unavailable("CUSTSEG_TEST_POSTGRES_URL is unset")
    return str(url)


def _temp_tables(pg: Any) -> int:
    with pg.raw.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_class WHERE relpersistence = 't'")
        return int(cur.fetchone()[0])


def test_postgres_out_table_written_whole_and_replaced_only_with_force(tmp_path: Path) -> None:
    url = _pg_url()
    with postgres_engine() as pg:
        pg.raw.execute("DROP TABLE IF EXISTS custseg_test_segments")
        pg.raw.execute("DROP TABLE IF EXISTS custseg_test_tiny")
        pg.raw.execute(
            "CREATE TABLE custseg_test_tiny AS SELECT * FROM (VALUES "
            "('1', 'A1', '2021-01-01', '1', '2'), ('2', 'A2', '2021-01-05', '2', '3'), "
            "('3', 'A3', '2021-01-09', '1', '5'), ('3', 'A4', 'soon', '1', 'x')) "
            'AS t("CustomerID", "InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice")'
        )
        base = ["run", url, "--table", "custseg_test_tiny", "--k", "2", "--no-report", "-q"]
        res = runner.invoke(
            app, [*base, "--out", str(tmp_path / "a"), "--out-table", "custseg_test_segments"]
        )
        assert res.exit_code == 0, res.output
        back = pg.con.table("custseg_test_segments").to_pandas()
        csv = pd.read_csv(tmp_path / "a" / "segments.csv", dtype={"customer_id": str})
        assert back["customer_id"].tolist() == csv["customer_id"].tolist() == ["1", "2", "3"]
        assert back["monetary"].tolist() == csv["monetary"].tolist()
        assert list(back.columns) == list(csv.columns)
        res = runner.invoke(
            app, [*base, "--out", str(tmp_path / "b"), "--out-table", "custseg_test_segments"]
        )
        assert res.exit_code == 1
        assert re.search(r"Table 'custseg_test_segments' already exists .*--force", res.stderr)
        assert not (tmp_path / "b").exists()
        res = runner.invoke(
            app,
            [
                *base,
                "--out",
                str(tmp_path / "a"),
                "--out-table",
                "custseg_test_segments",
                "--force",
            ],
        )
        assert res.exit_code == 0, res.output
        assert "password" not in res.output
        pg.raw.execute("DROP TABLE custseg_test_segments")
        pg.raw.execute("DROP TABLE custseg_test_tiny")


@pytest.mark.parametrize(
    ("case", "pattern"),
    [
        ("bad password", r"Cannot connect to postgresql://custseg@127\.0\.0\.1:\d+/custseg_test: .*password authentication failed.*Check the user name and password"),
        ("refused", r"Cannot connect to postgresql://custseg@127\.0\.0\.1:\d+/custseg_test: .*Check the host and port"),
        ("no database", r"Cannot connect to .*/no_such_db: .*does not exist.*Check the database name"),
        ("missing table", r"No table 'no_such_table' in postgresql://custseg@127\.0\.0\.1:\d+/custseg_test; its tables are .*Pass --table"),
        ("missing column", r"No price column: found \[.*\]\. Pass --price-col"),
        ("no --table", r"A database input needs --table"),
    ],
)  # fmt: skip
def test_postgres_bad_input_gets_one_line(case: str, pattern: str, tmp_path: Path) -> None:
    url = _pg_url()
    from urllib.parse import urlparse

    parts = urlparse(url)
    args: list[str]
    if case == "bad password":
        args = [url.replace(f":{parts.password}@", ":wrong@"), "--table", "x"]
    elif case == "refused":
        from engines import free_port

        args = [url.replace(f":{parts.port}/", f":{free_port()}/"), "--table", "x"]
    elif case == "no database":
        args = [url.replace("/custseg_test", "/no_such_db"), "--table", "x"]
    elif case == "missing table":
        args = [url, "--table", "no_such_table"]
    elif case == "missing column":
        with postgres_engine() as pg:
            pg.raw.execute("DROP TABLE IF EXISTS custseg_test_noprice")
            pg.raw.execute(
                "CREATE TABLE custseg_test_noprice AS SELECT '1' AS \"CustomerID\", "
                "'2021-01-01' AS \"InvoiceDate\", '3' AS \"Quantity\""
            )
        args = [url, "--table", "custseg_test_noprice"]
    else:
        args = [url]
    with postgres_engine() as pg:
        before = _temp_tables(pg)
        res = runner.invoke(app, ["run", *args, "--out", str(tmp_path / "out")])
        assert _temp_tables(pg) == before  # nothing left in the database
        if case == "missing column":
            pg.raw.execute("DROP TABLE custseg_test_noprice")
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and not (tmp_path / "out").exists()
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert (parts.password or "") not in lines[0]


def test_spark_unreachable_master_is_one_line(tmp_path: Path) -> None:
    from engines import free_port, need_spark

    need_spark()
    res = runner.invoke(
        app,
        ["run", "x.csv", "--engine", "spark", "--spark-master", f"spark://127.0.0.1:{free_port()}",
         "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert res.exit_code == 1
    assert re.search(
        r"error: Cannot reach the Spark master at spark://127\.0\.0\.1:\d+: .*--spark-master",
        res.stderr,
    )


def test_engine_names_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"Unknown engine 'sqlserver'\. Use duckdb, spark"):
        engine.connect("sqlserver")
    with pytest.raises(ConfigError, match="--spark-master needs --engine spark"):
        engine.connect("duckdb", spark_master="local[1]")
    with pytest.raises(ConfigError, match=r"--out-table .* needs a database engine"):
        engine.connect().check_out_table("segments", force=False)


@on_spark
def test_missing_input_on_spark_names_the_file(other: Any, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"No such file: 'no_such_sales'\. Check the path"):
        load_transactions("no_such_sales", engine=other)


def test_run_closes_the_engine_it_opens(tiny_csv: Path) -> None:
    result = _quiet_run(tiny_csv, config=RunConfig(cluster=ClusterConfig(k=2, k_values=(1, 2))))
    assert len(result.customers) == 3


# --- --cluster-engine spark: MLlib K-Means on the customer table left in Spark -------------

#: The slower MLlib tests on local[2] only (each K-Means iteration is a Spark job); the
#: separated-clusters one runs on the standalone cluster as well.
on_local_spark = pytest.mark.parametrize("other", ENGINES[:1], indirect=True)
MLLIB = "Clustered with Spark MLlib K-Means (k-means||); silhouette on squared distances"


def _separated_rfm(per_group: int = 120, seed: int = 0) -> pd.DataFrame:
    """Four groups of customers at the corners of a tetrahedron in log R, F, M, and two
    extreme spenders (outliers by the z-score rule)."""
    rng = np.random.default_rng(seed)
    centres = [(5, 1, 50), (5, 30, 20_000), (200, 1, 20_000), (200, 30, 50)]
    parts = [
        np.column_stack(
            [
                np.maximum(1, np.round(r * rng.lognormal(0, 0.15, per_group))),
                np.maximum(1, np.round(f * rng.lognormal(0, 0.15, per_group))),
                np.round(m * rng.lognormal(0, 0.15, per_group), 2),
            ]
        )
        for r, f, m in centres
    ]
    X = np.concatenate([*parts, [[2, 3_000, 5e9], [1, 2_500, 3e9]]])
    ids = pd.Index([str(10_000 + i) for i in range(len(X))], name="customer_id")
    rfm = pd.DataFrame(X, columns=["recency", "frequency", "monetary"], index=ids)
    return rfm.astype({"recency": "int64", "frequency": "int64"})


@on_spark  # on the standalone cluster too: MLlib's jobs cross processes
def test_mllib_kmeans_agrees_with_local_on_separated_clusters(other: Any) -> None:
    from sklearn.metrics import adjusted_rand_score

    from custseg.cluster import fit_segments
    from custseg.spark_cluster import fit_segments_spark

    rfm = _separated_rfm()
    config = ClusterConfig(select="auto", k_values=tuple(range(1, 9)))
    local = fit_segments(rfm, config=config)
    frame = other.session.createDataFrame(rfm.reset_index())
    got, fit = fit_segments_spark(frame, config=config.replace(cluster_engine="spark"))
    pd.testing.assert_frame_equal(got, rfm, check_exact=True)  # the same customers, in order
    assert fit.selection.k == local.selection.k == 4
    assert adjusted_rand_score(local.labels, fit.labels) >= 0.9
    assert fit.outlier.tolist() == local.outlier.tolist() and fit.outlier.sum() == 2
    # canonical ids: 0 has the highest mean monetary of its members
    means = rfm.groupby(fit.labels)["monetary"].mean()
    assert means.index.tolist() == [0, 1, 2, 3] and means.is_monotonic_decreasing
    # the centres are in the model's scaled space: model.json predicts Spark's labels
    inliers = ~fit.outlier
    assert (fit.model.assign(rfm).labels[inliers] == fit.labels[inliers]).all()
    assert fit.model.params["init"] == "k-means||" and MLLIB in (fit.selection.note or "")
    # MLlib's scaler divides by n-1: its SSE at k=1 is (n - 1) x 3 on the n fitted rows
    assert fit.selection.sse[0] == pytest.approx((inliers.sum() - 1) * 3)


@on_local_spark
def test_cluster_engine_spark_on_online_retail(
    other: Any, duck: Any, retail_parquet: Path, tmp_path: Path
) -> None:
    from sklearn.metrics import adjusted_rand_score

    from custseg.scoring import score

    knee = RunConfig(cluster=ClusterConfig(select="knee"))
    local = _quiet_run(retail_parquet, engine=duck, config=knee)
    spark_config = knee.model_copy(update={"cluster": knee.cluster.replace(cluster_engine="spark")})
    got = _quiet_run(retail_parquet, engine=other, config=spark_config)
    views = [t.name for t in other.session.catalog.listTables() if "held" in t.name]
    assert views == [] and not other._held  # the cached customer table is released
    assert got.ledger == local.ledger and got.as_of == local.as_of
    cols = ["recency", "frequency", "monetary", "outlier"]
    pd.testing.assert_frame_equal(got.customers[cols], local.customers[cols], check_exact=True)
    assert got.k == local.k == 3
    ari = adjusted_rand_score(local.customers["cluster"], got.customers["cluster"])
    assert ari >= 0.9  # measured 0.969: 99.0% of customers in the same segment
    assert got.stability is None and any(MLLIB in w for w in got.warnings)
    files = _outputs(got, tmp_path / "fit")
    summary = json.loads(files["summary.json"])
    assert MLLIB in summary["k_selection"]["note"]
    assert summary["settings"]["cluster"]["cluster_engine"] == "spark"
    assert (
        "cluster_engine"
        not in json.loads(_outputs(local, tmp_path / "local")["summary.json"])["settings"][
            "cluster"
        ]
    )  # default outputs do not change
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustsegWarning)
        scored = score(tmp_path / "fit" / "model.json", retail_parquet, engine=duck)
    assert _outputs(scored, tmp_path / "scored")["segments.csv"] == files["segments.csv"]


def test_cluster_engine_spark_needs_the_spark_engine(tiny_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", str(tiny_csv), "--cluster-engine", "spark", "--out", str(out)])
    assert res.exit_code == 1 and not out.exists()
    assert res.output.strip() == (
        "error: --cluster-engine spark needs --engine spark (the customer table must be in "
        "Spark), got --engine duckdb. Add --engine spark, or drop --cluster-engine spark."
    )
    for method in ("gmm", "hierarchical"):
        args = ["run", str(tiny_csv), "--engine", "spark", "--cluster-engine", "spark"]
        res = runner.invoke(app, [*args, "--method", method, "--select", "auto"])
        assert res.exit_code == 1
        assert res.output.strip() == (
            f"error: --cluster-engine spark fits Spark MLlib K-Means only, not --method "
            f"{method}. Use --method kmeans, or --cluster-engine local."
        )
    res = runner.invoke(app, ["backtest", str(tiny_csv), "--cluster-engine", "spark"])
    assert res.exit_code == 1 and "error: --cluster-engine spark applies to custseg run" in (
        res.output
    )


def test_cluster_engine_spark_cli_writes_the_mllib_note(tiny_csv: Path, tmp_path: Path) -> None:
    """custseg run --engine spark --cluster-engine spark in a fresh process, report included."""
    from engines import need_spark

    need_spark()
    out = tmp_path / "out"
    args = ["run", str(tiny_csv), "--engine", "spark", "--cluster-engine", "spark", "--k", "2",
            "--k-range", "1-2", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    proc = subprocess.run(
        [sys.executable, "-m", "custseg", *args], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert MLLIB in (out / "report.html").read_text(encoding="utf-8")
    assert MLLIB in json.loads((out / "summary.json").read_text())["k_selection"]["note"]
    assert json.loads((out / "model.json").read_text())["model"]["params"]["engine"] == (
        "spark-mllib"
    )
