"""Tests of custseg.backtest: holdout outcomes, rankings' evidence, k chosen by backtest."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from custseg.backtest import _codes, _resampled_ranks, auc, evidence, segment_values, spearman
from custseg.cli import app
from custseg.config import ClusterConfig, RunConfig
from custseg.errors import CustsegWarning, InputError
from custseg.pipeline import backtest, run

runner = CliRunner()


def _log(seed: int = 0, customers: int = 40, days: int = 200) -> pd.DataFrame:
    """A hand-made log: each customer buys at their own rate over ``days`` days."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2022, 1, 1, 10)
    rows = []
    invoice = 1000
    for c in range(customers):
        rate = rng.uniform(0.005, 0.08)
        for day in range(days):
            if rng.random() < rate:
                invoice += 1
                for _ in range(rng.integers(1, 4)):
                    rows.append(
                        {
                            "CustomerID": f"K{c:03d}",
                            "InvoiceNo": str(invoice),
                            "InvoiceDate": (start + dt.timedelta(days=day)).isoformat(sep=" "),
                            "Quantity": int(rng.integers(1, 10)),
                            "UnitPrice": round(float(rng.uniform(1, 20)), 2),
                        }
                    )
    return pd.DataFrame(rows)


def _independent(df: pd.DataFrame, holdout: int) -> dict[str, object]:
    """The backtest's definitions, computed again with pandas."""
    d = df.assign(
        date=pd.to_datetime(df["InvoiceDate"]).dt.normalize(),
        value=df["Quantity"] * df["UnitPrice"],
    )
    last = d["date"].max()
    cutoff = last - pd.Timedelta(days=holdout)
    train = d[d["date"] <= cutoff]
    hold = d[d["date"] > cutoff]
    as_of = cutoff + pd.Timedelta(days=1)
    g = train.groupby("CustomerID")
    rfm = pd.DataFrame(
        {
            "recency": (as_of - g["date"].max()).dt.days,
            "frequency": g["InvoiceNo"].nunique(),
            "monetary": g["value"].sum(),
        }
    )
    revenue = hold.groupby("CustomerID")["value"].sum().reindex(rfm.index).fillna(0.0)
    orders = hold.groupby("CustomerID")["InvoiceNo"].nunique().reindex(rfm.index).fillna(0)
    new = sorted(set(hold["CustomerID"]) - set(rfm.index))
    return {"cutoff": cutoff.date(), "rfm": rfm, "revenue": revenue, "orders": orders, "new": new}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    df = _log()
    path = tmp_path_factory.mktemp("bt") / "log.csv"
    df.to_csv(path, index=False)
    return path, df


def test_holdout_outcomes_match_an_independent_computation(small) -> None:  # type: ignore[no-untyped-def]
    path, df = small
    config = RunConfig(cluster=ClusterConfig(k=3, holdout_days=60, select="auto", outliers="none"))
    bt = backtest(path, config=config, bootstrap=50)
    want = _independent(df, 60)
    o = bt.outcomes
    assert o.cutoff == want["cutoff"] and o.holdout_days == 60
    rfm = want["rfm"]
    got = o.train.sort_index()
    assert list(got.index) == list(rfm.index)
    np.testing.assert_array_equal(got["recency"], rfm["recency"])
    np.testing.assert_array_equal(got["frequency"], rfm["frequency"])
    np.testing.assert_allclose(got["monetary"], rfm["monetary"], rtol=1e-9)
    order = np.argsort(o.train.index.to_numpy())
    np.testing.assert_allclose(o.revenue[order], want["revenue"].to_numpy(), rtol=1e-9)
    np.testing.assert_array_equal(o.orders[order], want["orders"].to_numpy())
    assert o.new_customers == len(want["new"])


def test_evidence_matches_scipy_and_scikit_learn(small) -> None:  # type: ignore[no-untyped-def]
    path, _ = small
    config = RunConfig(cluster=ClusterConfig(k=3, holdout_days=60, select="auto", outliers="none"))
    bt = backtest(path, config=config, bootstrap=50)
    o = bt.outcomes
    monetary = o.train["monetary"].to_numpy()
    assert bt.evidence.spearman["monetary"] == pytest.approx(
        spearmanr(monetary, o.revenue).statistic
    )
    assert bt.evidence.auc["monetary"] == pytest.approx(roc_auc_score(o.buys, monetary))
    # segments rank customers by their segment's mean training monetary value
    labels = bt.training.customers["cluster"].to_numpy()
    value = pd.Series(monetary).groupby(labels).transform("mean").to_numpy()
    assert bt.evidence.spearman["segments"] == pytest.approx(spearmanr(value, o.revenue).statistic)
    assert bt.evidence.auc["segments"] == pytest.approx(roc_auc_score(o.buys, value))
    table = bt.segments
    assert table["customers"].sum() == len(o.train)
    assert table["share_of_holdout_revenue"].sum() == pytest.approx(1.0)
    for cluster, row in table.iterrows():
        members = labels == cluster
        assert row["share_buying_again"] == pytest.approx(o.buys[members].mean())
        assert row["revenue_per_customer"] == pytest.approx(o.revenue[members].mean())


