"""CRPS and MASE as the Moirai / Moirai-MoE papers computed them: GluonTS's ``gluonts.ev`` metrics.

uni2ts's evaluation (``cli/eval.py`` → ``eval_util/evaluation.py:evaluate_model``, uni2ts@8d2a08d)
builds one GluonTS ``SampleForecast`` per test item and scores all of them with
``axis=None, mask_invalid_label=True, allow_nan_forecast=False,
seasonality=get_seasonality(freq)`` and the metric objects of ``cli/conf/eval/default.yaml``, among
them ``gluonts.ev.metrics.MASE()`` and ``MeanWeightedSumQuantileLoss(quantile_levels=[0.1, …, 0.9])``
— the latter is the "CRPS" of both papers' tables. Definitions checked against the GluonTS 0.14.4
sources (tag v0.14.4 = awslabs/gluonts@0cc3cd95de2a0086f370f5f05d5d5821c604634f):

* quantile of a sample forecast — ``gluonts/model/forecast.py:SampleForecast.quantile``: sort the S
  sample paths per step and take the one at index ``int(round((S − 1)·q))`` (NumPy rounding, half to
  even). No interpolation, *not* ``np.quantile``: with 100 samples the median (``forecast_type
  "0.5"``, ``Forecast.median``) is sorted sample 50 (0-based; round(49.5) = 50), not the mean of
  samples 49 and 50.
* quantile loss — ``gluonts/ev/stats.py:quantile_loss``: ``2·|(y − ŷ_q)·(1{ŷ_q ≥ y} − q)|`` per
  element (the factor 2 is there).
* weighted sum quantile loss — ``gluonts/ev/metrics.py:WeightedSumQuantileLoss`` = ``SumQuantileLoss``
  / ``SumAbsoluteLabel`` (both ``ev/aggregations.py:Sum``); with ``axis=None`` each sum runs over
  **all** items and steps before the one division. ``MeanWeightedSumQuantileLoss`` is the plain mean
  of those ratios over the levels.
* seasonal error of an item — ``gluonts/ev/ts_stats.py:seasonal_error`` on the item's **whole**
  input series (everything before the forecast start, not just the model's context window):
  ``mean_t |z_t − z_{t−m}|``; ``m`` falls back to 1 when the series is shorter than the seasonality
  (``seasonality > len``).
* MASE — ``gluonts/ev/metrics.py:MASE`` = ``ev/stats.py:absolute_scaled_error``
  (``|y − median| / seasonal_error`` per element) aggregated by ``ev/aggregations.py:Mean``; with
  ``axis=None`` that is the mean over **every item and step** (an item's weight is its number of
  valid steps), not a mean of per-item MASEs.
* seasonality — ``gluonts/time_feature/seasonality.py:get_seasonality``: hourly ("h"/"H") → 24,
  15-minute ("15min"/"15T") → 1440 / 15 = 96.

Missing values (``mask_invalid_label=True``): GluonTS masks non-finite values (``np.ma.masked_invalid``,
so NaN and ±inf) in the label and in the input series. These functions do the same: a masked label
step drops out of both sums of the weighted quantile loss and out of the MASE mean (numerator and
count); a masked history value drops every pair it belongs to from the seasonal error (the lag is
still chosen from the full length). Forecasts must be complete: GluonTS raises "Forecast contains NaN
values"; we raise a ValueError for any non-finite sample (slightly stricter: GluonTS only looks at
the quantiles it uses). Where GluonTS would silently return NaN or inf we raise a ValueError instead:
no valid label at all, Σ|y| = 0, an item without a single valid pair at its lag, or a zero seasonal
error. The ETT series have no missing values. Units: CRPS and MASE are dimensionless ratios.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from replibench.families.metric_info import MetricInfo

#: ``MeanWeightedSumQuantileLoss(quantile_levels=…)`` in uni2ts ``cli/conf/eval/default.yaml``
CRPS_QUANTILE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: ``gluonts.time_feature.get_seasonality`` (``DEFAULT_SEASONALITIES``: "H" → 24, "T" → 1440 per minute,
#: divided by the multiple): hourly → 24, 15-minute → 96 (one day)
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


def _valid_target(target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The target as float64 and its mask of valid (finite) steps, as ``np.ma.masked_invalid`` keeps them."""
    target = np.asarray(target, dtype=np.float64)
    valid = np.isfinite(target)
    if not valid.any():
        raise ValueError("target: no finite value at all; every step would be masked (GluonTS: NaN)")
    return target, valid


