"""A future-leakage probe for forecasting models.

A forecast for window k may depend only on rows before its first target row. The probe predicts
window k, then replaces every row from that target row on with noise (in place, restored after),
predicts again with the same batching, and compares. Any change means the forecast read the
future — directly, or through other windows of its batch (TimesNet's batch-averaged periods at a
test batch size above 1, the reason the paper-era loader used batch size 1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LeakageReport:
    window: int
    batch_size: int
    max_change: float  # largest absolute change of the window's forecast (scaled units)

    @property
    def leaks(self) -> bool:
        return self.max_change > 0.0


def future_leakage_probe(model, data, *, window: int, batch_size: int, split: str = "test",
                         seed: int = 0) -> LeakageReport:
    """Forecast ``window`` of ``split`` before and after the future rows are replaced by noise.

    ``window`` is placed first in its batch; the batch holds the following windows, as the
    evaluation loader would batch them.
    """
    import torch

    model.eval()
    start, _ = data.borders[split]
    first_target_row = start + window + data.seq_len
    indices = torch.arange(window, min(window + batch_size, data.window_count(split)))

    def forecast_of_window(series) -> torch.Tensor:
        x, x_mark, _ = series.gather(split, indices)
        with torch.no_grad():
            return model(x, x_mark)[0]

    before = forecast_of_window(data)
    # poison in place (and restore), so a model holding a reference to the series sees it too
    saved = data.scaled[first_target_row:].clone()
    generator = torch.Generator().manual_seed(seed)
    try:
        data.scaled[first_target_row:] = torch.randn(saved.shape, generator=generator) * 10.0
        after = forecast_of_window(data)
    finally:
        data.scaled[first_target_row:] = saved
    return LeakageReport(window=window, batch_size=batch_size, max_change=float((after - before).abs().max()))
