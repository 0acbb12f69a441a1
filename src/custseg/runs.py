"""Run folders: reading a finished run's files, and replacing a folder whole or not at all.

A run folder holds segments.csv, summary.json, model.json and run.json (see
:mod:`custseg.formats`), and report.html with figures/ once the report is built. The report,
scoring and run comparison read runs through :func:`read_run`; everything that writes a
folder goes through :func:`atomic_output_dir` or :func:`replace_atomically`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .errors import InputError, OutputError
from .formats import ModelFile, RunRecord, SegmentRecord, Summary
from .model import ClusterModel, KSelection
from .schema import feature_columns

__all__ = [
    "SEGMENTS_FILE",
    "RunFiles",
    "atomic_output_dir",
    "read_run",
    "replace_atomically",
]

SEGMENTS_FILE = "segments.csv"
#: Text columns stay in Arrow memory (a million ids as Python objects would cost seconds).
_ARROW_TEXT = {pa.string(): pd.StringDtype("pyarrow")}


@dataclass(frozen=True)
class RunFiles:
    """The files of a finished run, read and checked.

    Attributes
    ----------
    out_dir : Path
    customers : DataFrame
        segments.csv: ``customer_id`` (str), ``recency``, ``frequency``, ``monetary`` (not
        for data without money), ``outlier`` (bool), ``cluster`` (int), and ``returned``
        where the file has it.
    summary : Summary
        summary.json.
    run : RunRecord
        run.json.
    model_file : ModelFile
        model.json.
    """

    out_dir: Path
    customers: pd.DataFrame
    summary: Summary
    run: RunRecord
    model_file: ModelFile

    @property
    def model(self) -> ClusterModel:
        """The fitted model of model.json."""
        return self.model_file.model

    @property
    def selection(self) -> KSelection:
        """How k was chosen (``summary.k_selection``)."""
        return self.summary.k_selection

    @property
    def segments(self) -> list[SegmentRecord]:
        """The segments of summary.json, in cluster order."""
        return sorted(self.summary.segments, key=lambda s: s.cluster)

    @property
    def names(self) -> dict[int, str]:
        """Cluster -> segment name."""
        return {s.cluster: s.name for s in self.segments}

    @property
    def seed(self) -> int:
        """The run's seed (0 when it had none), for the report's samples."""
        return self.run.seed if self.run.seed is not None else 0


def _fix(out_dir: Path) -> str:
    return f"run `custseg run INPUT --out {out_dir}` first"


def _read_segments(out_dir: Path) -> pd.DataFrame:
    path = out_dir / SEGMENTS_FILE
    if not path.is_file():
        raise InputError(f"{out_dir} has no {SEGMENTS_FILE}: {_fix(out_dir)}.")
    try:
        out = _segments_table(path)
    except (
        ValueError,
        TypeError,
        OSError,
        UnicodeDecodeError,
        pa.ArrowException,  # not all of pyarrow's errors are ValueErrors
    ) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{path} is not a custseg segments table ({msg}): {_fix(out_dir)}."
        ) from None
    if len(out) == 0:
        raise InputError(f"{path} has no customers: {_fix(out_dir)}.")
    return out


def _segments_table(path: Path) -> pd.DataFrame:
    """segments.csv read by pyarrow: a million customers in a fraction of a second."""
    text = pa.string()
    # Everything is text unless it parses as numbers; no value is read as missing.
    table = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={"customer_id": text, "outlier": text, "segment": text},
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    features = feature_columns(table.column_names)  # no monetary: data without money
    need = ("customer_id", *features, "outlier", "cluster")
    missing = [c for c in need if c not in table.column_names]
    if missing:
        raise ValueError(f"missing column(s) {missing}")
    out = pd.DataFrame(
        {"customer_id": table.column("customer_id").to_pandas(types_mapper=_ARROW_TEXT.get)}
    )
    for c in features:
        out[c] = pd.to_numeric(table.column(c).to_pandas(), errors="raise").astype(np.float64)
    flags = pc.utf8_lower(table.column("outlier"))
    if pc.all(pc.is_in(flags, value_set=pa.array(["true", "false"]))).as_py() is False:
        raise ValueError("outlier must be true or false")
    out["outlier"] = pc.equal(flags, "true").to_numpy(zero_copy_only=False).astype(bool)
    cluster = table.column("cluster").to_pandas()
    out["cluster"] = pd.to_numeric(cluster, errors="raise").astype(np.int64)
    if "returned" in table.column_names:  # written by every run since returns are valued
        returned = table.column("returned").to_pandas()
        out["returned"] = pd.to_numeric(returned, errors="raise").astype(np.float64)
    if not np.isfinite(out[list(features)].to_numpy()).all():
        raise ValueError("non-finite recency, frequency or monetary")
    return out


def read_run(out_dir: str | Path) -> RunFiles:
    """Read and check the files of a finished run.

    Parameters
    ----------
    out_dir : path
        The ``--out`` folder of ``custseg run``.

    Returns
    -------
    RunFiles

    Raises
    ------
    InputError
        If the folder or a file is missing, malformed or of another format version, or the
        files come from different runs; the message names the file and the fix.
    ModelFileError
        If model.json is not a custseg model (a subclass of InputError).
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(
            f"{out} is not a folder: pass the --out folder of a finished `custseg run`."
        )
    for doc in (Summary, ModelFile, RunRecord):
        if not (out / doc.FILE).is_file():
            raise InputError(f"{out} has no {doc.FILE}: {_fix(out)}.")
    fix = f"re-create it, {_fix(out)}"
    summary = Summary.read(out / Summary.FILE, fix=fix)
    model_file = ModelFile.read(out / ModelFile.FILE, fix=fix)
    run_doc = RunRecord.read(out / RunRecord.FILE, fix=fix)
    customers = _read_segments(out)
    absent = [f for f in model_file.model.features if f not in customers.columns]
    if absent:
        raise InputError(
            f"{SEGMENTS_FILE} has no {absent} column but model.json segments on them: the "
            f"files come from different runs; {_fix(out)}."
        )
    known = {s.cluster for s in summary.segments}
    unknown = sorted(set(customers["cluster"].unique().tolist()) - known)
    if unknown:
        raise InputError(
            f"{SEGMENTS_FILE} has cluster(s) {unknown[:5]} that summary.json does not list: "
            f"the files come from different runs; {_fix(out)}."
        )
    return RunFiles(out, customers, summary, run_doc, model_file)


