"""Outputs appear whole or not at all, and identical runs write identical bytes.

Interruptions are real: a ``python -m custseg run`` process is sent SIGTERM or SIGINT while its
temporary output folder exists. Failures at a stage are injected with monkeypatch under Typer's
CliRunner. Determinism compares a run in a subprocess (its own hash seed) with one in this
process, and the Online Retail rows in their order with a shuffled copy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import pytest
from typer.testing import CliRunner

import custseg.cli
import custseg.output
import custseg.report
from custseg import engine
from custseg.cli import app
from custseg.datasets import online_retail_path
from custseg.errors import CustsegError, OutputError
from fixtures import TINY_CSV

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
# Shared options of the Online Retail runs: a narrower k sweep keeps them quick.
RETAIL_OPTIONS = ["--no-report", "--quiet", "--seed", "3", "--k-range", "1-4"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env.pop("PYTHONHASHSEED", None)  # each process its own hash seed, as for a user
    return env


def _custseg(*args: str) -> list[str]:
    return [sys.executable, "-m", "custseg", *args]


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _leftovers(out: Path) -> list[str]:
    return sorted(
        p.name
        for pattern in (f".{out.name}.tmp-*", f".{out.name}.old-*")
        for p in out.parent.glob(pattern)
    )


@pytest.fixture(scope="module")
def previous_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A run on the tiny fixture by a real process, started early: it overlaps other work."""
    base = tmp_path_factory.mktemp("previous")
    tiny = base / "tiny.csv"
    tiny.write_text(TINY_CSV, encoding="utf-8")
    out = base / "out"
    proc = subprocess.Popen(
        _custseg("run", str(tiny), "--out", str(out), "--no-report"),
        env=_env(),
        cwd=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield proc, out
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def previous_output(previous_run: tuple[subprocess.Popen[str], Path]) -> Path:
    """The finished output of ``previous_run``."""
    proc, out = previous_run
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert {"segments.csv", "summary.json", "model.json", "run.json"} <= set(_files(out))
    return out


@pytest.fixture
def out_dir(previous_output: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the previous output, to be overwritten with --force."""
    out = tmp_path / "OUT"
    shutil.copytree(previous_output, out)
    yield out


# --- determinism ----------------------------------------------------------------------------------

DETERMINISTIC = ("segments.csv", "summary.json", "model.json")


@pytest.fixture(scope="module")
def retail_runs(
    tmp_path_factory: pytest.TempPathFactory, previous_run: tuple[subprocess.Popen[str], Path]
) -> dict[str, Path]:
    """The same Online Retail run three times: in a subprocess, in this process, and on a copy
    of the file with its rows shuffled (the subprocess runs while this process works)."""
    base = tmp_path_factory.mktemp("retail")
    source = online_retail_path()
    outs = {k: base / k for k in ("subprocess", "in_process", "shuffled")}
    proc = subprocess.Popen(
        _custseg("run", str(source), "--out", str(outs["subprocess"]), *RETAIL_OPTIONS),
        env=_env(),
        cwd=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        shuffled = base / "shuffled.parquet"
        pd.read_parquet(source).sample(frac=1.0, random_state=20240601).to_parquet(
            shuffled, index=False
        )
        for key, path in (("in_process", source), ("shuffled", shuffled)):
            res = runner.invoke(app, ["run", str(path), "--out", str(outs[key]), *RETAIL_OPTIONS])
            assert res.exit_code == 0, res.output
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    return outs


def test_identical_runs_write_identical_bytes(retail_runs: dict[str, Path]) -> None:
    a, b = _files(retail_runs["subprocess"]), _files(retail_runs["in_process"])
    for name in DETERMINISTIC:
        assert a[name] == b[name], f"{name} differs between two identical runs"
    summary = json.loads(a["summary.json"])
    assert summary["ledger"]["customers_segmented"] == 4_338 and summary["as_of"] == "2011-12-10"


def test_shuffled_rows_write_identical_bytes(retail_runs: dict[str, Path]) -> None:
    a, b = _files(retail_runs["in_process"]), _files(retail_runs["shuffled"])
    assert a["segments.csv"] == b["segments.csv"]
    assert a["model.json"] == b["model.json"]
    sa, sb = json.loads(a["summary.json"]), json.loads(b["summary.json"])
    ia, ib = sa.pop("input"), sb.pop("input")
    assert sa == sb
    assert (ia["name"], ib["name"]) == ("online_retail.parquet", "shuffled.parquet")
    assert ia["sha256"] != ib["sha256"]
    assert {k: v for k, v in ia.items() if k not in ("name", "size_bytes", "sha256")} == {
        k: v for k, v in ib.items() if k not in ("name", "size_bytes", "sha256")
    }
    # ... and the summary text is byte-identical once the input object is set aside
    assert json.dumps(sa, indent=2) == json.dumps(sb, indent=2)


# --- interrupted runs ---------------------------------------------------------------------------


def _wait_for_temporary(proc: subprocess.Popen[str], out: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(out.parent.glob(f".{out.name}.tmp-*")):
            return
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(
                f"the run ended (code {proc.returncode}) before its temporary folder appeared: {err}"
            )
        time.sleep(0.005)
    proc.kill()
    proc.communicate()
    pytest.fail(f"no temporary folder .{out.name}.tmp-* within {timeout} s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_interrupted_keeps_previous_output(out_dir: Path, signum: signal.Signals) -> None:
    before = _files(out_dir)
    proc = subprocess.Popen(
        _custseg("run", str(online_retail_path()), "--out", str(out_dir), "--force"),
        env=_env(),
        cwd=out_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_temporary(proc, out_dir)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0, err
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err, err
    assert "interrupted; no output was written" in err
    assert _files(out_dir) == before
    assert _leftovers(out_dir) == []


def test_signal_during_an_engine_query_is_an_interrupt() -> None:
    """SIGTERM (the CLI's handler) while DuckDB runs a query, as a real run's aggregation."""
    con = engine.connect(threads=1).con
    # the call ibis makes to execute an expression on DuckDB
    query = con.con.sql("SELECT count(*) AS n FROM range(1000000000000) t(x) WHERE x % 7 = 3")
    previous = signal.signal(signal.SIGTERM, custseg.cli._terminate)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    guard = threading.Timer(30.0, con.con.interrupt)  # never hang, whatever happens
    timer.start()
    guard.start()
    try:
        with pytest.raises(KeyboardInterrupt), engine.translate_errors("the test query"):
            query.to_arrow_table()
    finally:
        timer.cancel()
        guard.cancel()
        signal.signal(signal.SIGTERM, previous)


def _fail_after_writing(name: str, error: BaseException) -> Callable[..., NoReturn]:
    """A stage that writes part of its output into the temporary folder, then fails."""

    def stage(*args: Any, **kwargs: Any) -> NoReturn:
        folder = Path(args[1] if len(args) > 1 else args[0])
        (folder / name).write_text("partial", encoding="utf-8")
        raise error

    return stage


@pytest.mark.parametrize(
    ("target", "name", "error"),
    [
        (custseg.output, "write_outputs", OutputError("disk full while writing segments.csv")),
        (custseg.report, "write_report", CustsegError("report failed part-way")),
        (custseg.output, "write_outputs", RuntimeError("a bug, not a CustsegError")),
    ],
    ids=["write_outputs", "write_report", "unexpected-error"],
)
def test_run_failing_at_a_stage_keeps_previous_output(
    out_dir: Path, monkeypatch: pytest.MonkeyPatch, target: object, name: str, error: BaseException
) -> None:
    before = _files(out_dir)
    tiny = out_dir.parent / "tiny.csv"
    tiny.write_text(TINY_CSV, encoding="utf-8")
    monkeypatch.setattr(target, name, _fail_after_writing("segments.csv", error))
    res = runner.invoke(
        app, ["run", str(tiny), "--out", str(out_dir), "--force", "--k-range", "1-2"]
    )
    assert res.exit_code != 0
    if isinstance(error, CustsegError):
        assert res.exit_code == 1
        assert f"error: {error}" in res.stderr
        assert "Traceback" not in res.output
    else:  # a bug keeps its traceback, but still leaves no partial output
        assert res.exception is error
    assert _files(out_dir) == before
    assert _leftovers(out_dir) == []
