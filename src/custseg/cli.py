"""The ``custseg`` command: parse options, call the library, print a short account.

Commands only parse and call (the library does the work, as in sqlite-utils); errors the
library raises on purpose (:class:`CustsegError`) and bad usage become one ``error: ...`` line
on stderr and exit code 1. Anything else is a bug and keeps its traceback.

The module imports only Typer, Rich and the settings at start-up; the pipeline (the engine,
scikit-learn, matplotlib) is imported inside the commands, so ``custseg --version`` and
``--help`` answer at once.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import shutil
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_args

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from . import __version__
from .choices import (
    ClusterEngine,
    ClusterMethod,
    FrequencyUnit,
    OutlierMethod,
    Preset,
    Returns,
    SelectMethod,
    TransformMethod,
)
from .errors import ConfigError, CustsegError, CustsegWarning

if TYPE_CHECKING:
    from .clean import Ledger
    from .comparison import Comparison
    from .config import CleanConfig, RunConfig
    from .engine import Engine
    from .pipeline import BacktestResult, SegmentationResult

__all__ = ["app", "main", "parse_k_range"]

F = TypeVar("F", bound=Callable[..., Any])
_SIGNALLED: list[int] = []  # signals received (SIGINT, SIGTERM): the run is being stopped
_err = Console(stderr=True, highlight=False)


class _Command(TyperCommand):
    """A command whose usage line names its arguments plainly (``INPUT``, not ``{INPUT}``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


class _Group(TyperGroup):
    """The app: bad usage is one ``error:`` line and exit code 1, like every other bad input."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        *,
        standalone_mode: bool = True,
        **kw: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, standalone_mode=False, **kw)
        except typer.Abort:
            typer.echo("error: aborted.", err=True)
            code = 1
        except typer.TyperException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `custseg`: the help
                exc.show()  # type: ignore[attr-defined]
                code = 0
            else:
                typer.echo(f"error: {_usage_message(exc)}", err=True)
                code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def _usage_message(exc: typer.TyperException) -> str:
    """One line: what is wrong with the command line and how to get help."""
    from .config import CleanConfig, ClusterConfig, unknown_choice

    param = getattr(exc, "param", None)
    name = str(getattr(param, "name", "") or "")
    field = ClusterConfig.model_fields.get(name) or CleanConfig.model_fields.get(name)
    text = exc.format_message().replace("\n", " ").strip().removeprefix("Value error, ")
    if field is not None and " is not one of " in text:
        # A typed choice: the same words as the settings' own check, with "did you mean".
        value = text.split(" is not one of ", 1)[0].rsplit(": ", 1)[-1].strip()
        value = value.removeprefix("Value error, ").strip("'\"")
        options = [str(a) for a in get_args(field.annotation) if a is not None]
        return unknown_choice(field.title or name, value, options)
    ctx = getattr(exc, "ctx", None)
    where = f" See '{ctx.command_path} --help'." if ctx is not None else ""
    return (text if text.endswith((".", "?", "!")) else text + ".") + where


app = typer.Typer(
    name="custseg",
    cls=_Group,
    help="Raw transactions in, named RFM customer segments out.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _handles_errors(fn: F) -> F:
    """Library errors -> one ``error:`` line and exit 1; warnings printed unless --quiet."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _SIGNALLED.clear()
        quiet = bool(kwargs.get("quiet"))
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CustsegWarning)
                try:
                    return fn(*args, **kwargs)
                finally:
                    if not quiet:
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


#: The flag that sets each settings field, for error messages.
_FLAGS = {"k_values": "--k-range", "random_state": "--seed"}


def _flag(field: str) -> str:
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def _codes(text: str | None) -> tuple[str, ...] | None:
    return tuple(c.strip() for c in text.split(",") if c.strip()) if text else None


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
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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


def _stdout() -> Console:
    """stdout for the account: markup off (names come from the data and may hold [brackets]);
    when it is not a terminal, plain text at full width (a pipe or file is never cut to 80
    columns)."""
    wide = None if sys.stdout.isatty() else 100_000
    return Console(highlight=False, soft_wrap=True, markup=False, width=wide)


def _without_purchase(led: Ledger, clean: CleanConfig) -> str:
    """``"3 customers whose purchases all fall on or after as_of 2011-06-01, left out; 0 seen
    without a purchase"``: customers cut off by the date window are called that."""
    cut = led.customers_outside_window
    rest = f"{led.customers_without_purchase - cut:,} seen without a purchase"
    if not cut:
        return rest
    bounds = [
        f"before --since {clean.since}" if clean.since else "",
        f"after --until {clean.until}" if clean.until else "",
        f"on or after as_of {clean.as_of}" if clean.as_of else "",
    ]
    where = " or ".join(b for b in bounds if b) or "outside the date window"
    who = "customer whose purchases all fall" if cut == 1 else "customers whose purchases all fall"
    return f"{cut:,} {who} {where}, left out; {rest}"


