"""OC20 S2EF scoring: CPU seconds per validation frame of fairchem's metrics (``s2ef_metrics``).

Why: a sharded S2EF evaluation (DimeNet++ and the equivariant models at the paper preset: ~4 M
frames over the four validation splits) is scored in one CPU job after its shards are gathered,
and the plan sizes that job from this rate (``families/oc20/family.py`` SCORE_SECONDS_PER_FRAME).

    python benchmarks/oc20_score.py --frames 200000 --atoms 77 --repeats 3

Random energies and forces (what is scored does not change the work), ``--atoms`` per frame (OC20
S2EF frames average ~77 atoms; a third fixed), one thread. Prints seconds per frame (median of
``--repeats``) and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--atoms", type=int, default=77)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from replibench.families.oc20.metrics.energy_forces import s2ef_metrics

    rng = np.random.default_rng(0)
    atoms = args.frames * args.atoms
    arrays = {"pred_energy": rng.normal(size=args.frames), "true_energy": rng.normal(size=args.frames),
              "pred_forces": rng.normal(size=(atoms, 3)), "true_forces": rng.normal(size=(atoms, 3)),
              "fixed": rng.random(atoms) < 1 / 3, "natoms": np.full(args.frames, args.atoms)}
    seconds = []
    for _ in range(args.repeats):
        began = time.perf_counter()
        s2ef_metrics(**arrays)
        seconds.append(time.perf_counter() - began)
    per_frame = statistics.median(seconds) / args.frames
    print(f"s2ef_metrics: {per_frame * 1e6:.2f} µs per frame of {args.atoms} atoms ({args.frames:,} frames, "
          f"median of {args.repeats}: {statistics.median(seconds):.2f} s)")
    print(json.dumps({"frames": args.frames, "atoms": args.atoms, "seconds": seconds,
                      "seconds_per_frame": per_frame}))


if __name__ == "__main__":
    main()
