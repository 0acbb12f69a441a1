"""Tests of custseg.scoring: a saved model applied to new transactions, nothing refitted."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from custseg.cli import app
from custseg.datasets import online_retail_path

runner = CliRunner()
METHODS = ("kmeans", "hierarchical", "gmm", "rfm-scores")


def _run(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "run"
    res = runner.invoke(
        app, ["run", str(online_retail_path()), "-o", str(out), "--no-report", "-q", *args]
    )
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.parametrize("method", METHODS)
def test_scoring_a_runs_own_input_reproduces_every_segment(method: str, tmp_path: Path) -> None:
    run = _run(tmp_path, "--method", method)
    scored = tmp_path / "scored"
    args = [
        "score",
        str(online_retail_path()),
        "--model",
        str(run / "model.json"),
        "-o",
        str(scored),
    ]
    res = runner.invoke(app, [*args, "--no-report", "-q"])
    assert res.exit_code == 0, res.output
    assert (scored / "segments.csv").read_bytes() == (run / "segments.csv").read_bytes()
    summary = json.loads((scored / "summary.json").read_text())
    model_bytes = (run / "model.json").read_bytes()
    import hashlib

    assert summary["scored_with"]["model_sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert summary["scored_with"]["model_as_of"] == "2011-12-10"
    assert summary["k_selection"]["method"] == "fixed"
    timings = json.loads((scored / "run.json").read_text())["timings_seconds"]
    assert list(timings) == ["load", "clean and aggregate", "score and name"]
    assert all(t >= 0 for t in timings.values()) and sum(timings.values()) > 0


def test_scoring_other_column_names_keeps_the_models_names(tmp_path: Path) -> None:
    run = _run(tmp_path)
    names = {
        s["cluster"]: s["name"] for s in json.loads((run / "summary.json").read_text())["segments"]
    }
    # Online Retail II's layout: Invoice, Price, "Customer ID"; six months only.
    df = pd.read_parquet(online_retail_path())
    df = df.rename(
        columns={"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
    )
    df = df[df["InvoiceDate"] >= "2011-06-01"]
    src = tmp_path / "retail_ii.csv"
    df.to_csv(src, index=False)
    scored = tmp_path / "scored"
    res = runner.invoke(
        app,
        [
            "score",
            str(src),
            "--model",
            str(run / "model.json"),
            "-o",
            str(scored),
            "--no-report",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    segs = json.loads((scored / "summary.json").read_text())["segments"]
    assert all(s["name"] == names[s["cluster"]] for s in segs)
    assert json.loads((scored / "summary.json").read_text())["as_of"] == "2011-12-10"
    got = pd.read_csv(scored / "segments.csv", dtype={"customer_id": str})
    assert set(got["segment"]) <= set(names.values())


def test_score_with_as_of(tmp_path: Path) -> None:
    run = _run(tmp_path)
    scored = tmp_path / "scored"
    args = [
        "score",
        str(online_retail_path()),
        "--model",
        str(run / "model.json"),
        "-o",
        str(scored),
    ]
    res = runner.invoke(app, [*args, "--as-of", "2011-10-01", "--no-report", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads((scored / "summary.json").read_text())["as_of"] == "2011-10-01"


@pytest.mark.parametrize(
    ("damage", "pattern"),
    [
        (lambda p: p.write_text("{not json"), r"model\.json is not readable JSON"),
        (
            lambda p: p.write_text(
                p.read_text().replace('"format_version": 2', '"format_version": 7')
            ),
            r"format version 7 of custseg-model; this custseg reads version 2",
        ),
        (
            lambda p: p.write_text(p.read_text().replace('"method": "kmeans"', '"method": "gmm"')),
            r"model\.json: .*(state|weights|mixture)",
        ),
        (lambda p: p.unlink(), r"model\.json does not exist"),
    ],
    ids=["not json", "other version", "other method", "missing"],
)
def test_broken_or_mismatched_models_are_refused_in_one_line(
    tmp_path: Path, damage, pattern: str
) -> None:  # type: ignore[no-untyped-def]
    run = _run(tmp_path, "--k", "3")
    model = run / "model.json"
    damage(model)
    out = tmp_path / "scored"
    res = runner.invoke(
        app, ["score", str(online_retail_path()), "--model", str(model), "-o", str(out)]
    )
    assert res.exit_code == 1
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    import re

    assert re.search(pattern, lines[0]), lines[0]
    assert not out.exists()