def _table(console: Any) -> Any:
    """A Rich table for ``console``: off a terminal (a pipe, a file) plain text, with no box
    characters and no colour."""
    from rich import box
    from rich.table import Table

    plain = not console.is_terminal
    return Table(
        show_edge=False, header_style="" if plain else "bold", box=None if plain else box.HEAVY_HEAD
    )


def _print_account(result: SegmentationResult, out: Path, files: list[str]) -> None:
    console = _stdout()
    for line in _account_lines(result):
        console.print(line)
    console.print(_segment_table(result, _table(console)))
    console.print(f"Wrote {', '.join(files)} to {out}")


def _reading_lines(result: SegmentationResult) -> list[str]:
    """What was detected in a text file (encoding, header, date format): none for typed
    sources such as Parquet or a database table with timestamps."""
    src = result.source
    found = []
    if src.format == "csv" and src.encoding:
        found.append(f"encoding {src.encoding}")
    if src.format == "csv" and not src.header:
        found.append("no header row (columns named column_1, column_2, ...)")
    if result.date_format:
        found.append(f"dates as {result.date_format!r}")
    return [f"Read {src.name}: {', '.join(found)}."] if found else []


def _account_lines(result: SegmentationResult) -> list[str]:
    """What the run read, used, dropped and chose, a sentence each."""
    led = result.ledger
    dropped = (
        ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in led.rows_dropped.items() if n)
        or "none"
    )
    sil = result.fit.metrics.get("silhouette")
    used = ", ".join(
        f"{role}={col!r}" for role, col in (result.columns.used() if result.columns else {}).items()
    )
    lines = [
        *_reading_lines(result),
        f"Columns: {used}.",
        f"{led.rows_read:,} rows read, {led.rows_used:,} used; dropped: {dropped}.",
        f"{led.customers_segmented:,} customers segmented as of {result.as_of} "
        f"({_without_purchase(led, result.config.clean)}; "
        f"{int(result.customers['outlier'].sum()):,} outliers flagged and kept).",
    ]
    nonpositive = result.net_nonpositive()
    if nonpositive is not None:
        names = {s.cluster: s.name for s in result.segments}
        where = ", ".join(f"{n:,} in {names[c]}" for c, n in nonpositive.items() if n)
        lines.append(
            f"Returns netted: {led.rows_netted:,} cancellation lines subtracted from their "
            f"customers' monetary value; {led.customers_net_nonpositive:,} customers whose net "
            "value is 0 or below are kept with monetary 0" + (f" ({where})." if where else ".")
        )
    if "monetary" not in result.fit.model.features:
        why = "--no-monetary" if result.columns and result.columns.has_values else "no value column"
        lines.append(f"Segmented on recency and frequency only ({why}): no monetary value.")
    how = (
        "the saved model's, nothing refitted" if result.scored_with else result.fit.selection.method
    )
    sil_text = f"{sil:.3f}" if isinstance(sil, float) else "n/a"
    lines.append(f"k = {result.k} ({how}); silhouette {sil_text}.")
    return lines


def _segment_table(result: SegmentationResult, table: Any) -> Any:
    """The segments' table: customers, revenue share and the mean of each feature."""
    from rich.text import Text

    money = "monetary" in result.fit.model.features
    heads = ["segment", "customers", "revenue share", "mean recency (days)", "mean frequency"]
    if money:
        heads.append("mean monetary")
    else:
        heads.remove("revenue share")
    for col in heads:
        justify = "left" if col == "segment" else "right"
        table.add_column(col, justify=justify, no_wrap=col == "segment")
    for row in result.segment_table().to_dict(orient="records"):
        cells: list[Text | str] = [
            Text(str(row["segment"])),
            f"{int(row['customers']):,}",
            *([f"{row['share_revenue']:.1%}"] if money else []),
            f"{row['recency_mean']:.0f}",
            f"{row['frequency_mean']:.1f}",
            *([f"{row['monetary_mean']:,.0f}"] if money else []),
        ]
        table.add_row(*cells)
    return table


