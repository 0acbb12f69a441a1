"""Tests of custseg.formats: each file is written and read by one model, versions checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custseg.config import ClusterConfig, RunConfig
from custseg.errors import CustsegWarning, InputError, ModelFileError
from custseg.formats import ModelFile, RunRecord, Summary
from custseg.output import build_model, build_run_record, build_summary
from custseg.pipeline import SegmentationResult, run


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> SegmentationResult:
    from fixtures import TINY_CSV

    path = tmp_path_factory.mktemp("formats") / "tiny.csv"
    path.write_text(TINY_CSV)
    with pytest.warns(CustsegWarning):
        return run(path, config=RunConfig(cluster=ClusterConfig(k=2, k_values=(1, 2))))


@pytest.mark.parametrize(
    ("build", "doc"),
    [(build_summary, Summary), (build_model, ModelFile), (build_run_record, RunRecord)],
    ids=["summary", "model", "run"],
)
def test_each_file_round_trips(result: SegmentationResult, tmp_path: Path, build, doc) -> None:  # type: ignore[no-untyped-def]
    written = build(result).write(tmp_path / doc.FILE)
    back = doc.read(written)
    assert back == build(result)
    assert back.dumps() == written.read_text()  # what is read writes the same bytes
    data = json.loads(written.read_text())
    assert list(data)[:2] == ["format", "format_version"]


def test_summary_writes_nan_as_null(result: SegmentationResult) -> None:
    summary = build_summary(result)
    assert summary.k_selection.silhouette[0] is None  # k = 1 has no silhouette
    assert "NaN" not in summary.dumps()


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (
            {"format_version": 9},
            r"is format version 9 of custseg-summary; this custseg reads version 1",
        ),
        ({"format": "pickle"}, r"is not a custseg-summary file \(format 'pickle'\)"),
        ({"k": "three"}, r"'k' input should be a valid integer"),
        ({"extra": 1}, r"key 'extra' is not known"),
        ({"settings": {"cluster": {"k": 0}}}, r"'settings'.*k must be at least 1"),
    ],
)
def test_summary_read_names_the_file_key_and_fix(
    result: SegmentationResult, tmp_path: Path, change: dict, pattern: str
) -> None:
    data = build_summary(result).to_json() | change
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=pattern) as info:
        Summary.read(path)
    text = str(info.value)
    assert "\n" not in text and "summary.json" in text and "custseg run" in text


def test_model_file_errors_are_model_file_errors(
    result: SegmentationResult, tmp_path: Path
) -> None:
    data = build_model(result).to_json()
    data["model"]["centers"] = [[0.0, "x", 1.0]] * 2
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=r"'centers' must hold finite numbers"):
        ModelFile.read(path)
    data["format_version"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(
        ModelFileError, match=r"format version 1 of custseg-model; .* reads version 2"
    ):
        ModelFile.read(path)


def test_missing_or_broken_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"does not exist"):
        RunRecord.read(tmp_path / "run.json")
    (tmp_path / "run.json").write_text("[1, 2]")
    with pytest.raises(InputError, match=r"holds no JSON object"):
        RunRecord.read(tmp_path / "run.json")
    (tmp_path / "run.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(InputError, match=r"is not readable JSON"):
        RunRecord.read(tmp_path / "run.json")
