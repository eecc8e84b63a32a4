"""Fixtures: tiny crystal Parquet splits built here from a few real Perov-5 / Carbon-24 rows.

The rows come from the read-only shared data (the ``shared_data`` fixture of tests/conftest.py); they
are parsed with pymatgen, Niggli-reduced and rebuilt from their lattice parameters (as CDVAE
preprocessing does) and written with the crystal Parquet schema. No code of the data layer is used, so these tests do not depend on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def crystal_rows(csv_path: Path, count: int) -> list[dict]:
    import pandas as pd
    from pymatgen.core import Lattice, Structure

    frame = pd.read_csv(csv_path, nrows=count)
    rows = []
    for material_id, cif in zip(frame["material_id"], frame["cif"], strict=True):
        parsed = Structure.from_str(cif, fmt="cif").get_reduced_structure()
        canonical = Structure(Lattice.from_parameters(*parsed.lattice.parameters), parsed.species, parsed.frac_coords)
        rows.append(
            {
                "material_id": str(material_id),
                "cif": cif,
                "num_atoms": len(canonical),
                "atomic_numbers": [site.specie.Z for site in canonical],
                "frac_coords": canonical.frac_coords.reshape(-1).tolist(),
                "lattice": canonical.lattice.matrix.reshape(-1).tolist(),
                "lengths": list(canonical.lattice.abc),
                "angles": list(canonical.lattice.angles),
                "formula": canonical.composition.reduced_formula,
            }
        )
    return rows


def write_split(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("material_id", pa.string()),
            ("cif", pa.string()),
            ("num_atoms", pa.int32()),
            ("atomic_numbers", pa.list_(pa.int8())),
            ("frac_coords", pa.list_(pa.float64())),
            ("lattice", pa.list_(pa.float64(), 9)),
            ("lengths", pa.list_(pa.float64(), 3)),
            ("angles", pa.list_(pa.float64(), 3)),
            ("formula", pa.string()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _dataset_dir(root: Path, csv_path: Path, sizes: tuple[int, int, int]) -> Path:
    rows = crystal_rows(csv_path, sum(sizes))
    root.mkdir(parents=True, exist_ok=True)
    start = 0
    for split, size in zip(("train", "val", "test"), sizes, strict=True):
        write_split(root / f"{split}.parquet", rows[start : start + size])
        start += size
    return root


@pytest.fixture(scope="session")
def perov_dir(tmp_path_factory, shared_data) -> Path:
    return _dataset_dir(tmp_path_factory.mktemp("perov"), shared_data / "perov_5" / "val.csv", (24, 8, 6))


@pytest.fixture(scope="session")
def carbon_dir(tmp_path_factory, shared_data) -> Path:
    return _dataset_dir(tmp_path_factory.mktemp("carbon"), shared_data / "carbon_24" / "val.csv", (16, 6, 4))


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny() -> dict:
    """Backbone size for fast tests."""
    return {"hidden_dim": 32, "num_layers": 2, "num_freqs": 8, "time_dim": 16}


@pytest.fixture
def toy_batch():
    """Two small structures (Fe2O3-like with 5 atoms, MgO with 2) as a CrystalBatch."""
    from replibench.families.crystals.models.cspnet import structure_index
    from replibench.families.crystals.types import CrystalBatch

    num_atoms = torch.tensor([5, 2])
    lattice = torch.stack([torch.tensor([[5.0, 0.0, 0.0], [0.4, 5.2, 0.0], [0.3, -0.2, 6.1]]), 4.2 * torch.eye(3)])
    generator = torch.Generator().manual_seed(3)
    return CrystalBatch(
        atomic_numbers=torch.tensor([26, 26, 8, 8, 8, 12, 8]),
        frac_coords=torch.rand(7, 3, generator=generator),
        lattice=lattice,
        num_atoms=num_atoms,
        batch=structure_index(num_atoms),
    )
