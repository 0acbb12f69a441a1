"""Every candidate default, measured by the backtest on a data set (docs/defaults.md).

    python bench/candidates.py ../shared/data/online_retail/online_retail.parquet

For each method x transform x k rule (and the RFM score tables) it runs ``custseg.backtest``
with a 90-day holdout and prints one markdown row: k, the segments' holdout Spearman with
revenue and AUC for buying again, the largest segment's share of customers, the largest
contradiction share, and the names. The baselines close the table.
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any

from custseg.config import ClusterConfig, RunConfig
from custseg.pipeline import backtest


def candidates() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for method in ("kmeans", "hierarchical", "gmm"):
        for transform in ("none", "log"):
            for select in ("auto", "silhouette", "backtest"):
                out.append({"method": method, "transform": transform, "select": select})
    out += [{"method": "rfm-scores"}, {"method": "rfm-scores", "score_bins": 4}]
    return out


def main(path: str) -> None:
    warnings.simplefilter("ignore")
    print(
        "| method | transform | k rule | k | Spearman | AUC | largest segment | "
        "max contradiction | segments | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    ev = None
    for c in candidates():
        start = time.perf_counter()
        bt = backtest(path, config=RunConfig(cluster=ClusterConfig(**c)), bootstrap=200)
        ev = bt.evidence
        names = ", ".join(s.name for s in bt.training.segments)
        worst = max(s.contradiction_share for s in bt.training.segments)
        share = float(bt.training.profiles["share_customers"].max())
        rule = (
            c.get("select", "rules")
            if c["method"] != "rfm-scores"
            else f"rules ({c.get('score_bins', 5)} bins)"
        )
        print(
            f"| {c['method']} | {c.get('transform', 'log')} | {rule} | {bt.training.k} | "
            f"{ev.spearman['segments']:.3f} | {ev.auc['segments']:.3f} | {share:.0%} | "
            f"{worst:.2%} | {names} | {time.perf_counter() - start:.1f} |",
            flush=True,
        )
    assert ev is not None
    for name in ("monetary", "frequency", "recency", "rfm_score"):
        print(f"| baseline: {name} | | | | {ev.spearman[name]:.3f} | {ev.auc[name]:.3f} | | | | |")


if __name__ == "__main__":
    main(sys.argv[1])
