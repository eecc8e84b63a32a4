"""A toy regression run for the data-parallel tests; run as a torchrun worker or imported.

``python ddp_toy.py OUT_DIR [--signal-at-step K --signal-rank R]`` trains the toy task in the
process group torchrun set up (gloo on CPU) and rank 0 writes ``OUT_DIR/summary.json`` and
``OUT_DIR/weights.pt``; ``--micro-batches K`` splits each global batch into K parts over the ranks. With ``--signal-at-step`` rank R sends itself SIGTERM at its K-th loss
(a preemption that only one rank sees).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import torch

from replibench.families.ett.family import FAMILY as ETT_FAMILY
from replibench.families.task import Task

RUN = ETT_FAMILY.make_run("etth1", "forecast", "dlinear", {"horizon": 96}, 11, "smoke")
#: 193 = 12 × 16 + 1 examples: with drop_last off the last global batch holds one example, so one
#: of two ranks gets an empty shard; grad_clip checks that clipping sees the summed gradient
SETTINGS = {"model": {"width": 16},
            "train": {"epochs": 3, "batch_size": 16, "drop_last": False, "lr": 0.01, "lr_schedule": "type1",
                      "patience": None, "grad_clip": 0.5, "checkpoint_every": 7}}
NUM_TRAIN = 193


class ToyNet(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.Tanh(), torch.nn.Linear(width, 1))

    def forward(self, x):  # (B, 3) → (B,)
        return self.layers(x).squeeze(-1)


class ToyTask(Task):
    """y = x · w + noise; the loss is a mean over examples (what data parallelism reproduces exactly)."""

    name = "toy"

    def __init__(self, signal_at_step: int | None = None) -> None:
        self.signal_at_step = signal_at_step
        self.calls = 0

    def load(self, data_dir, run, settings):
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(NUM_TRAIN + 64, 3, generator=generator)
        y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(NUM_TRAIN + 64, generator=generator)
        return {"train": (x[:NUM_TRAIN], y[:NUM_TRAIN]), "val": (x[NUM_TRAIN:], y[NUM_TRAIN:])}

    def build_model(self, data, run, settings):
        return ToyNet(settings["model"]["width"])

    def num_train_examples(self, data):
        return NUM_TRAIN

    def make_batch(self, data, split, indices):
        x, y = data[split]
        return x[indices], y[indices]

    def training_loss(self, model, batch):
        self.calls += 1
        if self.signal_at_step is not None and self.calls == self.signal_at_step:
            os.kill(os.getpid(), signal.SIGTERM)
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)

    def validation_loss(self, model, data, settings):
        x, y = data["val"]
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(model(x), y))

    def predict(self, model, data, run, settings):
        raise NotImplementedError

    def score(self, predictions, data, settings):
        raise NotImplementedError


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
