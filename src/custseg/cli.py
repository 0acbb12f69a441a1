"""The ``custseg`` command: parse options, call the library, print a short account.

Commands only parse and call; errors the library raises on purpose (:class:`CustsegError`)
become one ``error: ...`` line on stderr and exit code 1. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import __version__
from .config import RunConfig, load_config_file
from .engine import Engine, is_url
from .engine import connect as connect_engine
from .errors import ConfigError, CustsegError, CustsegWarning
from .load import CatalogTable
from .output import SEGMENT_COLUMNS, atomic_output_dir, write_outputs
from .pipeline import SegmentationResult, describe_columns, run

__all__ = ["app", "main"]

app = typer.Typer(
    name="custseg",
    help="Raw transactions in, named RFM customer segments out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])
_SIGNALLED: list[int] = []  # signals received (SIGINT, SIGTERM): the run is being stopped
_err = Console(stderr=True, highlight=False)


def _handles_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _SIGNALLED.clear()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CustsegWarning)
                try:
                    return fn(*args, **kwargs)
                finally:
                    _print_warnings(caught)
        except CustsegError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("error: interrupted; no output was written.", err=True)
            raise typer.Exit(130) from None
        except Exception:
            # A signal can surface from inside a library as another exception type.
            if _SIGNALLED:
                typer.echo("error: interrupted; no output was written.", err=True)
                raise typer.Exit(130) from None
            raise

    return wrapper  # type: ignore[return-value]


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    seen: set[str] = set()
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, CustsegWarning) and text not in seen:
            seen.add(text)
            typer.echo(f"warning: {text}", err=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"custseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Raw transactions in, named RFM customer segments out."""


# --- option parsing --------------------------------------------------------------------------


def _date(value: str | None, flag: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{flag} {value!r} is not a date. Use YYYY-MM-DD, e.g. {flag} 2011-12-10."
        ) from None


def parse_k_range(text: str) -> tuple[int, ...]:
    """``"1-10"`` or ``"2,3,5"`` -> a tuple of k values."""
    try:
        if "-" in text:
            lo, hi = (int(p) for p in text.split("-", 1))
            values = tuple(range(lo, hi + 1))
        else:
            values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ConfigError(
            f"--k-range {text!r} is not a range. Use e.g. --k-range 1-10 or 2,3,4."
        ) from None
    if not values:
        raise ConfigError(f"--k-range {text!r} is empty. Use e.g. --k-range 1-10.")
    return values


def _override(obj: Any, **changes: Any) -> Any:
    given = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(obj, **given) if given else obj


def build_config(
    *,
    config_file: Path | None = None,
    as_of: str | None = None,
    since: str | None = None,
    until: str | None = None,
    exclude_codes: str | None = None,
    drop_duplicates: bool | None = None,
    strict: bool | None = None,
    outliers: str | None = None,
    transform: str | None = None,
    k: int | None = None,
    k_range: str | None = None,
    select: str | None = None,
    seed: int | None = None,
) -> RunConfig:
    """Defaults < config file < flags."""
    base = load_config_file(config_file) if config_file else RunConfig()
    codes = (
        tuple(c.strip() for c in exclude_codes.split(",") if c.strip()) if exclude_codes else None
    )
    clean = _override(
        base.clean,
        as_of=_date(as_of, "--as-of"),
        since=_date(since, "--since"),
        until=_date(until, "--until"),
        exclude_codes=codes,
        drop_duplicates=drop_duplicates,
        strict=strict,
    )
    cluster = _override(
        base.cluster,
        outliers=outliers,
        transform=transform,
        k=k,
        k_values=parse_k_range(k_range) if k_range else None,
        select=select,
        random_state=seed,
    )
    return RunConfig(clean=clean, cluster=cluster, names=base.names)


# --- progress and the final account ----------------------------------------------------------


def _show_progress(quiet: bool) -> bool:
    """Progress goes to stderr, and only when both stderr and stdout are terminals."""
    return not quiet and _err.is_terminal and sys.stdout.isatty()


