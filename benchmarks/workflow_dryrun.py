"""Wall time of `snakemake -n` (the whole plan, paper preset) — the issue's goal is well under 5 s.

    python benchmarks/workflow_dryrun.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", "-n", "-q", "--config", "preset=paper"], cwd=ROOT,
                       check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    print(f"snakemake -n (paper preset): median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s over {args.repeats} runs")


if __name__ == "__main__":
    main()
