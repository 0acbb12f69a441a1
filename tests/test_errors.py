"""The catalogue of bad inputs: each gets one clear line, exit code 1, no traceback, no output.

Every case builds its input in a temporary folder, runs the CLI, and checks the message (what is
wrong, where, how to fix it) and that no output folder or temporary file is left behind.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from custseg.cli import app

runner = CliRunner()
HEADER = "CustomerID,InvoiceNo,InvoiceDate,Quantity,UnitPrice\n"
GOOD = HEADER + "1,A1,2021-01-01,1,2\n2,A2,2021-01-05,2,3\n3,A3,2021-01-09,1,5\n"


def _write(name: str, text: str | bytes) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        p = d / name
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text, encoding="utf-8")
        return p

    return build


def _folder_without_data(d: Path) -> Path:
    (d / "notes").mkdir()
    (d / "notes" / "readme.md").write_text("hi")
    return d / "notes"


def _parquet_truncated(d: Path) -> Path:
    p = d / "t.parquet"
    pd.DataFrame(
        {"CustomerID": [1, 2], "InvoiceDate": ["2021-01-01"] * 2, "amount": [1.0, 2.0]}
    ).to_parquet(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _excel_two_sheets(d: Path) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "Notes"
    ws = wb.create_sheet("Sales")
    ws.append(["CustomerID", "InvoiceDate", "Amount"])
    ws.append([1, "2021-01-01", 5])
    p = d / "book.xlsx"
    wb.save(p)
    return p


def _bad_gzip(d: Path) -> Path:
    p = d / "t.csv.gz"
    p.write_bytes(gzip.compress(GOOD.encode())[:30])
    return p


CASES: list[tuple[str, Callable[[Path], Path] | str, list[str], str]] = [
    ("missing file", "nope.csv", [], r"No such file: '.*nope\.csv'\. Check the path\."),
    (
        "not a table",
        _write("x.bin", b"\x00\x01\x02\x03" * 500),
        [],
        r"not a table custseg can read .*Export the data as CSV or Parquet",
    ),
    (
        "binary with csv suffix",
        _write("x.csv", b"\x89PNG\r\n\x1a\n\x00\x00" * 300),
        [],
        r"looks binary, not text\. Export the data as CSV or Parquet",
    ),
    (
        "empty file",
        _write("e.csv", ""),
        [],
        r"e\.csv is empty\. Export the data again with a header row",
    ),
    (
        "header only",
        _write("h.csv", HEADER),
        [],
        r"The input has a header but no rows\. Check the export",
    ),
    (
        "missing customer column",
        _write("m.csv", "Invoice,Price,Kunde,Quantity,Date\n1,2,3,4,2021-01-01\n"),
        [],
        r"No customer column: found \[.*'Kunde'.*\]\. Pass --customer-col",
    ),
    (
        "customer hint skips columns of other roles",
        _write("g.csv", "Kunde_Nr,Date,itemDescription,Amount\n1808,2015-07-21,whole milk,2\n"),
        [],
        r"No customer column: .*Pass --customer-col 'Kunde_Nr'\.$",
    ),
    (
        "customer hint skips the column given for the date",
        _write("g.csv", "Date,Kunde,Tag,Amount\n2015-07-21,1808,2015-07-21,2\n"),
        ["--date-col", "Tag"],
        r"No customer column: .*Pass --customer-col 'Kunde'\.$",
    ),
    (
        "whitespace-aligned file read as one column",
        _write("cd.txt", "00001 19970101  1  11.77\n00002 19970112  1  12.00\n"),
        [],
        r"cd\.txt was read as a single column '00001 19970101  1  11\.77': its columns are "
        r"aligned with spaces\. Pass --delimiter whitespace\.$",
    ),
    (
        "headerless file without roles",
        _write("cd.txt", "00001 19970101  1  11.77\n00002 19970112  1  12.00\n"),
        ["--delimiter", "whitespace"],
        r"cd\.txt has no header row, so its columns are named column_1 to column_4 \(first "
        r"row: column_1='00001', column_2='19970101', column_3='1', column_4='11\.77'\)\. "
        r"Name their roles with --customer-col, --date-col and --amount-col",
    ),
    (
        "first row looks like data",
        _write("nh.csv", "C1,A1,2021-01-01,1,2\nC2,A2,2021-01-05,2,3\n"),
        [],
        r"The first row of nh\.csv, \['C1', 'A1', '2021-01-01', '1', '2'\], looks like data.*"
        r"Pass --no-header",
    ),
    (
        "decimal commas without --decimal",
        _write("eu.csv", "CustomerID;InvoiceDate;Amount\n1;03.01.2011;12,50\n2;04.01.2011;3,99\n"),
        [],
        r"Column 'Amount' holds numbers with a decimal comma \(values like '12,50', '3,99'\)\. "
        r"Pass --decimal ','\.$",
    ),
    (
        "unknown decimal mark",
        _write("g.csv", GOOD),
        ["--decimal", ";"],
        r"--decimal ';' is not a decimal mark\. Use '\.' \(default\) or ','\.$",
    ),
    (
        "missing date column",
        _write("m.csv", "CustomerID,Invoice,Price,Quantity\n1,2,3,4\n"),
        [],
        r"No date column: found .*Pass --date-col",
    ),
    (
        "quantity without price",
        _write("m.csv", "CustomerID,InvoiceDate,Quantity\n1,2021-01-01,2\n"),
        [],
        r"No price column: found .*Pass --price-col NAME, or --no-monetary to segment on "
        r"recency and frequency\.",
    ),
    (
        "rfm scores without money",
        _write("rf.csv", "CustomerID,InvoiceDate\n1,2021-01-01\n2,2021-01-05\n"),
        ["--method", "rfm-scores"],
        r"--method rfm-scores scores recency, frequency and monetary; .*no value column, or "
        r"--no-monetary\)\. Use --method kmeans, hierarchical or gmm",
    ),
    (
        "explicit column typo",
        _write("g.csv", GOOD),
        ["--customer-col", "CustomerId"],
        r"Column 'CustomerId' given with --customer-col is not in the input.*Did you mean 'CustomerID'\?",
    ),
    (
        "two roles one column",
        _write("g.csv", GOOD),
        ["--customer-col", "CustomerID", "--invoice-col", "CustomerID"],
        r"Column 'CustomerID' is mapped to several roles \['customer', 'invoice'\]",
    ),
    (
        "duplicated header",
        _write(
            "d.csv",
            "CustomerID,InvoiceNo,InvoiceDate,Quantity,Quantity,UnitPrice\n1,A,2021-01-01,1,1,2\n",
        ),
        [],
        r"Duplicated column name\(s\) \['Quantity'\] in the header of d\.csv\. Rename them",
    ),
    (
        "text in numbers, strict",
        _write("t.csv", GOOD + "4,A4,2021-01-02,abc,2\n"),
        ["--strict"],
        r"1 rows have a missing or non-numeric value in \['Quantity', 'UnitPrice'\] \(e\.g\. Quantity='abc', UnitPrice='2'\)\. --strict refuses",
    ),
    (
        "bad dates, strict",
        _write("t.csv", GOOD + "4,A4,31/31/2021,1,2\n"),
        ["--strict"],
        r"1 rows have a missing or unreadable date in 'InvoiceDate' \(e\.g\. InvoiceDate='31/31/2021'\).*--date-format",
    ),
    (
        "unknown date format",
        _write("t.csv", HEADER + "1,A,soon,1,2\n2,B,later,1,2\n"),
        [],
        r"Cannot tell the date format of column 'InvoiceDate' \(values like 'soon', 'later'\)\. Pass --date-format",
    ),
    (
        "date format matches nothing",
        _write("g.csv", GOOD),
        ["--date-format", "%d.%m.%Y"],
        r"No purchase lines left: all 3 rows were dropped \(3 unparseable date\)",
    ),
    (
        "every row cancelled",
        _write("c.csv", HEADER + "1,C1,2021-01-01,-1,2\n2,C2,2021-01-02,-3,2\n"),
        [],
        r"No purchase lines left: all 2 rows were dropped \(2 cancellation\)",
    ),
    (
        "no customer ids",
        _write("n.csv", HEADER + ",A1,2021-01-01,1,2\n,A2,2021-01-02,3,2\n"),
        [],
        r"all 2 rows were dropped \(2 missing customer\)",
    ),
    (
        "all dates after as-of",
        _write("g.csv", GOOD),
        ["--as-of", "2020-06-01"],
        r"all 3 rows were dropped \(3 outside window\)",
    ),
    (
        "fewer customers than k",
        _write("g.csv", GOOD),
        ["--k", "5"],
        r"k = 5 is more than the 3 customers\. Pass a k of at most 3",
    ),
    (
        "k above the customers, some alike",
        _write("g.csv", GOOD + "4,A4,2021-01-09,1,5\n"),
        ["--k", "5"],
        r"k = 5 is more than the 4 customers \(3 distinct R/F/M points\)\. Pass a k of at most 3",
    ),
    (
        "k above the distinct points, not the customers",
        _write("g.csv", GOOD + "4,A4,2021-01-09,1,5\n"),
        ["--k", "4"],
        r"k = 4 is more than the 3 distinct R/F/M points of the 4 customers\. Pass a k of at most 3",
    ),
    ("k zero", _write("g.csv", GOOD), ["--k", "0"], r"--k must be at least 1, got 0"),
    (
        "negative seed",
        _write("g.csv", GOOD),
        ["--seed", "-1"],
        r"--seed must be a whole number from 0 to 4,294,967,295, got -1",
    ),
    (
        "seed too large",
        _write("g.csv", GOOD),
        ["--seed", "99999999999"],
        r"--seed must be a whole number from 0 to",
    ),
    ("bad k range", _write("g.csv", GOOD), ["--k-range", "ten"], r"--k-range 'ten' is not a range"),
    (
        "bad as-of",
        _write("g.csv", GOOD),
        ["--as-of", "31/12/2021"],
        r"--as-of '31/12/2021' is not a date\. Use YYYY-MM-DD",
    ),
    (
        "since after until",
        _write("g.csv", GOOD),
        ["--since", "2021-02-01", "--until", "2021-01-01"],
        r"--since 2021-02-01 is after --until 2021-01-01",
    ),
    (
        "unknown outlier method",
        _write("g.csv", GOOD),
        ["--outliers", "mad"],
        r"Unknown outlier method 'mad'\. Use one of zscore, iqr, none",
    ),
    (
        "unknown transform",
        _write("g.csv", GOOD),
        ["--transform", "sqrt"],
        r"Unknown transform 'sqrt'\. Use none or log",
    ),
    (
        "exclude codes without stock column",
        _write("g.csv", GOOD),
        ["--exclude-codes", "POST"],
        r"--exclude-codes needs a stock code column.*--stock-code-col",
    ),
    ("folder without data", _folder_without_data, [], r"holds no CSV or Parquet files"),
    ("glob matches nothing", "{tmp}/nothing-*.csv", [], r"No files match '.*nothing-\*\.csv'"),
    (
        "truncated parquet",
        _parquet_truncated,
        [],
        r"Cannot read .*t\.parquet as Parquet .*complete Parquet file",
    ),
    ("corrupt gzip", _bad_gzip, [], r"Cannot read .*t\.csv\.gz"),
    (
        "excel sheet missing",
        _excel_two_sheets,
        ["--sheet", "2024"],
        r"book\.xlsx has no sheet '2024' \(nor sheet number 2024\); its sheets are \['Notes', 'Sales'\]\. Pass --sheet NAME",
    ),
    (
        "excel first sheet is notes",
        _excel_two_sheets,
        [],
        r"No customer column|header but no rows|Sheet 'Notes' of book\.xlsx is empty",
    ),
    (
        "config unknown key",
        _write("g.csv", GOOD),
        ["--config", "{tmp}/c.toml"],
        r"Unknown key\(s\) \['kk'\] in \[cluster\] of the config file",
    ),
    (
        "config not toml",
        _write("g.csv", GOOD),
        ["--config", "{tmp}/bad.toml"],
        r"Config file '.*bad\.toml' is not valid \.toml",
    ),
    (
        "bad encoding name",
        _write("g.csv", GOOD),
        ["--encoding", "klingon"],
        r"Cannot read .*g\.csv",
    ),
    (
        "output path is a file",
        _write("g.csv", GOOD),
        ["--out", "{tmp}/g.csv"],
        r"Output path '.*g\.csv' is a file\. Pass a folder path with --out",
    ),
    (
        "output parent not writable",
        _write("g.csv", GOOD),
        ["--out", "{tmp}/g.csv/sub/out"],
        r"Cannot write to '.*g\.csv/sub'",
    ),
]


@pytest.mark.parametrize(
    ("build", "args", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_gets_one_clear_line(
    build: Callable[[Path], Path] | str, args: list[str], pattern: str, tmp_path: Path
) -> None:
    (tmp_path / "c.toml").write_text("[cluster]\nkk = 3\n")
    (tmp_path / "bad.toml").write_text("[cluster\n")
    source = str(build(tmp_path)) if callable(build) else build.replace("{tmp}", str(tmp_path))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = tmp_path / "out"
    argv = ["run", source, *args] if "--out" in args else ["run", source, "--out", str(out), *args]
    before = set(os.listdir(tmp_path))
    res = runner.invoke(app, argv)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), res.stderr
    assert len([line for line in lines if line.startswith("error: ")]) == 1
    assert re.search(pattern, lines[-1]), lines[-1]
    assert set(os.listdir(tmp_path)) == before  # no output folder, no temporary leftovers


def test_catalogue_has_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


def _finished_run(tmp_path: Path) -> Path:
    src = tmp_path / "g.csv"
    src.write_text(GOOD)
    out = tmp_path / "run"
    assert (
        runner.invoke(
            app, ["run", str(src), "--out", str(out), "--k", "2", "--no-report", "-q"]
        ).exit_code
        == 0
    )
    return out


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        (
            "model.json",
            '{"format": "custseg-model", "model": {"__reduce__": "os.system", "k": "rm -rf /"}}',
            r"model\.json",
        ),
        ("model.json", "not json at all {", r"model\.json"),
        ("model.json", None, r"model\.json"),
        ("summary.json", None, r"has no summary\.json: run `custseg run INPUT --out .*` first"),
        ("segments.csv", "customer_id,recency\n1,2\n", r"segments\.csv"),
    ],
    ids=[
        "hostile model",
        "model not json",
        "model missing",
        "summary missing",
        "segments truncated",
    ],
)
def test_report_on_a_broken_run_folder(
    name: str, content: str | None, pattern: str, tmp_path: Path
) -> None:
    out = _finished_run(tmp_path)
    if content is None:
        (out / name).unlink()
    else:
        (out / name).write_text(content)
    before = sorted(p.name for p in out.iterdir())
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(pattern, lines[0]), (
        res.stderr
    )
    assert sorted(p.name for p in out.iterdir()) == before  # nothing half-written
