"""Run identity: one trained-and-evaluated model is named by its path.

``{family}/{dataset}/{task}/{model}/{variant}/seed{seed}`` — e.g.
``ett/etth1/forecast/dlinear/h96/seed2021``. ``variant`` holds the protocol knob that makes rows
of a paper's table (horizon, mask ratio, sample count, …), spelled by the family
(``h96``, ``mask0.125``, ``default``). The rules build every path from this; the package never
invents paths of its own.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
VARIANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


@dataclass(frozen=True)
class RunSpec:
    """The coordinates of one run. ``preset`` is ``"smoke"`` or ``"paper"``."""

    family: str
    dataset: str
    task: str
    model: str
    variant: str
    seed: int
    preset: str = "smoke"

    def __post_init__(self) -> None:
        for key in ("family", "dataset", "task", "model"):
            value = getattr(self, key)
            if not NAME_PATTERN.match(value):
                raise ValueError(f"run {key} {value!r} must match {NAME_PATTERN.pattern}")
        if not VARIANT_PATTERN.match(self.variant):
            raise ValueError(f"run variant {self.variant!r} must match {VARIANT_PATTERN.pattern}")

    @property
    def run_id(self) -> str:
        return f"{self.family}/{self.dataset}/{self.task}/{self.model}/{self.variant}/seed{self.seed}"

    def as_dict(self) -> dict:
        return asdict(self)
