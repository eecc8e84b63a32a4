"""Crystal metric evaluation time per 1,000 structures, serial vs parallel.

Inputs: the first ``--n`` genuine MP-20 rows of ``shared/data/mp_20/subset`` (tests and benchmarks
only; not the official split). CSP: one perturbed copy per crystal (σ = 0.003 in fractional
coordinates, so nearly all match and the fingerprint gate runs). Gen: the same copies as
"generated" crystals against the originals as the test set (fingerprints for every crystal).
Checks that the parallel result equals the serial one. Wall time depends on other load on the
machine; CPU seconds (this process + pool workers) are the load-independent cost.

    python benchmarks/crystals_metrics.py --n 40 --workers 2
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path


def _shared_data() -> Path:
    env = os.environ.get("REPLIBENCH_SHARED_DATA")
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return candidate if candidate.exists() else Path("/work/shared/data")


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished children (pool workers), in seconds."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _inputs(n: int, seed: int):
    import numpy as np
    import pandas as pd

    from replibench.families.crystals.metrics.structures import CrystalArrays, arrays_from_cif

    folder = _shared_data() / "mp_20" / "subset"
    frame = pd.concat([pd.read_csv(folder / f"{split}.csv") for split in ("test", "val", "train")])
    cifs = frame.cif.tolist()[:n]
    rng = np.random.default_rng(seed)
    predictions = []
    for cif in cifs:
        a = arrays_from_cif(cif)
        predictions.append(CrystalArrays(a.atomic_numbers, a.frac_coords + rng.normal(0, 0.003, a.frac_coords.shape),
                                         a.lengths, a.angles))
    return cifs, predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="structures to evaluate (<= 1,112)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel run")
    parser.add_argument("--convention", default="cdvae", choices=("cdvae", "diffcsp", "crysbfn"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from replibench.families.crystals.metrics import evaluate_csp, evaluate_gen

    cifs, predictions = _inputs(args.n, args.seed)
    n = len(cifs)
    print(f"{n} MP-20 subset structures, convention {args.convention}, cpu_count {os.cpu_count()}")
    for task in ("csp", "gen"):
        results = {}
        for workers in (1, args.workers):
            start, cpu_start = time.perf_counter(), _cpu_seconds()
            if task == "csp":
                results[workers] = evaluate_csp(predictions=[[p] for p in predictions], truths=cifs,
                                                convention=args.convention, workers=workers)
            else:
                results[workers] = evaluate_gen(generated=predictions, truths=cifs, dataset="mp-20",
                                                convention=args.convention, workers=workers,
                                                seed=args.seed, allow_fewer_valid=True)
            seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
            print(f"{task}: workers={workers:2d}  wall {seconds:8.2f} s = {1000.0 * seconds / n:8.1f} s per 1,000 "
                  f"structures; CPU {cpu:8.2f} s = {1000.0 * cpu / n:8.1f} CPU-s per 1,000")
        identical = results[1]["variants"] == results[args.workers]["variants"]
        print(f"{task}: parallel result identical to serial: {identical}; "
              f"{ {k: v for k, v in results[1]['variants'].items()} }")


if __name__ == "__main__":
    main()
