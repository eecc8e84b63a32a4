"""Small OC20-like periodic batches for the model tests, with a brute-force neighbour list.

The production radius graph lives in the data pipeline; this helper is deliberately naive (all
periodic images in a box, O(N^2 * images)) so it can serve as an independent check.
"""

from __future__ import annotations

import math

import torch

from replibench.families.oc20.types import AtomsGraph

SLAB_ELEMENTS = (29, 78, 47)  # Cu, Pt, Ag
ADSORBATE_ELEMENTS = (1, 6, 8)  # H, C, O


def random_slab(generator: torch.Generator, *, side: int = 2, layers: int = 2, adsorbates: int = 2):
    """One slab-like structure: a jittered, slightly sheared fcc-ish grid plus a few adsorbates.

    Returns (atomic_numbers (n,), pos (n, 3), cell (3, 3), tags (n,)); periodic in x, y and z with
    ~10 Å of vacuum along z, as OC20 structures are.
    """
    spacing = 2.6  # Å
    shear = (torch.rand(2, generator=generator, dtype=torch.float64) - 0.5) * 0.6
    cell = torch.tensor(
        [
            [side * spacing, 0.0, 0.0],
            [shear[0] * spacing, side * spacing, 0.0],
            [shear[1], 0.0, layers * spacing + 10.0],
        ],
        dtype=torch.float64,
    )  # (3, 3) rows are lattice vectors
    grid = (
        torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), torch.arange(layers), indexing="ij"), dim=-1)
        .reshape(-1, 3)
        .to(torch.float64)
    )  # (side^2 * layers, 3)
    fractional = (grid + 0.5) / torch.tensor([side, side, 1.0], dtype=torch.float64)  # (n_slab, 3)
    slab = fractional[:, :2] @ cell[:2, :2]  # (n_slab, 2)
    slab_pos = torch.cat([slab, (grid[:, 2:] * spacing + 1.0)], dim=-1)  # (n_slab, 3)
    slab_pos = slab_pos + 0.15 * torch.randn(slab_pos.shape, generator=generator, dtype=torch.float64)
    top = layers * spacing + 1.0
    ads_xy = torch.rand(adsorbates, 2, generator=generator, dtype=torch.float64) @ cell[:2, :2]  # (a, 2)
    ads_z = top + 0.4 + 1.2 * torch.arange(adsorbates, dtype=torch.float64)[:, None]  # (a, 1) stacked
    pos = torch.cat([slab_pos, torch.cat([ads_xy, ads_z], dim=-1)])  # (n, 3)
    n_slab = slab_pos.shape[0]
    slab_z = torch.tensor(SLAB_ELEMENTS)[torch.randint(len(SLAB_ELEMENTS), (n_slab,), generator=generator)]
    ads_z_numbers = torch.tensor(ADSORBATE_ELEMENTS)[
        torch.randint(len(ADSORBATE_ELEMENTS), (adsorbates,), generator=generator)
    ]
    tags = torch.cat([(grid[:, 2] == layers - 1).long(), torch.full((adsorbates,), 2)])  # (n,)
    return torch.cat([slab_z, ads_z_numbers]), pos, cell, tags


def periodic_edges(pos: torch.Tensor, cell: torch.Tensor, cutoff: float, max_neighbors: int):
    """Brute force: every image within ``cutoff``, nearest ``max_neighbors`` per target atom.

    Returns edge_index (2, E) [source j, target i] and edge_shift (E, 3) such that the edge
    vector is pos[j] + shift - pos[i].
    """
    heights = cell.det().abs() / torch.linalg.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]).norm(dim=-1)  # (3,)
    fractional = pos @ torch.linalg.inv(cell)  # (n, 3); atoms may sit outside the unit cell
    span = fractional.max(dim=0).values - fractional.min(dim=0).values  # (3,)
    reach = [math.ceil(cutoff / float(h) + float(w)) + 1 for h, w in zip(heights, span)]
    images = torch.cartesian_prod(*[torch.arange(-r, r + 1) for r in reach]).to(pos.dtype)  # (M, 3)
    shifts = images @ cell  # (M, 3)
    vec = pos[None, :, None, :] + shifts[None, None, :, :] - pos[:, None, None, :]  # (i, j, M, 3)
    dist = vec.norm(dim=-1)  # (i, j, M)
    mask = (dist < cutoff) & (dist > 1e-8)  # (i, j, M)
    target, source, image = mask.nonzero(as_tuple=True)  # (E0,) each, sorted by target
    d = dist[target, source, image]  # (E0,)
    keep = torch.zeros_like(d, dtype=torch.bool)
    for i in range(pos.shape[0]):
        rows = (target == i).nonzero().squeeze(-1)
        keep[rows[torch.argsort(d[rows], stable=True)[:max_neighbors]]] = True
    return torch.stack([source[keep], target[keep]]), shifts[image[keep]]


def make_batch(structures, cutoff: float = 5.0, max_neighbors: int = 50, dtype=torch.float64) -> AtomsGraph:
    """Concatenate structures [(z, pos, cell, tags), ...] into one AtomsGraph."""
    parts, offset = [], 0
    for index, (z, pos, cell, tags) in enumerate(structures):
        edge_index, edge_shift = periodic_edges(pos, cell, cutoff, max_neighbors)
        parts.append((z, pos, cell, tags, edge_index + offset, edge_shift, torch.full_like(z, index)))
        offset += z.shape[0]
    z, pos, cell, tags, edge_index, edge_shift, batch = zip(*parts)
    tags = torch.cat(tags)
    return AtomsGraph(
        atomic_numbers=torch.cat(z),
        pos=torch.cat(pos).to(dtype),
        cell=torch.stack(cell).to(dtype),
        batch=torch.cat(batch),
        natoms=torch.tensor([s[0].shape[0] for s in structures]),
        edge_index=torch.cat(edge_index, dim=1),
        edge_shift=torch.cat(edge_shift).to(dtype),
        tags=tags,
        fixed=tags == 0,
    )


def random_batch(seed: int, num_structures: int = 2, **kwargs) -> AtomsGraph:
    generator = torch.Generator().manual_seed(seed)
    return make_batch([random_slab(generator) for _ in range(num_structures)], **kwargs)


def rotated(structures, rotation: torch.Tensor):
    """Rotate positions and cells (rows) of every structure: x -> x @ R^T."""
    return [(z, pos @ rotation.T, cell @ rotation.T, tags) for z, pos, cell, tags in structures]
