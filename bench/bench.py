"""The custseg benchmark: one command, every measurement in a fresh subprocess.

Usage::

    python bench/bench.py [--rows 1M,10M,100M] [--repeat 3] [--quick] [--only rfm,csv,run,...]

Sections (``--only`` picks some; all by default):

- ``startup``: ``custseg --version`` and ``custseg --help`` as a user runs them (wall time with
  interpreter start; at least 5 runs);
- ``demo``: ``custseg demo --no-report``, ``custseg demo`` and ``custseg backtest`` on the
  bundled data (wall time with interpreter start), and the demo run stage by stage (run.json);
- ``rfm``: the RFM stage (``load_transactions`` + ``mark_drops`` + ``compute_rfm_and_ledger``)
  beside the hand-written DuckDB SQL of ``bench/anchors.py`` (the 1.00x baseline), on Parquet,
  at every ``--rows`` size, the two interleaved run by run so both see the same machine load;
- ``csv``: the same on a 10M-row CSV copy;
- ``run``: ``custseg run`` end to end (the real command line, interpreter start included) at
  every size, with its stage timings (run.json) and the time spent writing the report;
- ``customers``: the RFM stage and ``custseg run`` at 10M rows with 10k, 100k and 1M customers;
- ``cluster``: clustering at the customers of the largest size (about 1M at 100M rows): the
  default sweep, fewer/more K-Means restarts, silhouette sample sizes, and MiniBatch K-Means
  against full K-Means (SSE per k);
- ``sweep``: the K-Means k sweep on a seeded sample (the default above
  ``methods.kmeans.SWEEP_SAMPLE`` customers) against the full sweep, at several seeds, on 1M
  customers and on Online Retail (forced to sample, since it is below the limit): the knee
  found, the final SSE (sampled / full) and the time;
- ``anchors``: pandas groupby, lifetimes and pymc-marketing on the 10M Parquet file;
- ``report``: ``write_report`` in a fresh process (import, then the build: PNG only, and with
  SVG) and ``custseg report`` as a user runs it, on the demo run and on a run of the largest
  size (about 1M customers at 100M rows); run folders are made once with ``--no-report`` into
  ``bench/data/``, and the section runs at least 5 times (it is quick, and noisy).

Missing data files are generated into ``bench/data/`` with :mod:`custseg.generate` (seeded, so
every machine benchmarks the same rows). Each measurement is one subprocess; its peak RSS is the
child's own ``ru_maxrss`` from ``os.wait4`` (the whole process: Python, NumPy and DuckDB). The
table shows medians of ``--repeat`` runs, CPU seconds (user + system, from the same
``wait4``) beside wall seconds; ``--baseline SRC`` measures another checkout's ``src/`` beside
this one, interleaved run by run (sections rfm, csv, startup, demo, report); JSON goes to
``bench/results.json`` (``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"
# CUSTSEG_SRC lets the benchmark run another checkout of the package (e.g. a patched copy).
SRC = Path(os.environ.get("CUSTSEG_SRC", REPO / "src"))
SECTIONS = (
    "startup",
    "demo",
    "rfm",
    "csv",
    "run",
    "customers",
    "cluster",
    "sweep",
    "anchors",
    "report",
)
CUSTOMER_SIZES = (10_000, 100_000, 1_000_000)
BUNDLED = SRC / "custseg" / "datasets" / "online_retail.parquet"  # the demo's data


# --------------------------------------------------------------------------------------------
# sizes and files


def parse_rows(text: str) -> int:
    """``"10M"`` -> 10_000_000, ``"500k"`` -> 500_000, ``"1000"`` -> 1000."""
    t = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if scale > 1 else t) * scale)


def label(n: int) -> str:
    """10_000_000 -> ``"10m"``."""
    for unit, size in (("g", 10**9), ("m", 10**6), ("k", 10**3)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def data_file(rows: int, *, fmt: str = "parquet", customers: int | None = None) -> Path:
    """bench/data/tx_<rows>[_c<customers>].<fmt>, generated if missing."""
    suffix = f"_c{label(customers)}" if customers else ""
    path = DATA / f"tx_{label(rows)}{suffix}.{fmt}"
    if not path.exists():
        print(f"generating {path.name} ({rows:,} rows) ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        _generate(path, rows, customers)
        print(f"  done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return path


def _generate(path: Path, rows: int, customers: int | None) -> None:
    sys.path.insert(0, str(SRC))
    from custseg.generate import generate_transactions

    generate_transactions(path, rows=rows, customers=customers)


# --------------------------------------------------------------------------------------------
# workers: each runs in its own process and prints one JSON line


def _worker(kind: str, args: list[str]) -> dict[str, Any]:
    sys.path.insert(0, str(SRC))
    sys.path.insert(0, str(HERE))
    import warnings

    warnings.simplefilter("ignore")
    if kind == "sql":
        import duckdb  # noqa: F401  (imports are start-up, timed in the startup section)
        from anchors import duckdb_sql_rfm

        start = time.perf_counter()
        rfm = duckdb_sql_rfm(args[0])
        return {"seconds": time.perf_counter() - start, "customers": len(rfm)}
    if kind == "rfm":
        return _worker_rfm(args[0])
    if kind in ("pandas", "lifetimes", "pymc"):
        import anchors

        runner = {
            "pandas": anchors.pandas_rfm,
            "lifetimes": anchors.lifetimes_rfm,
            "pymc": anchors.pymc_rfm,
        }[kind]
        start = time.perf_counter()
        rfm = runner(args[0])
        return {"seconds": time.perf_counter() - start, "customers": len(rfm)}
    if kind == "cluster":
        return _worker_cluster(args[0], json.loads(args[1]))
    if kind == "minibatch":
        return _worker_minibatch(args[0])
    if kind == "report":
        return _worker_report(args[0], svg=args[1:] == ["svg"])
    if kind == "sweep":
        return _worker_sweep(args[0], json.loads(args[1]))
    raise SystemExit(f"unknown worker {kind}")


def _worker_rfm(path: str) -> dict[str, Any]:
    import ibis

    from custseg.clean import mark_drops
    from custseg.config import CleanConfig
    from custseg.features import compute_rfm_and_ledger
    from custseg.load import load_transactions

    ibis.duckdb  # noqa: B018  (the backend's import, as duckdb's for the SQL baseline)
    start = time.perf_counter()
    tx = load_transactions(path)
    loaded = time.perf_counter()
    rfm, ledger, _ = compute_rfm_and_ledger(mark_drops(tx.table, config=CleanConfig()))
    done = time.perf_counter()
    return {
        "seconds": done - start,
        "load_seconds": loaded - start,
        "customers": len(rfm),
        "rows_used": ledger.rows_used,
    }


def _rfm_cache(path: str) -> Any:
    """The RFM table of a data file, computed once and kept beside it."""
    import pandas as pd

    cache = DATA / f"rfm_{Path(path).stem}.parquet"
    if cache.exists():
        return pd.read_parquet(cache)
    from custseg.clean import mark_drops
    from custseg.config import CleanConfig
    from custseg.features import compute_rfm_and_ledger
    from custseg.load import load_transactions

    rfm, _, _ = compute_rfm_and_ledger(
        mark_drops(load_transactions(path).table, config=CleanConfig())
    )
    rfm.to_parquet(cache)
    return rfm


def _worker_cluster(path: str, settings: dict[str, Any]) -> dict[str, Any]:
    from custseg.cluster import fit_segments
    from custseg.config import ClusterConfig

    rfm = _rfm_cache(path)
    config = ClusterConfig(**settings)
    start = time.perf_counter()
    fit = fit_segments(rfm[["recency", "frequency", "monetary"]], config=config)
    seconds = time.perf_counter() - start
    sel = fit.selection
    return {
        "seconds": seconds,
        "customers": len(rfm),
        "k": fit.model.k,
        "method": sel.method,
        "sse": [float(s) for s in sel.sse],
        "silhouette": sel.silhouette,
        "final_silhouette": fit.metrics.get("silhouette"),
    }


def _worker_minibatch(path: str) -> dict[str, Any]:
    """Full K-Means against MiniBatch K-Means per k on the scaled features of the default fit."""
    import numpy as np
    from sklearn.cluster import KMeans, MiniBatchKMeans

    from custseg.cluster import fit_segments
    from custseg.config import ClusterConfig

    rfm = _rfm_cache(path)
    cfg = ClusterConfig()
    fit = fit_segments(rfm[["recency", "frequency", "monetary"]], config=ClusterConfig(k=4))
    Z, outlier = fit.model.scaled(rfm[["recency", "frequency", "monetary"]])
    X = np.ascontiguousarray(Z[~outlier])
    out: dict[str, Any] = {
        "customers": len(X),
        "k": [],
        "full_s": [],
        "full_sse": [],
        "minibatch_s": [],
        "minibatch_sse": [],
    }
    n_init = max(1, min(cfg.n_init, 1_000_000 // len(X)))
    for k in cfg.k_values:
        if k < 2:
            continue
        t = time.perf_counter()
        full = KMeans(n_clusters=k, n_init=n_init, algorithm="lloyd", random_state=0).fit(X)
        t_full = time.perf_counter() - t
        t = time.perf_counter()
        mb = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=0).fit(X)
        t_mb = time.perf_counter() - t
        mb_sse = float(((X - mb.cluster_centers_[mb.predict(X)]) ** 2).sum())
        out["k"].append(k)
        out["full_s"].append(t_full)
        out["full_sse"].append(float(full.inertia_))
        out["minibatch_s"].append(t_mb)
        out["minibatch_sse"].append(mb_sse)
    out["seconds"] = sum(out["full_s"])
    out["minibatch_seconds"] = sum(out["minibatch_s"])
    return out


def _worker_sweep(path: str, settings: dict[str, Any]) -> dict[str, Any]:
    """One default K-Means fit (knee rule) with the sweep sampled at ``settings["sample"]``
    customers (None: the full sweep) and seed ``settings["seed"]``: knee, k, final SSE."""
    from custseg.cluster import fit_segments
    from custseg.config import ClusterConfig
    from custseg.methods.kmeans import KMeansMethod

    rfm = _rfm_cache(path)[["recency", "frequency", "monetary"]]
    KMeansMethod.sweep_limit = settings["sample"]
    config = ClusterConfig(select="knee", random_state=settings["seed"])
    start = time.perf_counter()
    fit = fit_segments(rfm, config=config)
    seconds = time.perf_counter() - start
    Z, outlier = fit.model.scaled(rfm)
    keep = ~outlier
    centers = fit.model.center_array()
    sse = float(((Z[keep] - centers[fit.labels[keep]]) ** 2).sum())
    return {
        "seconds": seconds,
        "customers": int(keep.sum()),
        "knee": fit.selection.knee,
        "k": fit.model.k,
        "final_sse": sse,
        "sweep_sample": fit.sweep_sample,
    }


def _worker_report(run_dir: str, *, svg: bool) -> dict[str, Any]:
    """``write_report`` on a run folder: the import of the report path, then the build."""
    start = time.perf_counter()
    from custseg.report import write_report

    imported = time.perf_counter()
    cpu = time.process_time()
    # Trees before the svg parameter always wrote SVG: call them without it.
    paths = write_report(run_dir, svg=True) if svg else write_report(run_dir)
    return {
        "seconds": time.perf_counter() - imported,
        "cpu_seconds": time.process_time() - cpu,
        "import_seconds": imported - start,
        "files": len(paths),
    }


# --------------------------------------------------------------------------------------------
# the parent: one subprocess per measurement


def measure(cmd: list[str], *, timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; wall seconds, the child's peak RSS in MiB and its last JSON line, if any."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                return {"error": f"timeout after {timeout:.0f} s"}
            time.sleep(0.05)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = (stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:200]}"}
    result: dict[str, Any] = {}
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            break
    result["wall"] = wall
    result["cpu"] = usage.ru_utime + usage.ru_stime
    result["peak_mib"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


def worker_cmd(kind: str, *args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", kind, *args]


def _env(src: Path = SRC) -> dict[str, str]:
    """The environment of a child that runs the package of ``src`` (this tree's by default)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    env["CUSTSEG_SRC"] = str(src)  # for workers: they put it first on sys.path
    return env


def run_cli(path: Path, timeout: float, src: Path = SRC, *, report: bool = True) -> dict[str, Any]:
    """``custseg run`` as a user runs it; adds stage timings and the report's share."""
    out = Path(tempfile.mkdtemp(prefix="custseg-bench-")) / "out"
    try:
        cmd = [sys.executable, "-m", "custseg", "run", str(path), "--out", str(out), "--quiet"]
        cmd += [] if report else ["--no-report"]
        start_epoch = time.time()
        r = measure(cmd, timeout=timeout, env=_env(src))
        if "error" in r:
            return r
        run_json = json.loads((out / "run.json").read_text())
        stages = run_json.get("timings_seconds", {})
        r.update({f"stage:{k}": v for k, v in stages.items()})
        report = out / "report.html"
        if report.exists():
            r["write_outputs_done"] = (out / "run.json").stat().st_mtime - start_epoch
            r["report_seconds"] = report.stat().st_mtime - (out / "run.json").stat().st_mtime
        summary = json.loads((out / "summary.json").read_text())
        r["customers"] = summary["ledger"]["customers_segmented"]
        r["k"] = summary["k"]
        r["seconds"] = r["wall"]
        return r
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def repeat(fns: dict[str, Any], n: int, log: str) -> dict[str, dict[str, Any]]:
    """Call each zero-argument fn ``n`` times, interleaved; median of every numeric field."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in fns}
    for i in range(n):
        for name, fn in fns.items():
            r = fn()
            print(
                f"{log} {name} run {i + 1}/{n}: "
                + (
                    r["error"]
                    if "error" in r
                    else f"{r.get('seconds', r['wall']):.2f} s, {r['peak_mib']:.0f} MiB"
                ),
                file=sys.stderr,
                flush=True,
            )
            runs[name].append(r)
    out: dict[str, dict[str, Any]] = {}
    for name, rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            out[name] = {"error": rs[0]["error"]}
            continue
        summary: dict[str, Any] = {"runs": ok}
        for key, value in ok[0].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                summary[key] = statistics.median(float(r[key]) for r in ok if key in r)
            elif key not in summary:
                summary[key] = value
        out[name] = summary
    return out


# --------------------------------------------------------------------------------------------
# sections


def section_rfm(
    sizes: list[int], n: int, timeout: float, fmt: str = "parquet", baseline: Path | None = None
) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        path = str(data_file(size, fmt=fmt))
        fns: dict[str, Any] = {
            "sql": lambda p=path: measure(worker_cmd("sql", p), timeout=timeout),
            "custseg": lambda p=path: measure(worker_cmd("rfm", p), timeout=timeout, env=_env()),
        }
        if baseline is not None:
            fns["baseline"] = lambda p=path: measure(
                worker_cmd("rfm", p), timeout=timeout, env=_env(baseline)
            )
        res = repeat(fns, n, f"rfm {fmt} {label(size)}")
        rows.append({"rows": size, "format": fmt, **res})
    return rows


def _cli(*args: str) -> list[str]:
    """The ``custseg`` command as a user runs it: the console script beside this Python."""
    script = Path(sys.executable).parent / "custseg"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "custseg", *args]


def section_startup(n: int, timeout: float, baseline: Path | None = None) -> dict[str, Any]:
    trees = {"": SRC, **({" (baseline)": baseline} if baseline else {})}
    fns: dict[str, Any] = {}
    for tag, src in trees.items():
        env = _env(src)
        for what in ("--version", "--help"):
            fns[f"custseg {what}{tag}"] = lambda w=what, e=env: measure(
                _cli(w), timeout=timeout, env=e
            )
    return repeat(fns, max(n, 5), "startup")


def _demo(args: list[str], timeout: float, src: Path) -> dict[str, Any]:
    """A bundled-data command in a fresh folder; the run's stage timings when it writes them."""
    out = Path(tempfile.mkdtemp(prefix="custseg-bench-")) / "out"
    try:
        r = measure(_cli(*args, "--out", str(out), "--quiet"), timeout=timeout, env=_env(src))
        run_json = out / "run.json"
        if "error" not in r and run_json.exists():
            stages = json.loads(run_json.read_text()).get("timings_seconds", {})
            r.update({f"stage:{k}": v for k, v in stages.items()})
        return r
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def section_demo(n: int, timeout: float, baseline: Path | None = None) -> dict[str, Any]:
    bundled = str(BUNDLED)
    commands = {
        "custseg demo --no-report": ["demo", "--no-report"],
        "custseg demo": ["demo"],
        "custseg backtest (bundled data)": ["backtest", bundled],
    }
    trees = {"": SRC, **({" (baseline)": baseline} if baseline else {})}
    fns = {
        f"{name}{tag}": (lambda a=args, s=src: _demo(a, timeout, s))
        for name, args in commands.items()
        for tag, src in trees.items()
    }
    return repeat(fns, n, "demo")


SWEEP_SEEDS = (0, 1, 2, 3, 4)


def section_sweep(timeout: float) -> dict[str, Any]:
    """The sampled k sweep against the full one, per seed (one run each: the figures are
    deterministic given the seed; the times are indicative)."""
    inputs = {
        "10M rows, 1M-customer setting": (
            str(data_file(10_000_000, customers=1_000_000)),
            50_000,
        ),
        "Online Retail, sample 2,000": (str(BUNDLED), 2_000),
        "Online Retail, sample 1,000": (str(BUNDLED), 1_000),
    }
    out: dict[str, Any] = {}
    for name, (path, sample) in inputs.items():
        rows = []
        for seed in SWEEP_SEEDS:
            pair = {}
            for how, size in (("sampled", sample), ("full", None)):
                settings = json.dumps({"sample": size, "seed": seed})
                pair[how] = measure(worker_cmd("sweep", path, settings), timeout=timeout)
                print(f"sweep {name} seed {seed} {how}: {pair[how]}", file=sys.stderr, flush=True)
            rows.append({"seed": seed, **pair})
        out[name] = rows
    return out


def section_run(
    sizes: list[int],
    n: int,
    timeout: float,
    customers: int | None = None,
    baseline: Path | None = None,
) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        path = data_file(size, customers=customers)
        fns: dict[str, Any] = {
            "run": lambda p=path: run_cli(p, timeout),
            "no_report": lambda p=path: run_cli(p, timeout, report=False),
        }
        if baseline is not None:
            fns["baseline"] = lambda p=path: run_cli(p, timeout, baseline)
            fns["baseline_no_report"] = lambda p=path: run_cli(p, timeout, baseline, report=False)
        res = repeat(fns, n, f"run {path.name}")
        rows.append({"rows": size, "customers_param": customers, **res})
    return rows


def section_customers(n: int, timeout: float) -> list[dict[str, Any]]:
    rows = []
    for c in CUSTOMER_SIZES:
        path = data_file(10_000_000, customers=c)
        res = repeat(
            {
                "sql": lambda p=str(path): measure(worker_cmd("sql", p), timeout=timeout),
                "custseg": lambda p=str(path): measure(worker_cmd("rfm", p), timeout=timeout),
                "run": lambda p=path: run_cli(p, timeout),
            },
            n,
            f"customers {label(c)}",
        )
        rows.append({"rows": 10_000_000, "customers_param": c, **res})
    return rows


CLUSTER_VARIANTS: dict[str, dict[str, Any]] = {
    "default (n_init=10, sil 10k)": {},
    "n_init=1": {"n_init": 1},
    "n_init=3": {"n_init": 3},
    "silhouette 2k": {"silhouette_sample": 2_000},
    "silhouette 50k": {"silhouette_sample": 50_000},
    "fixed k=4 (no sweep)": {"k": 4, "k_values": (4,)},
}


def section_cluster(size: int, n: int, timeout: float) -> dict[str, Any]:
    path = str(data_file(size))
    # Warm the RFM cache outside the timed runs.
    measure(worker_cmd("cluster", path, json.dumps({"k": 2, "k_values": [2]})), timeout=timeout)
    fns = {
        name: (
            lambda s=settings: measure(worker_cmd("cluster", path, json.dumps(s)), timeout=timeout)
        )
        for name, settings in CLUSTER_VARIANTS.items()
    }
    res = repeat(fns, n, f"cluster {label(size)}")
    mb = measure(worker_cmd("minibatch", path), timeout=timeout)
    return {"rows": size, "variants": res, "minibatch": mb}


def section_anchors(n: int, timeout: float) -> dict[str, Any]:
    path = str(data_file(10_000_000))
    fns: dict[str, Any] = {
        m: (lambda m=m: measure(worker_cmd(m, path), timeout=timeout))
        for m in ("sql", "pandas", "lifetimes", "pymc")
    }
    fns["custseg"] = lambda: measure(worker_cmd("rfm", path), timeout=timeout)
    return repeat(fns, n, "anchors 10m")


def run_folder(name: str, args: list[str], timeout: float, src: Path = SRC) -> Path:
    """A finished run without its report, made once per data and source tree (by that tree:
    run folders of one version need not be readable by another)."""
    import hashlib

    tree = hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:8]
    out = DATA / f"run_{name}_{tree}"
    if not (out / "summary.json").exists():
        print(f"making the run folder {out.name} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "custseg", *args, "--out", str(out), "--force"]
        r = measure([*cmd, "--no-report", "--quiet"], timeout=timeout, env=_env(src))
        if "error" in r:
            raise SystemExit(f"cannot make {out}: {r['error']}")
    return out


def _report_runs(
    name: str, args: list[str], n: int, timeout: float, baseline: Path | None
) -> tuple[dict[str, dict[str, Any]], Path]:
    """The report measurements of one run: this tree, and the baseline's side by side."""
    trees = {"": SRC, **({" (baseline)": baseline} if baseline else {})}
    fns: dict[str, Any] = {}
    for tag, src in trees.items():
        out, env = str(run_folder(name.split()[0], args, timeout, src)), _env(src)
        cli = [sys.executable, "-m", "custseg", "report", out, "--quiet"]
        fns[f"png{tag}"] = lambda o=out, e=env: measure(
            worker_cmd("report", o), timeout=timeout, env=e
        )
        if not tag:  # trees before write_report(svg=) always wrote SVG: "png" measures both
            fns["svg"] = lambda o=out, e=env: measure(
                worker_cmd("report", o, "svg"), timeout=timeout, env=e
            )
        fns[f"cli{tag}"] = lambda c=cli, e=env: measure(c, timeout=timeout, env=e)
    return repeat(fns, n, f"report {name}"), run_folder(name.split()[0], args, timeout)


def section_report(
    size: int, n: int, timeout: float, baseline: Path | None = None
) -> list[dict[str, Any]]:
    """The report of the demo run and of a run of ``size`` rows (about 1M customers at 100M).

    In a fresh process each time: ``write_report`` (its import timed apart), with and without
    SVG, and ``custseg report`` as a user runs it; the same for a ``baseline`` tree, if given,
    interleaved run by run.
    """
    runs = {"demo": ["demo"], f"{label(size)} rows": ["run", str(data_file(size))]}
    rows = []
    for name, args in runs.items():
        res, out = _report_runs(name, args, n, timeout, baseline)
        summary = json.loads((out / "summary.json").read_text())
        customers = summary["ledger"]["customers_segmented"]
        rows.append({"run": name, "customers": customers, "repeat": n, **res})
    return rows


# --------------------------------------------------------------------------------------------
# the report


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    with contextlib.suppress(ValueError, OSError):
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gib": round(mem / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_start": os.getloadavg(),
    }


def _fmt(r: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    if "error" in r:
        return f"{'error: ' + r['error']:<40}"
    secs = float(r.get("seconds", r["wall"]))
    ratio = f"{secs / float(base['seconds']):.2f}x" if base and "seconds" in base else "-"
    return f"{secs:>8.2f} {ratio:>7} {float(r.get('cpu', 0.0)):>7.2f} {float(r['peak_mib']):>8.0f}"


def _render_timed(title: str, rows: dict[str, Any]) -> list[str]:
    """Commands timed as a user runs them: wall (with start-up), CPU, peak RSS."""
    if not rows:
        return []
    lines = ["", title, f"{'command':<44} {'wall s':>7} {'cpu s':>7} {'peak MiB':>8}  stages (s)"]
    for name, r in rows.items():
        if "error" in r:
            lines.append(f"{name:<44} error: {r['error']}")
            continue
        stages = ", ".join(f"{k[6:]} {v:.2f}" for k, v in r.items() if k.startswith("stage:"))
        lines.append(
            f"{name:<44} {r['wall']:>7.2f} {r['cpu']:>7.2f} {r['peak_mib']:>8.0f}  {stages}"
        )
    return lines


def _render_sweep(sweep: dict[str, Any]) -> list[str]:
    if not sweep:
        return []
    lines = [
        "",
        "k sweep on a seeded sample vs the full sweep (knee rule; final SSE on all fitted rows)",
        f"{'input':<30} {'seed':>4} {'knee s/f':>8} {'k s/f':>6} {'SSE s/f':>9} "
        f"{'time s':>7} {'full s':>7}",
    ]
    for name, rows in sweep.items():
        for row in rows:
            a, b = row["sampled"], row["full"]
            if "error" in a or "error" in b:
                lines.append(f"{name:<30} {row['seed']:>4} error: {a.get('error', b.get('error'))}")
                continue
            lines.append(
                f"{name:<30} {row['seed']:>4} {a['knee']!s:>3}/{b['knee']!s:<4} "
                f"{a['k']:>2}/{b['k']:<3} {a['final_sse'] / b['final_sse']:>9.5f} "
                f"{a['seconds']:>7.2f} {b['seconds']:>7.2f}"
            )
    return lines


def render(results: dict[str, Any]) -> str:
    lines = [
        f"machine: {results['machine']['cpus']} cpus, {results['machine']['ram_gib']} GiB, "
        f"{results['machine']['cpu_model']}; load avg at start "
        f"{', '.join(f'{x:.2f}' for x in results['machine']['load_avg_start'])}, at end "
        f"{', '.join(f'{x:.2f}' for x in results.get('load_avg_end', ()))}",
        f"medians of {results['repeat']} runs; ratio = time / DuckDB SQL time of the same runs",
    ]
    lines += _render_timed("start-up (wall incl. interpreter start)", results.get("startup", {}))
    lines += _render_timed("the bundled data, as a user runs it", results.get("demo", {}))
    head = f"{'what':<34} {'size':>6} {'time s':>8} {'ratio':>7} {'cpu s':>7} {'peak MiB':>8}"
    for key, title in (("rfm", "RFM stage, Parquet"), ("csv", "RFM stage, CSV")):
        for row in results.get(key, []):
            if not lines[-1].startswith(head):
                lines += ["", title, head]
            size = label(row["rows"])
            lines.append(f"{'DuckDB SQL':<34} {size:>6} {_fmt(row['sql'])}")
            lines.append(
                f"{'custseg load+clean+aggregate':<34} {size:>6} {_fmt(row['custseg'], row['sql'])}"
            )
            if "baseline" in row:
                lines.append(
                    f"{'  the baseline tree':<34} {size:>6} {_fmt(row['baseline'], row['sql'])}"
                )
    if results.get("run"):
        lines += [
            "",
            "custseg run, end to end (wall incl. interpreter start)",
            f"{'size':>28} {'wall s':>8} {'peak MiB':>8} {'customers':>10} {'k':>3}  stages (s)",
        ]
        for row in results["run"]:
            notes = {
                "run": "",
                "no_report": " --no-report",
                "baseline": " (baseline)",
                "baseline_no_report": " (baseline) --no-report",
            }
            for tag, note in notes.items():
                if tag not in row:
                    continue
                r, size = row[tag], label(row["rows"]) + note
                if "error" in r:
                    lines.append(f"{size:>28} error: {r['error']}")
                    continue
                stages = ", ".join(
                    f"{k[6:]} {v:.1f}" for k, v in r.items() if k.startswith("stage:")
                )
                rep = f", report {r['report_seconds']:.1f}" if "report_seconds" in r else ""
                lines.append(
                    f"{size:>28} {r['wall']:>8.1f} {r['peak_mib']:>8.0f} "
                    f"{int(r.get('customers', 0)):>10,} {int(r.get('k', 0)):>3}  {stages}{rep}"
                )
    if results.get("customers"):
        lines += [
            "",
            "10M rows, by customers",
            f"{'customers':>10} {'SQL s':>7} {'RFM s':>7} {'ratio':>6} "
            f"{'RFM MiB':>8} {'run s':>7} {'run MiB':>8}",
        ]
        for row in results["customers"]:
            s, c, r = row["sql"], row["custseg"], row["run"]
            if any("error" in x for x in (s, c, r)):
                lines.append(f"{label(row['customers_param']):>10} error")
                continue
            lines.append(
                f"{label(row['customers_param']):>10} {s['seconds']:>7.2f} {c['seconds']:>7.2f} "
                f"{c['seconds'] / s['seconds']:>5.2f}x {c['peak_mib']:>8.0f} {r['wall']:>7.1f} {r['peak_mib']:>8.0f}"  # noqa: E501
            )
    cl = results.get("cluster")
    if cl:
        lines += [
            "",
            f"clustering (fit_segments) at the customers of {label(cl['rows'])} rows",
            f"{'variant':<30} {'time s':>7} {'peak MiB':>8} {'k':>3} {'final silhouette':>16}",
        ]
        for name, r in cl["variants"].items():
            if "error" in r:
                lines.append(f"{name:<30} error: {r['error']}")
                continue
            sil = r.get("final_silhouette")
            lines.append(
                f"{name:<30} {r['seconds']:>7.2f} {r['peak_mib']:>8.0f} {int(r['k']):>3} "
                f"{sil if sil is None else f'{sil:.4f}':>16}"
            )
        mb = cl.get("minibatch", {})
        if "k" in mb:
            lines += [
                f"full K-Means vs MiniBatch (batch 4096, n_init 3) on {mb['customers']:,} rows:",
                f"{'k':>3} {'full s':>7} {'mb s':>7} {'SSE mb/full':>11}",
            ]
            for k, fs, ms, fe, me in zip(
                mb["k"],
                mb["full_s"],
                mb["minibatch_s"],
                mb["full_sse"],
                mb["minibatch_sse"],
                strict=True,
            ):
                lines.append(f"{k:>3} {fs:>7.2f} {ms:>7.2f} {me / fe:>11.4f}")
    an = results.get("anchors")
    if an:
        lines += [
            "",
            "anchors on the 10M Parquet file",
            f"{'method':<12} {'time s':>8} {'ratio':>7} {'cpu s':>7} {'peak MiB':>8} "
            f"{'customers':>10}",
        ]
        for name, r in an.items():
            extra = f" {int(r['customers']):>10,}" if "customers" in r else ""
            lines.append(f"{name:<12} {_fmt(r, an.get('sql'))}{extra}")
    lines += _render_sweep(results.get("sweep", {}))
    lines += _render_report(results.get("report", []))
    return "\n".join(lines)


def _render_report(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        f"report: write_report in a fresh process (import, build PNG only, build with SVG), "
        f"and `custseg report` (wall incl. start-up); medians of {rows[0].get('repeat', '?')} "
        "interleaved runs",
        f"{'run':<20} {'customers':>10} {'import s':>8} {'build s':>8} {'cpu s':>6} "
        f"{'with svg':>8} {'cli s':>6} {'peak MiB':>8}",
    ]
    for row in rows:
        for tag in ("", " (baseline)"):
            png, svg, cli = (
                row.get(f"png{tag}"),
                row.get("svg" if not tag else "-"),
                row.get(f"cli{tag}"),
            )
            if png is None or cli is None:
                continue
            what = row["run"] + tag
            err = next((r["error"] for r in (png, svg or {}, cli) if "error" in r), None)
            if err:
                lines.append(f"{what:<20} error: {err}")
                continue
            svg_s = f"{svg['seconds']:>8.2f}" if svg else f"{'(always)':>8}"
            lines.append(
                f"{what:<20} {int(row['customers']):>10,} {png['import_seconds']:>8.2f} "
                f"{png['seconds']:>8.2f} {png['cpu_seconds']:>6.2f} {svg_s} "
                f"{cli['wall']:>6.2f} {png['peak_mib']:>8.0f}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", default="1M,10M,100M", help="sizes, e.g. 1M,10M,100M")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--quick", action="store_true", help="1M and 10M rows, 1 run, no anchors")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--json", dest="json_out", default=str(HERE / "results.json"))
    parser.add_argument(
        "--baseline",
        help="another checkout's src/ folder, measured side by side (startup, demo, rfm, csv, "
        "report)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, rest), default=str))
        return 0
    sizes = sorted(parse_rows(s) for s in args.rows.split(",") if s.strip())
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    n = args.repeat
    if args.quick:
        sizes = [s for s in sizes if s <= 10_000_000] or [1_000_000]
        n = 1
        only = [s for s in only if s not in ("anchors", "customers", "sweep")]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")
    results: dict[str, Any] = {
        "machine": machine(),
        "repeat": n,
        "rows": sizes,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }

    def save() -> None:
        results["load_avg_end"] = os.getloadavg()
        Path(args.json_out).write_text(json.dumps(results, indent=2, default=str) + "\n")

    baseline = Path(args.baseline).resolve() if args.baseline else None
    if "startup" in only:
        results["startup"] = section_startup(n, args.timeout, baseline)
        save()
    if "demo" in only:
        results["demo"] = section_demo(n, args.timeout, baseline)
        save()
    if "rfm" in only:
        results["rfm"] = section_rfm(sizes, n, args.timeout, baseline=baseline)
        save()
    if "csv" in only:
        results["csv"] = section_rfm([10_000_000], n, args.timeout, fmt="csv", baseline=baseline)
        save()
    if "run" in only:
        results["run"] = section_run(sizes, n, args.timeout, baseline=baseline)
        save()
    if "cluster" in only:
        results["cluster"] = section_cluster(max(sizes), n, args.timeout)
        save()
    if "sweep" in only:
        results["sweep"] = section_sweep(args.timeout)
        save()
    if "anchors" in only:
        results["anchors"] = section_anchors(n, args.timeout)
        save()
    if "customers" in only:
        results["customers"] = section_customers(n, args.timeout)
        save()
    if "report" in only:
        results["report"] = section_report(max(sizes), max(n, 5), args.timeout, baseline)
        save()
    save()
    print(render(results))
    print(f"\nJSON: {args.json_out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
