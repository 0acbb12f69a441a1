"""Tests of custseg.runs: reading run folders and replacing paths whole."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custseg.cli import app
from custseg.errors import InputError, OutputError
from custseg.runs import atomic_output_dir, read_run, replace_atomically

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures import TINY_CSV

    folder = tmp_path_factory.mktemp("runs")
    (folder / "t.csv").write_text(TINY_CSV)
    out = folder / "out"
    argv = ["run", str(folder / "t.csv"), "-o", str(out), "--k", "2", "--k-range", "1-2"]
    assert runner.invoke(app, [*argv, "--no-report", "-q"]).exit_code == 0
    return out


def test_read_run_gives_checked_models(tiny_run: Path) -> None:
    run = read_run(tiny_run)
    assert run.summary.k == 2 == run.model.k
    assert [s.cluster for s in run.segments] == [0, 1]
    assert set(run.names.values()) == set(
        run.customers.groupby("cluster").size().index.map(run.names)
    )
    assert run.customers["customer_id"].tolist() == ["C1", "C2", "C5"]
    assert run.seed == 0 and run.selection.k == 2


def test_read_run_refuses_a_file_of_another_version(tiny_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    text = (copy / "model.json").read_text().replace('"format_version": 2', '"format_version": 1')
    (copy / "model.json").write_text(text)
    with pytest.raises(InputError, match=r"model\.json is format version 1 of custseg-model"):
        read_run(copy)
    with pytest.raises(InputError, match=r"is not a folder"):
        read_run(copy / "model.json")


def test_replace_atomically_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "a").write_text("new")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "b").write_text("old")
    replace_atomically(tmp_path / "new", tmp_path / "target")
    assert os.listdir(tmp_path / "target") == ["a"]
    (tmp_path / "f.tmp").write_text("2")
    (tmp_path / "f").write_text("1")
    replace_atomically(tmp_path / "f.tmp", tmp_path / "f")
    assert (tmp_path / "f").read_text() == "2"
    assert sorted(os.listdir(tmp_path)) == ["f", "target"]  # no backups left


def test_atomic_output_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_output_dir(target) as tmp:
        (tmp / "x").write_text("half")
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    with atomic_output_dir(target) as tmp:
        (tmp / "x").write_text("whole")
    with pytest.raises(OutputError, match="already exists"), atomic_output_dir(target):
        pass
    assert (target / "x").read_text() == "whole"
