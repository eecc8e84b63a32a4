"""OC20 training input: samples/s the batch loader delivers (radius graphs built per batch, as the
paper preset does) with 0…k loader processes, against samples/s of the model's training step.

Goal: the loader must outrun the model step, so that building graphs on the CPU never idles the
GPU. A paper run has 4 CPUs per GPU and 3 loader processes (``families/oc20/family.py``).

    python benchmarks/oc20_loader.py --data data/rehearsal/oc20/s2ef-synthetic-emt --model schnet \
        --batch 24 --steps 8 --workers 0 1 2

``--data``: a preprocessed S2EF folder (the synthetic EMT set of the rehearsal or smoke run, or
S2EF-2M); its training split is replaced by ``--slabs`` OC20-shaped structures (rattled Cu(111)
4 × 4 × 5 slabs with CO, 82 atoms: the synthetic set's 20-atom slabs make graphs look cheap)
unless ``--slabs 0``. Prints one line per setting and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def load(data_dir: Path, model: str):
    from replibench.families.oc20.family import FAMILY
    from replibench.registry import resolve

    run = FAMILY.make_run("s2ef-2m", "s2ef", model, {}, 0, "paper")
    settings = FAMILY.run_settings({}, run)
    task = resolve("task", "s2ef")
    return task, task.load(data_dir, run, settings), run, settings


def oc20_shaped_split(count: int):
    """``count`` rattled Cu(111) 4 × 4 × 5 + CO slabs (82 atoms, bottom two layers fixed)."""
    import numpy as np
    from ase.build import add_adsorbate, fcc111, molecule

    from replibench.families.oc20.tasks.data import StructureSplit

    structures = []
    for seed in range(count):
        slab = fcc111("Cu", size=(4, 4, 5), vacuum=10.0)
        add_adsorbate(slab, molecule("CO"), 1.8, "ontop")
        slab.pbc = True
        slab.rattle(0.05, seed=seed)
        structures.append(slab)
    natoms = np.array([len(s) for s in structures], np.int64)
    pos = np.concatenate([s.positions for s in structures])
    return StructureSplit(
        name="train", sid=np.arange(count, dtype=np.int64), fid=np.zeros(count, np.int64), natoms=natoms,
        atom_ptr=np.concatenate([[0], np.cumsum(natoms)]).astype(np.int64),
        atomic_numbers=np.concatenate([s.numbers for s in structures]).astype(np.int64), pos=pos,
        cell=np.stack([s.cell.array for s in structures]),
        tags=np.concatenate([s.get_tags() for s in structures]).astype(np.int64) % 3,
        fixed=np.concatenate([s.get_tags() >= 4 for s in structures]),
        energy=np.zeros(count), forces=np.zeros_like(pos))


def loader_rate(task, data, batch: int, steps: int, workers: int) -> float:
    """Structures per second delivered by ``workers`` loader processes (0: built in this process)."""
    from replibench.train import BatchLoader, epoch_order

    order = epoch_order(task.num_train_examples(data), seed=0, epoch=0)
    steps = min(steps, len(order) // batch)
    began = time.perf_counter()
    if workers == 0:
        for step in range(steps):
            task.make_batch(data, "train", order[step * batch:(step + 1) * batch])
    else:
        loader = BatchLoader(task, data, workers)
        try:
            for step in range(steps):
                loader.keep_ahead(order, step, steps, batch, lambda indices: [indices])
                loader.take(step)
        finally:
            loader.close()
    return steps * batch / (time.perf_counter() - began)


def model_rate(task, data, run, settings, batch: int, steps: int) -> float:
    """Structures per second of forward + loss + backward at the paper's model size on one batch."""
    from replibench.train import epoch_order

    model = task.build_model(data, run, settings)
    order = epoch_order(task.num_train_examples(data), seed=0, epoch=0)
    built = task.make_batch(data, "train", order[:batch])
    durations = []
    for _ in range(steps):
        began = time.perf_counter()
        task.training_loss(model, built).backward()
        durations.append(time.perf_counter() - began)
    return batch / statistics.median(durations[1:] or durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", default="schnet")
    parser.add_argument("--batch", type=int, default=24, help="structures per GPU per step (SchNet S2EF-2M: 24)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--slabs", type=int, default=96, help="OC20-shaped training structures (0: the data's own)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task, data, run, settings = load(args.data, args.model)
    if args.slabs:
        data.splits[data.settings.train_split] = oc20_shaped_split(args.slabs)
    atoms = float(data.splits["train"].natoms.mean())
    summary = {"data": str(args.data), "mean_atoms": atoms, "batch": args.batch, "threads": args.threads,
               "loader_structures_per_s": {}, "model": args.model}
    for workers in args.workers:
        rate = loader_rate(task, data, args.batch, args.steps, workers)
        summary["loader_structures_per_s"][workers] = rate
        print(f"loader, {workers} worker process(es): {rate:8.1f} structures/s ({atoms:.0f} atoms each)")
    rate = model_rate(task, data, run, settings, args.batch, max(3, args.steps // 2))
    summary["model_structures_per_s"] = rate
    print(f"{args.model} training step at the paper size, {args.threads} thread(s): {rate:8.1f} structures/s")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