def _print_backtest(result: BacktestResult, out: Path, files: list[str]) -> None:
    from rich.text import Text

    console = _stdout()
    o, ev = result.outcomes, result.evidence
    console.print(
        f"Segments fitted on the {len(o.train):,} customers who bought before {o.as_of} "
        f"(k = {result.training.k}), measured over the {o.holdout_days} days to {o.end}: "
        f"{int(o.buys.sum()):,} bought again; {o.new_customers:,} new customers are not counted."
    )
    money = o.revenue is not None
    unit = "purchase days" if result.training.config.clean.frequency_unit == "days" else "orders"
    if not money:
        console.print(
            f"No monetary value: the segments are measured against the holdout {unit} (not "
            f"revenue) and buying again; a segment's value is its members' mean frequency."
        )
    table = _table(console)
    heads = ["segment", "customers", "buy again", f"{unit} / customer"]
    heads += ["revenue / customer", "revenue share"] if money else [f"{unit} share"]
    for col in heads:
        table.add_column(
            col, justify="left" if col == "segment" else "right", no_wrap=col == "segment"
        )
    for row in result.segments.to_dict(orient="records"):
        cells: list[Text | str] = [
            Text(str(row["segment"])),
            f"{int(row['customers']):,}",
            f"{row['share_buying_again']:.0%}",
            f"{row['orders_per_customer']:.2f}",
        ]
        if money:
            cells += [
                f"{row['revenue_per_customer']:,.0f}",
                f"{row['share_of_holdout_revenue']:.1%}",
            ]
        else:
            cells.append(f"{row['share_of_holdout_orders']:.1%}")
        table.add_row(*cells)
    console.print(table)
    evidence = _table(console)
    for col in (
        "ranking by",
        f"Spearman ({o.target_name})",
        "AUC (buys again)",
        "segments - this (95% interval)",
    ):
        evidence.add_column(col, justify="left" if col == "ranking by" else "right")
    for name in ev.spearman:
        diff = ev.differences.get(name)
        text = "" if diff is None else f"{_ci(diff['spearman'])} / {_ci(diff['auc'])}"
        evidence.add_row(
            _BASELINE_WORDS.get(name, name), f"{ev.spearman[name]:.3f}", f"{ev.auc[name]:.3f}", text
        )
    console.print(evidence)
    console.print(f"Wrote {', '.join(files)} to {out}")


def _ci(t: tuple[float, float, float]) -> str:
    return f"{t[0]:+.3f} [{t[1]:+.3f}, {t[2]:+.3f}]"


_BASELINE_WORDS = {
    "segments": "segments (their value)",
    "monetary": "monetary",
    "frequency": "frequency",
    "recency": "recency",
    "rfm_score": "RFM score (R+F+M)",
    "rf_score": "RF score (R+F)",
}


