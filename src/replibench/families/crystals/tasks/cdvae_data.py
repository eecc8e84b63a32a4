"""What CDVAE reads beyond the shared crystal columns: lattice lengths/angles, the CrystalNN graph, the property.

CDVAE's data module (``cdvae/pl_data/dataset.py`` ``CrystDataset``) gives its encoder the CrystalNN
graph of the Niggli-reduced cell (``graph_method: crystalnn``, ``otf_graph: false``), its heads the
lattice as lengths and angles, and, for the property-optimisation model, the training property
``data.prop``. Preprocessing stores the graph per structure (columns ``crystalnn_edges``: 2E atom
indices as (source, target) pairs, local to the structure; ``crystalnn_images``: 3E periodic images
of each target) when a CDVAE run uses the dataset; :func:`read_crystal_graphs` reads them with the
lengths, angles and property, and :func:`gather_cdvae_batch` builds a
:class:`~replibench.families.crystals.models.cdvae.CDVAEBatch` with edges renumbered into the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replibench.errors import DataError

GRAPH_COLUMNS = ("crystalnn_edges", "crystalnn_images")


@dataclass
class CrystalGraphs:
    """Per-structure CDVAE inputs of one split, bonds stored concatenated (CSR)."""

    source: Path
    lengths: Any  # torch (M, 3) float32, Å
    angles: Any  # torch (M, 3) float32, degrees
    num_bonds: Any  # torch (M,) long, directed CrystalNN edges per structure
    first_bond: Any  # torch (M,) long
    edges: Any  # torch (E, 2) long, (source, target) atom indices local to the structure
    images: Any  # torch (E, 3) long, periodic image of the target
    property: Any | None  # torch (M, 1) float32 in the property's unit, or None


def read_crystal_graphs(path: Path, property_column: str | None) -> CrystalGraphs:
    """Read and check the CDVAE columns of one split; errors name the file, the row and what was expected."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import torch

    columns = ["num_atoms", "lengths", "angles", *GRAPH_COLUMNS] + ([property_column] if property_column else [])
    schema = pq.read_schema(path)
    missing = [name for name in columns if name not in schema.names]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing} that CDVAE reads; the CrystalNN graph columns are "
                        f"written when a CDVAE run uses the dataset (preprocess option crystal_graph: crystalnn)")
    table = pq.read_table(path, columns=columns)
    num_atoms = table.column("num_atoms").to_numpy().astype(np.int64)
    edge_values = pc.list_value_length(table.column("crystalnn_edges")).to_numpy(zero_copy_only=False).astype(np.int64)
    image_values = pc.list_value_length(table.column("crystalnn_images")).to_numpy(zero_copy_only=False).astype(np.int64)
    for row in np.flatnonzero((edge_values % 2 != 0) | (image_values != edge_values // 2 * 3)):
        raise DataError(f"{path}: row {int(row)}: crystalnn_edges has {edge_values[row]} values and crystalnn_images "
                        f"{image_values[row]}; expected 2E and 3E for E edges")
    num_bonds = edge_values // 2
    for row in np.flatnonzero(num_bonds == 0):
        raise DataError(f"{path}: row {int(row)}: no CrystalNN edges; expected at least one (CDVAE's encoder needs them)")
    edges = pc.list_flatten(table.column("crystalnn_edges")).to_numpy().astype(np.int64).reshape(-1, 2)
    images = pc.list_flatten(table.column("crystalnn_images")).to_numpy().astype(np.int64).reshape(-1, 3)
    bond_row = np.repeat(np.arange(len(num_bonds)), num_bonds)
    bad = (edges < 0).any(1) | (edges >= num_atoms[bond_row][:, None]).any(1)
    if bad.any():
        row = int(bond_row[np.flatnonzero(bad)[0]])
        raise DataError(f"{path}: row {row}: a CrystalNN edge names an atom outside 0..{num_atoms[row] - 1}")
    lengths = np.array(pc.list_flatten(table.column("lengths")).to_numpy()).reshape(-1, 3)  # writable copy
    angles = np.array(pc.list_flatten(table.column("angles")).to_numpy()).reshape(-1, 3)
    prop = None
    if property_column:
        values = table.column(property_column).to_numpy(zero_copy_only=False).astype(np.float64)
        for row in np.flatnonzero(~np.isfinite(values)):
            raise DataError(f"{path}: row {int(row)}: {property_column!r} is missing; expected a number "
                            f"(CDVAE's property model trains on it)")
        prop = torch.from_numpy(values).float().view(-1, 1)
    counts = torch.from_numpy(num_bonds)
    return CrystalGraphs(source=Path(path), lengths=torch.from_numpy(lengths).float(),
                         angles=torch.from_numpy(angles).float(), num_bonds=counts,
                         first_bond=torch.cumsum(counts, 0) - counts, edges=torch.from_numpy(edges),
                         images=torch.from_numpy(images), property=prop)


def gather_cdvae_batch(split, graphs: CrystalGraphs, indices):
    """Structures ``indices`` of a split and its graphs -> CDVAEBatch; edge atom indices are shifted by
    the structure's first atom in the batch (as PyG's ``Batch.from_data_list`` does)."""
    import torch

    from replibench.families.crystals.models.cdvae import CDVAEBatch
    from replibench.families.crystals.tasks.data import gather_batch

    idx = torch.as_tensor(indices, dtype=torch.long)
    crystals = gather_batch(split, idx)
    bonds = graphs.num_bonds[idx]  # (B,)
    first_in_batch = torch.cumsum(bonds, 0) - bonds
    bond = torch.repeat_interleave(graphs.first_bond[idx] - first_in_batch, bonds) + torch.arange(int(bonds.sum()))
    atom_offset = torch.repeat_interleave(torch.cumsum(crystals.num_atoms, 0) - crystals.num_atoms, bonds)  # (E,)
    return CDVAEBatch(
        atomic_numbers=crystals.atomic_numbers, frac_coords=crystals.frac_coords,
        lengths=graphs.lengths[idx], angles=graphs.angles[idx], num_atoms=crystals.num_atoms, batch=crystals.batch,
        edge_index=(graphs.edges[bond] + atom_offset[:, None]).T.contiguous(), to_jimages=graphs.images[bond],
        num_bonds=bonds, training_property=None if graphs.property is None else graphs.property[idx])
