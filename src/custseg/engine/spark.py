"""Spark: the same expressions on a cluster (``local[N]``, standalone, or a session you hold).

Only the per-customer table comes back to the driver. Files are read by Spark itself, so on a
real cluster they must be on storage every node sees (HDFS, S3, a shared mount).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import decimal
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import ibis
import ibis.expr.datatypes as idt
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from ..errors import ConfigError, InputError
from . import files as _files
from .base import NUMBER_REGEX, Engine, arrow_table, first_line, headerless_names, may_be_nan

__all__ = ["SparkEngine", "connect_spark", "spark_session"]

DEFAULT_LOCAL_MASTER = "local[2]"


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--engine spark needs PySpark: pip install 'custseg[spark]' (and Java 17)."
        ) from None
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise ConfigError(
            "Spark needs Java 17 and none was found (no JAVA_HOME, no java on PATH). "
            "Install a JRE, e.g. apt-get install openjdk-17-jre-headless."
        )


def _check_master(master: str) -> None:
    """A standalone master that does not answer fails in a second, not after Spark's retries."""
    if not master.startswith("spark://"):
        return
    for hostport in master[len("spark://") :].split(","):
        url = urlparse(f"spark://{hostport}")
        host, port = url.hostname or "", url.port or 7077
        try:
            with socket.create_connection((host, port), timeout=5):
                return
        except OSError as exc:
            last = exc
    raise InputError(
        f"Cannot reach the Spark master at {master}: {last.strerror or last}. "
        "Start the master, or check --spark-master."
    )


# Spark's own log lines (WARN and INFO) would mix with custseg's one-line account on stderr.
_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
"""


class _QuietPy4J(logging.Filter):
    """py4j logs a traceback on the root logger when a signal interrupts a call into the JVM;
    custseg reports the interrupt itself, in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "py4j" not in (record.pathname or "")


def _quiet_py4j() -> None:
    root = logging.getLogger()
    if not any(isinstance(f, _QuietPy4J) for f in root.filters):
        root.addFilter(_QuietPy4J())


def scratch_folder() -> Path:
    """A temporary folder for Spark's files, removed when the engine closes and again when
    Python exits (the JVM can recreate its scratch folder while it shuts down)."""
    tmp = Path(tempfile.mkdtemp(prefix="custseg-spark-"))
    atexit.register(shutil.rmtree, tmp, True)
    return tmp


