"""report.html and figures/: built from a run's files, self-contained, escaped, rebuildable."""

from __future__ import annotations

import atexit
import csv
import datetime as dt
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custseg.cli import app
from custseg.errors import InputError
from custseg.runs import read_run

runner = CliRunner()

SECTIONS = (
    "1. Data",
    "2. RFM distributions",
    "3. Choosing k",
    "4. The model",
    "5. Segments",
    "6. Views",
    "7. Reproducibility",
)
FIGURE_SLUGS = (
    "ledger",
    "rfm-boxplots",
    "rfm-histograms",
    "elbow",
    "k-metrics",
    "silhouette",
    "segment-means",
    "segment-profile",
    "segment-shares",
    "scatter-3d",
    "pca",
)
DOI = "https://doi.org/10.24432/C5BW33"
EVIL = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


def demo_output() -> Path:
    """One `custseg demo` run per test process, shared by the report tests (about 20 s)."""
    out = Path(tempfile.gettempdir()) / f"custseg-test-demo-{os.getpid()}"
    if not (out / "report.html").exists():
        result = runner.invoke(app, ["demo", "--out", str(out), "--force", "--quiet"])
        assert result.exit_code == 0, result.output
        atexit.register(shutil.rmtree, out, True)
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures import TINY_CSV

    base = tmp_path_factory.mktemp("tiny")
    src = base / "tiny.csv"
    src.write_text(TINY_CSV, encoding="utf-8")
    out = base / "out"
    result = runner.invoke(app, ["run", str(src), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def demo() -> Path:
    return demo_output()


def _headings(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


def _check_self_contained(page: str) -> None:
    # Tags only: escaped text from the data holds no raw "<".
    for tag in re.findall(r"<[a-zA-Z][^<>]*>", page):
        for attr, url in re.findall(r"""\s(src|href)\s*=\s*["']?([^"'\s>]+)""", tag):
            if url.startswith(("data:", "#")):
                continue
            assert url == DOI and attr == "href", f"external reference {attr}={url}"
    assert "@import" not in page and "url(" not in page
    for img in re.findall(r"<img\b[^>]*>", page):
        assert 'src="data:image/png;base64,' in img


def _check_figures(out: Path, page: str) -> None:
    files = sorted(p.name for p in (out / "figures").iterdir())
    stems = sorted({p.rsplit(".", 1)[0] for p in files})
    assert files == sorted([f"{s}.png" for s in stems] + [f"{s}.svg" for s in stems])
    assert len(stems) == page.count("<figure ")
    for s in stems:
        assert (out / "figures" / f"{s}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / "figures" / f"{s}.svg").read_bytes()[:2000]


def test_run_writes_report_with_every_section(tiny_run: Path) -> None:
    page = (tiny_run / "report.html").read_text(encoding="utf-8")
    assert _headings(page) == list(SECTIONS)
    _check_self_contained(page)
    _check_figures(tiny_run, page)
    assert "Champions" in page or "Needs attention" in page
    assert "Suggested action" in page
    assert not list(tiny_run.glob(".*tmp*"))


def test_demo_report_has_every_figure_and_headline(demo: Path) -> None:
    page = (demo / "report.html").read_text(encoding="utf-8")
    assert _headings(page) == list(SECTIONS)
    _check_self_contained(page)
    _check_figures(demo, page)
    stems = sorted(p.stem for p in (demo / "figures").glob("*.png"))
    assert [s.split("-", 1)[1] for s in stems] == list(FIGURE_SLUGS)
    summary = json.loads((demo / "summary.json").read_text())
    assert f"{summary['ledger']['customers_segmented']:,}" in page  # 4,338
    assert "2010-12-01" in page and "2011-12-09" in page
    assert "the knee says 3" in page.lower()
    assert DOI in page  # the data's credit line
    assert summary["input"]["sha256"] in page
    for seg in summary["segments"]:
        assert seg["name"] in page


def test_report_command_rebuilds_the_same_page(tiny_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    before = (copy / "report.html").read_text(encoding="utf-8")
    shutil.rmtree(copy / "figures")
    (copy / "report.html").unlink()
    result = runner.invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output
    after = (copy / "report.html").read_text(encoding="utf-8")
    assert _headings(after) == list(SECTIONS)
    assert after == before  # built from the files only: same page as at run time
    _check_figures(copy, after)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "summary.json").unlink(), "has no summary.json: run `custseg run"),
        (lambda d: (d / "segments.csv").unlink(), "has no segments.csv: run `custseg run"),
        (lambda d: (d / "run.json").unlink(), "has no run.json"),
        (lambda d: (d / "model.json").write_text("{not json"), "model.json is not readable JSON"),
        (lambda d: (d / "model.json").write_text('{"model": {"k": 2}}'), "model.json"),
        (
            lambda d: (d / "summary.json").write_text("{}"),
            "summary.json is not a custseg-summary file",
        ),
        (lambda d: (d / "segments.csv").write_text("a,b\n1,2\n"), "segments.csv is not a custseg"),
    ],
)
def test_report_command_names_the_missing_or_corrupt_file(
    tiny_run: Path, tmp_path: Path, damage: Callable[[Path], object], message: str
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    before = (copy / "report.html").read_bytes()
    damage(copy)
    result = runner.invoke(app, ["report", str(copy)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert (copy / "report.html").read_bytes() == before  # the old report is left alone


def test_report_command_on_a_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "is not a folder" in result.output


def test_read_run_rejects_files_of_different_runs(tiny_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    text = (copy / "segments.csv").read_text().replace(",false,0,", ",false,7,")
    (copy / "segments.csv").write_text(text)
    with pytest.raises(InputError, match="different runs"):
        read_run(copy)


def _evil_csv(path: Path) -> None:
    start = dt.datetime(2021, 1, 1, 10, 0)
    rows = []
    for c in range(14):
        cid = f"{EVIL[c % 2]}{c}"
        for i in range(1 + (c % 5) * (c % 3)):
            when = start + dt.timedelta(days=(c * 17 + i * 5) % 180)
            rows.append(
                [
                    f"{1000 + c * 10 + i}",
                    EVIL[0],
                    EVIL[1],
                    1 + c % 4,
                    when.strftime("%Y-%m-%d %H:%M"),
                    f"{2.5 + c * (c % 4):.2f}",
                    cid,
                    EVIL[i % 2],
                ]
            )
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "InvoiceNo",
                "StockCode",
                "Description",
                "Quantity",
                "InvoiceDate",
                "UnitPrice",
                EVIL[0],
                "Country",
            ]
        )
        w.writerows(rows)


def test_text_from_the_data_is_escaped_everywhere(tmp_path: Path) -> None:
    src = tmp_path / f"{EVIL[1]}.csv"
    _evil_csv(src)
    defaults = (
        "Champions",
        "Loyal customers",
        "Potential loyalists",
        "New customers",
        "Needs attention",
        "Occasional buyers",
        "Can't lose them",
        "At risk",
        "Hibernating",
        "Customers",
    )
    toml = "[names]\n" + "".join(
        f'"{d}" = {{ name = {json.dumps(f"{EVIL[i % 2]} ${i} $$", ensure_ascii=False)}, '
        f"action = {json.dumps(EVIL[0])} }}\n"
        for i, d in enumerate(defaults)
    )
    config = tmp_path / "names.toml"
    config.write_text(toml, encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "run",
            str(src),
            "--out",
            str(out),
            "--quiet",
            "--k",
            "2",
            "--customer-col",
            EVIL[0],
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert any(EVIL[0] in s["name"] or EVIL[1] in s["name"] for s in summary["segments"])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "<img src=x" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<script>") == 1  # the report's own self-check only
    _check_self_contained(page)
    for svg in (out / "figures").glob("*.svg"):
        assert "<script" not in svg.read_text(encoding="utf-8")
