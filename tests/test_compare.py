"""Tests of custseg.comparison, compare.json, the written folder, compare.html and `custseg compare`.

The runs are made with the CLI on the Online Retail data: one up to 2011-09-01, one on all of
it, and the latter again with hostile segment names from a config file. The migration matrix
is checked against an independent pandas computation from the files alone.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import custseg
from custseg.cli import app
from custseg.comparison import LOST, NEW, STATUSES, Comparison, compare
from custseg.errors import CustsegWarning, InputError, OutputError
from custseg.formats import CompareFile
from custseg.output import build_compare, write_compare
from custseg.report.compare import write_compare_page

runner = CliRunner()
FAST = ["--k-range", "3-4", "--no-report", "-q"]
#: Names a config file gives the segments of the renamed run (3 or 4 of them): markup and
#: quotes; one of the matrix's own labels; a spreadsheet formula with a comma, dollars
#: (mathtext), an ampersand and quotes.
HOSTILE = ['<script>alert("x")</script>', NEW, "=SUM(1), $$ & 'co'", "Fourth", "Fifth"]


def _run(args: list[str]) -> None:
    res = runner.invoke(app, ["run", *args, *FAST])
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, retail_parquet: Path) -> dict[str, Path]:
    """Folders: old (to 2011-09-01), new (all), renamed (all, hostile names), and a scratch."""
    base = tmp_path_factory.mktemp("compare")
    src = str(retail_parquet)
    _run([src, "--as-of", "2011-09-01", "-o", str(base / "old")])
    _run([src, "-o", str(base / "new")])
    names = [s["name"] for s in json.loads((base / "new" / "summary.json").read_text())["segments"]]
    config = {"names": {n: {"name": HOSTILE[i]} for i, n in enumerate(names)}}
    (base / "names.json").write_text(json.dumps(config))
    _run([src, "-o", str(base / "renamed"), "--config", str(base / "names.json")])
    return {"old": base / "old", "new": base / "new", "renamed": base / "renamed", "base": base}


@pytest.fixture(scope="module")
def comparison(runs: dict[str, Path]) -> Comparison:
    return compare(runs["old"], runs["new"])


# --- an independent computation from the files ----------------------------------------------


def _side(folder: Path) -> pd.DataFrame:
    """segments.csv as pandas reads it, with the names of summary.json."""
    table = pd.read_csv(folder / "segments.csv", dtype={"customer_id": str}, keep_default_na=False)
    summary = json.loads((folder / "summary.json").read_text())
    names = {s["cluster"]: s["name"] for s in summary["segments"]}
    return pd.DataFrame(
        {"name": table["cluster"].map(names).to_numpy(), "monetary": table["monetary"].to_numpy()},
        index=table["customer_id"].to_numpy(),
    )


def _reference(old: Path, new: Path) -> dict[str, pd.DataFrame]:
    """Migration matrices by pandas: an outer join on customer id, then crosstabs."""
    o, n = _side(old), _side(new)
    both = o.join(n, how="outer", lsuffix="_old", rsuffix="_new")
    both["from"] = both["name_old"].fillna("NEW")
    both["to"] = both["name_new"].fillna("LOST")
    both = both.fillna({"monetary_old": 0.0, "monetary_new": 0.0})
    return {
        "customers": pd.crosstab(both["from"], both["to"]),
        "revenue_old": pd.crosstab(both["from"], both["to"], both["monetary_old"], aggfunc="sum"),
        "revenue_new": pd.crosstab(both["from"], both["to"], both["monetary_new"], aggfunc="sum"),
        "joined": both,
    }


def _relabel(matrix: pd.DataFrame, c: Comparison) -> pd.DataFrame:
    """Comparison.matrix() with the reference's labels, and without its empty rows/columns."""
    m = matrix.rename(index={c.new_label: "NEW"}, columns={c.lost_label: "LOST"})
    return m.loc[m.sum(axis=1) != 0, m.sum(axis=0) != 0]