def test_the_worked_example_of_the_docs() -> None:
    """docs/backtest.md: six customers in three segments, by hand."""
    labels = np.array([0, 0, 1, 1, 1, 2])
    monetary = np.array([900.0, 700, 300, 200, 100, 50])
    revenue = np.array([400.0, 0, 120, 0, 60, 0])
    values = segment_values(labels, monetary)
    assert values.tolist() == [800, 800, 200, 200, 200, 50]
    # AUC by hand: buyers (800, 200, 200) against non-buyers (800, 200, 50): of the 9 pairs
    # the buyer ranks higher in 4 and ties in 3, so (4 + 3 / 2) / 9.
    assert auc(values, revenue > 0) == pytest.approx(5.5 / 9)
    assert spearman(values, revenue) == pytest.approx(0.361, abs=5e-4)
    assert spearman(monetary, revenue) == pytest.approx(0.516, abs=5e-4)
    assert auc(monetary, revenue > 0) == pytest.approx(6 / 9)


def test_rank_helpers_agree_with_scipy() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, 200).astype(float)
    y = rng.gamma(1.0, 10, 200) * (x + rng.random(200))
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
    assert auc(x, y > 20) == pytest.approx(roc_auc_score(y > 20, x))
    codes, n = _codes(x)
    idx = rng.integers(0, 200, size=(5, 200))
    np.testing.assert_allclose(_resampled_ranks(codes, n, idx), rankdata(x[idx], axis=1))


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    y = rng.gamma(1.0, 10, 500)
    scores = {"segments": np.round(y / 10) + rng.random(500), "monetary": rng.random(500)}
    a = evidence(scores, y, y > 8, bootstrap=200, seed=7)
    b = evidence(scores, y, y > 8, bootstrap=200, seed=7)
    assert a.differences == b.differences
    est, lo, hi = a.differences["monetary"]["spearman"]
    assert lo < est < hi and lo > 0  # the segments beat noise, and the interval says so


def test_too_short_a_span_is_refused_in_one_line(small) -> None:  # type: ignore[no-untyped-def]
    path, _ = small
    config = RunConfig(cluster=ClusterConfig(holdout_days=150))
    with pytest.raises(InputError, match=r"too little for a 150-day holdout .* --holdout"):
        backtest(path, config=config, bootstrap=10)


def test_select_backtest_chooses_k_inside_the_training_span(retail_parquet: Path) -> None:
    bt = backtest(retail_parquet, bootstrap=50)
    sel = bt.training.fit.selection
    assert sel.method == "backtest"
    # the inner cutoff is 90 days before the outer one: the holdout is never seen
    assert f"up to {bt.outcomes.cutoff - dt.timedelta(days=90)}" in (sel.note or "")
    result = run(retail_parquet)
    figures = result.fit.figures
    assert result.fit.selection.method == "backtest"
    assert len(figures["holdout_spearman"]) == len(result.fit.selection.k_values)
    best = max(figures["holdout_spearman"])
    k = result.k
    assert figures["holdout_spearman"][result.fit.selection.k_values.index(k)] <= best


@pytest.mark.filterwarnings("ignore::custseg.errors.CustsegWarning")
def test_select_backtest_falls_back_when_the_data_is_short(small) -> None:  # type: ignore[no-untyped-def]
    path, _ = small
    with pytest.warns(
        UserWarning, match=r"--select backtest: .* k was chosen by the method's own rule"
    ):
        result = run(path, config=RunConfig(cluster=ClusterConfig(holdout_days=120)))
    assert result.fit.selection.method in ("knee", "silhouette")


