"""The batch every crystal model (CSPNet/DiffCSP/CrysBFN) consumes, and its atom → structure index.

Built from the crystal Parquet schema (``replibench.families.crystals.datasets``): one row per structure with
``atomic_numbers`` (N), ``frac_coords`` (3N, row-major) and ``lattice`` (9, row vectors a, b, c in Å).
Atoms of all structures in a batch are concatenated; ``batch`` maps each atom to its structure.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class CrystalBatch:
    atomic_numbers: torch.Tensor  # (N,) long, Z of every atom
    frac_coords: torch.Tensor  # (N, 3) float, fractional coordinates in [0, 1)
    lattice: torch.Tensor  # (B, 3, 3) float, rows are the lattice vectors a, b, c (Å)
    num_atoms: torch.Tensor  # (B,) long, atoms per structure
    batch: torch.Tensor  # (N,) long, structure index of every atom

    @property
    def num_structures(self) -> int:
        return int(self.num_atoms.shape[0])

    def to(self, device: torch.device | str) -> "CrystalBatch":
        return CrystalBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def structure_index(num_atoms: torch.Tensor) -> torch.Tensor:
    """(B,) atom counts -> (N,) index of the structure each atom belongs to."""
    return torch.repeat_interleave(torch.arange(num_atoms.shape[0], device=num_atoms.device), num_atoms)
