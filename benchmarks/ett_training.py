"""Speed of ETT training on this machine: a TimesNet training step and a DLinear epoch on ETTh1.

    python benchmarks/ett_training.py [--data data/parquet/ett/etth1] [--threads 1] [--steps 3]

Prints samples/s. Needs the preprocessed ETTh1 folder (`snakemake data/parquet/ett/etth1`), or
builds it in a temporary folder from ../shared/data/ett/ETTh1.csv.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from replibench.families.ett.datasets.ett import preprocess
from replibench.families.ett.family import paper_settings
from replibench.families.ett.family import FAMILY as ETT_FAMILY
from replibench.families.ett.tasks.forecast import FORECAST
from replibench.train import epoch_order


def data_dir(path: Path | None) -> Path:
    if path is not None and (path / "series.parquet").exists():
        return path
    out = Path(tempfile.mkdtemp()) / "etth1"
    preprocess(Path(__file__).resolve().parents[2] / "shared" / "data" / "ett" / "ETTh1.csv", out, dataset="etth1")
    return out


def time_steps(model_name: str, folder: Path, steps: int | None) -> tuple[int, float]:
    run = ETT_FAMILY.make_run("etth1", "forecast", model_name, {"horizon": 96}, 2021, "paper")
    settings = paper_settings(run)
    data = FORECAST.load(folder, run, settings)
    torch.manual_seed(0)
    model = FORECAST.build_model(data, run, settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batch_size = settings["train"]["batch_size"]
    order = epoch_order(FORECAST.num_train_examples(data), seed=0, epoch=0)
    batches = len(order) // batch_size if steps is None else steps
    started = time.perf_counter()
    for index in range(batches):
        batch = FORECAST.make_batch(data, "train", order[index * batch_size:(index + 1) * batch_size])
        optimizer.zero_grad()
        FORECAST.training_loss(model, batch).backward()
        optimizer.step()
    return batches * batch_size, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/parquet/ett/etth1"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="TimesNet steps to time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = data_dir(args.data)
    samples, seconds = time_steps("dlinear", folder, None)
    print(f"DLinear  ETTh1/96, 1 epoch ({samples} samples): {seconds:.2f} s, {samples / seconds:,.0f} samples/s")
    samples, seconds = time_steps("timesnet", folder, args.steps)
    print(f"TimesNet ETTh1/96, {args.steps} steps of 32: {seconds / args.steps:.2f} s/step, "
          f"{samples / seconds:,.1f} samples/s")


if __name__ == "__main__":
    main()
