"""Registries: config names → the module attribute that implements them, imported lazily.

Adding a dataset, task or model is one new module plus one line here. Names are kebab-case and
are the names used in ``config.yaml``, in result paths and on the leaderboard. A contract test
walks every entry and checks it against the config schema and the families.
"""

from __future__ import annotations

import importlib
from typing import Any

from replibench.errors import ConfigError

FAMILIES: dict[str, str] = {
    "ett": "replibench.families.ett:FAMILY",
    "crystals": "replibench.families.crystals:FAMILY",
}

DATASETS: dict[str, str] = {
    "etth1": "replibench.datasets.ett:ETTH1",
    "etth2": "replibench.datasets.ett:ETTH2",
    "ettm1": "replibench.datasets.ett:ETTM1",
    "ettm2": "replibench.datasets.ett:ETTM2",
    "mp-20": "replibench.datasets.crystals:MP20",
    "perov-5": "replibench.datasets.crystals:PEROV5",
    "carbon-24": "replibench.datasets.crystals:CARBON24",
}

TASKS: dict[str, str] = {
    "forecast": "replibench.tasks.forecast:FORECAST",
    "impute": "replibench.tasks.impute:IMPUTE",
    "csp": "replibench.tasks.crystals:CSP",
    "gen": "replibench.tasks.crystals:GEN",
}

MODELS: dict[str, str] = {
    "naive": "replibench.models.naive:NaiveLast",
    "naive-mean": "replibench.models.naive:NaiveMean",
    "dlinear": "replibench.models.dlinear:DLinear",
    "timesnet": "replibench.models.timesnet:TimesNet",
    "diffcsp": "replibench.models.diffcsp:DiffCSP",
    "crysbfn": "replibench.models.crysbfn:CrysBFN",
}

REGISTRIES: dict[str, dict[str, str]] = {
    "family": FAMILIES,
    "dataset": DATASETS,
    "task": TASKS,
    "model": MODELS,
}


def resolve(kind: str, name: str) -> Any:
    """Import and return the object registered as ``name`` in the ``kind`` registry."""
    registry = REGISTRIES[kind]
    if name not in registry:
        raise ConfigError(f"unknown {kind} {name!r}; allowed: {', '.join(sorted(registry))}")
    module_name, _, attribute = registry[name].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module
