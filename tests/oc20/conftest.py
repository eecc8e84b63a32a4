"""Shared fixtures for the OC20 tests: the shared OC20 files and a tiny synthetic S2EF set.

The tiny set is built once per session with the real generator, written as real tarballs and
converted by the real S2EF reader — the smoke pipeline's path at a tenth of its size.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: a few frames per split: 24 train frames in 3 files, 4 per validation split
TINY_OPTIONS = {"seed": 7, "train_systems": 6, "train_frames_per_system": 4, "train_frames_per_file": 10,
                "val_systems": 2, "val_frames_per_system": 2, "val_frames_per_file": 6}


@pytest.fixture(scope="session")
def tiny_options() -> dict:
    return dict(TINY_OPTIONS)


@pytest.fixture(scope="session")
def oc20_shared(shared_data) -> Path:
    path = shared_data / "oc20"
    if not path.is_dir():
        pytest.skip(f"shared OC20 files not found at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> tuple[Path, list]:
    """A mirror folder ``<root>/oc20/`` holding the five tiny synthetic tars, and their specs."""
    from replibench.families.oc20.datasets.synthetic import build_synthetic_s2ef

    folder = tmp_path_factory.mktemp("synthetic-mirror") / "oc20"
    return folder, build_synthetic_s2ef(folder, options=TINY_OPTIONS)


@pytest.fixture(scope="session")
def tiny_parquet(tiny_synthetic, tmp_path_factory) -> Path:
    """The tiny synthetic set converted through the real S2EF reader (card says synthetic)."""
    from replibench.families.oc20.datasets.s2ef import preprocess_s2ef_archives
    from replibench.families.oc20.datasets.synthetic import S2EF_SYNTHETIC_EMT

    folder, remotes = tiny_synthetic
    out = tmp_path_factory.mktemp("tiny-parquet")
    archives = [(split, folder / remote.name, remote.url)
                for split, remote in zip(S2EF_SYNTHETIC_EMT.splits, remotes)]
    preprocess_s2ef_archives(archives, out, dataset="s2ef-synthetic-emt", synthetic=True)
    return out
