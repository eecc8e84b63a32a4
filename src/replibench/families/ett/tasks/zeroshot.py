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


def read_channel_values(data_dir: Path, dataset: str) -> tuple[Path, np.ndarray]:
    """``series.parquet`` of ``dataset`` (raw values, as preprocessing wrote them) and its 7 channels
    as a (T, C) float64 array."""
    import pyarrow.parquet as pq

    from replibench.families.ett.datasets.ett import CHANNELS

    path = Path(data_dir) / "series.parquet"
    if not path.is_file():
        raise DataError(f"{path}: not found (run the preprocess step for {dataset} first)")
    table = pq.read_table(path)
    return path, np.stack([table.column(name).to_numpy() for name in CHANNELS], axis=1).astype(np.float64)


def load_zero_shot(data_dir: Path, dataset: str, prediction_length: int, windows: int) -> ZeroShotData:
    """The raw series for the PF protocol; a missing or infinite value is refused (uni2ts would mask it)."""
    from replibench.families.ett.datasets.ett import CHANNELS, dataset_by_name

    path, values = read_channel_values(data_dir, dataset)
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

    from replibench.families.ett.models.moirai_moe import RMSNorm, write_checkpoint

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
        for module in model.modules():  # the norms start at 1, as upstream initialises them
            if isinstance(module, RMSNorm):
                module.weight.fill_(1.0)
        model.encoder.centroid.copy_(torch.randn(model.encoder.centroid.shape, generator=generator,
                                                 dtype=torch.float64))
    folder = tempfile.TemporaryDirectory(prefix="moirai-moe-tiny-")
    write_checkpoint(model, Path(folder.name))
    return folder


def weights_description(weights: dict[str, Any]) -> str:
    """What a row's weights were, for its protocol record: the released file, or the smoke checkpoint."""
    if weights["source"] == "released":
        return "released: " + Path(weights["weights"]).name
    return f"tiny random checkpoint in the released format (seed {weights['seed']}): checks the pipeline, not the paper"


def unit_seed(run_seed: int, unit: int) -> int:
    """The torch seed of prediction unit ``unit``: a function of the run's seed and the unit alone."""
    return (run_seed * 1_000_003 + unit) % (2**63 - 1)


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

    def sample_paths(self, model, data: ZeroShotData, run: RunSpec, settings: dict[str, Any],
                     units: range) -> np.ndarray:
        """(N items, S samples, H steps) float32 sample paths of the items of ``units`` (unit u = items
        [u·batch, (u+1)·batch), one forward), in test order. Each unit reseeds torch's generator from
        the run's seed and its index (:func:`unit_seed`), so any split into shards draws the same."""
        import torch

        task = settings["task"]
        device = next(model.parameters()).device
        model.eval()
        out = []
        with torch.no_grad():
            for unit in units:
                first = unit * task["batch_size"]
                items = range(first, min(first + task["batch_size"], data.item_count()))
                windows = [past_window(data.history(i), task["context_length"]) for i in items]
                past = torch.from_numpy(np.stack([w[0] for w in windows]))[:, :, None].to(device)  # (B, L, 1)
                is_pad = torch.from_numpy(np.stack([w[1] for w in windows])).to(device)  # (B, L)
                observed = ~is_pad[:, :, None]  # the splitter pads the observed indicator with 0 too
                torch.manual_seed(unit_seed(run.seed, unit))
                out.append(model.forecast(past, observed, is_pad).float().cpu().numpy())  # (B, S, H)
        return np.concatenate(out, axis=0)

    def prediction_units(self, data: ZeroShotData, settings: dict[str, Any]) -> int:
        return -(-data.item_count() // settings["task"]["batch_size"])

    def predict_units(self, model, data: ZeroShotData, run: RunSpec, settings: dict[str, Any], units: range):
        import pyarrow as pa

        paths = self.sample_paths(model, data, run, settings, units)
        n, samples, horizon = paths.shape
        first = units.start * settings["task"]["batch_size"]
        indices = range(first, first + n)
        windows = [data.item(i)[0] for i in indices]
        channels = [data.channels[data.item(i)[1]] for i in indices]
        flat = pa.array(paths.reshape(-1).astype(np.float32))
        return pa.table({"window": pa.array(windows, pa.int64()), "channel": pa.array(channels, pa.string()),
                         "samples": pa.FixedSizeListArray.from_arrays(flat, samples * horizon)
                         .cast(pa.list_(pa.float32()))})

    def predict(self, model, data: ZeroShotData, run: RunSpec, settings: dict[str, Any]):
        return self.predict_units(model, data, run, settings, range(self.prediction_units(data, settings)))

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
        from replibench.families.ett.metrics.probabilistic import SEASONALITY

        task = settings["task"]
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
            "seasonality": SEASONALITY[data.freq],
            "weights": weights_description(task["weights"]),
        }


