"""Read golden-output fixtures (``tests/golden/*.npz``, written by ``tools/golden/``)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN_DIR = Path(__file__).resolve().parent
META_KEY = "__meta__"


@dataclass(frozen=True)
class Fixture:
    """The arrays of one fixture and its provenance (repo, commit, weight_map, generator, notes)."""

    path: Path
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


def load_fixture(name: str) -> Fixture:
    """Load ``tests/golden/<name>.npz`` without unpickling anything."""
    path = GOLDEN_DIR / f"{name}.npz"
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files if key != META_KEY}
        meta = json.loads(str(data[META_KEY]))
    return Fixture(path, arrays, meta)


def all_fixtures() -> list[Path]:
    return sorted(GOLDEN_DIR.glob("*.npz"))


@contextlib.contextmanager
def float64_default():
    """Build models as the generators built the upstream ones: under float64 default dtype, so
    constants and buffers made at construction (PyG's Gaussian centres, e3nn's generators, S2
    grids) are float64 on both sides."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)

