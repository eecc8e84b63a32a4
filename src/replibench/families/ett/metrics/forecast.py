"""Forecasting and imputation metrics, as TSLib (and so the TimesNet paper) computes them.

All test windows' predictions are stacked into one array of shape (windows, horizon, channels)
and the error is averaged over **every element** (one global mean). Values are in the scaled
(z-scored with train statistics) space, the Informer/TSLib convention. Averages over horizons are
plain means of the per-horizon numbers (:func:`horizon_average`). Computed in float64.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from replibench.families.metric_info import MetricInfo

METRICS: dict[str, MetricInfo] = {
    "mse": MetricInfo("min", "scaled units²", "mean squared error over all windows × steps × channels"),
    "mae": MetricInfo("min", "scaled units", "mean absolute error over all windows × steps × channels"),
    "mse_droplast32": MetricInfo("min", "scaled units²", "MSE over the first ⌊N/32⌋·32 test windows: what a test "
                                 "loader with batch size 32 and drop_last=True scored (LTSF-Linear/DLinear tables)",
                                 comparison_only=True),
    "mae_droplast32": MetricInfo("min", "scaled units", "MAE over the first ⌊N/32⌋·32 test windows (drop_last=True, "
                                 "batch 32)", comparison_only=True),
}

#: test batch size of the loaders that dropped the last partial batch (Informer/Autoformer lineage)
LEGACY_TEST_BATCH_SIZE = 32


def _checked(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None):
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {prediction.shape} != target shape {target.shape}")
    if mask is None:
        return prediction, target
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != target.shape:
        raise ValueError(f"mask shape {mask.shape} != target shape {target.shape}")
    if not mask.any():
        raise ValueError("mask selects no element; the metric is undefined")
    return prediction[mask], target[mask]


def mse(*, prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over every element (or over ``mask``-selected elements: imputation
    scores only the masked points)."""
    prediction, target = _checked(prediction, target, mask)
    return float(np.mean((prediction - target) ** 2))


def mae(*, prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error over every element (or over ``mask``-selected elements)."""
    prediction, target = _checked(prediction, target, mask)
    return float(np.mean(np.abs(prediction - target)))


def windows_kept_by_drop_last(num_windows: int, batch_size: int = LEGACY_TEST_BATCH_SIZE) -> int:
    """Test windows a loader with ``drop_last=True`` scores: the full batches only.

    Papers whose code used it (the DLinear paper's tables among them) lost ``N mod 32`` windows
    per horizon — 1 or 17 on ETT. We score every window; this reproduces their count so our number
    can be put beside theirs under their rule.
    """
    return (num_windows // batch_size) * batch_size


def horizon_average(values_by_horizon: Mapping[int, float],
                    horizons: tuple[int, ...] = (96, 192, 336, 720)) -> float:
    """The papers' "Avg" column: the plain mean over the four horizons (all must be present)."""
    missing = [h for h in horizons if h not in values_by_horizon]
    if missing:
        raise ValueError(f"horizon average needs every horizon of {horizons}; missing {missing}")
    return float(np.mean([values_by_horizon[h] for h in horizons]))
