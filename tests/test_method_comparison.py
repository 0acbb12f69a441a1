"""Tests of custseg.method_comparison: every method on one input, side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custseg.cli import app
from custseg.datasets import online_retail_path
from custseg.method_comparison import compare_methods

runner = CliRunner()


@pytest.mark.filterwarnings("ignore::custseg.errors.CustsegWarning")
def test_every_method_gets_a_row_with_its_evidence() -> None:
    table = compare_methods(online_retail_path(), bootstrap=50)
    assert any("Ward tree" in w for w in table.warnings)  # each method's own notes are kept
    assert [r.method for r in table.rows] == ["kmeans", "hierarchical", "gmm", "rfm-scores"]
    assert table.holdout_days == 90 and table.cutoff == "2011-09-10"
    for r in table.rows:
        assert r.holdout_spearman is not None and 0 < r.holdout_spearman < 1
        assert r.holdout_auc is not None and 0.5 < r.holdout_auc < 1
        assert 0 < r.largest_share <= 1 and len(r.segments) == r.k
        assert r.stability_resamples is not None
    assert set(table.baselines) == {"monetary", "frequency", "recency", "rfm_score"}
    by = {r.method: r for r in table.rows}
    assert by["rfm-scores"].k == 11 and by["rfm-scores"].stability_seeds is None


def test_compare_methods_command_writes_methods_json(tmp_path: Path) -> None:
    out = tmp_path / "m"
    args = ["compare-methods", str(online_retail_path()), "-o", str(out), "--bootstrap", "20"]
    res = runner.invoke(app, [*args, "--k-range", "2-5"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "methods.json").read_text())
    assert doc["format"] == "custseg-methods" and len(doc["methods"]) == 4
    assert "baseline: RFM score (R+F+M)" in res.stdout and "rfm-scores" in res.stdout


def test_short_data_leaves_the_backtest_columns_empty(tmp_path: Path) -> None:
    from fixtures import TINY_CSV

    src = tmp_path / "t.csv"
    src.write_text(TINY_CSV)
    import warnings

    from custseg.config import ClusterConfig, RunConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = compare_methods(
            src,
            config=RunConfig(cluster=ClusterConfig(k_values=(1, 2))),
            methods=["kmeans"],
        )
    assert table.rows[0].holdout_spearman is None
    assert table.note and table.note.startswith("No backtest: The data spans")
