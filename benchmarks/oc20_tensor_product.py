"""Gaunt vs Clebsch-Gordan tensor-product time for L = 1..8, with fitted scaling exponents.

Luo, Chen, Krishnapriyan (ICLR 2024, arXiv:2401.10216) claim O(L^3) for the Gaunt tensor product
(SH -> 2D Fourier -> FFT convolution -> SH) against O(L^6) for the full CG tensor product of
irreps up to degree L. This script times, on the same inputs (a batch of coefficient vectors with
every degree 0..L, output truncated to degree L):

* ``gaunt``     - ``replibench.families.oc20.models.gaunt.GauntTensorProduct``: since the dense
  SH <-> grid matrices replaced its FFTs, its cost grows as O(L^4) per pair (the paper's O(L^3)
  needs FFTs and sparse tables, which lose to the dense matrices up to the degree-12 limit of
  e3nn's SH), so expect a fitted Gaunt exponent near 4 at large batch, lower where fixed
  per-call overheads still dominate; ``benchmarks/oc20_gaunt_efficiency.py`` runs the paper's
  own three settings;
* ``cg-gaunt``  - e3nn's CG product on the same (l1 + l2 + l3 even) paths, same result;
* ``cg-full``   - e3nn's CG product on every SO(3) path (what the O(L^6) claim counts).

``--output truncated`` (default) keeps output degrees <= L, as inside a network layer; the path
count is still O(L^3) with O(L^3) work each, so O(L^6). ``--output full`` keeps every degree up
to 2L; e3nn's spherical harmonics stop at l = 12, so that mode runs to L = 6.
It also prints the dense multiply-add count of the CG contraction, sum over paths of
(2 l1 + 1)(2 l2 + 1)(2 l3 + 1), whose exponent is machine-independent. Times are the best of
``--repeats`` runs after a warm-up (process CPU time on CPU, wall time on GPU); fitted exponents
are least-squares slopes of log(time) on log(L) over ``--fit-from``..L_max (small L is dominated
by fixed per-call overheads).

    python benchmarks/oc20_tensor_product.py --batch 1024 --threads 1 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from replibench.families.oc20.models.gaunt import GauntTensorProduct, cg_tensor_product


def best_seconds(fn, repeats: int, clock) -> float:
    """Best of ``repeats`` timings after a warm-up (e3nn compiles its contraction on first use).

    On a shared machine the minimum is the least contaminated estimate; on CPU the default clock
    is process CPU time, which other jobs inflate less than wall time.
    """
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def cg_multiply_adds(lmax: int, lmax_out: int, gaunt_paths_only: bool) -> int:
    return sum(
        (2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1)
        for l1 in range(lmax + 1)
        for l2 in range(lmax + 1)
        for l3 in range(abs(l1 - l2), min(l1 + l2, lmax_out) + 1)
        if not gaunt_paths_only or (l1 + l2 + l3) % 2 == 0
    )


def fitted_exponent(degrees: list[int], values: list[float]) -> float:
    x = [math.log(d) for d in degrees]
    y = [math.log(v) for v in values]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lmax", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1024, help="coefficient-vector pairs per call")
    parser.add_argument("--output", choices=("full", "truncated"), default="truncated", help="degrees <= 2L or <= L")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fit-from", type=int, default=3, help="smallest L used in the exponent fit")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    generator = torch.Generator().manual_seed(0)

    rows = []
    print(
        f"batch {args.batch}, output degrees {'<= 2L' if args.output == 'full' else '<= L'}, {args.threads} thread(s), "
        f"device {device}, float32; {'wall' if device.type == 'cuda' else 'CPU'} ms, best of {args.repeats}"
    )
    print(f"{'L':>2} {'gaunt':>9} {'cg-gaunt':>9} {'cg-full':>9} {'full/gaunt':>10} {'CG mult-adds':>13}")
    for lmax in range(1, args.lmax + 1):
        k, lmax_out = (lmax + 1) ** 2, 2 * lmax if args.output == "full" else lmax
        x1 = torch.randn(args.batch, k, generator=generator).to(device)  # (B, K)
        x2 = torch.randn(args.batch, k, generator=generator).to(device)  # (B, K)
        gaunt = GauntTensorProduct(lmax, lmax, lmax_out).to(device)
        cg_gaunt, w_gaunt = cg_tensor_product(lmax, lmax, lmax_out, gaunt_paths_only=True)
        cg_full, w_full = cg_tensor_product(lmax, lmax, lmax_out, gaunt_paths_only=False)
        cg_gaunt, w_gaunt, cg_full, w_full = (
            cg_gaunt.to(device),
            w_gaunt.to(device),
            cg_full.to(device),
            w_full.to(device),
        )
        with torch.no_grad():
            row = {
                "L": lmax,
                "gaunt_ms": 1e3 * best_seconds(lambda: (gaunt(x1, x2), sync()), args.repeats, clock),
                "cg_gaunt_paths_ms": 1e3
                * best_seconds(lambda: (cg_gaunt(x1, x2, w_gaunt), sync()), args.repeats, clock),
                "cg_full_ms": 1e3 * best_seconds(lambda: (cg_full(x1, x2, w_full), sync()), args.repeats, clock),
                "cg_full_multiply_adds": cg_multiply_adds(lmax, lmax_out, gaunt_paths_only=False),
            }
        rows.append(row)
        print(
            f"{lmax:>2} {row['gaunt_ms']:>9.3f} {row['cg_gaunt_paths_ms']:>9.3f} {row['cg_full_ms']:>9.3f} "
            f"{row['cg_full_ms'] / row['gaunt_ms']:>10.2f} {row['cg_full_multiply_adds']:>13,}"
        )

    fit = [r for r in rows if r["L"] >= args.fit_from]
    degrees = [r["L"] for r in fit]
    exponents = {
        key: fitted_exponent(degrees, [r[key] for r in fit])
        for key in ("gaunt_ms", "cg_gaunt_paths_ms", "cg_full_ms", "cg_full_multiply_adds")
    }
    print(f"fitted exponents over L = {degrees[0]}..{degrees[-1]} (paper: Gaunt 3, full CG 6):")
    for key, value in exponents.items():
        print(f"  {key:<24} L^{value:.2f}")
    if args.json:
        from replibench.atomic import write_text_atomic

        payload = {"settings": vars(args), "rows": rows, "fitted_exponents": exponents}
        write_text_atomic(args.json, json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