# --- writing folders whole -------------------------------------------------------------------


def replace_atomically(tmp: Path, target: Path) -> None:
    """Put ``tmp`` (a file or folder) at ``target``, replacing what was there, signals held off.

    An existing ``target`` is moved aside, ``tmp`` renamed into place, and the old one removed;
    SIGINT and SIGTERM wait until the swap is complete, so an interrupt never leaves the user
    without the previous ``target``. Both paths must be on one file system.
    """
    signals = {signal.SIGINT, signal.SIGTERM}
    held = threading.current_thread() is threading.main_thread()
    if held:
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        if not target.exists():
            os.replace(tmp, target)
            return
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, backup)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(backup, target)
            raise
        if backup.is_dir():
            shutil.rmtree(backup, ignore_errors=True)
        else:
            backup.unlink(missing_ok=True)
    finally:
        if held:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


def check_output_dir(out_dir: str | Path, *, force: bool = False) -> None:
    """Refuse an output folder that cannot be written whole: a file, or a folder with files
    in it without ``force`` (the CLI asks before any work, and again when it writes).

    Raises
    ------
    OutputError
    """
    target = Path(out_dir)
    if target.exists() and not target.is_dir():
        raise OutputError(f"Output path {str(target)!r} is a file. Pass a folder path with --out.")
    if target.exists() and not force and any(target.iterdir()):
        raise OutputError(
            f"Output folder {str(target)!r} already exists. Pass --force to replace it, "
            "or choose another --out."
        )


@contextlib.contextmanager
def atomic_output_dir(out_dir: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``out_dir`` when the block succeeds.

    Raises
    ------
    OutputError
        If ``out_dir`` exists and ``force`` is false, is a file, or cannot be written.
    """
    target = Path(out_dir)
    check_output_dir(target, force=force)
    parent = target.resolve().parent
    # The pid in the name lets the cleanup find the folder even if a signal lands between its
    # creation and the assignment below.
    prefix = f".{target.name}.tmp-{os.getpid()}-"
    try:
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        except OSError as exc:
            raise OutputError(
                f"Cannot write to {str(parent)!r}: {exc.strerror}. Choose a writable --out folder."
            ) from None
        yield tmp
        os.chmod(tmp, 0o755)
        replace_atomically(tmp, target)
    except BaseException:
        for leftover in parent.glob(prefix + "*"):
            shutil.rmtree(leftover, ignore_errors=True)
        raise