@contextlib.contextmanager
def _progress(quiet: bool, eng: Engine | None = None) -> Iterator[Callable[[str], None]]:
    """A spinner per stage with elapsed time, on a terminal only.

    While a stage runs, a thread polls the engine's query progress, so a long read and
    aggregation shows its percentage instead of a bare spinner.
    """
    if not _show_progress(quiet):
        yield lambda _stage: None
        return

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=_err,
        transient=False,
    ) as bar:
        current: list[Any] = []
        stop = threading.Event()

        def start(stage: str) -> None:
            if current:
                bar.update(current[-1], completed=1, total=1)
            current.append(bar.add_task(stage.capitalize(), total=None))

        def poll() -> None:
            while not stop.wait(0.25):
                pct = eng.query_progress() if eng is not None else None
                if current and pct is not None:
                    bar.update(current[-1], completed=pct, total=100)

        watcher = threading.Thread(target=poll, name="custseg-progress", daemon=True)
        watcher.start()
        try:
            yield start
        finally:
            stop.set()
            watcher.join()
        if current:
            bar.update(current[-1], completed=1, total=1)


def segments_frame(result: SegmentationResult) -> Any:
    """The segments.csv columns as a DataFrame, for --out-table."""
    return result.customers.reset_index()[list(SEGMENT_COLUMNS)]


