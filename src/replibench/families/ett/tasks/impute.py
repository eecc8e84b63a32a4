"""Imputation on ETT, the TimesNet paper's protocol (TSLib ``imputation``; paper Table 4).

Windows of 96 steps (no horizon). Each element (window × step × channel) is masked independently
with probability ``mask_ratio`` ∈ {0.125, 0.25, 0.375, 0.5}: masked inputs are set to 0 and the
model gets the mask. Loss and metrics (MSE/MAE, scaled space) use **only the masked entries**.

TSLib re-draws test masks from the training RNG state, so its test score depends on everything
that ran before. We draw the validation and test masks from generators seeded by the run seed,
all windows at once, so a score depends neither on training nor on the evaluation batch size.

Predictions table: one row per test window in order; ``window`` int64; per channel a
``list<float32>`` of the 96 reconstructed values and ``observed_<channel>`` ``list<bool>``
(True where the value was given to the model). Only unobserved entries are scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replibench.errors import DataError
from replibench.runs import RunSpec
from replibench.families.task import Task, build_registered_model
from replibench.families.ett.tasks.timeseries import SeriesData, load_series, sequential_batches

_SPLIT_SEED_OFFSET = {"val": 1, "test": 2}


def draw_observation_mask(shape: tuple[int, ...], mask_ratio: float, generator=None):
    """1 where observed, 0 where masked: uniform draws ≤ ``mask_ratio`` are masked (TSLib's rule)."""
    import torch

    draws = torch.rand(shape, generator=generator)
    return (draws > mask_ratio).float()


@dataclass
class ImputeData:
    series: SeriesData
    mask_ratio: float
    eval_masks: dict[str, "torch.Tensor"]  # split → (N, L, C) fixed evaluation masks  # noqa: F821


class ImputeTask(Task):
    name = "impute"

    def load(self, data_dir: Path, run: RunSpec, settings: dict[str, Any]) -> ImputeData:
        import torch

        task = settings["task"]
        series = load_series(data_dir, dataset=run.dataset, seq_len=task["seq_len"], pred_len=0)
        masks = {}
        for split, offset in _SPLIT_SEED_OFFSET.items():
            generator = torch.Generator().manual_seed(int(task["mask_seed"]) * 10 + offset)
            shape = (series.window_count(split), series.seq_len, len(series.channels))
            masks[split] = draw_observation_mask(shape, task["mask_ratio"], generator)
        return ImputeData(series=series, mask_ratio=task["mask_ratio"], eval_masks=masks)

    def build_model(self, data: ImputeData, run: RunSpec, settings: dict[str, Any]):
        return build_registered_model(run.model, settings["model"], task="impute", seq_len=data.series.seq_len,
                                      pred_len=0, enc_in=len(data.series.channels))

    def num_train_examples(self, data: ImputeData) -> int:
        return data.series.window_count("train")

    def make_batch(self, data: ImputeData, split: str, indices):
        """(x, x_mark, mask): training masks are fresh draws from the global (trainer-seeded) RNG,
        validation/test masks are the fixed evaluation masks."""
        x, x_mark, _ = data.series.gather(split, indices)
        if split == "train":
            mask = draw_observation_mask(tuple(x.shape), data.mask_ratio)
        else:
            mask = data.eval_masks[split][indices]
        return x, x_mark, mask

    def training_loss(self, model, batch):
        import torch

        x, x_mark, mask = batch
        output = model(x.masked_fill(mask == 0, 0.0), x_mark, mask)
        hidden = mask == 0
        return torch.nn.functional.mse_loss(output[hidden], x[hidden])

    def reconstruct(self, model, data: ImputeData, split: str, batch_size: int) -> np.ndarray:
        import torch

        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        model.eval()
        outputs = []
        with torch.no_grad():
            for indices in sequential_batches(data.series.window_count(split), batch_size):
                x, x_mark, mask = self.make_batch(data, split, indices)
                out = model(x.masked_fill(mask == 0, 0.0).to(device), x_mark.to(device), mask.to(device))
                outputs.append(out.float().cpu().numpy())
        return np.concatenate(outputs, axis=0)  # (N, L, C)

    def _truth(self, data: ImputeData, split: str) -> np.ndarray:
        import torch

        x, _, _ = data.series.gather(split, torch.arange(data.series.window_count(split)))
        return x.numpy()

    def validation_loss(self, model, data: ImputeData, settings: dict[str, Any]) -> float:
        from replibench.families.ett.metrics.forecast import mse

        output = self.reconstruct(model, data, "val", settings["task"]["val_batch_size"])
        hidden = data.eval_masks["val"].numpy() == 0
        return mse(prediction=output, target=self._truth(data, "val"), mask=hidden)

    def predict(self, model, data: ImputeData, run: RunSpec, settings: dict[str, Any]):
        import pyarrow as pa

        output = self.reconstruct(model, data, "test", settings["task"]["eval_batch_size"])
        observed = data.eval_masks["test"].numpy() > 0
        n, length, _ = output.shape
        columns = {"window": pa.array(np.arange(n, dtype=np.int64))}
        for index, channel in enumerate(data.series.channels):
            values = pa.array(np.ascontiguousarray(output[:, :, index]).reshape(-1))
            flags = pa.array(np.ascontiguousarray(observed[:, :, index]).reshape(-1))
            columns[channel] = pa.FixedSizeListArray.from_arrays(values, length).cast(pa.list_(pa.float32()))
            columns[f"observed_{channel}"] = pa.FixedSizeListArray.from_arrays(flags, length).cast(pa.list_(pa.bool_()))
        return pa.table(columns)

    def score(self, predictions, data: ImputeData, settings: dict[str, Any]) -> dict[str, float]:
        from replibench.families.ett.metrics.forecast import mae, mse

        n = data.series.window_count("test")
        length, channels = data.series.seq_len, data.series.channels
        if predictions.num_rows != n:
            raise DataError(f"impute predictions: {predictions.num_rows} rows, expected {n}")
        output = np.empty((n, length, len(channels)), dtype=np.float32)
        observed = np.empty((n, length, len(channels)), dtype=bool)
        for index, channel in enumerate(channels):
            output[:, :, index] = predictions.column(channel).combine_chunks().flatten().to_numpy().reshape(n, length)
            flags = predictions.column(f"observed_{channel}").combine_chunks().flatten()
            observed[:, :, index] = flags.to_numpy(zero_copy_only=False).reshape(n, length)
        truth = self._truth(data, "test")
        return {"mse": mse(prediction=output, target=truth, mask=~observed),
                "mae": mae(prediction=output, target=truth, mask=~observed)}

    def metric_info(self) -> dict[str, Any]:
        from replibench.families.ett.metrics.forecast import METRICS

        return METRICS

    def protocol(self, data: ImputeData, settings: dict[str, Any]) -> dict[str, Any]:
        return {
            "seq_len": data.series.seq_len,
            "mask_ratio": data.mask_ratio,
            "masked_test_points": int((data.eval_masks["test"] == 0).sum()),
            "test_windows": data.series.window_count("test"),
            "test_batch_size": settings["task"]["eval_batch_size"],
            "val_batch_size": settings["task"]["val_batch_size"],
            "test_drop_last": False,
            "scaled": True,
            "eval_masks": "drawn per split from a generator seeded by the run seed",
        }


IMPUTE = ImputeTask()