@contextlib.contextmanager
def _input_path(source: Any) -> Iterator[Any]:
    """The input path; ``-`` copies standard input (CSV, gzipped or not) to a temporary file."""
    if source != "-":
        yield source
        return
    folder = Path(tempfile.mkdtemp(prefix="custseg-stdin-"))
    try:
        stream = sys.stdin.buffer
        head = stream.read(2)
        path = folder / ("stdin.csv.gz" if head == b"\x1f\x8b" else "stdin.csv")
        with path.open("wb") as fh:
            fh.write(head)
            shutil.copyfileobj(stream, fh, 1 << 20)
        if path.stat().st_size == 0:
            raise ConfigError("Standard input is empty. Pipe a CSV file into `custseg run -`.")
        yield str(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _engine(name: str | None, spark_master: str | None) -> Engine:
    """The engine a command runs on, opened here so the progress thread can poll it."""
    from .engine import connect

    return connect(name or ("spark" if spark_master else None), spark_master=spark_master)


def _engine_input(input: str, options: dict[str, Any]) -> tuple[Any, tuple[str | None, str | None]]:
    """The source and the engine: a database URL as INPUT is the engine, --table its table."""
    from .engine import is_url
    from .load import CatalogTable

    engine, table = options["engine"], options["table"]
    if is_url(input):
        if engine is not None:
            raise ConfigError(f"INPUT {input.split('@')[-1]!r} is a database: drop --engine.")
        if not table:
            raise ConfigError(
                "A database input needs --table: "
                "custseg run postgresql://user@host/db --table sales."
            )
        return CatalogTable(table), (input, options["spark_master"])
    if table:
        raise ConfigError(
            "--table goes with a database URL as INPUT (custseg run postgresql://... --table NAME)."
        )
    return input, (engine, options["spark_master"])


def _segments_frame(result: SegmentationResult) -> Any:
    """The segments.csv columns as a DataFrame, for --out-table."""
    from .output import RETURNED, segment_columns

    have = list(result.customers.columns)
    columns = [*segment_columns(have), *([RETURNED] if RETURNED in have else [])]
    return result.customers.reset_index()[columns]


def _execute(
    source: Any,
    *,
    out: Path,
    force: bool,
    quiet: bool,
    json_out: bool,
    config: RunConfig,
    read_options: dict[str, Any],
    report: bool = True,
    svg: bool = False,
    reference: Path | None = None,
    engine: tuple[str | None, str | None] = (None, None),
    out_table: str | None = None,
) -> None:
    from .output import build_summary, write_run
    from .pipeline import run
    from .runs import check_output_dir

    check_output_dir(out, force=force)  # before the work, not after it
    with _engine(*engine) as eng:
        if out_table:
            eng.check_out_table(out_table, force=force)  # before the work, not after it
        with _progress(quiet, eng) as progress, _input_path(source) as path:
            result = run(
                path,
                config=config,
                progress=progress,
                reference=reference,
                engine=eng,
                **read_options,
            )
            written = write_run(
                result,
                out,
                force=force,
                report=report,
                svg=svg,
                command=["custseg", *sys.argv[1:]],
                progress=progress,
            )
            if out_table:
                progress("write table")
                eng.write_table(out_table, _segments_frame(result), force=force)
    if json_out:
        sys.stdout.write(build_summary(result).dumps())
    elif not quiet:
        _print_account(result, out, [p.name for p in written])


# --- commands --------------------------------------------------------------------------------

OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Output folder (written whole or not at all).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the output folder if it exists.")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print errors only (warnings stay in run.json).")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print summary.json on stdout instead of the account.")
]
ReportOpt = Annotated[
    bool,
    typer.Option("--report/--no-report", help="Write report.html and figures/."),
]
SvgOpt = Annotated[
    bool, typer.Option("--svg", help="Also write an SVG of each figure (for print and slides).")
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", help="Random seed for K-Means and sampling [default: 0].")
]
_COLUMN_HELP = {
    "customer": "Customer id column.",
    "invoice": "Invoice/order id column (without one, each row is an order).",
    "date": "Date/time column.",
    "quantity": "Quantity column.",
    "price": "Unit price column.",
    "amount": "Line amount column (instead of quantity x price).",
    "stock_code": "Stock code column (for --exclude-codes).",
}


def _option(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


EngineOpt = Annotated[
    str | None,
    typer.Option(help="duckdb | spark | a database URL: where rows are read and aggregated."),
]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option(help="Spark master: local[N] or spark://host:port [local[2]]."),
]
TableOpt = Annotated[str | None, typer.Option(help="Input table, with a database URL as INPUT.")]
DelimiterOpt = Annotated[
    str | None,
    typer.Option(help="CSV delimiter (sniffed); whitespace: runs of spaces and tabs."),
]
DecimalOpt = Annotated[
    str | None, typer.Option(help="Decimal mark of the numbers: . (default) or , (12,5).")
]
HeaderOpt = Annotated[
    bool | None,
    typer.Option(
        "--header/--no-header",
        help="Whether the first row names the columns [detected: a row of numbers is data; "
        "headerless columns are column_1, column_2, ...].",
    ),
]