def _print_account(result: SegmentationResult, out: Path, files: list[str]) -> None:
    # markup off: column and segment names come from the data and may hold [brackets]
    console = Console(highlight=False, soft_wrap=True, markup=False)
    led = result.ledger
    dropped = (
        ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in led.rows_dropped.items() if n)
        or "none"
    )
    sel = result.fit.selection
    sil = result.fit.metrics.get("silhouette")
    sil_text = f"{sil:.3f}" if isinstance(sil, float) else "n/a"
    used = ", ".join(f"{role}={col!r}" for role, col in describe_columns(result).items())
    console.print(f"Columns: {used}.")
    console.print(f"{led.rows_read:,} rows read, {led.rows_used:,} used; dropped: {dropped}.")
    console.print(
        f"{led.customers_segmented:,} customers segmented as of {result.as_of} "
        f"({led.customers_without_purchase:,} seen without a purchase; "
        f"{int(result.customers['outlier'].sum()):,} outliers flagged and kept)."
    )
    console.print(f"k = {result.k} ({sel.method}); silhouette {sil_text}.")
    table = Table(title=None, show_edge=False, header_style="bold")
    for col, justify in (
        ("segment", "left"),
        ("customers", "right"),
        ("revenue share", "right"),
        ("recency", "right"),
        ("frequency", "right"),
        ("monetary", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=col == "segment")  # type: ignore[arg-type]
    seg = result.segment_table()
    for row in seg.to_dict(orient="records"):
        table.add_row(
            Text(str(row["segment"])),
            f"{int(row['customers']):,}",
            f"{row['share_revenue']:.1%}",
            f"{row['recency_mean']:.0f}",
            f"{row['frequency_mean']:.1f}",
            f"{row['monetary_mean']:,.0f}",
        )
    console.print(table)
    console.print(f"Wrote {', '.join(files)} to {out}")


def _execute(
    source: Any,
    *,
    out: Path,
    force: bool,
    quiet: bool,
    config: RunConfig,
    read_options: dict[str, Any],
    report: bool = True,
    engine: str | None = None,
    spark_master: str | None = None,
    out_table: str | None = None,
) -> SegmentationResult:
    if engine is None and out_table:
        raise ConfigError("--out-table needs a database or Spark engine (--engine or a URL input).")
    with contextlib.ExitStack() as stack:
        eng = None
        if engine is not None or spark_master is not None:
            eng = stack.enter_context(connect_engine(engine or "spark", spark_master=spark_master))
            if out_table:
                eng.check_out_table(out_table, force=force)  # fail before the work, not after
        progress = stack.enter_context(_progress(quiet, eng))
        tmp = stack.enter_context(atomic_output_dir(out, force=force))
        result = run(source, config=config, progress=progress, engine=eng, **read_options)
        progress("write outputs")
        written = write_outputs(result, tmp, command=["custseg", *sys.argv[1:]])
        if report:
            progress("write report")
            from .report import write_report  # matplotlib loads only when a report is written

            written += write_report(tmp)[:1]
        if eng is not None and out_table:
            progress("write table")
            eng.write_table(out_table, segments_frame(result), force=force)
    if not quiet:
        _print_account(result, out, [p.name for p in written])
    return result


# --- commands --------------------------------------------------------------------------------

OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Output folder (written whole or not at all).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the output folder if it exists.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
ReportOpt = Annotated[
    bool,
    typer.Option("--report/--no-report", help="Write report.html and figures/ [default: report]."),
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", help="Random seed for K-Means and sampling [default: 0].")
]


@app.command("run")
@_handles_errors
def run_command(
    input: Annotated[
        str, typer.Argument(help="CSV, Parquet or Excel file, a folder of them, or a glob.")
    ],
    out: OutOpt = Path("custseg-output"),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="TOML/JSON file with [clean], [cluster], [names]."),
    ] = None,
    customer_col: Annotated[str | None, typer.Option(help="Customer id column.")] = None,
    invoice_col: Annotated[
        str | None,
        typer.Option(help="Invoice/order id column (without one, each row is an order)."),
    ] = None,
    date_col: Annotated[str | None, typer.Option(help="Date/time column.")] = None,
    quantity_col: Annotated[str | None, typer.Option(help="Quantity column.")] = None,
    price_col: Annotated[str | None, typer.Option(help="Unit price column.")] = None,
    amount_col: Annotated[
        str | None, typer.Option(help="Line amount column (instead of quantity x price).")
    ] = None,
    stock_code_col: Annotated[
        str | None, typer.Option(help="Stock code column (for --exclude-codes).")
    ] = None,
    date_format: Annotated[
        str | None, typer.Option(help="strptime format of the dates, e.g. '%d/%m/%Y %H:%M'.")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="CSV encoding (detected: utf-8, else latin-1).")
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (sniffed).")] = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet name or 0-based index.")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Reference date YYYY-MM-DD [default: day after the last purchase]."),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Ignore rows before this date.")] = None,
    until: Annotated[str | None, typer.Option(help="Ignore rows after this date.")] = None,
    exclude_codes: Annotated[
        str | None,
        typer.Option(help="Comma-separated stock codes that are not products, e.g. POST,M,DOT."),
    ] = None,
    drop_duplicates: Annotated[
        bool | None,
        typer.Option(
            "--drop-duplicates/--keep-duplicates", help="Drop exact duplicate rows [default: keep]."
        ),
    ] = None,
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict/--lenient",
            help=(
                "Refuse unreadable numbers and dates instead of counting them in the ledger "
                "[default: lenient]."
            ),
        ),
    ] = None,
    outliers: Annotated[
        str | None, typer.Option(help="zscore | iqr | none [default: zscore].")
    ] = None,
    transform: Annotated[str | None, typer.Option(help="none | log [default: none].")] = None,
    k: Annotated[int | None, typer.Option("--k", help="Fix the number of segments.")] = None,
    k_range: Annotated[
        str | None, typer.Option(help="k values to sweep, e.g. 1-10 [default: 1-10].")
    ] = None,
    select: Annotated[str | None, typer.Option(help="knee | silhouette [default: knee].")] = None,
    seed: SeedOpt = None,
    report: ReportOpt = True,
    engine: Annotated[
        str | None,
        typer.Option(help="duckdb | spark | a database URL: where rows are read and aggregated."),
    ] = None,
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master: local[N] or spark://host:port [local[2]].")
    ] = None,
    table: Annotated[
        str | None, typer.Option(help="Input table, with a database URL as INPUT.")
    ] = None,
    out_table: Annotated[
        str | None,
        typer.Option(help="Also write the segments to this table (replaced only with --force)."),
    ] = None,
) -> None:
    """Segment the customers of a transaction file or table."""
    config = build_config(
        config_file=config_file,
        as_of=as_of,
        since=since,
        until=until,
        exclude_codes=exclude_codes,
        drop_duplicates=drop_duplicates,
        strict=strict,
        outliers=outliers,
        transform=transform,
        k=k,
        k_range=k_range,
        select=select,
        seed=seed,
    )
    columns = {
        "customer": customer_col,
        "invoice": invoice_col,
        "date": date_col,
        "quantity": quantity_col,
        "price": price_col,
        "amount": amount_col,
        "stock_code": stock_code_col,
    }
    read_options = {
        "columns": columns,
        "date_format": date_format,
        "encoding": encoding,
        "delimiter": delimiter,
        "sheet": sheet,
    }
    source, engine = _input_and_engine(input, engine=engine, table=table)
    _execute(
        source,
        out=out,
        force=force,
        quiet=quiet,
        config=config,
        read_options=read_options,
        report=report,
        engine=engine,
        spark_master=spark_master,
        out_table=out_table,
    )


