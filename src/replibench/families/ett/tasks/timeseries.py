"""What the ETT forecasting and imputation tasks share: the scaled series, calendar features and
vectorised window gathering, all following TSLib's loaders (the TimesNet paper's protocol).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replibench.families.ett.datasets.ett import CHANNELS, dataset_by_name, num_windows, split_borders_ett
from replibench.errors import DataError


def fit_standard_scaler(train_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std (ddof 0) of the **train rows only**, as sklearn's
    StandardScaler; a constant channel gets scale 1 instead of 0."""
    mean = train_values.mean(axis=0)
    std = train_values.std(axis=0)
    std = np.where(std == 0.0, 1.0, std)
    return mean, std


def time_features_timef(dates: np.ndarray) -> np.ndarray:
    """TSLib's ``timeF`` calendar features for ``freq='h'``, each scaled to [-0.5, 0.5].

    Columns: hour-of-day, day-of-week, day-of-month, day-of-year. The TimesNet ETT scripts keep
    ``freq='h'`` for the 15-minute files too, so ETTm gets no minute feature (see the research
    notes); we follow the scripts. ``dates`` is a ``datetime64`` array; returns (T, 4) float32.
    """
    import pandas as pd

    index = pd.DatetimeIndex(dates)
    features = np.stack([
        index.hour / 23.0 - 0.5,
        index.dayofweek / 6.0 - 0.5,
        (index.day - 1) / 30.0 - 0.5,
        (index.dayofyear - 1) / 365.0 - 0.5,
    ], axis=1)
    return features.astype(np.float32)


@dataclass
class SeriesData:
    """A scaled ETT series with its split borders; windows are gathered on demand."""

    dataset: str
    seq_len: int
    pred_len: int  # 0 for imputation
    channels: tuple[str, ...]
    borders: dict[str, tuple[int, int]]
    scaled: "torch.Tensor"  # (T, C) float32, z-scored with train statistics  # noqa: F821
    time_marks: "torch.Tensor"  # (T, 4) float32  # noqa: F821
    mean: np.ndarray  # (C,) train mean, raw units
    std: np.ndarray  # (C,) train std, raw units
    #: split → all its targets (N, H, C) as float64, kept after the first use: validation scores
    #: the same ~50 M values every epoch (ETTm, H = 720), and gathering and widening them again
    #: took as long as the epoch's DLinear training steps
    _float64_targets: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def window_count(self, split: str) -> int:
        start, end = self.borders[split]
        return num_windows(end - start, self.seq_len, self.pred_len)

    def float64_targets(self, split: str) -> np.ndarray:
        """Every window's target of ``split`` (N, H, C) in float64, read once per data object."""
        if split not in self._float64_targets:
            import torch

            _, _, target = self.gather(split, torch.arange(self.window_count(split)))
            self._float64_targets[split] = target.numpy().astype(np.float64)
        return self._float64_targets[split]

    def gather(self, split: str, indices: "torch.Tensor"):  # noqa: F821
        """Windows ``indices`` of ``split``: inputs (B, L, C), their marks (B, L, 4), targets (B, H, C).

        Window k of a split starting at row s covers input rows [s+k, s+k+L) and target rows
        [s+k+L, s+k+L+H). Targets are empty (H = 0) for imputation.
        """
        import torch

        start, _ = self.borders[split]
        count = self.window_count(split)
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= count):
            raise IndexError(f"{split} window index out of range [0, {count})")
        first_row = start + indices.long()  # (B,)
        input_rows = first_row[:, None] + torch.arange(self.seq_len)  # (B, L)
        target_rows = first_row[:, None] + self.seq_len + torch.arange(self.pred_len)  # (B, H)
        return self.scaled[input_rows], self.time_marks[input_rows], self.scaled[target_rows]


def load_series(data_dir: Path, *, dataset: str, seq_len: int, pred_len: int) -> SeriesData:
    """Read ``series.parquet``, cut the TSLib borders, fit the scaler on train rows, scale all rows."""
    import pyarrow.parquet as pq
    import torch

    path = Path(data_dir) / "series.parquet"
    if not path.is_file():
        raise DataError(f"{path}: not found (run the preprocess step for {dataset} first)")
    table = pq.read_table(path)
    spec = dataset_by_name(dataset)
    borders = split_borders_ett(spec.name, seq_len)
    if table.num_rows < borders["test"][1]:
        raise DataError(f"{path}: {table.num_rows} rows, the protocol needs at least {borders['test'][1]}")
    values = np.stack([table.column(name).to_numpy() for name in CHANNELS], axis=1)  # (T, C) float64
    dates = table.column("date").to_numpy()
    mean, std = fit_standard_scaler(values[borders["train"][0]:borders["train"][1]])
    scaled = torch.from_numpy(((values - mean) / std).astype(np.float32))
    return SeriesData(
        dataset=spec.name, seq_len=seq_len, pred_len=pred_len, channels=CHANNELS, borders=borders,
        scaled=scaled, time_marks=torch.from_numpy(time_features_timef(dates)), mean=mean, std=std,
    )


def sequential_batches(count: int, batch_size: int):
    """Index tensors covering ``range(count)`` in order, the last batch partial (no drop_last)."""
    import torch

    for start in range(0, count, batch_size):
        yield torch.arange(start, min(start + batch_size, count))