def sample_quantiles(samples: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Quantiles of sample paths as ``gluonts/model/forecast.py:SampleForecast.quantile`` takes them.

    samples (..., S, H) → (Q, ..., H), in the units of the samples: for each level q the sorted sample
    (per step) at index ``int(round((S − 1)·q))``, NumPy round half to even, no interpolation.
    Non-finite samples raise a ValueError.
    """
    samples = _finite("samples", samples)
    if samples.ndim < 2:
        raise ValueError(f"samples must be (..., S, H), got shape {samples.shape}")
    ordered = np.sort(samples, axis=-2)
    count = ordered.shape[-2]
    indices = []
    for level in levels:
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"quantile level {level} is outside [0, 1]")
        indices.append(int(np.round((count - 1) * float(level))))
    return np.stack([ordered[..., index, :] for index in indices])


def seasonal_error(past: np.ndarray, seasonality: int) -> float:
    """Seasonal naive error of one series, as ``gluonts/ev/ts_stats.py:seasonal_error``.

    ``past`` is the item's whole history before the forecast start (1-D, target units); returns
    ``mean |z_t − z_{t−m}|`` over the valid pairs (in target units), with ``m = seasonality`` or
    ``m = 1`` when the history is shorter than the seasonality. Non-finite history values are masked
    (their pairs dropped). Raises a ValueError where GluonTS would give NaN: no valid pair at all
    (e.g. a history exactly ``seasonality`` long).
    """
    past = np.asarray(past, dtype=np.float64)
    if past.ndim != 1:
        raise ValueError(f"past must be a 1-D series, got shape {past.shape}")
    if int(seasonality) < 1:
        raise ValueError(f"seasonality must be ≥ 1, got {seasonality}")
    length = len(past)
    lag = 1 if seasonality > length else int(seasonality)
    later, earlier = past[lag:], past[:length - lag]
    valid = np.isfinite(later) & np.isfinite(earlier)
    if not valid.any():
        raise ValueError(f"past: no valid pair at lag {lag} in a history of {length} values "
                         f"(seasonality {seasonality}); GluonTS would give NaN")
    return float(np.abs(later[valid] - earlier[valid]).mean())


def weighted_sum_quantile_loss(samples: np.ndarray, target: np.ndarray, level: float) -> float:
    """``gluonts/ev/metrics.py:WeightedSumQuantileLoss(q)`` with ``axis=None``: samples (N, S, H), target (N, H).

    Σ ``2·|(y − ŷ_q)(1{ŷ_q ≥ y} − q)|`` / Σ |y| over every valid (finite-label) item and step; a ratio.
    """
    return _weighted_losses(samples, target, (level,))[0]


def _weighted_losses(samples: np.ndarray, target: np.ndarray, levels: Sequence[float]) -> list[float]:
    target, valid = _valid_target(target)
    quantiles = sample_quantiles(samples, levels)  # (Q, N, H)
    if quantiles.shape[1:] != target.shape:
        raise ValueError(f"samples give forecasts of shape {quantiles.shape[1:]}, target has {target.shape}")
    label = target[valid]
    scale = np.abs(label).sum()
    if scale == 0:
        raise ValueError("target: Σ|y| over the valid steps is 0; the weighted quantile loss is undefined")
    losses = []
    for level, forecast in zip(levels, quantiles):
        prediction = forecast[valid]
        loss = 2.0 * np.abs((label - prediction) * ((prediction >= label) - float(level)))
        losses.append(float(loss.sum() / scale))
    return losses


def mean_weighted_sum_quantile_loss(samples: np.ndarray, target: np.ndarray,
                                    levels: Sequence[float] = CRPS_QUANTILE_LEVELS) -> float:
    """The papers' "CRPS": ``gluonts/ev/metrics.py:MeanWeightedSumQuantileLoss`` with ``axis=None``.

    samples (N, S, H) sample paths, target (N, H) in the same units (non-finite target steps are
    masked); returns the mean over ``levels`` of :func:`weighted_sum_quantile_loss`, a ratio.
    """
    return float(np.mean(_weighted_losses(samples, target, levels)))


def mase(samples: np.ndarray, target: np.ndarray, past_series: Sequence[np.ndarray], seasonality: int) -> float:
    """``gluonts/ev/metrics.py:MASE()`` (forecast_type "0.5") with ``axis=None``; a ratio.

    samples (N, S, H), target (N, H), ``past_series`` one 1-D history per item (everything before
    its forecast start). Mean over every valid (finite-label) item and step of
    ``|y − median| / seasonal_error(item)``, the median being :func:`sample_quantiles` at 0.5.
    A zero seasonal error (GluonTS: inf) raises a ValueError.
    """
    target, valid = _valid_target(target)
    median = sample_quantiles(samples, (0.5,))[0]  # (N, H)
    if median.shape != target.shape or target.ndim != 2 or len(past_series) != len(target):
        raise ValueError(f"shapes disagree: median {median.shape}, target {target.shape}, "
                         f"{len(past_series)} histories")
    errors = np.array([seasonal_error(past, seasonality) for past in past_series])  # (N,)
    if np.any(errors == 0):
        raise ValueError(f"item {int(np.flatnonzero(errors == 0)[0])}: constant history, seasonal error 0 "
                         f"(GluonTS: inf)")
    scaled = np.abs(target - median) / errors[:, None]
    return float(scaled[valid].mean())
