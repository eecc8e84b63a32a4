"""Shared fixtures for the LRA and state-tracking tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


def shared_data() -> Path:
    """``$REPLIBENCH_SHARED_DATA``, else ``<repo>/../shared/data``, else ``/work/shared/data``."""
    configured = os.environ.get("REPLIBENCH_SHARED_DATA")
    if configured:
        return Path(configured)
    sibling = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return sibling if sibling.exists() else Path("/work/shared/data")


@pytest.fixture(scope="session")
def imdb_subset() -> Path:
    path = shared_data() / "lra" / "text" / "aclImdb_subset"
    if not path.exists():
        pytest.fail(f"real IMDB subset not found at {path}; set REPLIBENCH_SHARED_DATA")
    return path
