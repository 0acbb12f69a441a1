"""Bundled data: the UCI Online Retail transactions (CC BY 4.0).

Chen, D. (2015). Online Retail [Dataset]. UCI Machine Learning Repository.
https://doi.org/10.24432/C5BW33. See ``LICENSE-DATA.md`` beside this file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["CITATION", "load_online_retail", "online_retail_path"]

CITATION = (
    "Chen, D. (2015). Online Retail [Dataset]. UCI Machine Learning Repository. "
    "https://doi.org/10.24432/C5BW33 (CC BY 4.0)"
)


def online_retail_path() -> Path:
    """Path of the bundled Online Retail Parquet file (541,909 invoice lines, 3.6 MB)."""
    return Path(str(resources.files(__package__).joinpath("online_retail.parquet")))


def load_online_retail() -> pd.DataFrame:
    """The bundled Online Retail transactions as a DataFrame.

    Examples
    --------
    >>> load_online_retail().shape
    (541909, 8)
    """
    return pd.read_parquet(online_retail_path())
