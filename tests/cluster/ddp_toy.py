"""A toy regression run for the data-parallel tests; run as a torchrun worker or imported.

``python ddp_toy.py OUT_DIR [--signal-at-step K --signal-rank R]`` trains the toy task in the
process group torchrun set up (gloo on CPU) and rank 0 writes ``OUT_DIR/summary.json`` and
``OUT_DIR/weights.pt``; ``--micro-batches K`` splits each global batch into K parts over the
ranks. With ``--signal-at-step`` rank R sends itself SIGTERM at its K-th loss (a preemption that
only one rank sees). The task is ``tests/toy_regression.py``'s (``tests/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from replibench.families.ett.family import FAMILY as ETT_FAMILY
from toy_regression import ToyRegressionTask

RUN = ETT_FAMILY.make_run("etth1", "forecast", "dlinear", {"horizon": 96}, 11, "smoke")
#: 193 = 12 × 16 + 1 examples: with drop_last off the last global batch holds one example, so one
#: of two ranks gets an empty shard; grad_clip checks that clipping sees the summed gradient
SETTINGS = {"model": {"width": 16, "activation": "tanh"},
            "train": {"epochs": 3, "batch_size": 16, "drop_last": False, "lr": 0.01, "lr_schedule": "type1",
                      "patience": None, "grad_clip": 0.5, "checkpoint_every": 7}}
NUM_TRAIN = 193


def ToyTask(signal_at_step: int | None = None) -> ToyRegressionTask:
    """The shared toy task with NUM_TRAIN training and 64 validation examples."""
    return ToyRegressionTask(num_train=NUM_TRAIN, num_val=64, signal_at_step=signal_at_step)


def main() -> int:
    import torch.distributed as dist

    from replibench.distributed import init_process_group
    from replibench.train import train

    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--signal-at-step", type=int)
    parser.add_argument("--signal-rank", type=int, default=0)
    parser.add_argument("--micro-batches", type=int, default=1, help="parts of each global batch, over all ranks")
    args = parser.parse_args()
    settings = {**SETTINGS, "train": {**SETTINGS["train"], "micro_batches": args.micro_batches}}
    torch.set_num_threads(1)
    world = init_process_group(int(os.environ["WORLD_SIZE"]))
    task = ToyTask(args.signal_at_step if world.rank == args.signal_rank else None)
    try:
        model, summary = train(task, task.load(None, RUN, settings), RUN, settings, last_checkpoint=args.out / "last.pt",
                               progress=False)
    finally:
        dist.destroy_process_group()
    if world.is_main:
        torch.save(model.state_dict(), args.out / "weights.pt")
        (args.out / "summary.json").write_text(json.dumps({**summary, "loss_calls_rank0": task.calls}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
