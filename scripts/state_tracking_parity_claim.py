"""CPU check of the state-tracking paper's parity claim with a short, plain training loop.

Grazzi et al. (ICLR 2025) Table: parity scaled accuracy Mamba [0,1] 0.000 vs [-1,1] 1.000,
DeltaNet [0,1] 0.017 vs [-1,1] 1.000. This trains the one-layer, d_model-16 variants of the
paper's repository configs (``parity_*_single_layer.yaml``) for a few hundred steps on sizes
3-40 and scores them on sizes 40-256. The generic trainer (replibench.train) is built
elsewhere; this loop only uses the task's own make_batch / training_loss / predict / score.

Usage: python scripts/state_tracking_parity_claim.py [--steps 400] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from replibench.datasets.state_tracking import StateTrackingConfig, preprocess_state_tracking
from replibench.runs import RunSpec
from replibench.tasks.state_tracking import StateTrackingTask

#: one-layer variants of the paper's repo configs; lr raised from 1e-3 for a CPU-sized budget
SMOKE_MODELS = {
    "linear-rnn": {"d_model": 16, "n_layers": 1},
    "deltanet": {"d_model": 16, "n_layers": 1, "n_heads": 4},
}


def train_and_score(data_dir: Path, model: str, negative: bool, *, steps: int, batch_size: int, lr: float,
                    warmup: int, seed: int) -> dict:
    torch.manual_seed(seed)
    task = StateTrackingTask()
    run = RunSpec("state-tracking", "parity", "state-tracking", model, "neg" if negative else "pos", seed)
    settings = {"model": {"name": model, "negative_eigenvalues": negative, **SMOKE_MODELS[model]},
                "eval_batch_size": 512}
    data = task.load(data_dir, run, settings)
    net = task.build_model(data, run, settings)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * (0.5 * (1 + np.cos(np.pi * min(s / steps, 1.0)))))
    generator = torch.Generator().manual_seed(seed)
    n = task.num_train_examples(data)
    start, order, cursor = time.time(), torch.randperm(n, generator=generator), 0
    for step in range(steps):
        if cursor + batch_size > n:
            order, cursor = torch.randperm(n, generator=generator), 0
        loss = task.training_loss(net, task.make_batch(data, "train", order[cursor:cursor + batch_size]))
        cursor += batch_size
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    scores = task.score(task.predict(net, data, run, settings), data, settings)
    return {"model": model, "eigenvalues": "[-1,1]" if negative else "[0,1]", "steps": steps,
            "final_train_loss": float(loss.detach()), "train_s": round(time.time() - start, 1), **scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=["linear-rnn", "deltanet"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = StateTrackingConfig(task="parity", num_train=args.steps * args.batch_size, num_val=64, num_test=512)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        preprocess_state_tracking(tmp, config=config, seed=args.seed)
        for model in args.models:
            for negative in (False, True):
                result = train_and_score(Path(tmp), model, negative, steps=args.steps, batch_size=args.batch_size,
                                         lr=args.lr, warmup=max(args.steps // 10, 1), seed=args.seed)
                print(json.dumps(result))
                results.append(result)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
