"""Helpers for crystal tests: where the real data lives, and small CSV slices of it."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path:
    """``$REPLIBENCH_SHARED_DATA``, else ``<repo>/../shared/data``, else ``/work/shared/data``."""
    env = os.environ.get("REPLIBENCH_SHARED_DATA")
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return candidate if candidate.exists() else Path("/work/shared/data")


def csv_head(source: Path, destination: Path, rows: int) -> Path:
    """Copy the header and the first ``rows`` records of a CDVAE CSV (cells kept as text)."""
    import pandas as pd

    frame = pd.read_csv(source, dtype=str, keep_default_na=False).head(rows)
    frame.to_csv(destination, index=False)
    return destination
