import math

import numpy as np
import pytest

from replibench.families.lra.metrics.accuracy import METRICS, accuracy, lra_average, scaled_accuracy

# LRA README leaderboard and the SSM papers (research notes §3.1)
TRANSFORMER = {"listops": 36.37, "text": 64.27, "retrieval": 57.46, "image": 42.44, "pathfinder": 71.40,
               "path-x": None}
S4D_LIN = {"listops": 60.52, "text": 86.97, "retrieval": 90.96, "image": 87.93, "pathfinder": 93.96,
           "path-x": None}
S4_LEGS = {"listops": 59.60, "text": 86.82, "retrieval": 90.90, "image": 88.65, "pathfinder": 94.20,
           "path-x": 96.35}


def test_accuracy_hand_counted():
    assert accuracy(labels=np.array([0, 1, 2, 3]), predicted=np.array([0, 1, 0, 0])) == 50.0
    with pytest.raises(ValueError):
        accuracy(labels=np.array([], dtype=int), predicted=np.array([], dtype=int))


def test_scaled_accuracy_is_zero_at_chance_and_one_when_perfect():
    labels = np.array([0, 1, 0, 1])
    assert scaled_accuracy(labels=labels, predicted=labels, num_classes=2) == 1.0
    assert scaled_accuracy(labels=labels, predicted=np.array([0, 0, 0, 0]), num_classes=2) == 0.0
    assert scaled_accuracy(labels=np.arange(5), predicted=np.array([0, 1, 0, 0, 0]), num_classes=5) == pytest.approx(0.25)


def test_published_averages_reproduce_with_the_named_conventions():
    assert lra_average(TRANSFORMER, "lra-5") == pytest.approx(54.39, abs=0.005)
    assert lra_average(TRANSFORMER, "s4-6") == pytest.approx(53.66, abs=0.005)
    assert lra_average(S4D_LIN, "s4-6") == pytest.approx(78.39, abs=0.005)
    assert lra_average(S4_LEGS, "s4-6") == pytest.approx(86.09, abs=0.005)
    assert lra_average({**S4D_LIN, "path-x": math.nan}, "s4-6") == pytest.approx(78.39, abs=0.005)


def test_average_refuses_missing_or_unknown_tasks():
    with pytest.raises(ValueError, match="needs accuracies"):
        lra_average({"listops": 50.0}, "lra-5")
    with pytest.raises(ValueError, match="unknown LRA task"):
        lra_average({**S4_LEGS, "cifar": 1.0}, "lra-5")
    with pytest.raises(ValueError, match="convention"):
        lra_average(S4_LEGS, "lra-6")


def test_metric_directions_declared():
    assert METRICS["accuracy"].direction == "max" and METRICS["scaled_accuracy"].direction == "max"
