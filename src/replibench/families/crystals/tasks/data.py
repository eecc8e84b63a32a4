"""Crystal splits in memory: read the crystal Parquet files, check them, gather batches.

Each ``{data_dir}/{split}.parquet`` holds one row per structure (schema written by
``replibench.families.crystals.datasets``): ``material_id`` string, ``cif`` string, ``num_atoms`` int32,
``atomic_numbers`` list<int8> (N), ``frac_coords`` list<float64> (3N, row-major), ``lattice``
fixed_size_list<float64, 9> (rows a, b, c in Å), plus lengths/angles/formula/property columns that the
models do not read. Atoms of a split are stored concatenated (CSR layout) so that a batch is gathered
with a handful of vectorised index operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replibench.errors import DataError

REQUIRED_COLUMNS = ("material_id", "cif", "num_atoms", "atomic_numbers", "frac_coords", "lattice")


@dataclass
class CrystalSplit:
    source: Path
    material_ids: list[str]
    cifs: list[str]  # the structures as stored (ground truth for scoring)
    num_atoms: Any  # torch (M,) long
    first_atom: Any  # torch (M,) long, offset of each structure's first atom
    atomic_numbers: Any  # torch (A,) long, A = sum(num_atoms)
    frac_coords: Any  # torch (A, 3) float32
    lattice: Any  # torch (M, 3, 3) float32

    def __len__(self) -> int:
        return len(self.material_ids)


@dataclass
class CrystalData:
    dataset: str
    seed: int  # run seed: evaluation generators are derived from it
    splits: dict[str, CrystalSplit]  # role ("train", "val", "test") -> split
    split_files: dict[str, str]  # role -> file stem it was read from
    num_atoms_probs: Any  # torch (max_atoms + 1,) float64, training-split histogram of atom counts
    type_vocab: tuple[int, ...]  # sorted atomic numbers present in the loaded splits
    lattice_std: float  # std of all training lattice-matrix entries (Å)
    evaluation: dict[str, Any] | None = None  # set by the task's score(): reasons, counts, histograms
    graphs: dict[str, Any] | None = None  # role -> CrystalGraphs (tasks/cdvae_data.py) for models that read them


def _first_bad_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def read_crystal_split(path: Path) -> CrystalSplit:
    """Read and check one split; any malformed row is a DataError naming file, row, expected, found."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import torch

    if not path.is_file():
        raise DataError(f"{path}: crystal split not found; expected a Parquet file written by preprocessing")
    table = pq.read_table(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)}, found {table.column_names}"
        )
    if table.num_rows == 0:
        raise DataError(f"{path}: split is empty; expected at least one structure, found 0 rows")
    for name in REQUIRED_COLUMNS:
        nulls = table.column(name).is_null().to_numpy(zero_copy_only=False)
        if nulls.any():
            raise DataError(f"{path}: row {_first_bad_row(nulls)}: column {name!r} is null; expected a value")
    num_atoms = table.column("num_atoms").to_numpy().astype(np.int64)
    if (num_atoms <= 0).any():
        row = _first_bad_row(num_atoms <= 0)
        raise DataError(f"{path}: row {row}: num_atoms must be >= 1, found {num_atoms[row]}")
    for name, factor in (("atomic_numbers", 1), ("frac_coords", 3)):
        lengths = pc.list_value_length(table.column(name)).to_numpy(zero_copy_only=False).astype(np.int64)
        wrong = lengths != factor * num_atoms
        if wrong.any():
            row = _first_bad_row(wrong)
            raise DataError(
                f"{path}: row {row}: column {name!r} has {lengths[row]} values; expected {factor} x num_atoms = "
                f"{factor * num_atoms[row]}"
            )
    z = pc.list_flatten(table.column("atomic_numbers")).to_numpy().astype(np.int64)
    frac = pc.list_flatten(table.column("frac_coords")).to_numpy().reshape(-1, 3)
    lattice = pc.list_flatten(table.column("lattice")).to_numpy().reshape(-1, 3, 3)
    atom_row = np.repeat(np.arange(len(num_atoms)), num_atoms)
    lattice_ok = np.isfinite(lattice).reshape(-1, 9).all(1)
    lattice_ok[lattice_ok] = np.abs(np.linalg.det(lattice[lattice_ok])) > 1e-8
    for name, bad in (
        ("atomic_numbers", atom_row[(z < 1) | (z > 118)]),
        ("frac_coords", atom_row[~np.isfinite(frac).all(1)]),
        ("lattice", np.flatnonzero(~lattice_ok)),
    ):
        if bad.size:
            expected = (
                "Z in 1..118"
                if name == "atomic_numbers"
                else "finite values" + (" and a non-singular matrix" if name == "lattice" else "")
            )
            raise DataError(f"{path}: row {int(bad[0])}: column {name!r} is invalid; expected {expected}")
    counts = torch.from_numpy(num_atoms)
    frac32 = torch.from_numpy(np.mod(frac, 1.0)).float()  # (A, 3)
    frac32 = torch.where(frac32 >= 1.0, frac32 - 1.0, frac32)  # float32 rounding of 1 - tiny
    return CrystalSplit(
        source=path,
        material_ids=[str(m) for m in table.column("material_id").to_pylist()],
        cifs=table.column("cif").to_pylist(),
        num_atoms=counts,
        first_atom=torch.cumsum(counts, 0) - counts,
        atomic_numbers=torch.from_numpy(np.array(z)),
        frac_coords=frac32,
        lattice=torch.from_numpy(np.array(lattice, dtype=np.float32)),
    )