@pytest.mark.parametrize("value", ["customers", "revenue_old", "revenue_new"])
def test_compare_matrix_matches_pandas(
    comparison: Comparison, runs: dict[str, Path], value: str
) -> None:
    ref = _reference(runs["old"], runs["new"])[value].fillna(0.0)
    got = _relabel(comparison.matrix(value), comparison)  # type: ignore[arg-type]
    ref = ref.loc[ref.sum(axis=1) != 0, ref.sum(axis=0) != 0]
    ref = ref.reindex(index=got.index, columns=got.columns)
    assert not ref.isna().any().any(), (ref, got)
    np.testing.assert_allclose(got.to_numpy(dtype=float), ref.to_numpy(dtype=float), rtol=1e-9)


def test_compare_conserves_customers_and_revenue(
    comparison: Comparison, runs: dict[str, Path]
) -> None:
    o, n = _side(runs["old"]), _side(runs["new"])
    union = o.index.union(n.index)
    m = comparison.matrix()
    assert int(m.to_numpy().sum()) == len(union) == len(comparison.customers)
    assert comparison.customers.index.is_unique
    assert set(comparison.customers.index) == set(union)
    assert int(m.drop(index=comparison.new_label).to_numpy().sum()) == len(o)  # rows: old run
    assert int(m.drop(columns=comparison.lost_label).to_numpy().sum()) == len(n)  # cols: new
    assert m.loc[comparison.new_label, comparison.lost_label] == 0
    rev_old = comparison.matrix("revenue_old")
    rev_new = comparison.matrix("revenue_new")
    assert rev_old.to_numpy().sum() == pytest.approx(o["monetary"].sum(), rel=1e-12)
    assert rev_new.to_numpy().sum() == pytest.approx(n["monetary"].sum(), rel=1e-12)
    assert rev_old.loc[comparison.new_label].sum() == 0  # new customers had nothing before
    t = comparison.totals()
    assert sum(t[s] for s in STATUSES) == t["customers_total"] == len(union)
    assert t["customers_common"] == len(o.index.intersection(n.index))
    assert t["new"] == len(n.index.difference(o.index)) and t["lost"] == len(
        o.index.difference(n.index)
    )
    # The Online Retail data up to 2011-09-01 is part of all of it: no customer is lost.
    assert t["lost"] == 0 and t["new"] > 0


def test_compare_statuses_and_segment_tables(comparison: Comparison) -> None:
    c = comparison.customers
    same = c["old_segment"].astype(object) == c["new_segment"].astype(object)
    assert (c["status"] == "stayed").sum() == same.sum()
    assert c.loc[c["status"] == "new", "old_cluster"].isna().all()
    assert c.loc[c["status"] == "new", "revenue_old"].eq(0).all()
    old, new = comparison.old_segments(), comparison.new_segments()
    assert (old["stayed"] + old["moved"] + old["lost"] == old["customers"]).all()
    assert (new["stayed"] + new["moved_in"] + new["new"] == new["customers"]).all()
    assert old["customers"].sum() == len(comparison.old.customers)
    assert new["new"].sum() == comparison.totals()["new"]
    assert list(old.index) == list(comparison.old.names)  # cluster ids kept beside names


def test_compare_json_round_trip_and_identity(comparison: Comparison, tmp_path: Path) -> None:
    doc = build_compare(comparison)
    path = doc.write(tmp_path / "compare.json")
    data = json.loads(path.read_text())
    assert data["format"] == "custseg-compare" and data["format_version"] == 1
    assert CompareFile.read(path) == doc
    cell = data["matrix"][0]
    assert list(cell) == [
        "from",
        "from_cluster",
        "to",
        "to_cluster",
        "customers",
        "revenue_old",
        "revenue_new",
    ]
    assert sum(f["customers"] for f in data["matrix"]) == data["totals"]["customers_total"]
    new_rows = [f for f in data["matrix"] if f["from"] is None]
    assert all(f["from_cluster"] is None and f["to"] is not None for f in new_rows)
    assert sum(f["customers"] for f in new_rows) == data["totals"]["new"]
    for side, run in (("old", comparison.old), ("new", comparison.new)):
        assert data[side]["as_of"] == str(run.summary.as_of)
        assert data[side]["input"]["sha256"] == run.summary.input.sha256 == run.run.input.sha256
        assert (data[side]["method"], data[side]["k"]) == (run.summary.method.name, run.summary.k)
    assert data["old"]["as_of"] == "2011-09-01"
    for s in data["new_segments"]:
        assert sum(s["came_from"].values()) + s["new"] == s["customers"]
    for s in data["old_segments"]:
        assert sum(s["went_to"].values()) + s["lost"] == s["customers"]


