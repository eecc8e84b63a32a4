"""Metrics: pure functions of arrays or structures, one module per family.

Each module declares ``METRICS: dict[str, MetricInfo]`` beside its functions, so that direction
(is higher better?) and unit are stated once and the leaderboard and regression checks read them
from there. Metric functions take keyword-only arguments and never read files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MetricInfo:
    """What a metric means: ``direction`` is ``"min"`` when lower is better, ``"max"`` otherwise."""

    direction: Literal["min", "max"]
    unit: str
    description: str
