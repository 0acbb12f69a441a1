from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.config import ClusterConfig, RunConfig
from custseg.errors import CustsegWarning
from custseg.pipeline import STAGES, run, segment_rfm


def test_run_tiny_keeps_every_customer(tiny_csv: Path) -> None:
    stages: list[str] = []
    with pytest.warns(CustsegWarning) as caught:
        result = run(
            tiny_csv,
            config=RunConfig(cluster=ClusterConfig(k=2, k_values=(1, 2))),
            progress=stages.append,
        )
    messages = [str(w.message) for w in caught]
    assert any(
        "non-numeric value in ['Quantity', 'UnitPrice'] (e.g. Quantity='abc'" in m for m in messages
    )
    assert any(
        "unreadable date in 'InvoiceDate' (e.g. InvoiceDate='notadate')" in m for m in messages
    )
    assert stages == list(STAGES)
    assert result.customers.index.tolist() == ["C1", "C2", "C5"]
    assert list(result.customers.columns) == [
        "recency",
        "frequency",
        "monetary",
        "outlier",
        "cluster",
        "segment",
        "returned",
    ]
    assert result.customers["returned"].tolist() == [5.0, 0.0, 0.0]
    assert result.k == 2 and set(result.customers["cluster"]) == {0, 1}
    assert set(result.timings) == set(STAGES)


def test_run_dataframe_input() -> None:
    rng = np.random.default_rng(1)
    n = 600
    df = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 120, n).astype(str),
            "order_id": np.arange(n).astype(str),
            "order_date": pd.Timestamp("2022-01-01")
            + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            "revenue": rng.lognormal(3, 1, n),
        }
    )
    # random purchases: no segmentation of them is stable, and the run says so
    with pytest.warns(CustsegWarning, match="Stability: .* That is low"):
        result = run(df)
    assert len(result.customers) == df["customer_id"].nunique()
    assert result.customers["monetary"].sum() == pytest.approx(
        df["revenue"].round(6).sum(), rel=1e-9
    )
    assert result.source.format == "memory"


def test_segment_rfm_names_are_unique_and_complete(retail_parquet: Path) -> None:
    result = run(retail_parquet)
    names = [s.name for s in result.segments]
    assert len(names) == len(set(names)) == result.k
    # k came from a holdout of the transactions: the RFM table alone is given it
    fixed = result.config.cluster.replace(k=result.k, select="auto")
    customers, *_ = segment_rfm(
        result.customers[["recency", "frequency", "monetary", "returned"]],
        config=result.config.model_copy(update={"cluster": fixed}),
    )
    pd.testing.assert_frame_equal(customers, result.customers)


def test_run_real_data_reference_method(retail_parquet: Path) -> None:
    result = run(retail_parquet, config=RunConfig(cluster=ClusterConfig.preset("tutorial")))
    c = result.customers
    assert len(c) == 4_338  # outliers are kept, flagged
    assert 0 < c["outlier"].sum() < 300
    assert result.fit.selection.method == "knee"
    assert 3 <= result.k <= 6
    sil = result.fit.metrics["silhouette"]
    assert sil is not None and 0.3 < sil < 0.8
    # the wholesalers (top monetary) are flagged outliers, not removed
    assert c.loc[c["monetary"].idxmax(), "outlier"]
