"""The Gaunt paper's efficiency comparison (its three notebooks) on this machine: Gaunt vs e3nn CG (and eSCN).

Runs :func:`replibench.families.oc20.efficiency.measure` for the three settings of Luo et al.
(ICLR 2024), forward and forward + backward, and prints per setting and L (number of degrees,
lmax = L - 1) our Gaunt time, the baseline's (e3nn; for convolution also eSCN; MACE is not
implemented), their ratio (below 1: Gaunt faster), the largest difference between the two
results beside the largest output, and the paper's times (their GPU, forward only, mean of 10 with the first
call; e3nn many-body there includes building the products). Here: best of ``--repeats`` after a
warm-up, process CPU time with one thread on CPU, synchronized wall time on CUDA; on CPU glibc is
told to keep freed memory (``steady_allocator``) so that page faults do not swamp the times.

Default degree ranges finish in about two minutes on one CPU core. e3nn's many-body chain grows
fastest (nu-fold products up to degree nu (L - 1), batch 32 x 128 channels); the defaults are
the paper's (L = 2..6 at nu = 3, nu = 4..7 at L = 2), which take about a minute of e3nn time on one
core here; ``--many-body-L`` and ``--correlations`` shorten or extend them. The two product settings
default to L = 2..12 (output degrees to 22, above e3nn's SH limit of 12: our tables take degrees
13..32 from a Legendre recursion in e3nn's convention, ``gaunt.MAX_SH_DEGREE``, so L <= 17); the
paper's feature-interaction range runs with ``--feature-L 2-14`` (building e3nn's products at
L = 13..14 takes 10-40 s each). ``--device cuda`` runs the same on a GPU.

    python benchmarks/oc20_gaunt_efficiency.py [--device cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

from replibench.families.oc20.efficiency import PAPER_SOURCE, EfficiencyRow, measure


def _degrees(text: str) -> list[int]:
    """'2-7' or '2,3,5' -> list of L."""
    if "-" in text:
        low, high = (int(part) for part in text.split("-"))
        return list(range(low, high + 1))
    return [int(part) for part in text.split(",")]


HEADER = (f"{'setting':<20} {'L':>2} {'lmax':>4} {'nu':>2} {'pass':<16} {'baseline':<8} {'gaunt ms':>9} "
          f"{'base ms':>9} {'ratio':>6} {'max|diff|':>9} {'max|out|':>9} {'paper gaunt':>11} {'paper base':>10} "
          f"{'paper ratio':>11}")


def _print(rows: list[EfficiencyRow]) -> None:
    for r in rows:
        paper_ratio = (f"{r.paper_gaunt_ms / r.paper_baseline_ms:11.4f}"
                       if r.paper_gaunt_ms and r.paper_baseline_ms else f"{'-':>11}")
        print(f"{r.setting:<20} {r.L:>2} {r.lmax:>4} {r.correlation or '-':>2} {r.pass_:<16} {r.baseline:<8} "
              f"{r.gaunt_ms:>9.3f} {r.baseline_ms:>9.3f} {r.ratio:>6.3f} {r.max_abs_difference:>9.1e} "
              f"{r.reference_max_abs:>9.2e} {r.paper_gaunt_ms if r.paper_gaunt_ms is not None else '-':>11} "
              f"{r.paper_baseline_ms if r.paper_baseline_ms is not None else '-':>10} {paper_ratio}", flush=True)


def steady_allocator() -> bool:
    """Keep freed CPU memory in this process (glibc ``mallopt``): no mmap per large tensor, no trim.

    With glibc's defaults a tensor of a few MB may be mmap-ed fresh and returned to the OS on every
    call, and the page faults of re-touching it cost more than the arithmetic: the many-body
    Gaunt product at L = 4 measured 0.9 ms or 5.4 ms (best of 11) depending on the allocator's
    state. Both sides of every comparison allocate, so this process-wide setting (the script owns
    its process; the library sets nothing) makes the times measure compute. False where not glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=["feature-interaction", "convolution", "many-body"])
    parser.add_argument("--feature-L", type=_degrees, default=_degrees("2-12"),
                        help="L range, e.g. 2-14 (the paper's; L <= 17: output degree 2L - 2 <= 32)")
    parser.add_argument("--convolution-L", type=_degrees, default=_degrees("2-12"), help="L range, paper: 2-12")
    parser.add_argument("--many-body-L", type=_degrees, default=_degrees("2-6"), help="L at correlation 3")
    parser.add_argument("--correlations", type=_degrees, default=_degrees("4-7"), help="nu at L = 2 (beyond 3)")
    parser.add_argument("--passes", nargs="+", choices=("forward", "backward"), default=["forward", "backward"],
                        help="backward = forward + backward")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--glibc-default-allocator", action="store_true",
                        help="leave glibc's malloc thresholds alone (see steady_allocator)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steady = False if args.glibc_default_allocator else steady_allocator()
    device_name = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
                   else f"cpu {platform.processor() or platform.machine()}, {args.threads} thread(s)")
    print(f"device {device_name}; {args.dtype}; best of {args.repeats} after a warm-up, "
          f"{'synchronized wall' if args.device.startswith('cuda') else 'process CPU'} time in ms; "
          f"steady allocator: {steady}; "
          f"paper: {PAPER_SOURCE}")
    print(HEADER)
    rows: list[EfficiencyRow] = []
    for backward in [p == "backward" for p in args.passes]:
        for setting in args.settings:
            if setting == "many-body":
                jobs = [(args.many_body_L, 3)] + [([2], nu) for nu in args.correlations]
            else:
                jobs = [(args.feature_L if setting == "feature-interaction" else args.convolution_L, None)]
            for degrees, correlation in jobs:
                for L in degrees:  # one L at a time: the table grows as it runs
                    new = measure(setting, [L], correlation=correlation, repeats=args.repeats, device=args.device,
                                  backward=backward, dtype=args.dtype)
                    _print(new)
                    rows += new
    if args.json:
        from replibench.atomic import write_text_atomic

        payload = {"device": device_name, "settings": vars(args), "steady_allocator": steady,
                   "paper_source": PAPER_SOURCE, "rows": [r.as_dict() for r in rows]}
        write_text_atomic(args.json, json.dumps(payload, indent=1, default=str))


if __name__ == "__main__":
    main()
