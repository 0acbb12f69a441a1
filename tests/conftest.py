"""Pytest fixtures over the shared test data of fixtures.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import RETAIL_CSV, RETAIL_PARQUET, RETURNS_CSV, TINY_CSV


@pytest.fixture
def tiny_csv(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.csv"
    path.write_text(TINY_CSV, encoding="utf-8")
    return path


@pytest.fixture
def returns_csv(tmp_path: Path) -> Path:
    path = tmp_path / "returns.csv"
    path.write_text(RETURNS_CSV, encoding="utf-8")
    return path


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared Online Retail data is not beside the repo")
    return path


@pytest.fixture(scope="session")
def retail_parquet() -> Path:
    return _need(RETAIL_PARQUET)


@pytest.fixture(scope="session")
def retail_csv() -> Path:
    return _need(RETAIL_CSV)
