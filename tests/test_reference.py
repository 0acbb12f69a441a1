"""Tests of custseg.reference: a segment keeps its name and id while it is the same group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custseg.cli import app

runner = CliRunner()


def _run(out: Path, *args: str) -> dict:  # type: ignore[type-arg]
    from fixtures import RETAIL_PARQUET

    src = RETAIL_PARQUET if RETAIL_PARQUET.exists() else None
    if src is None:
        from custseg.datasets import online_retail_path

        src = online_retail_path()
    res = runner.invoke(app, ["run", str(src), "-o", str(out), "--no-report", "-q", *args])
    assert res.exit_code == 0, res.output
    return json.loads((out / "summary.json").read_text())


def _names(summary: dict) -> dict[int, str]:  # type: ignore[type-arg]
    return {s["cluster"]: s["name"] for s in summary["segments"]}


def test_same_data_another_seed_keeps_every_name_and_id(tmp_path: Path) -> None:
    old = _run(tmp_path / "old", "--k", "5", "--seed", "0")
    new = _run(
        tmp_path / "new",
        "--k",
        "5",
        "--seed",
        "11",
        "--reference",
        str(tmp_path / "old" / "model.json"),
    )
    assert _names(new) == _names(old)
    matches = new["reference"]["matches"]
    assert all(m["old_cluster"] == m["cluster"] for m in matches)
    assert all(m["distance"] <= m["radius"] for m in matches)
    assert new["reference"]["model_as_of"] == old["as_of"]


def test_a_month_more_keeps_the_names_of_the_same_groups(tmp_path: Path) -> None:
    old = _run(tmp_path / "old", "--k", "5", "--until", "2011-11-09")
    new = _run(tmp_path / "new", "--k", "5", "--reference", str(tmp_path / "old" / "model.json"))
    matched = [m for m in new["reference"]["matches"] if m["old_cluster"] is not None]
    assert len(matched) >= 4  # a month later most segments are the same groups
    for m in matched:
        assert m["name"] == _names(old)[m["old_cluster"]] and m["cluster"] == m["old_cluster"]
    unmatched = {m["name"] for m in new["reference"]["matches"] if m["old_cluster"] is None}
    assert not unmatched & set(_names(old).values())  # a new group never takes an old name


def test_without_reference_ids_follow_spend(tmp_path: Path) -> None:
    summary = _run(tmp_path / "run", "--k", "4")
    assert summary["reference"] is None
    means = [s["monetary_mean"] for s in sorted(summary["segments"], key=lambda s: s["cluster"])]
    assert means == sorted(means, reverse=True)


def test_score_models_keep_their_rule_table(tmp_path: Path) -> None:
    old = _run(tmp_path / "old", "--method", "rfm-scores", "--score-bins", "4")
    new = _run(
        tmp_path / "new",
        "--method",
        "rfm-scores",
        "--reference",
        str(tmp_path / "old" / "model.json"),
    )
    assert new["method"]["params"]["bins"] == 4  # the reference's bins, not the default 5
    assert _names(new) == _names(old)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (
            ["--method", "gmm"],
            r"--reference is an rfm-scores model, but this run uses --method gmm",
        ),
    ],
)
def test_mismatched_reference_is_refused(tmp_path: Path, args: list[str], pattern: str) -> None:
    import re

    _run(tmp_path / "old", "--method", "rfm-scores")
    from custseg.datasets import online_retail_path

    res = runner.invoke(
        app,
        ["run", str(online_retail_path()), "-o", str(tmp_path / "new"), "--reference",
         str(tmp_path / "old" / "model.json"), *args],
    )  # fmt: skip
    assert res.exit_code == 1 and re.search(pattern, res.stderr), res.stderr
    assert not (tmp_path / "new").exists()