def test_backtest_command_writes_json_and_prints_evidence(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, _ = small
    out = tmp_path / "bt"
    args = ["backtest", str(path), "-o", str(out), "--holdout", "60d", "--k", "3"]
    res = runner.invoke(app, [*args, "--bootstrap", "50", "--no-report"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "backtest.json").read_text())
    assert doc["format"] == "custseg-backtest" and doc["holdout_days"] == 60
    assert set(doc["evidence"]["spearman"]) == {
        "segments",
        "monetary",
        "frequency",
        "recency",
        "rfm_score",
    }
    assert "RFM score (R+F+M)" in res.stdout and "buy again" in res.stdout
    js = runner.invoke(app, [*args, "--bootstrap", "50", "--no-report", "--json", "--force"])
    assert json.loads(js.stdout) == json.loads((out / "backtest.json").read_text())
    bad = runner.invoke(
        app, ["backtest", str(path), "-o", str(tmp_path / "x"), "--holdout", "ninety"]
    )
    assert bad.exit_code == 1 and "--holdout 'ninety' is not a duration" in bad.stderr


def test_backtest_without_money_ranks_holdout_orders(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, df = small
    rf_log = tmp_path / "rf.csv"
    df[["CustomerID", "InvoiceNo", "InvoiceDate"]].to_csv(rf_log, index=False)
    config = RunConfig(cluster=ClusterConfig(k=3, holdout_days=60, select="auto", outliers="none"))
    with pytest.warns(CustsegWarning, match="No value column .* recency and frequency only"):
        bt = backtest(rf_log, config=config, bootstrap=50)
    want = _independent(df, 60)
    o = bt.outcomes
    assert list(o.train.columns) == ["recency", "frequency"]
    assert o.revenue is None and o.new_revenue is None and o.target_name == "orders"
    order = np.argsort(o.train.index.to_numpy())
    np.testing.assert_array_equal(o.target[order], want["orders"].to_numpy())
    # the segment value is the mean training frequency; the baselines have no monetary
    labels = bt.training.customers["cluster"].to_numpy()
    values = segment_values(labels, o.train["frequency"].to_numpy(dtype=float))
    assert bt.evidence.spearman["segments"] == pytest.approx(spearman(values, o.target))
    assert bt.evidence.auc["segments"] == pytest.approx(auc(values, o.orders > 0))
    assert list(bt.evidence.spearman) == ["segments", "frequency", "recency", "rf_score"]
    assert "revenue_per_customer" not in bt.segments.columns
    share = bt.segments["share_of_holdout_orders"]
    assert share.sum() == pytest.approx(1.0)
    for cluster, row in bt.segments.iterrows():
        members = labels == cluster
        assert row["value"] == pytest.approx(o.train["frequency"].to_numpy()[members].mean())
        assert row["share_of_holdout_orders"] == pytest.approx(
            o.orders[members].sum() / o.orders.sum()
        )


def test_backtest_command_without_money(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, df = small
    rf_log = tmp_path / "rf.csv"
    df[["CustomerID", "InvoiceNo", "InvoiceDate"]].to_csv(rf_log, index=False)
    out = tmp_path / "bt"
    res = runner.invoke(
        app,
        ["backtest", str(rf_log), "-o", str(out), "--holdout", "60d", "--k", "3",
         "--bootstrap", "50"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "measured against the holdout orders (not revenue)" in res.stdout
    assert "Spearman (orders)" in res.stdout and "RF score (R+F)" in res.stdout
    assert "revenue" not in res.stdout.replace("(not revenue)", "")
    doc = json.loads((out / "backtest.json").read_text())
    assert doc["target"] == "orders" and "holdout_revenue" not in doc
    assert all("revenue_per_customer" not in s for s in doc["segments"])
    page = (out / "backtest.html").read_text()
    assert "measured against the holdout orders instead of revenue" in page
    assert "Holdout orders per customer, by segment" in page


def _held_tables(eng: object) -> list[str]:
    raw = eng.con.con  # type: ignore[attr-defined]
    rows = raw.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    return [name for (name,) in rows if name.startswith("custseg_held")]


@pytest.mark.parametrize(
    "clean",
    [{}, {"returns": "net", "drop_duplicates": True}, {"frequency_unit": "days"}],
    ids=["default", "net-deduped", "days"],
)
def test_a_runs_kept_lines_give_the_holdout_of_the_rows(
    retail_parquet: Path, clean: dict[str, object]
) -> None:
    # --select backtest aggregates training and holdout from the run's grouped lines (held in
    # the engine): the same outcomes as marking and aggregating the rows again.
    from custseg.backtest import holdout_outcomes
    from custseg.config import CleanConfig
    from custseg.engine import connect
    from custseg.pipeline import aggregate

    config = RunConfig(clean=CleanConfig(**clean))  # type: ignore[arg-type]
    with connect("duckdb") as eng:
        agg = aggregate(str(retail_parquet), config=config, con=eng)
        assert agg.lines is not None and agg.lines.by_day
        assert _held_tables(eng)
        assert agg.ledger.date_min is not None and agg.ledger.date_max is not None
        first, last = agg.ledger.date_min.date(), agg.ledger.date_max.date()
        # The inner choice of k ends its holdout at the outer cutoff: lines after it are kept.
        for days, end in ((90, last), (45, last - dt.timedelta(days=90))):
            options = {"clean": config.clean, "holdout_days": days, "first": first, "last": end}
            kept = holdout_outcomes(agg.lines, **options)  # type: ignore[arg-type]
            rows = holdout_outcomes(agg.tx.table, **options)  # type: ignore[arg-type]
            pd.testing.assert_frame_equal(kept.train, rows.train)
            assert kept.target.tolist() == rows.target.tolist()
            assert kept.orders.tolist() == rows.orders.tolist()
            assert kept.new_customers == rows.new_customers > 0
        eng.release_held()
        assert not _held_tables(eng)
    fixed = aggregate(
        str(retail_parquet), config=config.model_copy(update={"cluster": ClusterConfig(k=4)})
    )
    assert fixed.lines is None  # a run that does not backtest keeps nothing


def test_a_run_on_an_engine_left_open_releases_what_it_held(retail_parquet: Path) -> None:
    from custseg.engine import connect

    with connect("duckdb") as eng:
        result = run(str(retail_parquet), engine=eng)
        assert result.fit.selection.method == "backtest"  # it held its lines meanwhile
        assert not _held_tables(eng)
        assert eng.con.con.execute("SELECT 1").fetchone() == (1,)  # and is still open
