"""Zero-shot probabilistic forecasting on ETT, as uni2ts evaluates Moirai / Moirai-MoE ("ETT1/ETT2").

Protocol (uni2ts@8d2a08d ``eval_util/_pf_dataset.py``, loaders ``_load_etth`` / ``_load_ettm``, and
``generate_pf_dataset``; ``eval_util/data.get_gluonts_test_dataset``):

* the raw CSV values (no scaling), every one of the 7 columns a separate univariate series;
* prediction length 24 steps for the hourly files, 96 for the 15-minute ones; 7 rolling windows
  at the end of the file: window w (0 = earliest) forecasts rows [T − (7 − w)·H, T − (6 − w)·H) of
  each column from everything before them (the test set is ordered window by window, columns
  inside a window, as ``generate_pf_dataset`` writes it);
* the model sees the last ``context_length`` steps of that history (gluonts ``TestSplitSampler`` in
  ``MoiraiMoEForecast.create_predictor``), draws ``num_samples`` sample paths;
* scored with GluonTS's ``MeanWeightedSumQuantileLoss`` over quantiles 0.1…0.9 ("CRPS" in both
  Moirai papers) and ``MASE`` of the sample median, seasonal error over each item's whole history
  (``replibench.families.ett.metrics.probabilistic``).

Which ETT files the Moirai-MoE paper's "ETT1"/"ETT2" are, and its context length, are not stated
in the paper or the repository (its evaluation scripts are "coming soon"): the leaderboard compares
ETTh1/ETTh2 runs with them and labels that mapping an assumption (references/ett.yaml).

Predictions table: one row per (window, channel) item in test order: ``window`` int64,
``channel`` string, ``samples`` list<float32> of ``num_samples × prediction_length`` values
(sample-major), in the series' raw units.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replibench.errors import DataError
from replibench.families.task import Task, build_registered_model
from replibench.runs import RunSpec

#: uni2ts ``_pf_dataset.py``: prediction length per ETT frequency, and the rolling windows
PF_PREDICTION_LENGTH = {"h": 24, "15min": 96}
PF_WINDOWS = 7


@dataclass
class ZeroShotData:
    """The raw ETT series with the test items of the PF protocol."""

    dataset: str
    channels: tuple[str, ...]
    values: np.ndarray  # (T, C) float64, raw units
    freq: str  # "h" | "15min"
    prediction_length: int
    windows: int

    def item_count(self) -> int:
        return self.windows * len(self.channels)

    def item(self, index: int) -> tuple[int, int, int]:
        """(window, channel index, first forecast row) of test item ``index``."""
        window, channel = divmod(index, len(self.channels))
        start = len(self.values) - (self.windows - window) * self.prediction_length
        return window, channel, start

    def history(self, index: int) -> np.ndarray:
        _, channel, start = self.item(index)
        return self.values[:start, channel]

    def target(self, index: int) -> np.ndarray:
        _, channel, start = self.item(index)
        return self.values[start:start + self.prediction_length, channel]


def load_zero_shot(data_dir: Path, dataset: str, prediction_length: int, windows: int) -> ZeroShotData:
    """Read ``series.parquet`` (raw values, as preprocessing wrote them) for the PF protocol."""
    import pyarrow.parquet as pq

    from replibench.families.ett.datasets.ett import CHANNELS, dataset_by_name

    path = Path(data_dir) / "series.parquet"
    if not path.is_file():
        raise DataError(f"{path}: not found (run the preprocess step for {dataset} first)")
    table = pq.read_table(path)
    values = np.stack([table.column(name).to_numpy() for name in CHANNELS], axis=1).astype(np.float64)
    if not np.all(np.isfinite(values)):
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DataError(f"{path}: row {row} holds a missing or infinite value; the PF protocol needs a complete series")
    needed = windows * prediction_length + 1
    if len(values) < needed:
        raise DataError(f"{path}: {len(values)} rows, the protocol needs at least {needed}")
    spec = dataset_by_name(dataset)
    freq = "h" if spec.minutes_per_step == 60 else "15min"
    return ZeroShotData(dataset=spec.name, channels=CHANNELS, values=values, freq=freq,
                        prediction_length=prediction_length, windows=windows)


def past_window(history: np.ndarray, context_length: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``context_length`` values, left-padded with zeros and flagged (``is_pad``) when the
    history is shorter — gluonts ``TFTInstanceSplitter`` with ``TestSplitSampler``."""
    values = np.zeros(context_length, dtype=np.float32)
    is_pad = np.ones(context_length, dtype=bool)
    kept = history[-context_length:]
    values[context_length - len(kept):] = kept
    is_pad[context_length - len(kept):] = False
    return values, is_pad