def test_write_compare_folder(
    comparison: Comparison, runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "cmp"
    written = write_compare(comparison, out, report=False)
    assert [p.name for p in written] == ["compare.json", "segments.csv"]
    original = (runs["new"] / "segments.csv").read_text().splitlines()
    copy = (out / "segments.csv").read_text().splitlines()
    assert copy[0] == original[0] + ",previous_segment"
    assert [line.rsplit(",", 1)[0] for line in copy[1:]] == original[1:]
    joined = _reference(runs["old"], runs["new"])["joined"]
    table = pd.read_csv(out / "segments.csv", dtype=str, keep_default_na=False)
    want = joined.loc[table["customer_id"], "name_old"].fillna("").to_numpy()
    assert (table["previous_segment"].to_numpy() == want).all()
    assert (table["previous_segment"] == "").sum() == comparison.totals()["new"]
    with pytest.raises(OutputError, match="already exists"):
        write_compare(comparison, out, report=False)
    write_compare(comparison, out, force=True, report=False)


def test_write_compare_leaves_nothing_on_failure(
    comparison: Comparison, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import custseg.report.compare

    def boom(*_a: object) -> Path:
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(custseg.report.compare, "write_compare_page", boom)
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_compare(comparison, tmp_path / "cmp")
    assert list(tmp_path.iterdir()) == []


# --- runs with other names; the page ---------------------------------------------------------


def test_compare_runs_with_different_names(runs: dict[str, Path], tmp_path: Path) -> None:
    c = compare(runs["renamed"], runs["new"])
    t = c.totals()
    assert t["stayed"] == 0 and t["moved"] == t["customers_total"] == len(c.new.customers)
    assert t["new"] == t["lost"] == 0
    m = c.matrix()
    assert list(m.index[:-1]) == HOSTILE[: len(m.index) - 1]  # names as they are
    assert c.new_label == f"({NEW})" and c.lost_label == LOST  # a segment is called NEW
    body = m.drop(index=c.new_label, columns=c.lost_label).to_numpy()
    # The same customers under other names: each old segment goes whole to one new segment.
    assert ((body > 0).sum(axis=1) == 1).all() and ((body > 0).sum(axis=0) == 1).all()
    ref = _reference(runs["renamed"], runs["new"])["customers"]
    assert int(ref.to_numpy().sum()) == int(m.to_numpy().sum())
    write_compare(c, tmp_path / "cmp", report=False)
    with (tmp_path / "cmp" / "segments.csv").open(newline="", encoding="utf-8") as fh:
        previous = {r[-1] for r in csv.reader(fh)}
    # Hostile names are quoted, and defused for spreadsheets, as in the run's own segments.csv.
    assert {"'=SUM(1), $$ & 'co'", '<script>alert("x")</script>', NEW} <= previous


def test_compare_page_is_self_contained_and_escaped(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "page"
    res = runner.invoke(
        app, ["compare", str(runs["old"]), str(runs["renamed"]), "-o", str(out), "-q"]
    )
    assert res.exit_code == 0, res.output
    page = (out / "compare.html").read_text(encoding="utf-8")
    assert "<script" not in page  # the name is text, and the page has no script of its own
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "=SUM(1), $$ &amp; &#x27;co&#x27;" in page
    assert "default-src 'none'" in page  # the browser may fetch nothing
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"https?://", page)
    assert page.count("<img") == 2  # the heatmap and the flow chart
    # The page is built from compare.json alone: rebuilt elsewhere, it is the same page.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "compare.json", alone)
    assert write_compare_page(alone).read_text(encoding="utf-8") == page
    # The copy of segments.csv keeps hostile names in cells a spreadsheet will not run.
    with (out / "segments.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][-1] == "previous_segment" and len({len(r) for r in rows}) == 1
    segment = rows[0].index("segment")
    assert "'=SUM(1), $$ & 'co'" in {r[segment] for r in rows[1:]}
    original = (runs["renamed"] / "segments.csv").read_text(encoding="utf-8")
    assert '"' in original  # the copy took its quoted-cell path
    lines = (out / "segments.csv").read_text(encoding="utf-8").split("\n")
    assert "\n".join(line.rsplit(",", 1)[0] for line in lines[:-1]) + "\n" == original


# --- the command -----------------------------------------------------------------------------


def test_compare_cli_prints_the_account_and_matrix(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    res = runner.invoke(
        app, ["compare", str(runs["old"]), str(runs["new"]), "-o", str(out), "--no-report"]
    )
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert "as of 2011-09-01" in text and "new, 0 lost" in text
    assert re.search(r"^ *\(new customers\)( +[\d,]+)+ *$", text, re.M)
    assert re.search(r"^ *total( +[\d,]+)+ *$", text, re.M)
    assert not set("━┃│─") & set(text)  # plain text off a terminal
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "segments.csv"]
    res = runner.invoke(
        app,
        [
            "compare",
            str(runs["old"]),
            str(runs["new"]),
            "-o",
            str(out),
            "--json",
            "--force",
            "--no-report",
        ],
    )
    assert res.exit_code == 0 and json.loads(res.stdout)["format"] == "custseg-compare"
    res = runner.invoke(
        app,
        [
            "compare",
            str(runs["old"]),
            str(runs["new"]),
            "-o",
            str(out),
            "-q",
            "--force",
            "--no-report",
        ],
    )
    assert res.exit_code == 0 and res.stdout == "" and res.stderr == ""


def _broken(runs: dict[str, Path], case: str) -> tuple[list[str], str]:
    """A bad OLD_RUN NEW_RUN pair and the start of the expected message."""
    base, old, new = runs["base"], str(runs["old"]), str(runs["new"])
    scratch = base / f"bad-{case}"
    if scratch.exists():
        shutil.rmtree(scratch)
    if case == "missing":
        return [old, str(scratch)], rf"error: NEW_RUN: {re.escape(str(scratch))} is not a folder"
    if case == "file":
        scratch.mkdir()
        (scratch / "x.csv").write_text("a\n1\n")
        return [str(scratch / "x.csv"), new], r"error: OLD_RUN: .* is not a folder"
    shutil.copytree(runs["new"], scratch)
    if case == "not-a-run":
        for f in scratch.iterdir():
            f.unlink()
        (scratch / "notes.txt").write_text("hello")
        return [old, str(scratch)], r"error: NEW_RUN: .* has no summary\.json: run `custseg run"
    if case == "summary-json":
        (scratch / "summary.json").write_text("{not json")
        return [old, str(scratch)], r"error: NEW_RUN: .*summary\.json is not readable JSON"
    if case == "summary-format":
        (scratch / "summary.json").write_text('{"format": "custseg-model"}')
        return [str(scratch), new], r"error: OLD_RUN: .*summary\.json is not a custseg-summary file"
    if case == "model-json":
        (scratch / "model.json").write_text('{"format": "custseg-model", "format_version": 2}')
        return [
            old,
            str(scratch),
        ], r"error: NEW_RUN: .*model\.json: key 'custseg_version' is missing"
    if case == "run-json-missing":
        (scratch / "run.json").unlink()
        return [str(scratch), new], r"error: OLD_RUN: .* has no run\.json: run `custseg run"
    if case == "segments-csv":
        (scratch / "segments.csv").write_text("customer_id,cluster\n1,0\n")
        return [
            old,
            str(scratch),
        ], r"error: NEW_RUN: .*segments\.csv is not a custseg segments table \(missing column"
    if case == "same":
        return [old, old + "/."], r"error: OLD_RUN and NEW_RUN are the same folder"
    if case == "disjoint":
        path = scratch / "segments.csv"
        lines = path.read_text().splitlines()
        path.write_text("\n".join([lines[0], *("X" + line for line in lines[1:])]) + "\n")
        return (
            [old, str(scratch)],
            r"error: .* have no customer in common \(3,317 customers such as '12346', and 4,338 such as 'X12346'\): compare two runs",
        )
    if case == "duplicate-customer":
        path = scratch / "segments.csv"
        lines = path.read_text().splitlines()
        path.write_text("\n".join([*lines, lines[1]]) + "\n")
        return [old, str(scratch)], r"error: .*segments\.csv lists customer '12346' more than once"
    raise AssertionError(case)


BAD = [
    "missing",
    "file",
    "not-a-run",
    "summary-json",
    "summary-format",
    "model-json",
    "run-json-missing",
    "segments-csv",
    "same",
    "disjoint",
    "duplicate-customer",
]


@pytest.mark.parametrize("case", BAD)
def test_compare_cli_refuses_bad_input(runs: dict[str, Path], tmp_path: Path, case: str) -> None:
    args, message = _broken(runs, case)
    out = tmp_path / "cmp"
    res = runner.invoke(app, ["compare", *args, "-o", str(out)])
    assert res.exit_code == 1, res.output
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert re.match(message, res.stderr), res.stderr
    assert res.stdout == ""
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing written


def test_compare_refuses_two_segments_of_one_name(runs: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "twice"
    shutil.copytree(runs["new"], copy)
    data = json.loads((copy / "summary.json").read_text())
    data["segments"][1]["name"] = data["segments"][0]["name"]
    (copy / "summary.json").write_text(json.dumps(data))
    with pytest.raises(
        InputError,
        match=r"summary\.json names two segments '.*': a comparison matches segments by name",
    ):
        compare(runs["old"], copy)


def test_compare_warns_when_the_runs_are_swapped(runs: dict[str, Path]) -> None:
    with pytest.warns(
        CustsegWarning, match=r"is as of 2011-12-10, after NEW_RUN .* \(2011-09-01\)"
    ):
        c = compare(runs["new"], runs["old"])
    t = c.totals()
    assert t["lost"] > 0 and t["new"] == 0  # the later run's extra customers are 'lost'


def test_compare_is_exported_lazily() -> None:
    assert custseg.compare is compare and custseg.Comparison is Comparison
    assert {"compare", "Comparison"} <= set(custseg.__all__)


def test_compare_runs_without_money_shows_no_revenue(
    runs: dict[str, Path], tmp_path: Path, retail_parquet: Path
) -> None:
    rf_old, rf_new = tmp_path / "rf_old", tmp_path / "rf_new"
    source = str(retail_parquet)
    _run([source, "--as-of", "2011-09-01", "--no-monetary", "-o", str(rf_old)])
    _run([source, "--no-monetary", "-o", str(rf_new)])
    both = compare(rf_old, rf_new)
    assert not both.money_old and not both.money_new
    t = both.totals()
    assert t["revenue_old"] is None and t["revenue_new_of_new"] is None
    doc = build_compare(both).to_json()
    assert "revenue" not in doc["old"] and "revenue_old" not in doc["totals"]
    assert all("revenue_old" not in f and "revenue_new" not in f for f in doc["matrix"])
    assert "revenue_old" not in doc["old_segments"][0]
    out = tmp_path / "cmp"
    res = runner.invoke(app, ["compare", str(rf_old), str(rf_new), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "neither run has a monetary value" in res.stdout
    page = (out / "compare.html").read_text()
    assert "Revenue in the new run" not in page and "revenue (old run)" not in page
    assert "recency and frequency only" in page
    # Old run without money, new run with it: the new run's revenue alone.
    mixed = compare(rf_old, runs["new"])
    assert mixed.totals()["revenue_old"] is None
    assert mixed.totals()["revenue_new"] == pytest.approx(
        pd.read_csv(runs["new"] / "segments.csv")["monetary"].sum()
    )
    res = runner.invoke(app, ["compare", str(rf_old), str(runs["new"]), "-o", str(out), "--force"])
    assert res.exit_code == 0, res.output
    assert "the old run has no monetary value" in res.stdout
    page = (out / "compare.html").read_text()
    assert "Revenue in the new run" in page and "Revenue in the old run" not in page
