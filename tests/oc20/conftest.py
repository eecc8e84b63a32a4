"""Shared fixtures for the OC20 tests: thread count, the shared data folder, a tiny synthetic set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """``$REPLIBENCH_SHARED_DATA``, else ``<repo>/../shared/data``, else ``/work/shared/data``."""
    env = os.environ.get("REPLIBENCH_SHARED_DATA")
    if env:
        return Path(env)
    sibling = REPO_ROOT.parent / "shared" / "data"
    return sibling if sibling.exists() else Path("/work/shared/data")


@pytest.fixture(scope="session")
def oc20_shared() -> Path:
    path = shared_data_dir() / "oc20"
    if not path.exists():
        pytest.fail(f"shared OC20 fixtures not found at {path} (set REPLIBENCH_SHARED_DATA)")
    return path



def tiny_splits():
    from replibench.datasets.oc20_synthetic import (
        OOD_ADSORBATES, OOD_METALS, TRAIN_ADSORBATES, TRAIN_METALS, SyntheticSplit,
    )

    return (
        SyntheticSplit("train", TRAIN_METALS, TRAIN_ADSORBATES, systems=6, frames_per_system=4, frames_per_file=10),
        SyntheticSplit("val_id", TRAIN_METALS, TRAIN_ADSORBATES, systems=3, frames_per_system=2, frames_per_file=6),
        SyntheticSplit("val_ood_ads", TRAIN_METALS, OOD_ADSORBATES, systems=2, frames_per_system=2, frames_per_file=6),
        SyntheticSplit("val_ood_cat", OOD_METALS, TRAIN_ADSORBATES, systems=2, frames_per_system=2, frames_per_file=6),
        SyntheticSplit("val_ood_both", OOD_METALS, OOD_ADSORBATES, systems=2, frames_per_system=2, frames_per_file=6),
    )


@pytest.fixture(scope="session")
def tiny_split_specs():
    return tiny_splits()


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> tuple[Path, list]:
    """A tiny synthetic S2EF mirror folder (5 tars) and its RemoteFile specs."""
    from replibench.datasets.oc20_synthetic import build_synthetic_s2ef

    folder = tmp_path_factory.mktemp("synthetic-mirror") / "oc20"
    remotes = build_synthetic_s2ef(folder, seed=7, splits=tiny_splits())
    return folder, remotes


@pytest.fixture(scope="session")
def tiny_parquet(tiny_synthetic, tmp_path_factory) -> Path:
    """The tiny synthetic set preprocessed through the real S2EF reader."""
    from replibench.datasets.oc20_s2ef import S2EFDataset

    folder, remotes = tiny_synthetic
    dataset = S2EFDataset("s2ef-synthetic-emt", tuple((s.split, r) for s, r in zip(tiny_splits(), remotes)),
                          synthetic=True)
    out = tmp_path_factory.mktemp("tiny-parquet")
    dataset.preprocess([folder / r.name for r in remotes], out)
    return out
