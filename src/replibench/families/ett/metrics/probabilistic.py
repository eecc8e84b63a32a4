"""CRPS and MASE as the Moirai / Moirai-MoE papers computed them: GluonTS's ``gluonts.ev`` metrics.

uni2ts's evaluation (``cli/eval.py``, ``eval_util/evaluation.py``, uni2ts@8d2a08d) builds a GluonTS
``SampleForecast`` per test item and calls ``evaluate_model(..., axis=None,
seasonality=get_seasonality(freq))`` with ``gluonts.ev.metrics.MASE()`` and
``MeanWeightedSumQuantileLoss(quantile_levels=[0.1, …, 0.9])`` — the latter is the "CRPS" of both
papers' tables. The definitions (GluonTS 0.14, ``gluonts/ev/stats.py``, ``ts_stats.py``,
``metrics.py``, ``model/forecast.py``):

* a quantile forecast is one of the sorted sample paths, no interpolation: index
  ``round((S − 1)·q)`` with NumPy's round-half-to-even (``SampleForecast.quantile``) — so with 100
  samples the median is the 50th smallest, not the mean of the 50th and 51st;
* quantile loss(q) = 2·|(y − ŷ_q)·(1{y ≤ ŷ_q} − q)| per element;
* weighted sum quantile loss(q) = Σ quantile loss(q) / Σ |y| over **all** items and steps
  (``axis=None``); the mean over the 9 levels is the CRPS;
* seasonal error of an item = mean |z_t − z_{t−m}| over its whole history before the forecast
  (``m`` = 1 when the history is shorter than the seasonality; ``ev/ts_stats.seasonal_error``);
* MASE = mean over all items and steps of |y − median| / seasonal error of the item.

Missing values: uni2ts masks NaN labels (``mask_invalid_label=True``) and refuses NaN forecasts; the
ETT files have none, so these functions refuse any non-finite input with a ValueError instead of
masking it (nothing is silently dropped). Units: CRPS and MASE are dimensionless ratios.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from replibench.families.metric_info import MetricInfo

#: ``MeanWeightedSumQuantileLoss`` levels in uni2ts ``cli/conf/eval/default.yaml``
CRPS_QUANTILE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: ``gluonts.time_feature.get_seasonality``: hourly → 24, 15-minute → 96 (one day)
SEASONALITY = {"h": 24, "15min": 96}

METRICS: dict[str, MetricInfo] = {
    "crps": MetricInfo("min", "ratio", "GluonTS MeanWeightedSumQuantileLoss over quantiles 0.1…0.9 of the sample "
                       "paths: Σ 2|(y−ŷ_q)(1{y≤ŷ_q}−q)| / Σ|y| over every item and step, mean over q (the "
                       "Moirai papers' CRPS)"),
    "mase": MetricInfo("min", "ratio", "GluonTS MASE: |y − sample median| / the item's seasonal naive error over "
                       "its whole history, mean over every item and step"),
}


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
        raise ValueError(f"{name}: non-finite value at index {index}; GluonTS scoring needs complete forecasts")
    return values


def sample_quantiles(samples: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Quantiles of sample paths as GluonTS's ``SampleForecast.quantile``: the sorted sample at
    index ``round((S − 1)·q)`` (round half to even). samples (..., S, H) → (Q, ..., H)."""
    samples = np.sort(_finite("samples", samples), axis=-2)
    count = samples.shape[-2]
    return np.stack([samples[..., int(np.round((count - 1) * level)), :] for level in levels])


def mean_weighted_sum_quantile_loss(samples: np.ndarray, target: np.ndarray,
                                    levels: Sequence[float] = CRPS_QUANTILE_LEVELS) -> float:
    """The papers' CRPS: samples (N, S, H), target (N, H) → Σ-weighted quantile loss, mean over levels."""
    target = _finite("target", target)
    quantiles = sample_quantiles(samples, levels)  # (Q, N, H)
    if quantiles.shape[1:] != target.shape:
        raise ValueError(f"samples give forecasts of shape {quantiles.shape[1:]}, target has {target.shape}")
    scale = np.abs(target).sum()
    if scale == 0:
        raise ValueError("target is all zeros: the weighted quantile loss is undefined")
    losses = []
    for level, forecast in zip(levels, quantiles):
        loss = 2.0 * np.abs((target - forecast) * ((target <= forecast) - level))
        losses.append(loss.sum() / scale)
    return float(np.mean(losses))


def seasonal_error(history: np.ndarray, seasonality: int) -> float:
    """Mean |z_t − z_{t−m}| over the history (``m`` = 1 when the history is shorter than ``seasonality``).
    A history exactly ``seasonality`` long has no pair at lag m: GluonTS returns NaN there, we refuse."""
    history = _finite("history", history)
    if history.ndim != 1 or len(history) < 2:
        raise ValueError(f"history must be a 1-D series of at least 2 values, got shape {history.shape}")
    lag = 1 if seasonality > len(history) else seasonality
    if lag == len(history):
        raise ValueError(f"history of {len(history)} values = the seasonality: no pair at that lag (GluonTS: NaN)")
    return float(np.abs(history[lag:] - history[:-lag]).mean())


def mase(samples: np.ndarray, target: np.ndarray, histories: Sequence[np.ndarray], seasonality: int) -> float:
    """GluonTS MASE of the sample median: samples (N, S, H), target (N, H), one history per item."""
    target = _finite("target", target)
    median = sample_quantiles(samples, (0.5,))[0]  # (N, H)
    if median.shape != target.shape or len(histories) != len(target):
        raise ValueError(f"shapes disagree: median {median.shape}, target {target.shape}, {len(histories)} histories")
    errors = np.array([seasonal_error(history, seasonality) for history in histories])  # (N,)
    if np.any(errors == 0):
        raise ValueError(f"item {int(np.flatnonzero(errors == 0)[0])}: constant history, seasonal error 0")
    return float((np.abs(target - median) / errors[:, None]).mean())
