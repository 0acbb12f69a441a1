from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custseg.cli import app, parse_k_range
from custseg.errors import ConfigError

runner = CliRunner()
DATA = Path(__file__).parent / "data"
CDNOW = DATA / "cdnow_sample.txt"  # CDNOW's own layout: id, YYYYMMDD, quantity, amount
EUROPEAN = DATA / "european_sample.csv"  # ';'-separated, decimal commas, dd.mm.yyyy


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_writes_outputs_and_prints_table(tiny_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["run", str(tiny_csv), "--out", str(out), "--k", "2", "--k-range", "1-2"]
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "figures",
        "model.json",
        "report.html",
        "run.json",
        "segments.csv",
        "summary.json",
    ]
    assert "13 rows read, 7 used" in res.stdout
    assert "Columns: customer='CustomerID', invoice='InvoiceNo', date='InvoiceDate'" in res.stdout
    assert "3 customers segmented as of 2021-02-01" in res.stdout
    assert "Wrote segments.csv, summary.json, model.json, run.json, report.html to" in res.stdout


def test_run_quiet_prints_nothing(tiny_csv: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "run",
            "--no-report",
            str(tiny_csv),
            "-o",
            str(tmp_path / "o"),
            "--k",
            "2",
            "--k-range",
            "1-2",
            "-q",
        ],
    )
    assert res.exit_code == 0 and res.stdout == ""


