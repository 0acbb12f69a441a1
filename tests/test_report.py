"""report.html and figures/: built from a run's files, self-contained, escaped, rebuildable."""

from __future__ import annotations

import atexit
import csv
import dataclasses
import datetime as dt
import html
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from typer.testing import CliRunner

from custseg.cli import app
from custseg.errors import InputError
from custseg.report import FIGURES, FigureSpec, ReportData, build_figures, uses, write_report
from custseg.report.figures import report_data
from custseg.report.page import SECTIONS as PAGE_SECTIONS
from custseg.report.render import DPI, fit_layout, report_style
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
    "holdout-by-k",
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


def _check_figures(out: Path, page: str, *, svg: bool = False) -> None:
    """A PNG of each figure of the page, and an SVG too when the report was built with svg."""
    files = sorted(p.name for p in (out / "figures").iterdir())
    stems = sorted({p.rsplit(".", 1)[0] for p in files})
    if svg:
        assert files == sorted([f"{s}.png" for s in stems] + [f"{s}.svg" for s in stems])
    else:
        assert files == sorted(f"{s}.png" for s in stems)
    assert len(stems) == page.count("<figure ")
    for s in stems:
        assert (out / "figures" / f"{s}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if svg:
            assert b"<svg" in (out / "figures" / f"{s}.svg").read_bytes()[:2000]


def test_run_writes_report_with_every_section(tiny_run: Path) -> None:
    page = (tiny_run / "report.html").read_text(encoding="utf-8")
    assert _headings(page) == list(SECTIONS)
    _check_self_contained(page)
    _check_figures(tiny_run, page)
    summary = json.loads((tiny_run / "summary.json").read_text(encoding="utf-8"))
    assert all(html.escape(s["name"]) in page for s in summary["segments"])
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


def test_write_report_with_svg_writes_both_formats(tiny_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    before = (copy / "report.html").read_text(encoding="utf-8")
    paths = write_report(copy, svg=True)
    page = (copy / "report.html").read_text(encoding="utf-8")
    assert page == before  # the SVGs are extra files; the page is the same
    _check_figures(copy, page, svg=True)
    assert paths[0] == copy / "report.html" and len(paths) == 1 + 2 * page.count("<figure ")
    write_report(copy)  # without: the SVGs of the previous build go with the old folder
    _check_figures(copy, page)


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
    from custseg.naming import DEFAULT_RULES

    defaults = tuple(rule.name for rule in DEFAULT_RULES)
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
    write_report(out, svg=True)  # SVGs are opt-in: build them to check them too
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert any(EVIL[0] in s["name"] or EVIL[1] in s["name"] for s in summary["segments"])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "<img src=x" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<script>") == 1  # the report's own self-check only
    _check_self_contained(page)
    svgs = list((out / "figures").glob("*.svg"))
    assert svgs
    for svg in svgs:
        assert "<script" not in svg.read_text(encoding="utf-8")


# --- the figure list and the layout ----------------------------------------------------------


def _extra_figure(d: ReportData) -> Figure:
    fig = Figure(figsize=(4.0, 3.0))
    ax = fig.add_subplot()
    ax.plot(d.selection.k_values, d.selection.sse)
    ax.set(title="Merges", xlabel="customers", ylabel="distance")
    return fig


def test_figure_list_names_every_figure_once_in_page_order() -> None:
    slugs = [f.slug for f in FIGURES]
    assert len(set(slugs)) == len(slugs)
    # Ward's, the mixtures' own, and those of data without money
    others = ("merge-heights", "dendrogram", "information-criteria", "segment-sizes", "scatter-rf")
    assert tuple(s for s in slugs if s not in others) == FIGURE_SLUGS  # a K-Means report's
    order = [sid for sid, _ in PAGE_SECTIONS]
    assert [title for _, title in PAGE_SECTIONS] == list(SECTIONS)
    assert [order.index(f.section) for f in FIGURES] == sorted(
        order.index(f.section) for f in FIGURES
    )


def test_a_method_adds_a_figure_with_one_entry(tiny_run: Path) -> None:
    data = report_data(read_run(tiny_run))
    assert data.method == "kmeans"
    specs = (
        FigureSpec(
            "k",
            "bic",
            "BIC curve",
            "-",
            _extra_figure,
            applies=uses("gmm"),
            missing="No BIC for {d.method}.",
        ),
        *FIGURES,
        FigureSpec(
            "k",
            "dendrogram",
            "Dendrogram",
            "{d.n:,} customers.",
            _extra_figure,
            applies=uses("kmeans", "ward"),
            wide=False,
        ),
    )
    built, notes = build_figures(data, specs)
    slugs = [f.page.slug for f in built]
    assert "bic" not in slugs and notes["k"] == "No BIC for kmeans."
    assert slugs.index("dendrogram") == slugs.index("k-metrics") + 1  # into its section
    assert [f.page.number for f in built] == list(range(1, len(built) + 1))
    assert built[slugs.index("dendrogram")].page.caption == f"{data.n:,} customers."


def _undrawn_tick_labels(fig: Figure) -> set[Text]:
    """Labels of ticks beyond the axis limits: matplotlib keeps them but does not draw them."""
    out: set[Text] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis, getattr(ax, "zaxis", None)):
            if axis is None:
                continue
            lo, hi = sorted(axis.get_view_interval())
            slack = 1e-9 * (hi - lo)
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                if not lo - slack <= tick.get_loc() <= hi + slack:
                    out.update((tick.label1, tick.label2))
    return out


def _texts_inside(fig: Figure) -> list[str]:
    """Texts drawn (partly) outside the figure: none, if nothing is clipped."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    box, undrawn = fig.bbox, _undrawn_tick_labels(fig)
    out = []
    for t in fig.findobj(Text):
        if t in undrawn or not (t.get_visible() and t.get_text().strip()):
            continue
        e = t.get_window_extent(renderer)
        if e.x0 < box.x0 - 1 or e.y0 < box.y0 - 1 or e.x1 > box.x1 + 1 or e.y1 > box.y1 + 1:
            out.append(t.get_text())
    return out


def _drawn(spec: FigureSpec, data: ReportData) -> Figure:
    fig = spec.build(data)
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(DPI)
    fit_layout(fig)
    canvas.draw()
    return fig


def test_layout_keeps_every_label_inside_the_figure(demo: Path) -> None:
    data = report_data(read_run(demo))
    with report_style():
        for spec in filter(lambda spec: spec.applies(data), FIGURES):
            fig = _drawn(spec, data)
            assert _texts_inside(fig) == [], spec.slug
            for ax in fig.axes:  # axes boxes do not overlap (colorbars sit beside theirs)
                for other in fig.axes:
                    if ax is not other and ax.name != "3d":
                        assert not ax.bbox.overlaps(other.bbox) or spec.slug == "scatter-3d"


def test_layout_makes_room_for_long_segment_names(tiny_run: Path) -> None:
    data = report_data(read_run(tiny_run))
    long = {c: f"Customers who bought {c} things and then some more, {EVIL[0]}" for c in data.names}
    data = dataclasses.replace(data, names=long)
    with report_style():
        for spec in FIGURES:
            if spec.applies(data):
                assert _texts_inside(_drawn(spec, data)) == [], spec.slug


@pytest.mark.parametrize(
    ("method", "own", "model_text"),
    [
        (
            "hierarchical",
            ["merge-heights", "dendrogram", "k-metrics"],
            "Ward hierarchical clustering",
        ),
        ("gmm", ["information-criteria", "k-metrics"], "A mixture of k = "),
        ("rfm-scores", [], "R, F and M scores from 1 to 5"),
    ],
)
def test_each_method_gets_its_own_figures(
    tmp_path: Path, method: str, own: list[str], model_text: str
) -> None:
    from custseg.generate import generate_transactions

    src = generate_transactions(tmp_path / "tx.csv", rows=4_000, customers=150, seed=1)
    out = tmp_path / "out"
    args = ["run", str(src), "--out", str(out), "--method", method, "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    stems = [p.stem.split("-", 1)[1] for p in sorted((out / "figures").glob("*.png"))]
    k_figures = [
        s
        for s in stems
        if s in ("elbow", "merge-heights", "dendrogram", "information-criteria", "k-metrics")
    ]
    assert k_figures == own  # the elbow is K-Means' own
    assert model_text in page and "K-Means" not in page
    _check_figures(out, page)
    data = report_data(read_run(out))
    with report_style():
        for spec in FIGURES:
            if spec.applies(data):
                assert _texts_inside(_drawn(spec, data)) == [], spec.slug


def _visits_log(path: Path) -> Path:
    """A grocery-style log: a customer and a timestamp per item, no invoice, no money."""
    rng = __import__("numpy").random.default_rng(3)
    rows = ["member,bought_at"]
    for c in range(60):
        for _ in range(1 + c % 7):
            day = dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(0, 200)))
            for _item in range(1 + int(rng.integers(0, 3))):  # a basket of items
                rows.append(f"M{c:03d},{day} 10:{c % 60:02d}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("options", "label"),
    [
        ([], "Frequency (purchase lines)"),
        (["--frequency-unit", "days"], "Frequency (purchase days)"),
    ],
)
def test_frequency_axes_say_what_frequency_counts(
    tmp_path: Path, options: list[str], label: str
) -> None:
    src = _visits_log(tmp_path / "visits.csv")
    out = tmp_path / "out"
    args = ["run", str(src), "-o", str(out), "--customer-col", "member", "--date-col", "bought_at"]
    res = runner.invoke(app, [*args, "--k", "3", "-q", *options])
    assert res.exit_code == 0, res.output
    data = report_data(read_run(out))
    assert data.features == ("recency", "frequency")
    assert data.axis_labels["frequency"] == label
    spec = {f.slug: f for f in FIGURES}
    hist = spec["rfm-histograms"].build(data)
    assert hist.axes[1].get_xlabel().startswith(label)
    assert spec["segment-means"].build(data).axes[1].get_ylabel() == label
    scatter = spec["scatter-rf"].build(data)
    assert scatter.axes[0].get_ylabel().startswith(label)