ZEROSHOT = ZeroShotTask()


# ------------------------------------------------------------------------------------ LSF protocol

#: uni2ts project/moirai-1/eval/lsf_*.sh: features mode per ETT file (M: the 7 columns as one
#: multivariate series, S: each column alone); the same in the small, base and large scripts
LSF_MODE = {"etth1": "M", "etth2": "M", "ettm1": "S", "ettm2": "M"}


def lsf_split_rows(dataset: str) -> tuple[int, int, int]:
    """Train, val and test rows of ``LSFDataset._load_etth/_load_ettm``: 8640/2880/2880 (×4 every 15 min)."""
    from replibench.families.ett.datasets.ett import dataset_by_name

    factor = 60 // dataset_by_name(dataset).minutes_per_step
    return 8640 * factor, 2880 * factor, 2880 * factor


def lsf_window_count(dataset: str, prediction_length: int) -> int:
    """Test windows of the LSF protocol (distance 1): every start whose horizon fits in the test rows."""
    return lsf_split_rows(dataset)[2] - prediction_length + 1


@dataclass
class LsfData:
    """ETT scaled as uni2ts ``LSFDataset`` does, with the rolling test windows of ``get_lsf_test_dataset``."""

    dataset: str
    channels: tuple[str, ...]
    scaled: np.ndarray  # (rows up to the test end, C) float64
    test_start: int  # first forecast row of window 0
    prediction_length: int
    mode: str  # "S" | "M"
    max_windows: int | None  # smoke only: the first windows; None = all

    def window_count(self) -> int:
        count = lsf_window_count(self.dataset, self.prediction_length)
        return count if self.max_windows is None else min(count, self.max_windows)

    def items(self) -> list[tuple[int, int | None]]:
        """(window, channel or None for all) in gluonts order: per item (a column in S mode), its windows."""
        if self.mode == "M":
            return [(w, None) for w in range(self.window_count())]
        return [(w, c) for c in range(len(self.channels)) for w in range(self.window_count())]

    def target(self, window: int) -> np.ndarray:
        start = self.test_start + window
        return self.scaled[start:start + self.prediction_length]  # (H, C)


def load_lsf(data_dir: Path, dataset: str, prediction_length: int, max_windows: int | None) -> LsfData:
    """``LSFDataset._load_etth/_load_ettm``: 8640/2880/2880 rows (×4 for 15-minute files), every column
    z-scored with the train rows' mean and pandas ``std`` (ddof 1), test = the third block."""
    from replibench.families.ett.datasets.ett import CHANNELS, dataset_by_name

    path, values = read_channel_values(data_dir, dataset)
    spec = dataset_by_name(dataset)
    train, val, test = lsf_split_rows(dataset)
    if len(values) < train + val + test:
        raise DataError(f"{path}: {len(values)} rows, the LSF protocol needs {train + val + test}")
    mean, std = values[:train].mean(axis=0), values[:train].std(axis=0, ddof=1)
    scaled = (values[:train + val + test] - mean) / std
    return LsfData(dataset=spec.name, channels=CHANNELS, scaled=scaled, test_start=train + val,
                   prediction_length=prediction_length, mode=LSF_MODE[spec.name], max_windows=max_windows)


