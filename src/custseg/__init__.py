"""custseg: raw transactions in, named RFM customer segments out.

The package imports lazily (PEP 562): ``import custseg`` is instant, and each name below loads
its module on first use, so ``custseg --version`` never starts the engine or scikit-learn.

Examples
--------
>>> import custseg
>>> result = custseg.run(custseg.datasets.online_retail_path())
>>> result.k, len(result.customers)
(5, 4338)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "DROP_REASONS": "clean",
    "Ledger": "clean",
    "clean_transactions": "clean",
    "mark_drops": "clean",
    "ClusterFit": "cluster",
    "fit_segments": "cluster",
    "select_k": "cluster",
    "ClusterModel": "model",
    "KSelection": "model",
    "CleanConfig": "config",
    "ClusterConfig": "config",
    "RunConfig": "config",
    "load_config_file": "config",
    "ConfigError": "errors",
    "CustsegError": "errors",
    "CustsegWarning": "errors",
    "EmptyDataError": "errors",
    "InputError": "errors",
    "ModelFileError": "errors",
    "OutputError": "errors",
    "SchemaError": "errors",
    "RFMSegmenter": "estimator",
    "compute_rfm": "features",
    "compute_rfm_and_ledger": "features",
    "Transactions": "load",
    "load_transactions": "load",
    "SegmentName": "naming",
    "name_segments": "naming",
    "profile_segments": "naming",
    "write_outputs": "output",
    "write_run": "output",
    "BacktestResult": "pipeline",
    "SegmentationResult": "pipeline",
    "backtest": "pipeline",
    "run": "pipeline",
    "segment_rfm": "pipeline",
    "score": "scoring",
    "MethodsResult": "method_comparison",
    "compare_methods": "method_comparison",
    "Stability": "stability",
    "RunFiles": "runs",
    "atomic_output_dir": "runs",
    "read_run": "runs",
    "ColumnMap": "schema",
    "detect_columns": "schema",
    "Comparison": "comparison",
    "compare": "comparison",
}
_MODULES = ("datasets",)

__all__ = sorted([*_EXPORTS, *_MODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'custseg' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from . import datasets
    from .clean import DROP_REASONS, Ledger, clean_transactions, mark_drops
    from .cluster import ClusterFit, fit_segments, select_k
    from .comparison import Comparison, compare
    from .config import CleanConfig, ClusterConfig, RunConfig, load_config_file
    from .errors import (
        ConfigError,
        CustsegError,
        CustsegWarning,
        EmptyDataError,
        InputError,
        ModelFileError,
        OutputError,
        SchemaError,
    )
    from .estimator import RFMSegmenter
    from .features import compute_rfm, compute_rfm_and_ledger
    from .load import Transactions, load_transactions
    from .method_comparison import MethodsResult, compare_methods
    from .model import ClusterModel, KSelection
    from .naming import SegmentName, name_segments, profile_segments
    from .output import write_outputs, write_run
    from .pipeline import BacktestResult, SegmentationResult, backtest, run, segment_rfm
    from .runs import RunFiles, atomic_output_dir, read_run
    from .schema import ColumnMap, detect_columns
    from .scoring import score
    from .stability import Stability
