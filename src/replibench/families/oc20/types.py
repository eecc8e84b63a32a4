"""OC20's shared types: the validation splits, and the periodic atomic graph every OC20 model
(SchNet, DimeNet++, the equivariant model) consumes. Torch-free at import (datasets and metrics
import it); the tensors are torch's.

Edges are built once per structure by the periodic radius graph (6 Å cutoff, at most 50
neighbours per atom in OC20's configs). Convention: edge ``e`` goes from source atom
``j = edge_index[0, e]`` to target atom ``i = edge_index[1, e]`` and its vector is
``pos[j] + edge_shift[e] - pos[i]`` (Å), where ``edge_shift = image_offset @ cell`` of the
structure. Vectors are recomputed from ``pos`` inside the model, so forces can be taken as
``-d energy / d pos`` with autograd.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: this module is imported by torch-free code (datasets, metrics)
    import torch

#: The four S2EF (and IS2RE) validation sub-splits, in fairchem's order.
VAL_SPLITS = ("val_id", "val_ood_ads", "val_ood_cat", "val_ood_both")


@dataclass
class AtomsGraph:
    atomic_numbers: torch.Tensor  # (N,) long
    pos: torch.Tensor  # (N, 3) float, Cartesian positions (Å)
    cell: torch.Tensor  # (B, 3, 3) float, rows are lattice vectors (Å)
    batch: torch.Tensor  # (N,) long, structure index of every atom
    natoms: torch.Tensor  # (B,) long
    edge_index: torch.Tensor  # (2, E) long, [source j, target i]
    edge_shift: torch.Tensor  # (E, 3) float, periodic image shift added to pos[j] (Å)
    tags: torch.Tensor  # (N,) long, OC20 tags: 0 subsurface, 1 surface, 2 adsorbate
    fixed: torch.Tensor  # (N,) bool, atoms held fixed in the DFT relaxation

    @property
    def num_structures(self) -> int:
        return int(self.natoms.shape[0])

    def edge_vectors(self) -> torch.Tensor:
        """(E, 3) vectors from target i to source j's periodic image, differentiable in ``pos``."""
        source, target = self.edge_index
        return self.pos[source] + self.edge_shift - self.pos[target]  # (E, 3)

    def to(self, device: torch.device | str) -> "AtomsGraph":
        return AtomsGraph(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})