def spark_session(
    master: str = DEFAULT_LOCAL_MASTER,
    *,
    app_name: str = "custseg",
    tmp_dir: str | Path | None = None,
    conf: dict[str, str] | None = None,
) -> Any:
    """Start a SparkSession with the settings custseg relies on.

    UTC everywhere, ANSI SQL (overflow is an error, not a wrong number), Arrow transfers, no
    web UI, an in-memory catalog, and every folder Spark writes (warehouse, scratch) under
    ``tmp_dir``, so nothing is left in the working folder. For ``local[N]`` and masters on
    the loopback interface the driver binds to 127.0.0.1.

    Parameters
    ----------
    master : str
        ``local[N]`` or ``spark://host:port``.
    tmp_dir : path, optional
        Where Spark's folders go (a new temporary folder by default; the caller removes it).
    conf : dict, optional
        More Spark settings, applied last.
    """
    _require_pyspark()
    _check_master(master)
    from pyspark.sql import SparkSession

    tmp = Path(tmp_dir) if tmp_dir else scratch_folder()
    host = urlparse(master.replace("local[", "local://[")).hostname if "://" in master else None
    loopback = master.startswith("local") or (host or "").startswith("127.") or host == "localhost"
    if loopback:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    tmp.mkdir(parents=True, exist_ok=True)
    log_config = tmp / "log4j2.properties"
    log_config.write_text(_LOG4J)
    utc = "-Duser.timezone=UTC"
    driver_opts = f"{utc} -Dlog4j2.configurationFile={log_config.as_uri()}"
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": driver_opts,
        "spark.executor.extraJavaOptions": utc,
        "spark.sql.ansi.enabled": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(tmp / "warehouse"),
        "spark.local.dir": str(tmp / "local"),
        "spark.sql.shuffle.partitions": "8",
    }
    if loopback:
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    settings.update(conf or {})
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        raise InputError(
            f"Cannot start Spark with master {master}: {first_line(exc)}. Check Java 17 "
            "(java -version) and --spark-master."
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def connect_spark(
    master: str | None = None, *, session: Any = None, tmp_dir: str | Path | None = None
) -> SparkEngine:
    """Open a Spark engine: a new session on ``master`` (``local[2]``), or ``session``.

    A session passed in is the caller's: closing the engine drops only the temporary views
    custseg registered and leaves the session running.
    """
    _require_pyspark()
    _quiet_py4j()
    if master:
        _check_master(master)
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession() if session is None else None
    if active is not None:
        # Spark allows one context per process: use it, and leave it running on close.
        running = active.sparkContext.master
        if master and master != running:
            raise ConfigError(
                f"A SparkSession on {running} is already running in this process; Spark "
                f"cannot start another on {master}. Pass that session, or stop it first."
            )
        session = active
    owned = session is None
    tmp: Path | None = None
    if session is None:
        master = master or DEFAULT_LOCAL_MASTER
        _check_master(master)
        tmp = Path(tmp_dir) if tmp_dir else scratch_folder()
        session = spark_session(master, tmp_dir=tmp)
    con = ibis.pyspark.connect(session)
    label = f"spark {session.sparkContext.master}"
    return SparkEngine(con, owned=owned, label=label, tmp_dir=tmp)


class SparkEngine(Engine):
    """The Spark engine (PySpark 4, ANSI mode)."""

    backends: ClassVar[tuple[str, ...]] = ("pyspark",)
    kind: ClassVar[str] = "spark"

    def __init__(
        self,
        con: Any,
        *,
        owned: bool = False,
        label: str | None = None,
        tmp_dir: Path | None = None,
    ) -> None:
        super().__init__(con, owned=owned, label=label)
        self._tmp_dir = tmp_dir
        self._held: list[tuple[Any, str]] = []

    @property
    def session(self) -> Any:
        """The SparkSession."""
        return self.con._session

    def close(self) -> None:
        """Drop custseg's temporary views; stop the session and remove its folders if owned."""
        if self._closed:
            return
        self._closed = True
        self._drop_temporary()
        if self._owned:
            with contextlib.suppress(Exception):
                self.session.stop()
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)

    def _drop_temporary(self) -> None:
        self.release_held()
        for name in self._temporary:
            with contextlib.suppress(Exception):
                self.session.catalog.dropTempView(name)
        self._temporary.clear()

    def hold(self, expr: ir.Table) -> ir.Table:
        """The table persisted in Spark and registered as a temporary view (both released
        when the engine closes), so reading it twice computes it once."""
        df = self.to_dataframe(expr).persist()
        table = self._view(df, "held")
        self._held.append((df, table.get_name()))
        return table

    def release_held(self) -> None:
        """Unpersist every held table and drop its view (a run calls it when done, so an
        engine kept open across runs does not accumulate them)."""
        for df, name in self._held:
            with contextlib.suppress(Exception):
                df.unpersist()
            with contextlib.suppress(Exception):
                self.session.catalog.dropTempView(name)
            with contextlib.suppress(ValueError):
                self._temporary.remove(name)
        self._held.clear()

    def _view(self, df: Any, stem: str) -> ir.Table:
        name = self._temp_name(stem)
        df.createOrReplaceTempView(name)
        return self.con.table(name)

    def to_dataframe(self, expr: ir.Table) -> Any:
        """The Spark DataFrame of an Ibis table expression (nothing is computed yet)."""
        self.con._run_pre_execute_hooks(expr)
        return self.session.sql(self.con.compile(expr))

    def query_progress(self) -> float | None:
        """Finished tasks over all tasks of the active stages, in percent."""
        try:
            tracker = self.session.sparkContext.statusTracker()
            done = total = 0
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    done += info.numCompletedTasks
                    total += info.numTasks
        except Exception:
            return None
        return 100.0 * done / total if total else None

    def cancel(self) -> None:
        """Cancel every running Spark job."""
        with contextlib.suppress(Exception):
            self.session.sparkContext.cancelAllJobs()

    # --- reading ---------------------------------------------------------------------------

    def read_parquet(self, paths: Sequence[Path]) -> ir.Table:
        """Parquet files read by Spark (schemas merged by column name)."""
        df = self.session.read.option("mergeSchema", "true").parquet(*[str(p) for p in paths])
        return self._view(df, "parquet")

    def read_csv(
        self,
        paths: Sequence[Path],
        *,
        encoding: str = "utf-8",
        delimiter: str | None = None,
        header: bool = True,
    ) -> ir.Table:
        """CSV files read by Spark, every column as text; files with other headers by name."""
        sep = delimiter or _files.sniff_delimiter(paths[0], encoding)
        if not header:
            df = self._csv_frame(paths, encoding, sep=sep, header=False, quote='"')
            return self._view(df.toDF(*headerless_names(len(df.columns))), "csv")
        frames = []
        for _, group in _files.group_by_header(paths, encoding, sep).items():
            df = self.session.read.csv(
                [str(p) for p in group],
                header=True,
                inferSchema=False,
                sep=sep,
                encoding=_java_charset(encoding),
                quote='"',
                escape='"',
                multiLine=True,
                mode="FAILFAST",
            )
            # Spark keeps a UTF-8 byte order mark in the first column's name.
            first = df.columns[0] if df.columns else None
            if first and first.startswith("\ufeff"):
                df = df.withColumnRenamed(first, first.lstrip("\ufeff"))
            frames.append(df)
        df = frames[0]
        for other in frames[1:]:
            df = df.unionByName(other, allowMissingColumns=True)
        return self._view(df, "csv")

    def read_lines(self, paths: Sequence[Path], *, encoding: str = "utf-8") -> ir.Table:
        """The files' lines as one text column ``line`` (Spark's CSV reader, no quoting)."""
        # A unit separator never occurs in such text files: each line is one cell.
        df = self._csv_frame(paths, encoding, sep="\x1f", header=False, quote="")
        return self._view(df.toDF("line"), "lines")

    def _csv_frame(
        self, paths: Sequence[Path], encoding: str, *, sep: str, header: bool, quote: str
    ) -> Any:
        return self.session.read.csv(
            [str(p) for p in paths],
            header=header,
            inferSchema=False,
            sep=sep,
            encoding=_java_charset(encoding),
            quote=quote,
            escape='"' if quote else "\\",
            multiLine=bool(quote),
            mode="FAILFAST",
        )

    def register_arrow(self, data: pa.Table | pd.DataFrame, name: str) -> ir.Table:
        """An Arrow table or DataFrame as a Spark temporary view."""
        df = self.session.createDataFrame(arrow_table(data))
        return self._view(df, name)

    def has_table(self, name: str) -> bool:
        """Whether the session's catalog holds ``name`` (``db.table`` allowed)."""
        try:
            return bool(self.session.catalog.tableExists(name))
        except Exception:
            return False

    def read_table(self, name: str) -> ir.Table:
        """A table or view of the session's catalog."""
        if not self.has_table(name):
            tables = sorted(t.name for t in self.session.catalog.listTables())
            raise InputError(
                f"No table {name!r} in {self.label}; its tables are {tables[:12]}. "
                "Pass a file, or the name of a table the session knows."
            )
        return self._view(self.session.table(name), "table")

    def check_out_table(self, name: str, *, force: bool) -> None:
        """A session custseg started has an in-memory catalog: a table there would vanish."""
        if self._owned:
            raise ConfigError(
                f"--out-table {name} on a Spark session custseg starts would vanish with it "
                "(its catalog is in memory). Write segments.csv where the lake reads it, or "
                "pass your own SparkSession from Python: custseg.run(path, engine=spark)."
            )
        super().check_out_table(name, force=force)

    def write_table(self, name: str, data: pd.DataFrame, *, force: bool = False) -> None:
        """Save a DataFrame as a table of the session's catalog."""
        self.check_out_table(name, force=force)
        df = self.session.createDataFrame(arrow_table(data))
        df.write.mode("overwrite").saveAsTable(name)

    # --- spellings -------------------------------------------------------------------------

    @classmethod
    def strip_text(cls, value: ir.StringValue) -> ir.StringValue:
        """Spark compares text byte by byte: DuckDB's fast path holds (see there)."""
        v: Any = value
        clean = (v >= "!") & (v.right(1) >= "!")
        return ibis.ifelse(clean, v, v.strip())

    @classmethod
    def below_bang(cls, value: ir.StringValue) -> ir.BooleanValue:
        """``value < "!"`` (Spark compares UTF-8 bytes, i.e. code points)."""
        v: Any = value
        return v < "!"

    @classmethod
    def drop_zero_fraction(cls, text: ir.StringValue) -> ir.StringValue:
        """Java regular expressions name the first group ``$1`` (``\\1`` is a literal "1")."""
        return text.re_replace(r"^(-?[0-9]+)[.]0+$", "$1")

    @classmethod
    def not_finite(cls, value: ir.NumericValue) -> ir.BooleanValue:
        """NULL, NaN or infinite, spelled with comparisons (Spark has no ``isinf``)."""
        v: Any = value
        if not may_be_nan(value):
            return v.isnull()
        return v.isnull() | v.isnan() | (v == float("inf")) | (v == float("-inf"))

    @classmethod
    def parse_number(cls, text: ir.StringValue) -> ir.FloatingValue:
        """The number grammar of :data:`NUMBER_REGEX`, then Spark's ``try_cast``."""
        t: Any = text
        digits = ibis.ifelse(t.contains("_"), t.replace("_", ""), t)
        return ibis.ifelse(
            t.re_search(NUMBER_REGEX), digits.try_cast(idt.float64), ibis.null("float64")
        )

    @classmethod
    def _make_timestamp(cls, *parts: Any) -> ir.TimestampValue:
        *ymdhm, second, micros = parts
        seconds = second.cast(idt.Decimal(8, 6))
        if micros is not None:
            seconds = (second * 1_000_000 + micros).cast(idt.Decimal(14, 0)) / 1_000_000
        return _make_timestamp(*ymdhm, seconds.cast(idt.Decimal(8, 6)))

    # --- errors ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def translate_errors(self, what: str) -> Iterator[None]:
        """Spark's errors about the data or the cluster become one-line InputErrors."""
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        try:
            yield
        except KeyboardInterrupt:
            self.cancel()
            raise
        except (PySparkException, Py4JError) as exc:
            if self.is_interrupt(exc):
                raise KeyboardInterrupt from None
            raise InputError(f"Spark could not process {what}: {_spark_reason(exc)}") from None

    def is_interrupt(self, exc: BaseException) -> bool:
        """Whether the job was cancelled (by custseg, after a signal)."""
        text = str(exc)
        return isinstance(exc, KeyboardInterrupt) or (
            "cancelled" in text.lower() and ("job" in text.lower())
        )


