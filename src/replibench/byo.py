"""Bring your own predictions: score external files with exactly our protocol and metric code.

Each family scores its own files in ``families/<family>/byo.py``; this module keeps what they share
and the entry points ``cli.py`` calls, which reach a family only through the registry. The formats are
documented in the README ("Bring your own predictions").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replibench.errors import DataError


def read_predictions_parquet(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise DataError(f"{path}: prediction file not found")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{path}: not a readable Parquet file: {error}") from error


def score_forecast_file(**kwargs: Any) -> dict[str, Any]:
    """Score an ETT forecast file: :func:`replibench.families.ett.byo.score_forecast_file`."""
    from replibench.registry import family_module

    return family_module("ett", "byo").score_forecast_file(**kwargs)


def score_crystal_files(**kwargs: Any) -> dict[str, Any]:
    """Score crystals in two CSVs: :func:`replibench.families.crystals.byo.score_crystal_files`."""
    from replibench.registry import family_module

    return family_module("crystals", "byo").score_crystal_files(**kwargs)


def score_oc20_files(**kwargs: Any) -> dict[str, Any]:
    """Score OC20 prediction files: :func:`replibench.families.oc20.byo.score_oc20_files`."""
    from replibench.registry import family_module

    return family_module("oc20", "byo").score_oc20_files(**kwargs)
