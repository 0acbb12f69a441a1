"""Engines for the tests: a Spark session (local, or a real standalone cluster on loopback) and a
PostgreSQL database, each started once per test session.

Outside CI a missing engine skips its tests with the reason; under CI (``CI=true``) it fails
them, so a skipped check cannot pass for a green build.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL_VAR = "CUSTSEG_TEST_POSTGRES_URL"


def unavailable(reason: str) -> None:
    """Skip, or under CI fail: CI must run every engine."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}: .ci/run must provide it", pytrace=False)
    pytest.skip(reason)


def need_spark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        unavailable("PySpark is not installed (pip install -e '.[spark]')")
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        unavailable("Java is not installed (Spark needs Java 17)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


class StandaloneCluster:
    """A Spark standalone master and two workers from the pyspark package's own launcher."""

    def __init__(self, tmp: Path, workers: int = 2) -> None:
        import pyspark

        self.home = Path(pyspark.__file__).parent
        self.tmp = tmp
        self.port = free_port()
        self.ui_port = free_port()
        self.workers = workers
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def master(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _spawn(self, name: str, *args: str) -> None:
        env = {
            **os.environ,
            "SPARK_HOME": str(self.home),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(self.tmp / "logs"),
            "SPARK_LOCAL_DIRS": str(self.tmp / "scratch"),
            "SPARK_DAEMON_JAVA_OPTS": "-Duser.timezone=UTC",
            "SPARK_DAEMON_MEMORY": "512m",
        }
        with (self.tmp / f"{name}.log").open("wb") as log:
            self.procs.append(
                subprocess.Popen(
                    [str(self.home / "bin" / "spark-class"), *args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.tmp,
                    start_new_session=True,
                )
            )

    def alive_workers(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as r:
            return int(json.load(r)["aliveworkers"])

    def start(self) -> None:
        self._spawn(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.ui_port),
        )  # fmt: skip
        for i in range(self.workers):
            work = self.tmp / f"worker{i}"
            work.mkdir(parents=True)
            self._spawn(
                f"worker{i}",
                "org.apache.spark.deploy.worker.Worker", self.master,
                "--host", "127.0.0.1", "--cores", "1", "--memory", "1g",
                "--work-dir", str(work), "--webui-port", str(free_port()),
            )  # fmt: skip
        _wait(lambda: self.alive_workers() == self.workers, "two Spark workers to register")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def spark_engine(mode: str) -> Iterator[Any]:
    """A SparkEngine on ``local[2]`` or on a standalone cluster started here."""
    need_spark()
    import ibis

    from custseg.engine.spark import SparkEngine, spark_session

    tmp = Path(tempfile.mkdtemp(prefix=f"custseg-test-spark-{mode}-"))
    # Spark's JVM outlives the session and may recreate its scratch folder: remove it at exit too.
    atexit.register(shutil.rmtree, tmp, True)
    cluster = None
    try:
        master = "local[2]"
        conf: dict[str, str] = {}
        if mode == "standalone":
            cluster = StandaloneCluster(tmp)
            cluster.start()
            master = cluster.master
            conf = {
                "spark.executor.memory": "512m",
                "spark.executor.cores": "1",
                "spark.cores.max": "2",
            }
        session = spark_session(master, tmp_dir=tmp / "driver", conf=conf)
        eng = SparkEngine(ibis.pyspark.connect(session), owned=True, label=f"spark {master}")
        try:
            yield eng
        finally:
            eng.close()
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def postgres_engine() -> Iterator[Any]:
    """A PostgresEngine on the database CUSTSEG_TEST_POSTGRES_URL names."""
    url = os.environ.get(POSTGRES_URL_VAR)
    if not url:
        unavailable(f"{POSTGRES_URL_VAR} is unset (start a server: .ci/pg-test-server start DIR)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    from custseg.engine.postgres import connect_postgres

    eng = connect_postgres(url)  # type: ignore[arg-type]
    try:
        yield eng
    finally:
        eng.close()


def load_online_retail(url: str, parquet: Path, csv_gz: Path) -> None:
    """Load the Online Retail rows into ``online_retail`` (typed, from the Parquet copy) and
    ``online_retail_text`` (every column text, the Kaggle CSV as a landing table would)."""
    from custseg.engine.postgres import connect_postgres

    with connect_postgres(url) as eng:
        raw = eng.raw
        for name in ("online_retail", "online_retail_text"):
            raw.execute(f"DROP TABLE IF EXISTS {name}")
        typed = eng.read_parquet([parquet])
        text = eng.read_csv([csv_gz], encoding="latin-1", delimiter=",")
        for name, table in (("online_retail", typed), ("online_retail_text", text)):
            temp = table.get_name()
            raw.execute(f'CREATE TABLE {name} AS SELECT * FROM pg_temp."{temp}"')


if __name__ == "__main__":  # used by .ci/run
    import sys

    shared = Path(sys.argv[2])
    load_online_retail(sys.argv[1], shared / "online_retail.parquet", shared / "data.csv.gz")
    print("loaded online_retail and online_retail_text")