#: The options every command that segments transactions takes (run, backtest, ...): reading,
#: cleaning and clustering. Declared once; :func:`_with_run_options` adds them to a command.
_RUN_OPTIONS: tuple[inspect.Parameter, ...] = (
    _option("engine", EngineOpt),
    _option("spark_master", SparkMasterOpt),
    _option(
        "cluster_engine",
        Annotated[
            ClusterEngine | None,
            typer.Option(
                help="Where K-Means is fitted: local (scikit-learn on the driver) or spark "
                "(MLlib, k-means||; needs --engine spark) [default: local]."
            ),
        ],
    ),
    _option("table", TableOpt),
    _option(
        "preset",
        Annotated[
            Preset | None,
            typer.Option(
                help="Named settings: default (evidence-chosen) or tutorial (the "
                "reference tutorial's method: z-score outliers, no transform, knee)."
            ),
        ],
    ),
    _option(
        "config_file",
        Annotated[
            Path | None,
            typer.Option("--config", help="TOML/JSON file with [clean], [cluster], [names]."),
        ],
    ),
    *(
        _option(f"{role}_col", Annotated[str | None, typer.Option(help=text)])
        for role, text in _COLUMN_HELP.items()
    ),
    _option(
        "date_format",
        Annotated[
            str | None, typer.Option(help="strptime format of the dates, e.g. '%d/%m/%Y %H:%M'.")
        ],
    ),
    _option(
        "encoding",
        Annotated[str | None, typer.Option(help="CSV encoding (detected: utf-8, else latin-1).")],
    ),
    _option("delimiter", DelimiterOpt),
    _option("decimal", DecimalOpt),
    _option("header", HeaderOpt),
    _option(
        "sheet", Annotated[str | None, typer.Option(help="Excel sheet name or 0-based index.")]
    ),
    _option(
        "as_of",
        Annotated[
            str | None,
            typer.Option(help="Reference date YYYY-MM-DD [default: day after the last purchase]."),
        ],
    ),
    _option("since", Annotated[str | None, typer.Option(help="Ignore rows before this date.")]),
    _option("until", Annotated[str | None, typer.Option(help="Ignore rows after this date.")]),
    _option(
        "exclude_codes",
        Annotated[
            str | None,
            typer.Option(
                help="Comma-separated stock codes that are not products, e.g. POST,M,DOT."
            ),
        ],
    ),
    _option(
        "drop_duplicates",
        Annotated[
            bool | None,
            typer.Option(
                "--drop-duplicates/--keep-duplicates",
                help="Drop exact duplicate rows [default: keep].",
            ),
        ],
    ),
    _option(
        "strict",
        Annotated[
            bool | None,
            typer.Option(
                "--strict/--lenient",
                help="Refuse unreadable numbers and dates instead of counting them in the ledger "
                "[default: lenient].",
            ),
        ],
    ),
    _option(
        "returns",
        Annotated[
            Returns | None,
            typer.Option(
                help="Cancellation lines: drop (left out of monetary) or net (subtracted from "
                "their customer's monetary value; net value 0 or below is kept as 0 and "
                "counted) [default: drop]."
            ),
        ],
    ),
    _option(
        "monetary",
        Annotated[
            bool | None,
            typer.Option(
                "--monetary/--no-monetary",
                help="Segment on recency, frequency and monetary value, or on recency and "
                "frequency only (data without a value column is segmented so anyway) "
                "[default: monetary].",
            ),
        ],
    ),
    _option(
        "frequency_unit",
        Annotated[
            FrequencyUnit | None,
            typer.Option(
                help="What frequency counts: orders (invoices; rows without an invoice column) "
                "or days (distinct purchase days) [default: orders]."
            ),
        ],
    ),
    _option(
        "method",
        Annotated[
            ClusterMethod | None, typer.Option(help="Segmentation method [default: kmeans].")
        ],
    ),
    _option(
        "outliers",
        Annotated[OutlierMethod | None, typer.Option(help="Outlier rule [default: zscore].")],
    ),
    _option(
        "transform",
        Annotated[TransformMethod | None, typer.Option(help="Feature transform [default: log].")],
    ),
    _option("k", Annotated[int | None, typer.Option("--k", help="Fix the number of segments.")]),
    _option(
        "k_range",
        Annotated[str | None, typer.Option(help="k values to sweep, e.g. 1-10 [default: 1-10].")],
    ),
    _option(
        "select",
        Annotated[
            SelectMethod | None,
            typer.Option(
                help="How k is chosen [default: backtest, what the segments predict on a holdout "
                "of your data; auto: the method's own rule, knee for kmeans, merge-gap for "
                "hierarchical, bic for gmm]."
            ),
        ],
    ),
    _option(
        "holdout",
        Annotated[
            str | None,
            typer.Option(
                help="Holdout for --select backtest and `custseg backtest`, e.g. 90d, "
                "12w [default: 90d]."
            ),
        ],
    ),
    _option(
        "score_bins",
        Annotated[
            int | None,
            typer.Option(help="RFM score bins for --method rfm-scores: 5 (quintiles) or 4."),
        ],
    ),
    _option("seed", SeedOpt),
)


def parse_duration(text: str) -> int:
    """``"90d"``, ``"12w"``, ``"3m"`` (30-day months) or ``"90"`` -> days."""
    units = {"d": 1, "w": 7, "m": 30}
    t = text.strip().lower()
    unit = t[-1] if t and t[-1] in units else "d"
    number = t[:-1] if t and t[-1] in units else t
    if not number.isdigit() or int(number) < 1:
        raise ConfigError(
            f"--holdout {text!r} is not a duration. Use days, weeks or months, e.g. 90d, 12w, 3m."
        )
    return int(number) * units[unit]


