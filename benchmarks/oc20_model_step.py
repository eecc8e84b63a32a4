"""Training-step time per batch of the OC20 models on a synthetic OC20-shaped batch.

A step is: forward (energy and forces; autograd forces keep their graph), the fairchem S2EF loss
(energy MAE + force L2-MAE on free atoms) and backward. The batch is built here: fcc(111)-like
4 x 4 x 3 slabs (48 atoms, 2.55 Å neighbour spacing, 10 Å vacuum) with a two-atom adsorbate,
rattled, periodic edges within 6 Å capped at the 50 nearest per atom (OC20's graph settings).

Models are built through the registry at the family's sizes: ``smoke`` = ``SMOKE_MODEL`` of
:mod:`replibench.families.oc20.family`, ``paper`` = each model's ``Config`` defaults (fairchem's SchNet and
DimeNet++ S2EF-2M sizes; our equivariant sizes).

    python benchmarks/oc20_model_step.py --preset smoke --structures 4 --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from replibench.families.oc20.family import SMOKE_MODEL
from replibench.families.oc20.models import dimenet_pp
from replibench.families.oc20.types import AtomsGraph
from replibench.families.task import build_registered_model
from replibench.families.oc20.tasks.graph import OC20_CUTOFF_ANGSTROM, OC20_MAX_NEIGHBORS, build_radius_graph

CUTOFF, MAX_NEIGHBORS = OC20_CUTOFF_ANGSTROM, OC20_MAX_NEIGHBORS  # OC20 / fairchem graph settings
MODEL_NAMES = ("schnet", "dimenet-pp", "equivariant-cg", "equivariant-gaunt")


def fcc111_slab(generator: torch.Generator, side: int = 4, layers: int = 3, spacing: float = 2.55):
    """(z (n,), pos (n, 3), cell (3, 3), tags (n,)) of a rattled fcc(111) slab plus a CO-like pair."""
    a1 = torch.tensor([spacing, 0.0, 0.0], dtype=torch.float64)
    a2 = torch.tensor([spacing / 2, spacing * math.sqrt(3) / 2, 0.0], dtype=torch.float64)
    dz = spacing * math.sqrt(2.0 / 3.0)
    i, j, k = torch.meshgrid(torch.arange(side), torch.arange(side), torch.arange(layers), indexing="ij")
    stacking = (k % 3).double()[..., None] * (a1 + a2) / 3  # ABC stacking offsets
    pos = i.double()[..., None] * a1 + j.double()[..., None] * a2 + stacking  # (side, side, layers, 3)
    pos = pos.reshape(-1, 3) + torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) * (k.reshape(-1, 1) * dz)
    top = (layers - 1) * dz
    site = (torch.rand(2, generator=generator, dtype=torch.float64) * side) @ torch.stack([a1[:2], a2[:2]])
    adsorbate = torch.stack(
        [torch.cat([site, torch.tensor([top + 1.9])]), torch.cat([site, torch.tensor([top + 3.05])])]
    )  # (2, 3) C then O
    pos = torch.cat([pos, adsorbate]) + 0.05 * torch.randn(
        pos.shape[0] + 2, 3, generator=generator, dtype=torch.float64
    )
    cell = torch.stack([side * a1, side * a2, torch.tensor([0.0, 0.0, top + 13.0], dtype=torch.float64)])
    layer = k.reshape(-1)
    tags = torch.cat([(layer == layers - 1).long(), torch.tensor([2, 2])])
    z = torch.cat([torch.full((side * side * layers,), 29), torch.tensor([6, 8])])
    return z, pos, cell, tags


def periodic_edges(pos: torch.Tensor, cell: torch.Tensor):
    """The data pipeline's radius graph (6 Å, the 50 nearest per target): edge_index (2, E) and the
    Cartesian image shift (E, 3) of each edge's source."""
    edge_index, image = build_radius_graph(pos.numpy(), cell.numpy(), (True, True, True), CUTOFF, MAX_NEIGHBORS)
    return torch.from_numpy(edge_index), torch.from_numpy(image.astype("float64") @ cell.numpy())


def synthetic_batch(num_structures: int, seed: int = 0) -> AtomsGraph:
    generator = torch.Generator().manual_seed(seed)
    parts, offset = [], 0
    for index in range(num_structures):
        z, pos, cell, tags = fcc111_slab(generator)
        edge_index, edge_shift = periodic_edges(pos, cell)
        parts.append((z, pos, cell, tags, edge_index + offset, edge_shift, torch.full_like(z, index)))
        offset += z.shape[0]
    z, pos, cell, tags, edge_index, edge_shift, batch = zip(*parts)
    tags = torch.cat(tags)
    return AtomsGraph(
        atomic_numbers=torch.cat(z),
        pos=torch.cat(pos).float(),
        cell=torch.stack(cell).float(),
        batch=torch.cat(batch),
        natoms=torch.tensor([t.shape[0] for t in z]),
        edge_index=torch.cat(edge_index, dim=1),
        edge_shift=torch.cat(edge_shift).float(),
        tags=tags,
        fixed=tags == 0,
    )


def training_step(model, graph: AtomsGraph, energy_target, force_target) -> None:
    energy, forces = model(graph)
    free = ~graph.fixed
    loss = (energy - energy_target).abs().mean() + 100 * (forces[free] - force_target[free]).norm(dim=-1).mean()
    loss.backward()
    model.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=("smoke", "paper"), default="smoke")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    parser.add_argument("--structures", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    graph = synthetic_batch(args.structures)
    energy_target = torch.randn(graph.num_structures)
    force_target = torch.randn(graph.pos.shape[0], 3)
    triplets = dimenet_pp.periodic_triplets(graph.edge_index, graph.edge_shift, graph.pos.shape[0])[0].shape[0]
    print(
        f"{args.structures} structures, {graph.pos.shape[0]} atoms, {graph.edge_index.shape[1]} edges, "
        f"{triplets} DimeNet++ triplets; preset {args.preset}; {args.threads} thread(s); CPU s, best of {args.repeats}"
    )
    rows = []
    for name in args.models:
        sizes = SMOKE_MODEL[name] if args.preset == "smoke" else {}
        model = build_registered_model(name, sizes, cutoff=CUTOFF, regress_forces=True).train()
        training_step(model, graph, energy_target, force_target)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.process_time()
            training_step(model, graph, energy_target, force_target)
            times.append(time.process_time() - start)
        row = {"model": name, "params": sum(p.numel() for p in model.parameters()), "step_cpu_s": min(times)}
        rows.append(row)
        print(f"  {name:<18} {row['params']:>11,} params  {row['step_cpu_s']:8.3f} s/step")
    if args.json:
        from replibench.atomic import write_text_atomic

        payload = {
            "settings": vars(args),
            "atoms": graph.pos.shape[0],
            "edges": graph.edge_index.shape[1],
            "rows": rows,
        }
        write_text_atomic(args.json, json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
