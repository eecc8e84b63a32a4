"""OC20 task settings and protocol constants (fairchem's OC20 configs), and model lookup.

Constants are named with their source; the task (:mod:`replibench.tasks.oc20`) reads them here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from replibench.datasets.oc20_sources import VAL_SPLITS
from replibench.errors import ConfigError
from replibench.tasks.oc20_data import GraphSettings

#: S2EF energy normaliser (mean, std) in eV: fairchem ``configs/oc20/s2ef/2M/base.yml``
#: (``normalizer.energy`` -0.7554450631141663 / 2.887317180633545; forces: mean 0, same std).
S2EF_NORMALIZER = (-0.7554450631141663, 2.887317180633545)
#: IS2RE energy normaliser (mean, std) in eV: fairchem ``configs/oc20/is2re/100k/base.yml``.
IS2RE_NORMALIZER = (-1.525913953781128, 2.279365062713623)
#: (energy, force) loss coefficients on S2EF-2M: ``schnet.yml`` 1/100, ``dpp.yml`` 1/50; every other
#: model uses ``base.yml``'s 2/100 (EquiformerV2 N12 L6 M2, the Gaunt paper's backbone config).
S2EF_LOSS_COEFFICIENTS: dict[str, tuple[float, float]] = {"schnet": (1.0, 100.0), "dimenet-pp": (1.0, 50.0)}
S2EF_DEFAULT_LOSS_COEFFICIENTS = (2.0, 100.0)


@dataclass
class OC20Settings:
    """Task settings (config keys of the task section); defaults = the OC20 protocol."""

    model: Any = None
    energy_target: str = "energy_ref"
    train_split: str = "train"
    val_split: str = "val_id"
    test_splits: tuple[str, ...] = VAL_SPLITS
    normalizer: Any = "oc20"  # "oc20" | "dataset" | "none" | {"mean": float, "std": float}
    energy_coefficient: float | None = None
    force_coefficient: float | None = None
    train_on_free_atoms: bool = True
    eval_batch_size: int = 24
    val_max_structures: int | None = None  # validation_loss on the first N val structures
    graph: GraphSettings = field(default_factory=GraphSettings)

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> "OC20Settings":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"oc20 task settings: unknown keys {unknown}; allowed: {sorted(known)}")
        values = dict(settings)
        graph = values.pop("graph", {}) or {}
        if isinstance(graph, dict):
            graph = GraphSettings(**graph)
        if "test_splits" in values:
            values["test_splits"] = tuple(values["test_splits"])
        parsed = cls(**values, graph=graph)
        if parsed.graph.mode not in ("precompute", "per_batch"):
            raise ConfigError(f"graph.mode must be 'precompute' or 'per_batch', got {parsed.graph.mode!r}")
        return parsed

    def model_name(self) -> str:
        spec = self.model
        name = spec.get("name") if isinstance(spec, dict) else spec
        if not isinstance(name, str) or not name:
            raise ConfigError(f"settings['model'] must be a model name or {{'name': …}}, got {spec!r}")
        return name


def build_oc20_model(settings: OC20Settings, facts: dict[str, Any]):
    """Import ``replibench.models.<name>`` and call its ``build_model(overrides, facts)``."""
    name = settings.model_name()
    overrides = {k: v for k, v in settings.model.items() if k != "name"} if isinstance(settings.model, dict) else {}
    module_name = f"replibench.models.{name.replace('-', '_')}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ConfigError(f"model {name!r}: module {module_name} not found") from error
    if not hasattr(module, "build_model"):
        raise ConfigError(f"model {name!r}: {module_name} has no build_model(overrides, facts)")
    return module.build_model(overrides, facts)
