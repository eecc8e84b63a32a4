from __future__ import annotations

import pytest

from replibench.families.ett.datasets.ett import preprocess


@pytest.fixture(scope="session")
def etth1_dir(shared_data, tmp_path_factory):
    """ETTh1 preprocessed once for the session from the real CSV in ../shared/data."""
    out = tmp_path_factory.mktemp("etth1")
    preprocess(shared_data / "ett" / "ETTh1.csv", out, dataset="etth1")
    return out
