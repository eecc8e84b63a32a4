"""S4D and S4 layer forward+backward time (issue 6): B=16, H=128, L in {2048, 16384}.

Usage: python benchmarks/lra_ssm.py [--lengths 2048 16384] [--batch 16] [--d-model 128]
       [--d-state 64] [--reps 3] [--layers s4d s4] [--device cpu|cuda] [--threads N]
Prints one JSON line per (layer, L): median seconds of forward+backward after one warm-up.
The default run is short (L=2048 only) so it fits the CPU machines; pass --lengths 2048 16384
on a GPU for the full grid.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from replibench.families.lra.models.s4 import S4Config, S4Layer
from replibench.families.lra.models.s4d import S4DConfig, S4DLayer


def build(kind: str, H: int, N: int, L: int) -> torch.nn.Module:
    if kind == "s4d":
        return S4DLayer(S4DConfig(d_model=H, d_state=N, init="legs", bidirectional=True))
    return S4Layer(S4Config(d_model=H, d_state=N, measure="legs", l_max=L, bidirectional=True))


def time_layer(layer: torch.nn.Module, x: torch.Tensor, reps: int) -> float:
    def step() -> None:
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()

    step()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[2048])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--d-state", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--layers", nargs="+", default=["s4d", "s4"], choices=["s4d", "s4"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for L in args.lengths:
        for kind in args.layers:
            layer = build(kind, args.d_model, args.d_state, L).to(args.device)
            x = torch.randn(args.batch, L, args.d_model, device=args.device)
            sec = time_layer(layer, x, args.reps)
            print(json.dumps({"layer": kind, "B": args.batch, "L": L, "H": args.d_model, "N": args.d_state,
                              "device": args.device, "threads": torch.get_num_threads(),
                              "fwd_bwd_s": round(sec, 4)}), flush=True)


if __name__ == "__main__":
    main()