def _settings(options: dict[str, Any]) -> tuple[RunConfig, dict[str, Any]]:
    """The run's settings and reading options from the shared options' values."""
    from .config import build_run_config

    o = options
    config = build_run_config(
        preset=o["preset"],
        config_file=o["config_file"],
        clean={
            "as_of": o["as_of"],
            "since": o["since"],
            "until": o["until"],
            "exclude_codes": _codes(o["exclude_codes"]),
            "drop_duplicates": o["drop_duplicates"],
            "strict": o["strict"],
            "frequency_unit": o["frequency_unit"],
            "returns": o["returns"],
            "monetary": o["monetary"],
        },
        cluster={
            "method": o["method"],
            "score_bins": o["score_bins"],
            "outliers": o["outliers"],
            "transform": o["transform"],
            "k": o["k"],
            "k_values": parse_k_range(o["k_range"]) if o["k_range"] else None,
            "select": o["select"],
            "holdout_days": parse_duration(o["holdout"]) if o["holdout"] else None,
            "random_state": o["seed"],
            "cluster_engine": o["cluster_engine"],
        },
        label=_flag,
    )
    read_options = {
        "columns": {role: o[f"{role}_col"] for role in _COLUMN_HELP},
        "date_format": o["date_format"],
        "encoding": o["encoding"],
        "delimiter": o["delimiter"],
        "decimal": o["decimal"],
        "header": o["header"],
        "sheet": o["sheet"],
    }
    return config, read_options


def _with_run_options(fn: F) -> F:
    """Add the shared run options to a command; it receives them as ``options``."""
    sig = inspect.signature(fn, eval_str=True)  # the command's own options, resolved
    own = [p for p in sig.parameters.values() if p.name != "options"]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        options = {p.name: kwargs.pop(p.name, p.default) for p in _RUN_OPTIONS}
        return fn(*args, options=options, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=[*own, *_RUN_OPTIONS])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *_RUN_OPTIONS]}
    return wrapper  # type: ignore[return-value]


InputArg = Annotated[
    str,
    typer.Argument(
        metavar="INPUT",
        help="CSV, Parquet or Excel file, a folder of them, a glob, or - for CSV on stdin.",
    ),
]


@app.command("run", cls=_Command)
@_handles_errors
@_with_run_options
def run_command(
    input: InputArg,
    out: OutOpt = Path("custseg-output"),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    report: ReportOpt = True,
    svg: SvgOpt = False,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="model.json of an earlier run: segments that are the same groups keep its "
            "names and ids."
        ),
    ] = None,
    out_table: Annotated[
        str | None,
        typer.Option(help="Also write the segments to this table (replaced only with --force)."),
    ] = None,
    *,
    options: dict[str, Any],
) -> None:
    """Segment the customers of a transaction file or table."""
    config, read_options = _settings(options)
    source, engine = _engine_input(input, options)
    _execute(
        source,
        out=out,
        force=force,
        quiet=quiet,
        json_out=json_out,
        config=config,
        read_options=read_options,
        report=report,
        svg=svg,
        reference=reference,
        engine=engine,
        out_table=out_table,
    )


@app.command("backtest", cls=_Command)
@_handles_errors
@_with_run_options
def backtest_command(
    input: InputArg,
    out: OutOpt = Path("custseg-backtest"),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Write backtest.html.")
    ] = True,
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples for the intervals of the differences.")
    ] = 1000,
    *,
    options: dict[str, Any],
) -> None:
    """Segment the data before a cutoff and measure what the segments predict after it."""
    from .output import build_backtest, write_backtest
    from .pipeline import backtest
    from .runs import check_output_dir

    config, read_options = _settings(options)
    source, engine = _engine_input(input, options)
    check_output_dir(out, force=force)
    with _engine(*engine) as eng, _progress(quiet, eng) as progress, _input_path(source) as path:
        result = backtest(
            path, config=config, bootstrap=bootstrap, progress=progress, engine=eng, **read_options
        )
        written = write_backtest(result, out, force=force, report=report)
    if json_out:
        sys.stdout.write(build_backtest(result).dumps())
    elif not quiet:
        _print_backtest(result, out, [p.name for p in written])