class ZeroShotLsfTask(ZeroShotTask):
    """Moirai's long-sequence zero-shot protocol (uni2ts ``get_lsf_test_dataset``, Moirai paper's LSF
    table), run with Moirai-MoE as the issue asks: every test window (distance 1) of the scaled
    series, M or S mode per file as ``lsf_*.sh``, ``context_length`` 5000 as those scripts; MSE of the
    sample mean and MAE of the sample median (GluonTS ``MSE()``, ``MAE()`` defaults) over every
    window, step and channel. Predictions table: (window, channel) rows with the ``mean`` and
    ``median`` forecasts (list<float32>[H], scaled units) — the sample paths themselves would take
    gigabytes at H = 720."""

    name = "zeroshot-lsf"

    def load(self, data_dir: Path, run: RunSpec, settings: dict[str, Any]) -> LsfData:
        task = settings["task"]
        return load_lsf(data_dir, run.dataset, task["prediction_length"], task.get("max_windows"))

    def num_train_examples(self, data: LsfData) -> int:
        return len(data.items())

    def prediction_units(self, data: LsfData, settings: dict[str, Any]) -> int:
        return -(-len(data.items()) // settings["task"]["batch_size"])

    def predict(self, model, data: LsfData, run: RunSpec, settings: dict[str, Any]):
        return self.predict_units(model, data, run, settings, range(self.prediction_units(data, settings)))

    def predict_units(self, model, data: LsfData, run: RunSpec, settings: dict[str, Any], units: range):
        import pyarrow as pa
        import torch

        from replibench.families.ett.metrics.probabilistic import sample_quantiles

        task = settings["task"]
        device = next(model.parameters()).device
        model.eval()
        all_items = data.items()
        items = all_items[units.start * task["batch_size"]:units.stop * task["batch_size"]]
        means, medians = [], []
        with torch.no_grad():
            for unit in units:
                batch = all_items[unit * task["batch_size"]:(unit + 1) * task["batch_size"]]
                pasts = []
                for window, channel in batch:
                    history = data.scaled[:data.test_start + window]
                    history = history if channel is None else history[:, channel:channel + 1]
                    pasts.append(history[-task["context_length"]:])
                past = torch.from_numpy(np.stack(pasts).astype(np.float32)).to(device)  # (B, L, D)
                is_pad = torch.zeros(past.shape[:2], dtype=torch.bool, device=device)
                torch.manual_seed(unit_seed(run.seed, unit))
                paths = model.forecast(past, torch.ones_like(past, dtype=torch.bool), is_pad).float().cpu().numpy()
                paths = paths.reshape(paths.shape[:3] + (-1,))  # (B, S, H, D)
                means.append(paths.mean(axis=1))
                median = sample_quantiles(paths.transpose(0, 3, 1, 2), (0.5,))[0]  # (B, D, H)
                medians.append(median.transpose(0, 2, 1))
        mean, median = np.concatenate(means), np.concatenate(medians)  # (N, H, D)
        rows = {"window": [], "channel": [], "mean": [], "median": []}
        for (window, channel), m, q in zip(items, mean, median):
            for d in range(m.shape[-1]):
                rows["window"].append(window)
                rows["channel"].append(data.channels[channel if channel is not None else d])
                rows["mean"].append(m[:, d].astype(np.float32))
                rows["median"].append(q[:, d].astype(np.float32))
        return pa.table({"window": pa.array(rows["window"], pa.int64()), "channel": pa.array(rows["channel"]),
                         "mean": pa.array(rows["mean"], pa.list_(pa.float32())),
                         "median": pa.array(rows["median"], pa.list_(pa.float32()))})

    def score(self, predictions, data: LsfData, settings: dict[str, Any]) -> dict[str, float]:
        windows, horizon = data.window_count(), data.prediction_length
        expected = windows * len(data.channels)
        if predictions.num_rows != expected:
            raise DataError(f"predictions: {predictions.num_rows} rows, expected {expected} (window × channel)")
        index = {name: i for i, name in enumerate(data.channels)}
        pairs = list(zip(predictions.column("window").to_pylist(), predictions.column("channel").to_pylist()))
        wanted = {(w, c) for w in range(windows) for c in data.channels}
        if set(pairs) != wanted or len(set(pairs)) != len(pairs):
            missing = sorted(wanted - set(pairs))[:3]
            raise DataError(f"predictions: (window, channel) rows are not each test window × channel once; "
                            f"missing e.g. {missing}")
        forecasts = {}
        for column in ("mean", "median"):
            values = predictions.column(column).combine_chunks()
            lengths = values.value_lengths().to_numpy(zero_copy_only=False)
            if np.any(lengths != horizon):
                row = int(np.flatnonzero(lengths != horizon)[0])
                raise DataError(f"predictions: row {row}, column {column}: {int(lengths[row])} values, expected {horizon}")
            forecasts[column] = values.flatten().to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, horizon)
        truth = np.stack([data.target(w)[:, index[c]] for w, c in pairs])
        return {"mse": float(np.mean((truth - forecasts["mean"]) ** 2)),
                "mae": float(np.mean(np.abs(truth - forecasts["median"])))}

    def metric_info(self) -> dict[str, Any]:
        from replibench.families.metric_info import MetricInfo

        return {"mse": MetricInfo("min", "scaled units²", "GluonTS MSE of the sample mean, every test window × step "
                                  "× channel (uni2ts LSF protocol: z-scored with the train rows, pandas std)"),
                "mae": MetricInfo("min", "scaled units", "GluonTS MAE of the sample median (sorted sample "
                                  "round((S−1)/2)), every test window × step × channel")}

    def protocol(self, data: LsfData, settings: dict[str, Any]) -> dict[str, Any]:
        task = settings["task"]
        return {
            "source": "uni2ts eval_util/_lsf_dataset.py + get_lsf_test_dataset; project/moirai-1/eval/lsf_*.sh",
            "mode": data.mode, "scaler": "train rows' mean and std (ddof 1)",
            "prediction_length": data.prediction_length, "test_windows": data.window_count(),
            "all_windows": data.max_windows is None, "context_length": task["context_length"],
            "patch_size": task["patch_size"], "num_samples": task["num_samples"], "batch_size": task["batch_size"],
            "weights": weights_description(task["weights"]),
        }


ZEROSHOT_LSF = ZeroShotLsfTask()
