"""Reading a run folder (temporary home: moves to :mod:`custseg.runs` with issue 8)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..cluster import ClusterModel, KSelection
from ..errors import CustsegError, InputError

__all__ = ["RunFiles", "read_run"]

FEATURES = ("recency", "frequency", "monetary")


@dataclass(frozen=True)
class RunFiles:
    """The files of a finished run, read and checked.

    Attributes
    ----------
    out_dir : Path
    customers : DataFrame
        segments.csv: ``customer_id`` (str), ``recency``, ``frequency``, ``monetary``,
        ``outlier`` (bool), ``cluster`` (int).
    summary, run : dict
        summary.json and run.json.
    model : ClusterModel
        From model.json.
    selection : KSelection
        ``summary["k_selection"]``.
    segments : list of dict
        ``summary["segments"]`` in cluster order.
    """

    out_dir: Path
    customers: pd.DataFrame
    summary: dict[str, Any]
    run: dict[str, Any]
    model: ClusterModel
    selection: KSelection
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def names(self) -> dict[int, str]:
        """Cluster -> segment name."""
        return {int(s["cluster"]): str(s["name"]) for s in self.segments}

    @property
    def seed(self) -> int:
        """The run's seed (0 when it had none), for the report's samples."""
        seed = self.run.get("seed")
        return int(seed) if isinstance(seed, int) else 0


def _fix(out_dir: Path) -> str:
    return f"run `custseg run INPUT --out {out_dir}` first"


def _read_json(out_dir: Path, name: str) -> dict[str, Any]:
    path = out_dir / name
    if not path.is_file():
        raise InputError(f"{out_dir} has no {name}: {_fix(out_dir)}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{path} is not readable JSON ({msg}): re-create it, {_fix(out_dir)}."
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path} holds no JSON object: re-create it, {_fix(out_dir)}.")
    return data


#: Text columns stay in Arrow memory (a million ids as Python objects would cost seconds).
_ARROW_TEXT = {pa.string(): pd.StringDtype("pyarrow")}


def _read_segments(out_dir: Path) -> pd.DataFrame:
    path = out_dir / "segments.csv"
    if not path.is_file():
        raise InputError(f"{out_dir} has no segments.csv: {_fix(out_dir)}.")
    need = ("customer_id", *FEATURES, "outlier", "cluster")
    text = pa.string()
    try:
        # pyarrow's reader: a million customers in a fraction of a second (pandas' own
        # parser takes seconds). Everything is text unless it parses as numbers; no value
        # is read as missing.
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={"customer_id": text, "outlier": text, "segment": text},
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        missing = [c for c in need if c not in table.column_names]
        if missing:
            raise ValueError(f"missing column(s) {missing}")
        ids = table.column("customer_id")
        out = pd.DataFrame({"customer_id": ids.to_pandas(types_mapper=_ARROW_TEXT.get)})
        for c in FEATURES:
            out[c] = pd.to_numeric(table.column(c).to_pandas(), errors="raise").astype(np.float64)
        flags = pc.utf8_lower(table.column("outlier"))
        if pc.all(pc.is_in(flags, value_set=pa.array(["true", "false"]))).as_py() is False:
            raise ValueError("outlier must be true or false")
        out["outlier"] = pc.equal(flags, "true").to_numpy(zero_copy_only=False).astype(bool)
        cluster = table.column("cluster").to_pandas()
        out["cluster"] = pd.to_numeric(cluster, errors="raise").astype(np.int64)
        if not np.isfinite(out[list(FEATURES)].to_numpy()).all():
            raise ValueError("non-finite recency, frequency or monetary")
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
        If the folder or a file is missing or malformed; the message names the file and the fix.
    ModelFileError
        If model.json is not a custseg model.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(
            f"{out} is not a folder: pass the --out folder of a finished `custseg run`."
        )
    summary = _read_json(out, "summary.json")
    model_doc = _read_json(out, "model.json")
    run_doc = _read_json(out, "run.json")
    customers = _read_segments(out)
    try:
        model = ClusterModel.from_dict(model_doc["model"])
    except KeyError:
        raise InputError(f"{out / 'model.json'} has no 'model' entry: {_fix(out)}.") from None
    except CustsegError as exc:
        raise InputError(f"{out / 'model.json'}: {exc}") from None
    try:
        ks = summary["k_selection"]
        names = {f.name for f in fields(KSelection)}
        selection = KSelection(**{k: v for k, v in ks.items() if k in names})
        segments = sorted((dict(s) for s in summary["segments"]), key=lambda s: int(s["cluster"]))
        for key in ("ledger", "metrics", "as_of", "k"):
            summary[key]
        for s in segments:
            for key in (
                "name",
                "customers",
                "share_customers",
                "revenue",
                "share_revenue",
                "description",
                "action",
                "recency_mean",
                "frequency_mean",
                "monetary_mean",
            ):
                s[key]
        if len(selection.sse) != len(selection.k_values):
            raise ValueError("k_values and sse differ in length")
    except KeyError as exc:
        raise InputError(
            f"{out / 'summary.json'} lacks {exc}: re-create it, {_fix(out)}."
        ) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{out / 'summary.json'} is malformed ({exc}): {_fix(out)}.") from None
    known = {int(s["cluster"]) for s in segments}
    unknown = sorted(set(customers["cluster"].unique().tolist()) - known)
    if unknown:
        raise InputError(
            f"segments.csv has cluster(s) {unknown[:5]} that summary.json does not list: "
            f"the files come from different runs; {_fix(out)}."
        )
    return RunFiles(out, customers, summary, run_doc, model, selection, segments)