def _spark_reason(exc: BaseException) -> str:
    """The useful line of a Spark error: its error class and message, without the JVM trace."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("[") or "Exception:" in ln:
            text = ln.split("Exception: ", 1)[-1]
            return text[:300] + ("" if text.endswith(".") else ".")
    return (lines[0][:300] if lines else type(exc).__name__) + " Check the input and the cluster."


_JAVA_CHARSETS = {
    "utf-8": "UTF-8",
    "iso8859-1": "ISO-8859-1",
    "ascii": "US-ASCII",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16LE",
    "utf-16-be": "UTF-16BE",
    "utf-32": "UTF-32",
}


def _java_charset(encoding: str) -> str:
    """Spark's name for a Python encoding (Spark 4 reads CSV in these only)."""
    import codecs

    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(
            f"Unknown encoding {encoding!r}. Pass --encoding utf-8 or latin-1."
        ) from None
    if name not in _JAVA_CHARSETS:
        raise InputError(
            f"Spark reads CSV only as {', '.join(sorted(set(_JAVA_CHARSETS.values())))}, not "
            f"{encoding!r}. Convert the file to UTF-8, or run with --engine duckdb."
        )
    return _JAVA_CHARSETS[name]


@ibis.udf.scalar.builtin(name="make_timestamp")
def _make_timestamp(  # type: ignore[empty-body]
    year: int, month: int, day: int, hour: int, minute: int, second: decimal.Decimal
) -> dt.datetime:
    """Spark's make_timestamp (its inputs are checked before: it never fails)."""
