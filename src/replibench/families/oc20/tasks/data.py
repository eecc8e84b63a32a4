"""OC20 splits in memory (flat, CSR-style arrays) and vectorised batching into ``AtomsGraph``.

A split folder (``<split>/part-*.parquet``, S2EF or IS2RE schema) is read once into flat arrays:
per-structure arrays of length S and per-atom arrays of length A, joined by ``atom_ptr`` (S+1).
Edges are built once per structure (:func:`replibench.families.oc20.tasks.graph.build_radius_graph`) and
kept the same way (``edge_ptr``, local source/target indices, int8 image offsets), unless the task
asks for ``graph_mode="per_batch"`` (edges rebuilt for each batch: no edge memory, used at
S2EF-2M scale where stored edges would take tens of GB).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from replibench.errors import DataError
from replibench.families.oc20.metrics.files import S2EFTruth, list_column, read_parquet_split
from replibench.families.oc20.tasks.graph import build_radius_graph

if TYPE_CHECKING:  # torch is imported lazily: this module is imported by the task registry
    import torch

    from replibench.families.oc20.types import AtomsGraph


@dataclass
class GraphSettings:
    """Radius-graph protocol (OC20: 6 Å, 50 neighbours, strict selection)."""

    cutoff: float = 6.0
    max_neighbors: int = 50
    enforce_max_neighbors_strictly: bool = True
    mode: str = "precompute"  # or "per_batch"


@dataclass
class StructureSplit:
    """One split. Positions and forces stay float64 so scores match the bring-your-own path."""

    name: str
    sid: np.ndarray  # (S,) int64
    fid: np.ndarray  # (S,) int64 (-1 for IS2RE)
    natoms: np.ndarray  # (S,) int64
    atom_ptr: np.ndarray  # (S+1,) int64
    atomic_numbers: np.ndarray  # (A,) int64
    pos: np.ndarray  # (A, 3) float64, Å (IS2RE: initial structure)
    cell: np.ndarray  # (S, 3, 3) float64, Å
    tags: np.ndarray  # (A,) int64
    fixed: np.ndarray  # (A,) bool
    energy: np.ndarray  # (S,) float64 target, eV (NaN where unlabelled)
    forces: np.ndarray | None = None  # (A, 3) float64, eV/Å (S2EF only)
    edge_ptr: np.ndarray | None = None  # (S+1,) int64
    edge_src: np.ndarray | None = None  # (E,) int32, local atom index of source j
    edge_dst: np.ndarray | None = None  # (E,) int32, local atom index of target i
    edge_image: np.ndarray | None = None  # (E, 3) int8, image offset of j

    def __len__(self) -> int:
        return len(self.sid)

    def s2ef_truth(self) -> S2EFTruth:
        if self.forces is None:
            raise DataError(f"split {self.name}: no forces (not an S2EF split)")
        return S2EFTruth(self.sid, self.fid, self.natoms, self.energy, self.forces, self.fixed)


def read_structure_split(split_dir: Path, *, name: str, energy_column: str, with_forces: bool) -> StructureSplit:
    """Read ``split_dir`` (S2EF or IS2RE Parquet) into a :class:`StructureSplit`."""
    columns = ["sid", "natoms", "atomic_numbers", "pos", "cell", "tags", "fixed", energy_column]
    table = read_parquet_split(Path(split_dir))
    missing = [c for c in columns + (["forces"] if with_forces else []) if c not in table.column_names]
    if missing:
        raise DataError(f"{split_dir}: missing columns {missing}; found {table.column_names}")
    natoms = table.column("natoms").to_numpy().astype(np.int64)
    numbers, atom_offsets = list_column(table, "atomic_numbers")
    if not np.array_equal(np.diff(atom_offsets), natoms):
        raise DataError(f"{split_dir}: natoms disagrees with the atomic_numbers lists")
    pos, _ = list_column(table, "pos")
    tags, _ = list_column(table, "tags")
    fixed, _ = list_column(table, "fixed")
    cell = np.asarray(table.column("cell").combine_chunks().flatten(), dtype=np.float64)  # (9S,) rows a, b, c
    forces = None
    if with_forces:
        values, _ = list_column(table, "forces")
        forces = values.astype(np.float64).reshape(-1, 3)
    fid = table.column("fid").to_numpy().astype(np.int64) if "fid" in table.column_names else np.full(len(table), -1)
    return StructureSplit(
        name=name, sid=table.column("sid").to_numpy().astype(np.int64), fid=fid, natoms=natoms,
        atom_ptr=atom_offsets.astype(np.int64), atomic_numbers=numbers.astype(np.int64),
        pos=pos.astype(np.float64).reshape(-1, 3), cell=cell.astype(np.float64).reshape(-1, 3, 3),
        tags=tags.astype(np.int64), fixed=fixed.astype(bool),
        energy=table.column(energy_column).to_numpy(zero_copy_only=False).astype(np.float64), forces=forces,
    )


def precompute_edges(split: StructureSplit, graph: GraphSettings) -> None:
    """Build every structure's radius graph once and store it in ``split`` (CSR, local indices)."""
    sources, targets, images, counts = [], [], [], np.zeros(len(split), np.int64)
    for s in range(len(split)):
        lo, hi = split.atom_ptr[s], split.atom_ptr[s + 1]
        edge_index, image = build_radius_graph(
            split.pos[lo:hi], split.cell[s], (True, True, True), graph.cutoff, graph.max_neighbors,
            enforce_max_neighbors_strictly=graph.enforce_max_neighbors_strictly)
        if np.abs(image).max(initial=0) > 127:
            raise DataError(f"split {split.name}: structure sid={split.sid[s]} needs image offsets beyond int8")
        sources.append(edge_index[0].astype(np.int32))
        targets.append(edge_index[1].astype(np.int32))
        images.append(image.astype(np.int8))
        counts[s] = edge_index.shape[1]
    split.edge_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    split.edge_src = np.concatenate(sources) if sources else np.zeros(0, np.int32)
    split.edge_dst = np.concatenate(targets) if targets else np.zeros(0, np.int32)
    split.edge_image = np.concatenate(images) if images else np.zeros((0, 3), np.int8)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(starts[k], starts[k] + counts[k])`` over k, vectorised."""
    return np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())


@dataclass(frozen=True)
class LossSpec:
    """How a batch is scored in training: fairchem's coefficients, normaliser and atom mask."""

    energy_coefficient: float
    force_coefficient: float
    mean: float  # energy normaliser, eV
    std: float  # energy and force normaliser, eV
    free_only: bool = True  # train_on_free_atoms


