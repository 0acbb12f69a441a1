from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from custseg.cli import app
from custseg.config import ClusterConfig, RunConfig
from custseg.errors import CustsegWarning, OutputError
from custseg.output import OUTPUT_FILES, neutralize_cell, write_outputs
from custseg.pipeline import run
from custseg.runs import atomic_output_dir

runner = CliRunner()


@pytest.fixture
def tiny_result(tiny_csv: Path):  # type: ignore[no-untyped-def]
    with pytest.warns(CustsegWarning, match="counted as"):
        return run(tiny_csv, config=RunConfig(cluster=ClusterConfig(k=2, k_values=(1, 2))))


def test_write_outputs_contract(tiny_result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = write_outputs(tiny_result, tmp_path)
    assert [p.name for p in paths] == list(OUTPUT_FILES)
    rows = list(csv.reader((tmp_path / "segments.csv").read_text().splitlines()))
    assert rows[0] == [
        "customer_id",
        "recency",
        "frequency",
        "monetary",
        "outlier",
        "cluster",
        "segment",
        "returned",
    ]
    assert rows[1][:5] == ["C1", "22", "2", "18.5", "false"]
    assert [r[-1] for r in rows[1:]] == ["5.0", "0.0", "0.0"]  # C1's cancellation C1003
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("as_of", "k", "k_selection", "metrics", "segments", "ledger"):
        assert key in summary
    assert summary["as_of"] == "2021-02-01"
    led = summary["ledger"]
    assert led["rows_read"] == led["rows_used"] + sum(led["rows_dropped"].values())
    assert led["customers_seen"] == led["customers_segmented"] + led["customers_without_purchase"]
    seg = summary["segments"][0]
    for key in (
        "cluster",
        "name",
        "description",
        "action",
        "customers",
        "share_customers",
        "revenue",
        "share_revenue",
        "recency_mean",
        "recency_median",
        "frequency_mean",
        "frequency_median",
        "monetary_mean",
        "monetary_median",
        "levels",
    ):
        assert key in seg
    assert set(summary["k_selection"]) >= {
        "method",
        "k_values",
        "sse",
        "silhouette",
        "calinski_harabasz",
        "davies_bouldin",
        "knee",
    }
    model = json.loads((tmp_path / "model.json").read_text())
    assert model["format"] == "custseg-model" and len(model["segments"]) == 2
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["versions"]["duckdb"] and record["input"]["sha256"]


def test_atomic_output_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_output_dir(target) as tmp:
        (tmp / "segments.csv").write_text("half")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_dir_keeps_previous_output_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "segments.csv").write_text("previous")
    with pytest.raises(RuntimeError), atomic_output_dir(target, force=True) as tmp:
        (tmp / "segments.csv").write_text("half")
        raise RuntimeError("boom")
    assert (target / "segments.csv").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_output_dir_refuses_existing_without_force(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    with (
        pytest.raises(OutputError, match=r"already exists\. Pass --force"),
        atomic_output_dir(tmp_path / "out"),
    ):
        pass


def test_atomic_output_dir_replaces_with_force(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old").write_text("x")
    with atomic_output_dir(tmp_path / "out", force=True) as tmp:
        (tmp / "new").write_text("y")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new"]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+A1", "'+A1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-cmd", "'-cmd"),
        ("-12.5", "-12.5"),
        ("C1", "C1"),
    ],
)
def test_neutralize_cell(cell: str, expected: str) -> None:
    assert neutralize_cell(cell) == expected


# --- spreadsheet formulas -----------------------------------------------------------------------

FORMULA_IDS = {
    '=HYPERLINK("x")': '\'=HYPERLINK("x")',
    "+SUM(A1)": "'+SUM(A1)",
    "-abc": "'-abc",
    "@SUM(A1)": "'@SUM(A1)",
    "-12": "-12",  # a plain number, not a formula: left as it is
    "+1": "+1",  # likewise (neutralize_cell leaves signed plain numbers alone)
    "C17850": "C17850",
}


def test_segments_csv_defuses_formula_ids(tmp_path: Path) -> None:
    rows = [
        {
            "InvoiceNo": f"{i}{j}",
            "CustomerID": cid,
            "InvoiceDate": f"2021-01-{1 + i + j:02d} 10:00",
            "Quantity": 1 + j,
            "UnitPrice": 2.5 * (i + 1),
        }
        for i, cid in enumerate(FORMULA_IDS)
        for j in range(2)
    ]
    path = tmp_path / "formulas.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["run", str(path), "--out", str(out), "--no-report", "--k-range", "1-3", "-q"]
    )
    assert res.exit_code == 0, res.output
    with (out / "segments.csv").open(newline="", encoding="utf-8") as fh:
        written = [row["customer_id"] for row in csv.DictReader(fh)]
    assert sorted(written) == sorted(FORMULA_IDS.values())
    # the file's bytes: the quote leads the cell, where a spreadsheet would read a formula
    raw = (out / "segments.csv").read_text(encoding="utf-8")
    assert '\n"\'=HYPERLINK(""x"")",' in raw and "\n'@SUM(A1)," in raw and "\n-12," in raw


def test_write_run_is_the_cli_folder_for_python_users(tiny_result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from custseg.output import write_run

    out = tmp_path / "run"
    seen: list[str] = []
    paths = write_run(tiny_result, out, report=False, progress=seen.append)
    assert [p.name for p in paths] == list(OUTPUT_FILES)
    assert all(p.parent == out and p.is_file() for p in paths)
    assert seen == ["write outputs"]
    with pytest.raises(OutputError, match="already exists"):
        write_run(tiny_result, out, report=False)
    before = (out / "summary.json").read_bytes()
    paths = write_run(tiny_result, out, force=True)
    assert paths[-1].name == "report.html" and (out / "figures").is_dir()
    assert (out / "summary.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "tiny.csv"]  # no temp folders
