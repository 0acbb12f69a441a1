"""custseg: raw transactions in, named RFM customer segments out.

Examples
--------
>>> import custseg
>>> result = custseg.run(custseg.datasets.online_retail_path())
>>> result.k, len(result.customers)  # doctest: +SKIP
(4, 4338)
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import datasets
from .clean import DROP_REASONS, Ledger, clean_transactions, mark_drops
from .cluster import ClusterFit, ClusterModel, KSelection, fit_segments, select_k
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
from .naming import SegmentName, name_segments, profile_segments
from .output import atomic_output_dir, write_outputs
from .pipeline import SegmentationResult, run, segment_rfm
from .schema import ColumnMap, detect_columns

__all__ = [
    "DROP_REASONS",
    "CleanConfig",
    "ClusterConfig",
    "ClusterFit",
    "ClusterModel",
    "ColumnMap",
    "ConfigError",
    "CustsegError",
    "CustsegWarning",
    "EmptyDataError",
    "InputError",
    "KSelection",
    "Ledger",
    "ModelFileError",
    "OutputError",
    "RFMSegmenter",
    "RunConfig",
    "SchemaError",
    "SegmentName",
    "SegmentationResult",
    "Transactions",
    "__version__",
    "atomic_output_dir",
    "clean_transactions",
    "compute_rfm",
    "compute_rfm_and_ledger",
    "datasets",
    "detect_columns",
    "fit_segments",
    "load_config_file",
    "load_transactions",
    "mark_drops",
    "name_segments",
    "profile_segments",
    "run",
    "segment_rfm",
    "select_k",
    "write_outputs",
]