@app.command("score", cls=_Command)
@_handles_errors
def score_command(
    input: InputArg,
    model: Annotated[
        Path, typer.Option("--model", "-m", help="model.json of a finished `custseg run`.")
    ],
    out: OutOpt = Path("custseg-scored"),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    report: ReportOpt = True,
    svg: SvgOpt = False,
    as_of: Annotated[
        str | None,
        typer.Option(help="Reference date YYYY-MM-DD [default: day after the last purchase]."),
    ] = None,
    customer_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["customer"])] = None,
    invoice_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["invoice"])] = None,
    date_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["date"])] = None,
    quantity_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["quantity"])] = None,
    price_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["price"])] = None,
    amount_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["amount"])] = None,
    stock_code_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["stock_code"])] = None,
    date_format: Annotated[
        str | None, typer.Option(help="strptime format of the dates, e.g. '%d/%m/%Y %H:%M'.")
    ] = None,
    encoding: Annotated[str | None, typer.Option(help="CSV encoding (detected).")] = None,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = None,
    header: HeaderOpt = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet name or 0-based index.")] = None,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    table: TableOpt = None,
) -> None:
    """Score new transactions with a saved model: its rules, segments and names, unchanged."""
    from .config import CleanConfig
    from .output import build_summary, write_run
    from .runs import check_output_dir
    from .scoring import score

    day = CleanConfig.build({"as_of": as_of}, label=_flag).as_of
    columns = {
        "customer": customer_col,
        "invoice": invoice_col,
        "date": date_col,
        "quantity": quantity_col,
        "price": price_col,
        "amount": amount_col,
        "stock_code": stock_code_col,
    }
    source, spec = _engine_input(
        input, {"engine": engine, "spark_master": spark_master, "table": table}
    )
    check_output_dir(out, force=force)
    with _engine(*spec) as eng, _progress(quiet, eng) as progress, _input_path(source) as path:
        result = score(
            model,
            path,
            engine=eng,
            as_of=day,
            columns=columns,
            date_format=date_format,
            encoding=encoding,
            delimiter=delimiter,
            decimal=decimal,
            header=header,
            sheet=sheet,
            progress=progress,
        )
        written = write_run(
            result,
            out,
            force=force,
            report=report,
            svg=svg,
            command=["custseg", *sys.argv[1:]],
            progress=progress,
        )
    if json_out:
        sys.stdout.write(build_summary(result).dumps())
    elif not quiet:
        _print_account(result, out, [p.name for p in written])


@app.command("compare-methods", cls=_Command)
@_handles_errors
@_with_run_options
def compare_methods_command(
    input: InputArg,
    out: OutOpt = Path("custseg-methods"),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples of each method's backtest.")
    ] = 200,
    *,
    options: dict[str, Any],
) -> None:
    """Every segmentation method on one input, side by side: which fits these data?"""
    from .method_comparison import compare_methods
    from .output import write_methods
    from .runs import check_output_dir

    config, read_options = _settings(options)
    source, engine = _engine_input(input, options)
    check_output_dir(out, force=force)
    with _engine(*engine) as eng, _progress(quiet, eng) as progress, _input_path(source) as path:
        result = compare_methods(
            path,
            config=config,
            bootstrap=bootstrap,
            read_options=read_options,
            progress=progress,
            engine=eng,
        )
        written = write_methods(result, config, out, force=force)
    if json_out:
        sys.stdout.write(written[0].read_text(encoding="utf-8"))
    elif not quiet:
        _print_methods(result, out, [p.name for p in written])


