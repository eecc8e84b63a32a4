"""Metrics of the Long Range Arena family and of the state-tracking paper.

* :func:`accuracy` — test accuracy of a classifier, the only per-task metric LRA reports
  (Tay et al., ICLR 2021).
* :func:`lra_average` — the "Avg" column. Two conventions exist and a number printed beside a
  paper must use the paper's: ``"lra-5"`` averages the five tasks without Path-X (the LRA
  leaderboard: Transformer 54.39); ``"s4-6"`` averages all six tasks and counts a failed or
  missing Path-X as 50 % (chance), as the S4, S4D, HTTYH, S5 and PTD papers do (S4D-Lin 78.39,
  S4-FouT 77.90 only reproduce that way).
* :func:`scaled_accuracy` — Grazzi et al. (ICLR 2025, "Unlocking State-Tracking in Linear RNNs
  Through Negative Eigenvalues") report, after Beck et al. (xLSTM, 2024), accuracy rescaled so
  that 1.0 is perfect and 0.0 is random guessing: ``(acc - 1/C) / (1 - 1/C)`` with ``C`` the
  number of possible answers (2 for parity, the modulus for modular arithmetic).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np

from replibench.families.metric_info import MetricInfo

#: the six LRA tasks in the papers' column order
LRA_TASKS: tuple[str, ...] = ("listops", "text", "retrieval", "image", "pathfinder", "path-x")

#: accuracy (%) the SSM papers substitute for a Path-X run that failed or was not run ("✗")
PATH_X_FAILED_ACCURACY = 50.0

AveragingConvention = Literal["lra-5", "s4-6"]

METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("max", "%", "test-split accuracy of the predicted class, in percent"),
    "scaled_accuracy": MetricInfo(
        "max", "1", "accuracy rescaled so that random guessing is 0 and perfect is 1 (Grazzi et al. 2025)"
    ),
}


def accuracy(*, labels: np.ndarray, predicted: np.ndarray) -> float:
    """Percentage (0–100) of examples whose predicted class equals the label.

    Both arrays are 1-D integer class indices of the same length; an empty test set is an error,
    not 0 %.
    """
    labels = np.asarray(labels)
    predicted = np.asarray(predicted)
    if labels.shape != predicted.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predicted {predicted.shape} must be equal 1-D shapes")
    if labels.size == 0:
        raise ValueError("accuracy of an empty test set is undefined")
    return float(100.0 * np.mean(labels == predicted))


def scaled_accuracy(*, labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """``(acc - 1/C) / (1 - 1/C)`` with ``acc`` the fraction correct (unitless, 1.0 = perfect).

    Not clipped: a model worse than chance scores below 0 (the paper's tables show 0.000 for
    such models; whether they clipped is not stated, so we keep the raw value).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    fraction = accuracy(labels=labels, predicted=predicted) / 100.0
    chance = 1.0 / num_classes
    return float((fraction - chance) / (1.0 - chance))


def lra_average(accuracies: Mapping[str, float | None], convention: AveragingConvention) -> float:
    """The LRA "Avg" column in percent, under a named convention.

    Args:
        accuracies: task name (see :data:`LRA_TASKS`) → accuracy in percent; ``None`` or NaN
            means failed / not run. Unknown task names are an error.
        convention: ``"lra-5"``: mean of the five tasks without Path-X (Path-X ignored; all five
            must be present). ``"s4-6"``: mean of all six, a missing/failed Path-X counted as
            :data:`PATH_X_FAILED_ACCURACY`; the other five must be present.
    """
    unknown = sorted(set(accuracies) - set(LRA_TASKS))
    if unknown:
        raise ValueError(f"unknown LRA task(s) {unknown}; expected names from {LRA_TASKS}")

    def present(task: str) -> float | None:
        value = accuracies.get(task)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return float(value)

    five = LRA_TASKS[:5]
    missing = [task for task in five if present(task) is None]
    if missing:
        raise ValueError(f"average under {convention!r} needs accuracies for {missing}")
    values = [present(task) for task in five]
    if convention == "lra-5":
        return float(np.mean(values))
    if convention == "s4-6":
        path_x = present("path-x")
        return float(np.mean(values + [PATH_X_FAILED_ACCURACY if path_x is None else path_x]))
    raise ValueError(f"unknown averaging convention {convention!r}; expected 'lra-5' or 's4-6'")