def load_crystal_data(data_dir: Path, *, dataset: str, seed: int, split_files: dict[str, str]) -> CrystalData:
    """Read the splits named by ``split_files`` (role -> file stem, e.g. the smoke preset's
    {"train": "val", "val": "val", "test": "test"}); a stem shared by two roles is read once."""
    import torch

    cache: dict[str, CrystalSplit] = {}
    for stem in dict.fromkeys(split_files.values()):
        cache[stem] = read_crystal_split(Path(data_dir) / f"{stem}.parquet")
    splits = {role: cache[stem] for role, stem in split_files.items()}
    train = splits["train"]
    probs = torch.bincount(train.num_atoms).double()
    vocab = sorted(set().union(*(set(s.atomic_numbers.unique().tolist()) for s in cache.values())))
    return CrystalData(
        dataset=dataset,
        seed=seed,
        splits=splits,
        split_files=dict(split_files),
        num_atoms_probs=probs / probs.sum(),
        type_vocab=tuple(int(z) for z in vocab),
        lattice_std=float(train.lattice.double().std()),
    )


def gather_structures(num_atoms, first_atom, atomic_numbers, frac_coords, lattice, indices):
    """Structures ``indices`` (1-D LongTensor) of a CSR crystal store -> CrystalBatch, vectorised."""
    import torch

    from replibench.families.crystals.types import CrystalBatch

    idx = torch.as_tensor(indices, dtype=torch.long)
    counts = num_atoms[idx]  # (B,)
    start_in_batch = torch.cumsum(counts, 0) - counts  # (B,)
    atom = torch.repeat_interleave(first_atom[idx] - start_in_batch, counts) + torch.arange(int(counts.sum()))  # (N,)
    return CrystalBatch(
        atomic_numbers=atomic_numbers[atom],  # (N,)
        frac_coords=frac_coords[atom],  # (N, 3)
        lattice=lattice[idx],  # (B, 3, 3)
        num_atoms=counts,  # (B,)
        batch=torch.repeat_interleave(torch.arange(idx.shape[0]), counts),  # (N,)
    )


def gather_batch(split: CrystalSplit, indices):
    """Structures ``indices`` of a split -> CrystalBatch."""
    return gather_structures(
        split.num_atoms, split.first_atom, split.atomic_numbers, split.frac_coords, split.lattice, indices
    )