def _print_methods(result: Any, out: Path, files: list[str]) -> None:

    console = _stdout()
    table = _table(console)
    heads = ("method", "k", "k by", "silhouette", "Calinski-H.", "Davies-B.", "largest",
             "stable: seeds", "resamples", "Spearman", "AUC")  # fmt: skip
    for col in heads:
        table.add_column(col, justify="left" if col in ("method", "k by") else "right")

    def f(v: float | None, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    for r in result.rows:
        table.add_row(
            r.method, str(r.k), r.k_rule, f(r.silhouette, ".3f"), f(r.calinski_harabasz, ",.0f"),
            f(r.davies_bouldin, ".3f"), f"{r.largest_share:.0%}", f(r.stability_seeds, ".3f"),
            f(r.stability_resamples, ".3f"), f(r.holdout_spearman, ".3f"), f(r.holdout_auc, ".3f"),
        )  # fmt: skip
    for name, v in result.baselines.items():
        label = _BASELINE_WORDS.get(name, name)
        table.add_row(f"baseline: {label}", *[""] * 8, f(v["spearman"], ".3f"), f(v["auc"], ".3f"))
    console.print(table)
    if result.holdout_days:
        console.print(
            f"Spearman and AUC: segments fitted up to {result.cutoff}, measured over the next "
            f"{result.holdout_days} days (custseg backtest); stable: adjusted Rand index of "
            "refits."
        )
    if result.note:
        console.print(result.note)
    console.print(f"Wrote {', '.join(files)} to {out}")


@app.command("demo", cls=_Command)
@_handles_errors
def demo_command(
    out: OutOpt = Path("custseg-demo"),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    seed: SeedOpt = None,
    report: ReportOpt = True,
    svg: SvgOpt = False,
) -> None:
    """Run the whole pipeline on the bundled UCI Online Retail data (CC BY 4.0)."""
    from .config import build_run_config
    from .datasets import CITATION, online_retail_path

    config = build_run_config(cluster={"random_state": seed}, label=_flag)
    if not quiet and not json_out:
        typer.echo(f"Demo data: UCI Online Retail, 541,909 invoice lines. {CITATION}")
    _execute(
        str(online_retail_path()),
        out=out,
        force=force,
        quiet=quiet,
        json_out=json_out,
        config=config,
        read_options={},
        report=report,
        svg=svg,
    )


@app.command("report", cls=_Command)
@_handles_errors
def report_command(
    out_dir: Annotated[
        Path, typer.Argument(metavar="RUN", help="Output folder of a finished `custseg run`.")
    ],
    quiet: QuietOpt = False,
    svg: SvgOpt = False,
) -> None:
    """Rebuild report.html and figures/ from a finished run's files, without re-running it."""
    from .report import write_report

    paths = write_report(out_dir, svg=svg)
    if not quiet:
        figures = paths[0].parent / "figures"
        typer.echo(f"Wrote {paths[0]} and {len(paths) - 1} figure files in {figures}")


@app.command("generate", cls=_Command)
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
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

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


# --- compare ---------------------------------------------------------------------------------


@app.command("compare", cls=_Command)
@_handles_errors
def compare_command(
    old_run: Annotated[Path, typer.Argument(metavar="OLD_RUN", help="The earlier run's folder.")],
    new_run: Annotated[Path, typer.Argument(metavar="NEW_RUN", help="The later run's folder.")],
    out: OutOpt = Path("custseg-compare"),
    force: ForceOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print compare.json on stdout instead of the account.")
    ] = False,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Write compare.html.")
    ] = True,
) -> None:
    """Show who moved from which segment to which between two runs, with their revenue."""
    from .comparison import compare
    from .output import build_compare, write_compare

    comparison = compare(old_run, new_run)
    written = write_compare(comparison, out, force=force, report=report)
    if json_out:
        sys.stdout.write(build_compare(comparison).dumps())
    elif not quiet:
        _print_compare(comparison, out, [p.name for p in written])


def _print_compare(comparison: Comparison, out: Path, files: list[str]) -> None:
    from rich.text import Text

    console = _stdout()
    c, t = comparison, comparison.totals()
    for side, r in (("Old", c.old), ("New", c.new)):
        s = r.summary
        console.print(
            f"{side}: {r.out_dir}, as of {s.as_of}, {s.method.name} k = {s.k}, "
            f"{len(r.customers):,} customers."
        )
    console.print(
        f"{t['customers_common']:,} customers in both runs: {t['stayed']:,} in a segment of "
        f"the same name, {t['moved']:,} in another; {t['new']:,} new, {t['lost']:,} lost."
    )
    console.print(_compare_revenue(t))
    table = _table(console)
    matrix = c.matrix()
    table.add_column(Text("old \\ new"), no_wrap=True)
    for col in [*matrix.columns, "total"]:
        table.add_column(Text(str(col)), justify="right")
    for name, row in matrix.iterrows():
        table.add_row(Text(str(name)), *(f"{int(v):,}" for v in [*row, row.sum()]))
    table.add_row(Text("total"), *(f"{int(v):,}" for v in [*matrix.sum(), matrix.to_numpy().sum()]))
    console.print(table)
    console.print(f"Wrote {', '.join(files)} to {out}")


def _compare_revenue(t: dict[str, Any]) -> str:
    """The revenue line of the compare summary; what is missing for runs without money."""
    old, new = t["revenue_old"], t["revenue_new"]
    if old is None and new is None:
        return "Revenue: neither run has a monetary value (both segment recency and frequency)."
    if old is None or new is None:
        (which, value), side = (("old", new), "new") if old is None else (("new", old), "old")
        return (
            f"Revenue: {value:,.0f} in the {side} run; the {which} run has no monetary value "
            "(it segments recency and frequency), so revenue is not compared."
        )
    return (
        f"Revenue: {old:,.0f} in the old run, {new:,.0f} in the new "
        f"({t['revenue_new_of_new']:,.0f} from new customers)."
    )


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
