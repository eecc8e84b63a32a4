"""Fixtures for crystal tests (helpers live in crystal_testdata.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from crystal_testdata import shared_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not (path / "perov_5" / "test.csv").exists():
        pytest.fail(f"shared data not found at {path}; set REPLIBENCH_SHARED_DATA to the shared/data folder")
    return path


@pytest.fixture(autouse=True)
def _quiet_pymatgen():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield
