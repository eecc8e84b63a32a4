"""Radius-graph construction time per structure (OC20 settings: 6 Å, 50 neighbours).

Goal: building the graph once per structure must cost far less than a model step; the research
notes measured ASE's ``neighbor_list`` + a top-50 cut at ~31 ms per 82-atom slab on this CPU.

Run: ``python benchmarks/oc20_graph.py [--repeats 20]``. Prints median / min wall time per
structure for our vectorised builder and for the ASE baseline, plus batched gathering time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def structures():
    from ase.build import add_adsorbate, bulk, fcc111, molecule

    slab = fcc111("Cu", size=(4, 4, 5), vacuum=10.0)  # the notes' OC20-shaped benchmark system
    add_adsorbate(slab, molecule("CO"), 1.8, "ontop")
    slab.pbc = True
    slab.rattle(0.05, seed=0)
    small = fcc111("Pt", size=(2, 2, 3), vacuum=7.0)
    add_adsorbate(small, "O", 1.8, "fcc")
    small.pbc = True
    small.rattle(0.05, seed=1)
    primitive = bulk("Cu", "fcc", a=3.6)
    return {"Cu(111) 4x4x5 + CO (82 atoms)": slab, "Pt(111) 2x2x3 + O (13 atoms)": small,
            "fcc Cu primitive (1 atom, cell < cutoff)": primitive}


def ase_baseline(atoms, cutoff=6.0, max_neighbors=50):
    from ase.neighborlist import neighbor_list

    i, j, d, shifts = neighbor_list("ijdS", atoms, cutoff)
    order = np.lexsort((j, d, i))
    i, j, shifts = i[order], j[order], shifts[order]
    counts = np.bincount(i, minlength=len(atoms))
    rank = np.arange(len(i)) - (np.cumsum(counts) - counts)[i]
    keep = rank < max_neighbors
    return np.stack([j[keep], i[keep]]), shifts[keep]


def timeit(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from replibench.families.oc20.tasks.graph import build_radius_graph

    print(f"{'structure':45s} {'edges':>6s} {'ours ms (median/min)':>22s} {'ASE ms (median/min)':>22s}")
    for name, atoms in structures().items():
        pos, cell = atoms.positions, atoms.cell.array
        edges, _ = build_radius_graph(pos, cell)
        ours = timeit(lambda: build_radius_graph(pos, cell), args.repeats)
        ase = timeit(lambda: ase_baseline(atoms), args.repeats)
        print(f"{name:45s} {edges.shape[1]:6d} {ours[0]:10.2f} / {ours[1]:8.2f} {ase[0]:10.2f} / {ase[1]:8.2f}")


if __name__ == "__main__":
    main()