def _input_and_engine(
    input: str, *, engine: str | None, table: str | None
) -> tuple[Any, str | None]:
    """A database URL as INPUT is the engine, and --table names the input table."""
    if is_url(input):
        if engine is not None:
            raise ConfigError(f"INPUT {input.split('@')[-1]!r} is a database: drop --engine.")
        if not table:
            raise ConfigError(
                "A database input needs --table: "
                "custseg run postgresql://user@host/db --table sales."
            )
        return CatalogTable(table), input
    if table:
        raise ConfigError(
            "--table goes with a database URL as INPUT (custseg run postgresql://... --table NAME)."
        )
    return input, engine


@app.command("demo")
@_handles_errors
def demo_command(
    out: OutOpt = Path("custseg-demo"),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    seed: SeedOpt = None,
    report: ReportOpt = True,
) -> None:
    """Run the whole pipeline on the bundled UCI Online Retail data (CC BY 4.0)."""
    from .datasets import CITATION, online_retail_path

    config = build_config(seed=seed)
    if not quiet:
        typer.echo(f"Demo data: UCI Online Retail, 541,909 invoice lines. {CITATION}")
    _execute(
        online_retail_path(),
        out=out,
        force=force,
        quiet=quiet,
        config=config,
        read_options={},
        report=report,
    )


@app.command("report")
@_handles_errors
def report_command(
    out_dir: Annotated[Path, typer.Argument(help="Output folder of a finished `custseg run`.")],
    quiet: QuietOpt = False,
) -> None:
    """Rebuild report.html and figures/ from a finished run's files, without re-running it."""
    from .report import write_report

    paths = write_report(out_dir)
    if not quiet:
        figures = paths[0].parent / "figures"
        typer.echo(f"Wrote {paths[0]} and {len(paths) - 1} figure files in {figures}")


@app.command("generate")
@_handles_errors
def generate_command(
    rows: Annotated[int, typer.Option("--rows", help="Number of transaction lines to write.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Target file: .parquet, .csv or .csv.gz.")
    ],
    customers: Annotated[
        int | None, typer.Option("--customers", help="Customer population [default: rows / 100].")
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (the same seed writes the same bytes).")
    ] = 0,
    quiet: QuietOpt = False,
) -> None:
    """Write a synthetic transaction log in the UCI Online Retail schema (for benchmarks)."""
    from .generate import generate_transactions

    if not _show_progress(quiet):
        path = generate_transactions(out, rows=rows, customers=customers, seed=seed)
    else:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f} rows"),
            TimeElapsedColumn(),
            console=_err,
            transient=False,
        ) as bar:
            task = bar.add_task(f"Generate {out.name}", total=rows)
            path = generate_transactions(
                out,
                rows=rows,
                customers=customers,
                seed=seed,
                progress=lambda done: bar.update(task, completed=done),
            )
    if not quiet:
        typer.echo(f"Wrote {rows:,} rows to {path}")


def _terminate(signum: int, _frame: Any) -> None:
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


def main() -> None:
    """Entry point of the ``custseg`` console script."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    app(prog_name="custseg")


if __name__ == "__main__":  # pragma: no cover
    main()
