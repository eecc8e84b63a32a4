"""Fixtures for crystal tests (helpers live in crystal_testdata.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir(shared_data) -> Path:
    """``../shared/data`` as tests/conftest.py finds it (``$REPLIBENCH_SHARED_DATA`` first)."""
    path = Path(shared_data)
    if not (path / "perov_5" / "test.csv").exists():
        pytest.fail(f"shared data not found at {path}; set REPLIBENCH_SHARED_DATA to the shared/data folder")
    return path


@pytest.fixture(autouse=True)
def _quiet_pymatgen():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield
