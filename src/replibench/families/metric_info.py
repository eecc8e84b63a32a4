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
    """What a metric means: ``direction`` is ``"min"`` when lower is better, ``"max"`` otherwise.

    ``comparison_only`` marks a metric computed only to sit beside a paper number scored under
    another rule (e.g. ETT's ``mse_droplast32``): the leaderboard shows its rows only where a
    reference exists, so it never crowds out the primary metrics.
    """

    direction: Literal["min", "max"]
    unit: str
    description: str
    comparison_only: bool = False