def test_run_options_reach_the_pipeline(tiny_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    res = runner.invoke(
        app,
        [
            "run",
            "--no-report",
            str(tiny_csv),
            "-o",
            str(out),
            "--k",
            "1",
            "--k-range",
            "1-2",
            "--exclude-codes",
            "POST,M",
            "--drop-duplicates",
            "--as-of",
            "2021-02-05",
            "--outliers",
            "none",
            "--transform",
            "log",
            "--seed",
            "3",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["as_of"] == "2021-02-05"
    assert summary["ledger"]["rows_dropped"]["excluded_code"] == 1
    assert summary["ledger"]["rows_dropped"]["duplicate"] == 1
    assert summary["settings"]["cluster"]["transform"] == "log"
    assert summary["settings"]["cluster"]["random_state"] == 3
    assert summary["k_selection"]["method"] == "fixed"


def test_run_explicit_columns(tmp_path: Path) -> None:
    src = tmp_path / "odd.csv"
    src.write_text("Cust No;When;Total\n1;2021-01-01;5\n2;2021-01-03;7\n3;2021-01-02;1\n")
    res = runner.invoke(
        app,
        [
            "run",
            "--no-report",
            str(src),
            "-o",
            str(tmp_path / "o"),
            "--customer-col",
            "Cust No",
            "--date-col",
            "When",
            "--amount-col",
            "Total",
            "--k",
            "1",
            "--k-range",
            "1",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["input"]["columns"] == {"customer": "Cust No", "date": "When", "amount": "Total"}


def test_run_config_file_then_flags(tiny_csv: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[cluster]\nk = 2\nk_values = [1, 2]\noutliers = "iqr"\n[clean]\nexclude_codes = ["POST"]\n'
    )
    res = runner.invoke(
        app,
        [
            "run",
            "--no-report",
            str(tiny_csv),
            "-o",
            str(tmp_path / "o"),
            "--config",
            str(cfg),
            "--outliers",
            "none",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["k"] == 2
    assert summary["settings"]["cluster"]["outliers"] == "none"  # the flag beats the file
    assert summary["ledger"]["rows_dropped"]["excluded_code"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.csv"], "error: No such file: 'missing.csv'"),
        (
            ["run", "{tiny}", "--customer-col", "Nope"],
            "error: Column 'Nope' given with --customer-col is not in the input",
        ),
        (["run", "{tiny}", "--as-of", "yesterday"], "error: --as-of 'yesterday' is not a date"),
        (["run", "{tiny}", "--outliers", "mad"], "error: Unknown outlier method 'mad'"),
        (["run", "{tiny}", "--k-range", "a-b"], "error: --k-range 'a-b' is not a range"),
        (["run", "{tiny}", "--config", "nope.toml"], "error: Cannot read config file 'nope.toml'"),
    ],
)
def test_run_errors_are_one_line(
    args: list[str], message: str, tiny_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    argv = [a.replace("{tiny}", str(tiny_csv)) for a in args] + ["-o", str(out)]
    res = runner.invoke(app, argv)
    assert res.exit_code == 1
    assert res.stderr.startswith(message), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.output
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_run_refuses_existing_output_without_force(tiny_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = [
        "run",
        "--no-report",
        str(tiny_csv),
        "-o",
        str(out),
        "--k",
        "2",
        "--k-range",
        "1-2",
        "-q",
    ]
    assert runner.invoke(app, args).exit_code == 0
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "Pass --force" in res.stderr
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_parse_k_range() -> None:
    assert parse_k_range("1-4") == (1, 2, 3, 4)
    assert parse_k_range("2,3,5") == (2, 3, 5)
    with pytest.raises(ConfigError):
        parse_k_range("x")


def test_demo_runs_on_bundled_data(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (
        "UCI Online Retail" in res.stdout
        and "4,338 customers segmented as of 2011-12-10" in res.stdout
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ledger"]["customers_segmented"] == 4_338


def test_run_csv_and_parquet_give_identical_segments(
    retail_parquet: Path, retail_csv: Path, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert (
        runner.invoke(app, ["run", "--no-report", str(retail_csv), "-o", str(a), "-q"]).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, ["run", "--no-report", str(retail_parquet), "-o", str(b), "-q"]
        ).exit_code
        == 0
    )
    assert _digest(a / "segments.csv") == _digest(b / "segments.csv")
    assert _digest(a / "model.json") == _digest(b / "model.json")


def test_run_is_deterministic(retail_parquet: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert (
            runner.invoke(
                app,
                ["run", "--no-report", str(retail_parquet), "-o", str(out), "-q", "--seed", "7"],
            ).exit_code
            == 0
        )
    for name in ("segments.csv", "summary.json", "model.json"):
        assert _digest(a / name) == _digest(b / name), name


def test_run_config_file_renames_segments(tiny_csv: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "names.toml"
    first = tmp_path / "first"
    args = ["run", "--no-report", str(tiny_csv), "--k", "2", "--k-range", "1-2", "-q"]
    assert runner.invoke(app, [*args, "-o", str(first)]).exit_code == 0
    default = json.loads((first / "summary.json").read_text())["segments"][0]["name"]
    cfg.write_text(f'[names]\n"{default}" = {{ name = "[VIP] accounts", action = "Call them." }}\n')
    res = runner.invoke(app, [*args[:-1], "-o", str(tmp_path / "o"), "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "[VIP] accounts" in res.stdout  # printed as text, not read as terminal markup
    seg = json.loads((tmp_path / "o" / "summary.json").read_text())["segments"][0]
    assert (seg["name"], seg["action"]) == ("[VIP] accounts", "Call them.")
    rows = (tmp_path / "o" / "segments.csv").read_text().splitlines()
    assert rows[1].endswith(",0,[VIP] accounts,5.0")


# --- a CLI that behaves like the CLIs people know ---------------------------------------------

TINY_ARGS = ["--k", "2", "--k-range", "1-2", "--no-report"]


def test_the_account_says_what_was_detected_in_a_text_file(tmp_path: Path) -> None:
    """Encoding, header and date format found in a CSV are printed; a Parquet file (typed
    dates, no encoding) prints no such line."""
    src = tmp_path / "export.csv"
    src.write_bytes(
        "Kunde;Datum;Betrag;Ort\n1;03.01.2021;12,5;Köln\n2;04.01.2021;3,25;Zürich\n"
        "1;05.02.2021;7;Köln\n3;06.02.2021;8;Graz\n".encode("latin-1")
    )
    args = ["--customer-col", "Kunde", "--date-col", "Datum", "--amount-col", "Betrag", "--k", "1"]
    args += ["--no-report"]
    res = runner.invoke(app, ["run", str(src), "-o", str(tmp_path / "o"), "--decimal", ",", *args])
    assert res.exit_code == 0, res.stderr
    head = res.stdout.splitlines()[0]
    assert head == f"Read {src}: encoding latin-1, dates as '%d.%m.%Y'.", head
    import pandas as pd

    frame = pd.DataFrame(
        {
            "customer": ["1", "2", "1"],
            "date": pd.to_datetime(["2021-01-03", "2021-01-04", "2021-02-05"]),
            "amount": [12.5, 3.25, 7.0],
        }
    )
    frame.to_parquet(tmp_path / "p.parquet")
    res = runner.invoke(
        app,
        ["run", str(tmp_path / "p.parquet"), "-o", str(tmp_path / "q"), "--k", "1", "--no-report"],
    )
    assert res.exit_code == 0, res.stderr
    assert not any(line.startswith("Read ") for line in res.stdout.splitlines())


def test_help_lists_choices_and_names_the_argument() -> None:
    res = runner.invoke(app, ["run", "--help"])
    assert res.exit_code == 0
    assert "Usage: custseg run [OPTIONS] INPUT" in res.stdout
    assert "{input}" not in res.stdout.lower()
    assert "zscore|iqr|none" in res.stdout and "|silhouette" in res.stdout
    assert "kmeans|hierarchical|gmm|rfm-scores" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "x.csv", "--outliers", "zscor"], "Did you mean 'zscore'?"),
        (["rn", "x.csv"], "No such command 'rn'. Did you mean 'run'?"),
        (["run"], "Missing argument 'INPUT'. See 'custseg run --help'."),
        (["run", "x.csv", "--no-such-flag"], "No such option: --no-such-flag"),
    ],
)
def test_usage_errors_are_one_line_exit_1(args: list[str], message: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_shell_completion_is_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    # Name the shell (Typer otherwise detects it from the parent processes, which differ
    # between a terminal, CI and a test runner started in the background).
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    res = runner.invoke(app, ["--show-completion", "bash"])
    assert res.exit_code == 0, (res.output, repr(res.exception))
    assert "_CUSTSEG_COMPLETE" in res.stdout and "complete" in res.stdout


def test_stdin_is_read_as_csv(tmp_path: Path) -> None:
    from fixtures import TINY_CSV

    out = tmp_path / "o"
    res = runner.invoke(app, ["run", "-", "-o", str(out), *TINY_ARGS, "-q"], input=TINY_CSV)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["name"] == "stdin.csv"
    assert summary["ledger"]["rows_read"] == 13


def test_json_prints_the_summary_on_stdout(tiny_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", str(tiny_csv), "-o", str(out), *TINY_ARGS, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == json.loads((out / "summary.json").read_text())


def test_piped_table_is_plain_and_not_cut(tmp_path: Path) -> None:
    from fixtures import TINY_CSV

    src = tmp_path / "t.csv"
    src.write_text(TINY_CSV)
    first = runner.invoke(app, ["run", str(src), "-o", str(tmp_path / "a"), *TINY_ARGS, "-q"])
    assert first.exit_code == 0, first.output
    default = json.loads((tmp_path / "a" / "summary.json").read_text())["segments"][0]["name"]
    name = "A segment name far longer than eighty columns would ever allow, " * 2
    config = tmp_path / "c.toml"
    config.write_text(f'[names]\n"{default}" = "{name.strip()}"\n')
    res = runner.invoke(
        app, ["run", str(src), "-o", str(tmp_path / "o"), *TINY_ARGS, "--config", str(config)]
    )
    assert res.exit_code == 0, res.output
    assert name.strip() in res.stdout  # on one line, whole
    assert "\x1b[" not in res.stdout  # no colour codes in a pipe
    assert not set("┃━│╇") & set(res.stdout)  # nor box drawing


def test_quiet_keeps_warnings_in_run_json(tiny_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", str(tiny_csv), "-o", str(out), *TINY_ARGS, "-q"])
    assert res.exit_code == 0 and res.stdout == "" and res.stderr == ""
    warned = json.loads((out / "run.json").read_text())["warnings"]
    assert any("counted as invalid_number" in w for w in warned)
    loud = runner.invoke(app, ["run", str(tiny_csv), "-o", str(out), *TINY_ARGS, "--force"])
    assert [f"warning: {w}" for w in warned] == [
        line for line in loud.stderr.splitlines() if line.startswith("warning: ")
    ]


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_start_up_imports_neither_engine_nor_models(flag: str) -> None:
    import subprocess
    import sys

    code = (
        f"import sys; from custseg.cli import main; sys.argv = ['custseg', '{flag}']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('duckdb', 'ibis', 'sklearn', 'scipy', 'matplotlib', 'pandas', "
        "'numpy', 'pydantic', 'custseg.config') if m in sys.modules]\nprint('heavy:', heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ("custseg 0.1.0" if flag == "--version" else "segment") in done.stdout
    assert "heavy: []" in done.stdout


# --- awkward but common inputs (issue 10 item 9) ---------------------------------------------


def test_as_of_in_the_past_names_customers_cut_off(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text(
        "CustomerID,InvoiceNo,InvoiceDate,Quantity,UnitPrice\n"
        "1,A1,2021-01-01,1,2\n2,A2,2021-01-05,2,3\n3,A3,2021-01-09,1,5\n"
        "1,A4,2021-03-10,1,5\n4,A5,2021-03-09,1,5\n5,A6,2021-03-10,1,5\n"
        "6,C7,2021-01-02,-1,5\n"
    )
    out = tmp_path / "o"
    args = ["run", str(src), "--out", str(out), "--as-of", "2021-02-01", "--k", "2"]
    res = runner.invoke(app, [*args, "--no-report"])
    assert res.exit_code == 0, res.output
    # Customers 4 and 5 bought only after as_of; customer 6 has a cancellation only.
    assert (
        "3 customers segmented as of 2021-02-01 (2 customers whose purchases all fall on or "
        "after as_of 2021-02-01, left out; 1 seen without a purchase;"
    ) in res.stdout
    ledger = json.loads((out / "summary.json").read_text())["ledger"]
    assert ledger["customers_without_purchase"] == 3
    assert ledger["customers_outside_window"] == 2
    # The warning names the window of the flags given, and only those.
    warned = "warning: 3 rows fall outside the window (before --as-of 2021-02-01) and were left"
    assert warned in " ".join(res.stderr.split()), res.stderr
    res = runner.invoke(app, [*args, "--since", "2021-01-02", "--no-report", "--force"])
    assert res.exit_code == 0, res.output
    warned = "4 rows fall outside the window (from --since 2021-01-02, before --as-of 2021-02-01)"
    assert warned in " ".join(res.stderr.split()), res.stderr


def test_ledger_without_a_window_has_no_outside_window_key(tiny_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", str(tiny_csv), "--out", str(out), "--k", "2", "--no-report"])
    assert res.exit_code == 0, res.output
    assert "(3 seen without a purchase;" in res.stdout
    assert "customers_outside_window" not in (out / "summary.json").read_text()


def _rfm_cells(out: Path) -> dict[str, str]:
    rows = (out / "segments.csv").read_text().splitlines()[1:]
    return {r.split(",")[0]: ",".join(r.split(",")[1:4]) for r in rows}


def test_cdnow_whitespace_file_is_read(tmp_path: Path) -> None:
    out = tmp_path / "o"
    roles = ["--customer-col", "column_1", "--date-col", "column_2", "--amount-col", "column_4"]
    res = runner.invoke(
        app,
        ["run", str(CDNOW), "--out", str(out), "--delimiter", "whitespace", *roles, "--no-report"],
    )
    assert res.exit_code == 0, res.output
    assert "40 rows read, 40 used; dropped: none." in res.stdout
    assert "15 customers segmented as of 1998-07-01" in res.stdout
    got = _rfm_cells(out)
    # By hand: 00003 bought 6 times, last on 1998-05-28 (34 days before as_of), 156.46 in all;
    # 00002's two rows of 1997-01-12 are two orders (no invoice column: a row is an order).
    assert got["00003"] == "34,6,156.46"
    assert got["00002"] == "535,2,89.0"
    assert len(got) == 15


def test_whitespace_file_with_a_header_and_tabs(tmp_path: Path) -> None:
    src = tmp_path / "t.txt"
    src.write_text(
        "CustomerID   InvoiceDate\tQuantity   Amount\n"
        "  7    2021-01-01\t1    10.00\n"
        "\n"
        "8\t\t2021-01-05   2  3.5\n"
        "7  2021-01-09  1  5\n"
    )
    out = tmp_path / "o"
    res = runner.invoke(
        app, ["run", str(src), "--out", str(out), "--delimiter", "whitespace", "--k", "1"]
    )
    assert res.exit_code == 0, res.output
    assert "3 rows read, 3 used" in res.stdout
    assert "amount='Amount'" in res.stdout
    assert _rfm_cells(out) == {"7": "1,2,15.0", "8": "5,1,3.5"}


def test_headerless_csv_with_no_header_and_column_numbers(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("C1,A1,2021-01-01,1,2\nC2,A2,2021-01-05,2,3\nC1,A3,2021-01-09,1,5\n")
    out = tmp_path / "o"
    roles = ["--customer-col", "column_1", "--invoice-col", "column_2", "--date-col", "column_3"]
    roles += ["--quantity-col", "column_4", "--price-col", "column_5"]
    res = runner.invoke(
        app, ["run", str(src), "--out", str(out), "--no-header", *roles, "--k", "1", "-q"]
    )
    assert res.exit_code == 0, res.output
    assert _rfm_cells(out) == {"C1": "1,2,7.0", "C2": "5,1,6.0"}


def test_decimal_comma_file_is_read(tmp_path: Path) -> None:
    out = tmp_path / "o"
    res = runner.invoke(
        app, ["run", str(EUROPEAN), "--out", str(out), "--decimal", ",", "--k", "2", "--no-report"]
    )
    assert res.exit_code == 0, res.output
    assert "10 rows read, 10 used; dropped: none." in res.stdout
    got = _rfm_cells(out)
    # 10001: 2 x 12,50 + 1 x 1.234,00 (one invoice), then 45,00 -> 1304.0 over 2 invoices.
    assert got["10001"] == "28,2,1304.0"
    assert got["10002"] == "55,2,18.5"  # 10 x 0,85 + 4 x 2,5


def test_decimal_comma_file_without_the_flag_is_refused_with_the_fix(tmp_path: Path) -> None:
    res = runner.invoke(app, ["run", str(EUROPEAN), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert res.stderr.strip() == (
        "error: Column 'UnitPrice' holds numbers with a decimal comma (values like '12,50', "
        "'1.234,00', '0,85'). Pass --decimal ','."
    )


def test_score_reads_decimal_commas_too(tmp_path: Path) -> None:
    run_out, score_out = tmp_path / "run", tmp_path / "score"
    flags = ["--decimal", ",", "--no-report", "-q"]
    res = runner.invoke(app, ["run", str(EUROPEAN), "--out", str(run_out), "--k", "2", *flags])
    assert res.exit_code == 0, res.output
    model = str(run_out / "model.json")
    res = runner.invoke(app, ["score", str(EUROPEAN), "-m", model, "--out", str(score_out), *flags])
    assert res.exit_code == 0, res.output
    assert _rfm_cells(score_out) == _rfm_cells(run_out)
    assert _rfm_cells(score_out)["10001"] == "28,2,1304.0"


# A log without an invoice column: a and b buy baskets (several rows at one timestamp).
BASKETS_CSV = (
    "customer,date,amount\n"
    "a,2021-01-01 10:00,5\na,2021-01-01 10:00,7\na,2021-01-01 10:00,1\na,2021-01-05 09:00,2\n"
    "b,2021-01-03 12:00,4\nb,2021-01-03 12:00,1\nc,2021-01-02 08:00,9\nd,2021-01-04 08:00,3\n"
)


def test_run_warns_about_baskets_and_suggests_days(tmp_path: Path) -> None:
    path = tmp_path / "baskets.csv"
    path.write_text(BASKETS_CSV)
    base = ["run", str(path), "--no-report", "--k", "2", "--outliers", "none"]
    res = runner.invoke(app, [*base, "-o", str(tmp_path / "orders")])
    assert res.exit_code == 0, res.output
    warned = [line for line in res.stderr.splitlines() if "basket" in line]
    assert len(warned) == 1, res.stderr
    assert "no invoice column and 2 customers (50%) have several rows" in warned[0]
    assert "Pass --frequency-unit days" in warned[0]
    orders = (tmp_path / "orders" / "segments.csv").read_text().splitlines()
    assert [line.split(",")[2] for line in orders[1:]] == ["4", "2", "1", "1"]

    res = runner.invoke(app, [*base, "-o", str(tmp_path / "days"), "--frequency-unit", "days"])
    assert res.exit_code == 0, res.output
    assert "basket" not in res.stderr
    days = (tmp_path / "days" / "segments.csv").read_text().splitlines()
    assert [line.split(",")[2] for line in days[1:]] == ["2", "1", "1", "1"]
    summary = json.loads((tmp_path / "days" / "summary.json").read_text())
    assert summary["settings"]["clean"]["frequency_unit"] == "days"
    model = json.loads((tmp_path / "days" / "model.json").read_text())
    assert model["settings"]["clean"]["frequency_unit"] == "days"
    assert all("purchase day" in s["description"] for s in summary["segments"])


def test_frequency_unit_default_is_not_written(tiny_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", str(tiny_csv), "-o", str(out), "--no-report", "--k", "2"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert "frequency_unit" not in summary["settings"]["clean"]
    assert all(" order" in s["description"] for s in summary["segments"])


def test_frequency_unit_unknown_is_one_line(tiny_csv: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["run", str(tiny_csv), "-o", str(tmp_path / "o"), "--frequency-unit", "day"]
    )
    assert res.exit_code == 1
    assert res.stderr.strip() == (
        "error: Unknown frequency unit 'day'. Use orders or days. Did you mean 'days'?"
    )


def test_score_repeats_the_model_frequency_unit(tmp_path: Path) -> None:
    path = tmp_path / "baskets.csv"
    path.write_text(BASKETS_CSV)
    out = tmp_path / "run"
    res = runner.invoke(
        app,
        ["run", str(path), "-o", str(out), "--no-report", "--k", "2", "--frequency-unit", "days"],
    )
    assert res.exit_code == 0, res.output
    scored = tmp_path / "scored"
    res = runner.invoke(
        app,
        ["score", str(path), "--model", str(out / "model.json"), "-o", str(scored), "--no-report"],
    )
    assert res.exit_code == 0, res.output
    assert "basket" not in res.stderr
    assert (scored / "segments.csv").read_bytes() == (out / "segments.csv").read_bytes()


def _segments(path: Path) -> dict[str, dict[str, str]]:
    lines = path.read_text().splitlines()
    head = lines[0].split(",")
    return {row[0]: dict(zip(head, row, strict=True)) for row in (r.split(",") for r in lines[1:])}


def test_run_returns_net_nets_counts_and_shows_where_they_go(
    returns_csv: Path, tmp_path: Path
) -> None:
    base = ["run", str(returns_csv), "--k", "2", "--outliers", "none"]
    res = runner.invoke(app, [*base, "-o", str(tmp_path / "drop"), "--no-report"])
    assert res.exit_code == 0, res.output
    assert "Returns netted" not in res.stdout
    dropped = _segments(tmp_path / "drop" / "segments.csv")
    assert {c: (r["monetary"], r["returned"]) for c, r in dropped.items()} == {
        "a": ("50.0", "20.0"), "b": ("25.0", "25.0"), "c": ("5.0", "20.0"),
        "d": ("12.0", "4.0"), "f": ("18.0", "6.0"),
    }  # fmt: skip
    assert (
        "rows_netted" not in json.loads((tmp_path / "drop" / "summary.json").read_text())["ledger"]
    )

    out = tmp_path / "net"
    res = runner.invoke(app, [*base, "-o", str(out), "--returns", "net"])
    assert res.exit_code == 0, res.output
    net = _segments(out / "segments.csv")
    assert {c: (r["monetary"], r["returned"]) for c, r in net.items()} == {
        "a": ("30.0", "20.0"), "b": ("0.0", "25.0"), "c": ("0.0", "20.0"),
        "d": ("8.0", "4.0"), "f": ("12.0", "6.0"),
    }  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ledger"]["rows_netted"] == 6
    assert summary["ledger"]["customers_net_nonpositive"] == 2
    assert summary["ledger"]["rows_dropped"]["cancellation"] == 9
    assert summary["settings"]["clean"]["returns"] == "net"
    where = {s["name"]: s["net_nonpositive"] for s in summary["segments"]}
    assert sum(where.values()) == 2 and where[net["b"]["segment"]] >= 1
    assert summary["customers"]["total"] == 5  # b and c are kept
    assert "Returns netted: 6 cancellation lines subtracted" in res.stdout
    assert "2 customers whose net value is 0 or below are kept with monetary 0 (" in res.stdout
    page = (out / "report.html").read_text()
    assert "Returns are netted" in page and "2 customers returned as much as they bought" in page
    assert "Net value 0 or below (kept, monetary 0)" in page

    scored = tmp_path / "scored"
    res = runner.invoke(
        app, ["score", str(returns_csv), "-m", str(out / "model.json"), "-o", str(scored)]
    )
    assert res.exit_code == 0, res.output
    assert (scored / "segments.csv").read_bytes() == (out / "segments.csv").read_bytes()
    assert json.loads((scored / "summary.json").read_text())["ledger"]["rows_netted"] == 6


def test_returns_drop_report_says_what_was_left_out(returns_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", str(returns_csv), "-o", str(out), "--k", "2"])
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    assert "5 customers have cancellation lines worth 75 in all" in page
    assert "Returns are netted" not in page


# A customer and a date per row (an app-event or grocery log), as of 2021-01-30:
#   u1: Jan 1, 5, 20, 28 -> R 2, F 4;  u3: Jan 3, 27 -> R 3, F 2;  u4: Jan 15, 16, 29 -> R 1, F 3
#   u2: Jan 2 -> R 28, F 1;            u5: Jan 4 -> R 26, F 1;     u6: Jan 25 -> R 5, F 1
EVENTS_CSV = (
    "user_id,event_time\n"
    "u1,2021-01-01 10:00\nu1,2021-01-05 10:00\nu1,2021-01-20 09:00\nu1,2021-01-28 09:00\n"
    "u2,2021-01-02 10:00\nu3,2021-01-03 10:00\nu3,2021-01-27 10:00\nu4,2021-01-15 10:00\n"
    "u4,2021-01-16 10:00\nu4,2021-01-29 10:00\nu5,2021-01-04 10:00\nu6,2021-01-25 11:00\n"
)


def test_run_without_a_value_column_segments_on_recency_and_frequency(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENTS_CSV)
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", str(path), "-o", str(out), "--k", "2", "--outliers", "none"])
    assert res.exit_code == 0, res.output
    assert "No value column (quantity and price, or amount) among ['user_id', 'event_time']" in (
        res.stderr
    )
    assert "Segmented on recency and frequency only (no value column)" in res.stdout
    table = res.stdout.split("k = 2")[1]
    assert "revenue" not in table and "monetary" not in table
    rows = (out / "segments.csv").read_text().splitlines()
    assert rows[0] == "customer_id,recency,frequency,outlier,cluster,segment"
    got = {r.split(",")[0]: r.split(",")[1:3] for r in rows[1:]}
    assert got == {
        "u1": ["2", "4"], "u2": ["28", "1"], "u3": ["3", "2"], "u4": ["1", "3"],
        "u5": ["26", "1"], "u6": ["5", "1"],
    }  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["features"] == ["recency", "frequency"]
    assert summary["settings"]["clean"]["monetary"] is False
    assert "monetary_mean" not in summary["customers"]
    for s in summary["segments"]:
        assert not {"revenue", "share_revenue", "monetary_mean", "monetary_median"} & set(s)
        assert set(s["levels"]) == {"recency", "frequency"}
    assert [s["name"] for s in summary["segments"]] == ["Loyal customers", "Hibernating"]
    model = json.loads((out / "model.json").read_text())
    assert model["model"]["features"] == ["recency", "frequency"]
    page = (out / "report.html").read_text()
    assert "Segmented on recency and frequency only" in page
    assert "share of revenue" not in page and "mean monetary" not in page
    assert 'id="fig-scatter-rf"' in page and 'id="fig-scatter-3d"' not in page
    assert 'id="fig-segment-sizes"' in page and 'id="fig-segment-shares"' not in page

    scored = tmp_path / "scored"
    res = runner.invoke(app, ["score", str(path), "-m", str(out / "model.json"), "-o", str(scored)])
    assert res.exit_code == 0, res.output
    assert (scored / "segments.csv").read_bytes() == (out / "segments.csv").read_bytes()
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output


def test_no_monetary_keeps_the_ledger_and_drops_the_money(tiny_csv: Path, tmp_path: Path) -> None:
    base = ["run", str(tiny_csv), "--no-report", "--k", "2", "--k-range", "1-2"]
    res = runner.invoke(app, [*base, "-o", str(tmp_path / "rfm")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*base, "-o", str(tmp_path / "rf"), "--no-monetary"])
    assert res.exit_code == 0, res.output
    assert "Segmented on recency and frequency only (--no-monetary)" in res.stdout
    assert "No value column" not in res.stderr
    rfm = json.loads((tmp_path / "rfm" / "summary.json").read_text())
    rf = json.loads((tmp_path / "rf" / "summary.json").read_text())
    assert rf["ledger"] == rfm["ledger"]  # the same purchase lines
    assert rf["features"] == ["recency", "frequency"] and "features" not in rfm
    head = (tmp_path / "rf" / "segments.csv").read_text().splitlines()[0]
    assert head == "customer_id,recency,frequency,outlier,cluster,segment"


@pytest.mark.parametrize("command", ["run", "backtest", "compare-methods", "demo", "score"])
def test_an_existing_output_folder_is_refused_before_any_work(
    command: str, tiny_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import custseg.pipeline
    import custseg.scoring

    def no_work(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the input was read before the output folder was checked")

    for module, name in (
        (custseg.pipeline, "run"),
        (custseg.pipeline, "backtest"),
        (custseg.scoring, "score"),
        (custseg.pipeline, "aggregate"),
    ):
        monkeypatch.setattr(module, name, no_work)
    out = tmp_path / "out"
    out.mkdir()
    (out / "segments.csv").write_text("earlier run\n")
    args = {
        "run": ["run", str(tiny_csv)],
        "backtest": ["backtest", str(tiny_csv)],
        "compare-methods": ["compare-methods", str(tiny_csv)],
        "demo": ["demo"],
        "score": ["score", "--model", str(tmp_path / "model.json"), str(tiny_csv)],
    }[command]
    res = runner.invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert res.stderr.strip() == (
        f"error: Output folder '{out}' already exists. Pass --force to replace it, "
        "or choose another --out."
    )
    assert (out / "segments.csv").read_text() == "earlier run\n"