def tiny_weights_folder(model, seed: int) -> tempfile.TemporaryDirectory:
    """A tiny randomly initialised checkpoint in the released format (config.json +
    model.safetensors) in a temporary folder: what the smoke preset loads instead of the hub's
    weights, so it exercises the same loading path. Weights ~ N(0, 0.02²), centroids ~ N(0, 1)."""
    import torch

    from replibench.families.ett.models.moirai_moe import write_checkpoint

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
        for name in ("q_norm", "k_norm", "norm1", "norm2"):
            for module_name, module in model.named_modules():
                if module_name.endswith(name):
                    module.weight.fill_(1.0)
        model.encoder.norm.weight.fill_(1.0)
        model.encoder.centroid.copy_(torch.randn(model.encoder.centroid.shape, generator=generator,
                                                 dtype=torch.float64))
    folder = tempfile.TemporaryDirectory(prefix="moirai-moe-tiny-")
    write_checkpoint(model, Path(folder.name))
    return folder


class ZeroShotTask(Task):
    name = "zeroshot"

    def load(self, data_dir: Path, run: RunSpec, settings: dict[str, Any]) -> ZeroShotData:
        task = settings["task"]
        return load_zero_shot(data_dir, run.dataset, task["prediction_length"], task["windows"])

    def build_model(self, data: ZeroShotData, run: RunSpec, settings: dict[str, Any]):
        """The model with its weights: the released files (paper) or a tiny random checkpoint written
        and read back in the released format (smoke). Frozen: zero-shot means nothing is fitted."""
        from replibench.families.ett.models.moirai_moe import load_released_weights

        task = settings["task"]
        model = build_registered_model(run.model, settings["model"], context_length=task["context_length"],
                                       prediction_length=task["prediction_length"], patch_size=task["patch_size"],
                                       num_samples=task["num_samples"], target_dim=1)
        weights = task["weights"]
        if weights["source"] == "released":
            load_released_weights(model, Path(weights["config"]), Path(weights["weights"]))
        else:
            folder = tiny_weights_folder(model, int(weights["seed"]))
            with folder:
                load_released_weights(model, Path(folder.name) / "config.json", Path(folder.name) / "model.safetensors")
        model.requires_grad_(False)
        return model

    def num_train_examples(self, data: ZeroShotData) -> int:
        return data.item_count()

    def make_batch(self, data: ZeroShotData, split: str, indices):
        raise RuntimeError("zeroshot: the model is not trained (released weights, frozen)")

    def training_loss(self, model, batch):
        raise RuntimeError("zeroshot: the model is not trained (released weights, frozen)")

    def validation_loss(self, model, data: ZeroShotData, settings: dict[str, Any]) -> float | None:
        """None: zero-shot evaluation has no validation split and nothing to select."""
        return None

    def sample_paths(self, model, data: ZeroShotData, run: RunSpec, settings: dict[str, Any]) -> np.ndarray:
        """(N items, S samples, H steps) float32 sample paths of every test item, in test order,
        drawn in batches of ``batch_size`` items after seeding with the run's seed."""
        import torch

        task = settings["task"]
        device = next(model.parameters()).device
        torch.manual_seed(run.seed)
        model.eval()
        out = []
        with torch.no_grad():
            for first in range(0, data.item_count(), task["batch_size"]):
                items = range(first, min(first + task["batch_size"], data.item_count()))
                windows = [past_window(data.history(i), task["context_length"]) for i in items]
                past = torch.from_numpy(np.stack([w[0] for w in windows]))[:, :, None].to(device)  # (B, L, 1)
                is_pad = torch.from_numpy(np.stack([w[1] for w in windows])).to(device)  # (B, L)
                observed = ~is_pad[:, :, None]  # the splitter pads the observed indicator with 0 too
                out.append(model.forecast(past, observed, is_pad).float().cpu().numpy())  # (B, S, H)
        return np.concatenate(out, axis=0)

    def predict(self, model, data: ZeroShotData, run: RunSpec, settings: dict[str, Any]):
        import pyarrow as pa

        paths = self.sample_paths(model, data, run, settings)
        n, samples, horizon = paths.shape
        windows = [data.item(i)[0] for i in range(n)]
        channels = [data.channels[data.item(i)[1]] for i in range(n)]
        flat = pa.array(paths.reshape(-1).astype(np.float32))
        return pa.table({"window": pa.array(windows, pa.int64()), "channel": pa.array(channels, pa.string()),
                         "samples": pa.FixedSizeListArray.from_arrays(flat, samples * horizon)
                         .cast(pa.list_(pa.float32()))})

    def score(self, predictions, data: ZeroShotData, settings: dict[str, Any]) -> dict[str, float]:
        from replibench.families.ett.metrics.probabilistic import SEASONALITY, mase, mean_weighted_sum_quantile_loss

        task = settings["task"]
        n, horizon, samples = data.item_count(), data.prediction_length, task["num_samples"]
        if predictions.num_rows != n:
            raise DataError(f"predictions: {predictions.num_rows} rows, expected one per test item ({n})")
        expected = [(data.item(i)[0], data.channels[data.item(i)[1]]) for i in range(n)]
        found = list(zip(predictions.column("window").to_pylist(), predictions.column("channel").to_pylist()))
        for row, (want, got) in enumerate(zip(expected, found)):
            if want != got:
                raise DataError(f"predictions: row {row} is (window, channel) {got}, expected {want} (test order)")
        column = predictions.column("samples").combine_chunks()
        lengths = column.value_lengths().to_numpy(zero_copy_only=False)
        if np.any(lengths != samples * horizon):
            row = int(np.flatnonzero(lengths != samples * horizon)[0])
            raise DataError(f"predictions: row {row}, column samples: {int(lengths[row])} values, "
                            f"expected {samples} samples × {horizon} steps")
        paths = column.flatten().to_numpy(zero_copy_only=False).astype(np.float64).reshape(n, samples, horizon)
        targets = np.stack([data.target(i) for i in range(n)])
        histories = [data.history(i) for i in range(n)]
        return {"crps": mean_weighted_sum_quantile_loss(paths, targets),
                "mase": mase(paths, targets, histories, SEASONALITY[data.freq])}

    def metric_info(self) -> dict[str, Any]:
        from replibench.families.ett.metrics.probabilistic import METRICS

        return METRICS

    def protocol(self, data: ZeroShotData, settings: dict[str, Any]) -> dict[str, Any]:
        task = settings["task"]
        weights = task["weights"]
        return {
            "source": "uni2ts eval_util/_pf_dataset.py (Moirai / Moirai-MoE probabilistic forecasting)",
            "series": "each of the 7 columns a univariate series, raw units (no scaling)",
            "prediction_length": data.prediction_length,
            "rolling_windows": data.windows,
            "test_items": data.item_count(),
            "context_length": task["context_length"],
            "patch_size": task["patch_size"],
            "num_samples": task["num_samples"],
            "batch_size": task["batch_size"],
            "seasonality": {"h": 24, "15min": 96}[data.freq],
            "weights": ("released: " + Path(weights["weights"]).name if weights["source"] == "released"
                        else f"tiny random checkpoint in the released format (seed {weights['seed']}): "
                             "checks the pipeline, not the paper"),
        }


ZEROSHOT = ZeroShotTask()
