"""Long-term forecasting on ETT, the TimesNet paper's protocol (TSLib ``long_term_forecast``).

Input length 96, horizon H ∈ {96, 192, 336, 720}, features mode M (all 7 channels in and out),
MSE loss, metrics on the scaled data over every test window (no ``drop_last``: the count of test
windows is ``len(test) - seq_len - pred_len + 1`` whatever the batch size).

Predictions table (also the "bring your own forecasts" format): one row per test window in test
order, a ``window`` int64 column (0, 1, …) and one ``list<float32>`` column per channel
(HUFL … OT) holding that channel's H forecast steps in the scaled space.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from replibench.errors import DataError
from replibench.runs import RunSpec
from replibench.families.task import Task, build_registered_model
from replibench.families.ett.tasks.timeseries import SeriesData, load_series, sequential_batches


def predictions_schema(channels: tuple[str, ...]):  # -> pa.Schema
    import pyarrow as pa

    return pa.schema([pa.field("window", pa.int64(), nullable=False)]
                     + [pa.field(c, pa.list_(pa.float32()), nullable=False) for c in channels])


def predictions_to_table(forecasts: np.ndarray, channels: tuple[str, ...]):
    """(N, H, C) array → the predictions table described in the module docstring."""
    import pyarrow as pa

    n, horizon, _ = forecasts.shape
    columns = {"window": pa.array(np.arange(n, dtype=np.int64))}
    for index, channel in enumerate(channels):
        flat = pa.array(np.ascontiguousarray(forecasts[:, :, index]).reshape(-1).astype(np.float32))
        columns[channel] = pa.FixedSizeListArray.from_arrays(flat, horizon).cast(pa.list_(pa.float32()))
    return pa.table(columns, schema=predictions_schema(channels))


def table_to_predictions(table, *, channels: tuple[str, ...], windows: int, horizon: int,
                         source: str = "predictions") -> np.ndarray:
    """Validate a predictions table and return it as an (N, H, C) float32 array.

    Every problem names the table, the row and the column: a missing channel, the wrong number of
    windows, windows out of order, or a row whose list is not ``horizon`` long.
    """
    missing = [c for c in ("window", *channels) if c not in table.column_names]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; expected 'window' and {list(channels)}")
    if table.num_rows != windows:
        raise DataError(f"{source}: {table.num_rows} rows, expected one per test window ({windows})")
    order = table.column("window").to_numpy()
    if not np.array_equal(order, np.arange(windows)):
        bad = int(np.flatnonzero(order != np.arange(windows))[0])
        raise DataError(f"{source}: row {bad} has window {order[bad]}, expected {bad} (rows must be in test order)")
    out = np.empty((windows, horizon, len(channels)), dtype=np.float32)
    for index, channel in enumerate(channels):
        column = table.column(channel).combine_chunks()
        lengths = column.value_lengths().to_numpy(zero_copy_only=False)
        wrong = np.flatnonzero(lengths != horizon)
        if wrong.size:
            raise DataError(f"{source}: row {int(wrong[0])}, column {channel}: "
                            f"{int(lengths[wrong[0]])} values, expected {horizon}")
        values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise DataError(f"{source}: column {channel} holds NaN or infinite values")
        out[:, :, index] = values.reshape(windows, horizon)
    return out


def forecast_metrics(forecasts: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """MSE/MAE over every test window, and over the windows a drop_last=True loader at batch 32
    kept (for comparison with papers that used one; a batch-independent model's forecasts of the
    kept windows are the same either way)."""
    from replibench.families.ett.metrics.forecast import mae, mse, windows_kept_by_drop_last

    kept = windows_kept_by_drop_last(len(forecasts))
    return {
        "mse": mse(prediction=forecasts, target=target),
        "mae": mae(prediction=forecasts, target=target),
        "mse_droplast32": mse(prediction=forecasts[:kept], target=target[:kept]),
        "mae_droplast32": mae(prediction=forecasts[:kept], target=target[:kept]),
    }


class ForecastTask(Task):
    name = "forecast"

    def load(self, data_dir: Path, run: RunSpec, settings: dict[str, Any]) -> SeriesData:
        task = settings["task"]
        return load_series(data_dir, dataset=run.dataset, seq_len=task["seq_len"], pred_len=task["pred_len"])

    def build_model(self, data: SeriesData, run: RunSpec, settings: dict[str, Any]):
        return build_registered_model(run.model, settings["model"], task="forecast", seq_len=data.seq_len,
                                      pred_len=data.pred_len, enc_in=len(data.channels))

    def num_train_examples(self, data: SeriesData) -> int:
        return data.window_count("train")

    def make_batch(self, data: SeriesData, split: str, indices):
        return data.gather(split, indices)  # (x, x_mark, y)

    def training_loss(self, model, batch):
        import torch

        x, x_mark, y = batch
        return torch.nn.functional.mse_loss(model(x, x_mark), y)

    def forecast(self, model, data: SeriesData, split: str, batch_size: int) -> np.ndarray:
        """All windows of ``split`` in order, in batches of ``batch_size`` (last one partial)."""
        import torch

        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        model.eval()
        outputs = []
        with torch.no_grad():
            for indices in sequential_batches(data.window_count(split), batch_size):
                x, x_mark, _ = data.gather(split, indices)
                outputs.append(model(x.to(device), x_mark.to(device)).float().cpu().numpy())
        forecasts = np.concatenate(outputs, axis=0)  # (N, H, C)
        if forecasts.shape[0] != data.window_count(split):  # the drop_last bug must never return
            raise RuntimeError(f"{split}: {forecasts.shape[0]} forecasts for {data.window_count(split)} windows")
        return forecasts

    def targets(self, data: SeriesData, split: str) -> np.ndarray:
        import torch

        _, _, y = data.gather(split, torch.arange(data.window_count(split)))
        return y.numpy()  # (N, H, C)

    def validation_loss(self, model, data: SeriesData, settings: dict[str, Any]) -> float:
        from replibench.families.ett.metrics.forecast import mse

        forecasts = self.forecast(model, data, "val", settings["task"]["val_batch_size"])
        return mse(prediction=forecasts, target=data.float64_targets("val"))  # the same number, read once

    def predict(self, model, data: SeriesData, run: RunSpec, settings: dict[str, Any]):
        forecasts = self.forecast(model, data, "test", settings["task"]["eval_batch_size"])
        return predictions_to_table(forecasts, data.channels)

    score_file_help = "ETT forecasts: one row per test window, in test order, scaled space (Parquet)"

    def add_score_file_arguments(self, parser) -> None:
        from replibench.families.ett.byo import add_forecast_arguments

        add_forecast_arguments(parser)

    def score_file(self, options: dict[str, Any]) -> dict[str, Any]:
        from replibench.families.ett.byo import score_forecast_file

        return score_forecast_file(**options)

    def score(self, predictions, data: SeriesData, settings: dict[str, Any]) -> dict[str, float]:
        forecasts = table_to_predictions(predictions, channels=data.channels, windows=data.window_count("test"),
                                         horizon=data.pred_len)
        return forecast_metrics(forecasts, self.targets(data, "test"))

    def metric_info(self) -> dict[str, Any]:
        from replibench.families.ett.metrics.forecast import METRICS

        return METRICS

    def protocol(self, data: SeriesData, settings: dict[str, Any]) -> dict[str, Any]:
        return {
            "seq_len": data.seq_len,
            "pred_len": data.pred_len,
            "features": "M",
            "scaled": True,
            "scaler": "z-score fitted on train rows only",
            "split_borders": {k: list(v) for k, v in data.borders.items()},
            "test_windows": data.window_count("test"),
            "test_batch_size": settings["task"]["eval_batch_size"],
            "val_batch_size": settings["task"]["val_batch_size"],
            "test_drop_last": False,
        }


FORECAST = ForecastTask()
