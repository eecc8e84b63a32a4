"""Helpers for crystal tests: small CSV slices of the real data."""

from __future__ import annotations

from pathlib import Path


def csv_head(source: Path, destination: Path, rows: int) -> Path:
    """Copy the header and the first ``rows`` records of a CDVAE CSV (cells kept as text)."""
    import pandas as pd

    frame = pd.read_csv(source, dtype=str, keep_default_na=False).head(rows)
    frame.to_csv(destination, index=False)
    return destination
