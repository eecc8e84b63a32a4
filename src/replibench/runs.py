"""Run identity: one trained-and-evaluated model is named by its path.

``{family}/{dataset}/{task}/{model}/{variant}/seed{seed}`` — e.g.
``ett/etth1/forecast/dlinear/h96/seed2021``. A run's variant is the protocol knob that makes rows
of a paper's table, held as typed values (``variant_values``: ``{"horizon": 96}``,
``{"samples": 1, "steps": 10}``, ``{}`` for a task without one); ``variant`` is its name in paths
and table rows, spelled once from those values by the family's ``variant_name`` (``h96``,
``k1-steps10``, ``default``) and never parsed back: code that needs the horizon reads
``run.values["horizon"]``. The rules build every path from this; the package never invents
paths of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
VARIANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
VALUE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
#: what one variant value may be (JSON scalars; bool is refused: no variant is a flag)
VariantValue = Union[int, float, str]


@dataclass(frozen=True)
class RunSpec:
    """The coordinates of one run. ``preset`` is ``"smoke"`` or ``"paper"``; ``variant_values``
    (a mapping on input, stored as sorted ``(name, value)`` pairs so that the spec stays hashable)
    are the variant's typed values and ``variant`` their name (:mod:`replibench.runs`). Families
    build runs through :meth:`replibench.families.base.Family.make_run`, which spells the name."""

    family: str
    dataset: str
    task: str
    model: str
    variant: str
    seed: int
    preset: str = "smoke"
    variant_values: Any = ()

    def __post_init__(self) -> None:
        for key in ("family", "dataset", "task", "model"):
            value = getattr(self, key)
            if not NAME_PATTERN.match(value):
                raise ValueError(f"run {key} {value!r} must match {NAME_PATTERN.pattern}")
        if not VARIANT_PATTERN.match(self.variant):
            raise ValueError(f"run variant {self.variant!r} must match {VARIANT_PATTERN.pattern}")
        pairs = self.variant_values.items() if isinstance(self.variant_values, Mapping) else self.variant_values
        normalised = []
        for name, value in sorted(tuple(pair) for pair in pairs):
            if not VALUE_NAME_PATTERN.match(name):
                raise ValueError(f"run variant value name {name!r} must match {VALUE_NAME_PATTERN.pattern}")
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError(f"run variant value {name} = {value!r} must be a number or a string")
            normalised.append((name, value))
        object.__setattr__(self, "variant_values", tuple(normalised))

    @property
    def values(self) -> dict[str, VariantValue]:
        """The variant's typed values as a dict (``{"horizon": 96}``)."""
        return dict(self.variant_values)

    @property
    def run_id(self) -> str:
        return f"{self.family}/{self.dataset}/{self.task}/{self.model}/{self.variant}/seed{self.seed}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the coordinates, ``variant_values`` as an object."""
        return {"family": self.family, "dataset": self.dataset, "task": self.task, "model": self.model,
                "variant": self.variant, "seed": self.seed, "preset": self.preset,
                "variant_values": self.values}