@dataclass
class OC20Batch:
    """A batch: the model input, raw targets, and how the task's loss treats them."""

    graph: AtomsGraph
    energy: torch.Tensor  # (B,) float, target energy in eV (NaN where unlabelled)
    forces: torch.Tensor | None  # (N, 3) float, target forces in eV/Å
    sid: torch.Tensor  # (B,) long
    fid: torch.Tensor  # (B,) long
    loss: LossSpec | None = None

    def to(self, device) -> "OC20Batch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("graph", "energy", "forces", "sid", "fid"):
            if moved[name] is not None:
                moved[name] = moved[name].to(device)
        return OC20Batch(**moved)


def gather_batch(split: StructureSplit, indices, graph: GraphSettings, *, dtype=None) -> OC20Batch:
    """Structures ``indices`` of ``split`` as one :class:`OC20Batch` (no Python loop over atoms)."""
    import torch

    from replibench.families.oc20.types import AtomsGraph

    dtype = dtype or torch.get_default_dtype()
    idx = np.asarray(indices.cpu().numpy() if isinstance(indices, torch.Tensor) else indices, dtype=np.int64)
    counts = split.natoms[idx]  # (B,)
    atoms = _ranges(split.atom_ptr[idx], counts)  # (N,) global atom ids
    first_atom = np.cumsum(counts) - counts  # (B,) batch offset of each structure
    cell = split.cell[idx]  # (B, 3, 3)
    if split.edge_ptr is not None and graph.mode == "precompute":
        edge_counts = split.edge_ptr[idx + 1] - split.edge_ptr[idx]  # (B,)
        edges = _ranges(split.edge_ptr[idx], edge_counts)  # (E,)
        shift = np.repeat(first_atom, edge_counts)  # (E,)
        source = split.edge_src[edges].astype(np.int64) + shift
        target = split.edge_dst[edges].astype(np.int64) + shift
        image = split.edge_image[edges].astype(np.float64)  # (E, 3)
        edge_structure = np.repeat(np.arange(len(idx)), edge_counts)  # (E,)
    else:
        parts = [build_radius_graph(split.pos[split.atom_ptr[s]:split.atom_ptr[s + 1]], split.cell[s],
                                    (True, True, True), graph.cutoff, graph.max_neighbors,
                                    enforce_max_neighbors_strictly=graph.enforce_max_neighbors_strictly) for s in idx]
        edge_counts = np.array([p[0].shape[1] for p in parts], np.int64)
        shift = np.repeat(first_atom, edge_counts)
        source = np.concatenate([p[0][0] for p in parts]) + shift
        target = np.concatenate([p[0][1] for p in parts]) + shift
        image = np.concatenate([p[1] for p in parts]).astype(np.float64)
        edge_structure = np.repeat(np.arange(len(idx)), edge_counts)
    edge_shift = np.einsum("ek,ekx->ex", image, cell[edge_structure])  # (E, 3) Å, image @ cell
    graph_batch = AtomsGraph(
        atomic_numbers=torch.from_numpy(split.atomic_numbers[atoms]),  # (N,)
        pos=torch.from_numpy(split.pos[atoms]).to(dtype),  # (N, 3)
        cell=torch.from_numpy(cell).to(dtype),  # (B, 3, 3)
        batch=torch.from_numpy(np.repeat(np.arange(len(idx)), counts)),  # (N,)
        natoms=torch.from_numpy(counts.copy()),  # (B,)
        edge_index=torch.from_numpy(np.stack([source, target])),  # (2, E)
        edge_shift=torch.from_numpy(edge_shift).to(dtype),  # (E, 3)
        tags=torch.from_numpy(split.tags[atoms]),  # (N,)
        fixed=torch.from_numpy(split.fixed[atoms]),  # (N,)
    )
    forces = None if split.forces is None else torch.from_numpy(split.forces[atoms]).to(dtype)  # (N, 3)
    return OC20Batch(graph=graph_batch, energy=torch.from_numpy(split.energy[idx]).to(dtype), forces=forces,
                     sid=torch.from_numpy(split.sid[idx]), fid=torch.from_numpy(split.fid[idx]))
