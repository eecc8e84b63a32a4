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
    "lra": "replibench.families.lra:FAMILY",
    "oc20": "replibench.families.oc20:FAMILY",
}

DATASETS: dict[str, str] = {
    "etth1": "replibench.datasets.ett:ETTH1",
    "etth2": "replibench.datasets.ett:ETTH2",
    "ettm1": "replibench.datasets.ett:ETTM1",
    "ettm2": "replibench.datasets.ett:ETTM2",
    "mp-20": "replibench.datasets.crystals:MP20",
    "perov-5": "replibench.datasets.crystals:PEROV5",
    "carbon-24": "replibench.datasets.crystals:CARBON24",
    # lra: the six LRA tasks, generated stand-ins, state-tracking tasks
    "listops": "replibench.datasets.lra:LISTOPS",
    "text": "replibench.datasets.lra:TEXT",
    "retrieval": "replibench.datasets.lra:RETRIEVAL",
    "image": "replibench.datasets.lra:IMAGE",
    "pathfinder": "replibench.datasets.lra:PATHFINDER",
    "path-x": "replibench.datasets.lra:PATH_X",
    "listops-generated": "replibench.datasets.lra:LISTOPS_GENERATED",
    "pathfinder-generated": "replibench.datasets.lra:PATHFINDER_GENERATED",
    "parity": "replibench.datasets.lra:PARITY",
    "mod-arithmetic": "replibench.datasets.lra:MOD_ARITHMETIC",
    "mod-arithmetic-brackets": "replibench.datasets.lra:MOD_ARITHMETIC_BRACKETS",
    "s2ef-synthetic-emt": "replibench.datasets.oc20_synthetic:S2EF_SYNTHETIC_EMT",
    "s2ef-200k": "replibench.datasets.oc20_s2ef:S2EF_200K",
    "s2ef-2m": "replibench.datasets.oc20_s2ef:S2EF_2M",
    "is2re-10k": "replibench.datasets.oc20_is2re:IS2RE_10K",
    "is2re-100k": "replibench.datasets.oc20_is2re:IS2RE_100K",
    "is2re-all": "replibench.datasets.oc20_is2re:IS2RE_ALL",
}

TASKS: dict[str, str] = {
    "forecast": "replibench.tasks.forecast:FORECAST",
    "impute": "replibench.tasks.impute:IMPUTE",
    "csp": "replibench.tasks.crystals:CSP",
    "gen": "replibench.tasks.crystals:GEN",
    "lra-classify": "replibench.tasks.lra:LRA_CLASSIFY",
    "state-tracking": "replibench.tasks.state_tracking:STATE_TRACKING",
    "s2ef": "replibench.tasks.oc20:S2EF",
    "is2re": "replibench.tasks.oc20:IS2RE",
}

MODELS: dict[str, str] = {
    "naive": "replibench.models.naive:NaiveLast",
    "naive-mean": "replibench.models.naive:NaiveMean",
    "dlinear": "replibench.models.dlinear:DLinear",
    "timesnet": "replibench.models.timesnet:TimesNet",
    "diffcsp": "replibench.models.diffcsp:DiffCSP",
    "crysbfn": "replibench.models.crysbfn:CrysBFN",
    # lra: every LRA model is a preset of one classifier (models/lra_presets.py)
    "s4d-legs": "replibench.models.sequence_classifier:SequenceClassifier",
    "s4d-inv": "replibench.models.sequence_classifier:SequenceClassifier",
    "s4d-lin": "replibench.models.sequence_classifier:SequenceClassifier",
    "s4-legs": "replibench.models.sequence_classifier:SequenceClassifier",
    "s4-fout": "replibench.models.sequence_classifier:SequenceClassifier",
    "s4-ptd": "replibench.models.sequence_classifier:SequenceClassifier",
    "s5": "replibench.models.sequence_classifier:SequenceClassifier",
    "s5-ptd": "replibench.models.sequence_classifier:SequenceClassifier",
    "transformer": "replibench.models.sequence_classifier:SequenceClassifier",
    "mamba": "replibench.models.linear_rnn:LinearRNN",
    "deltanet": "replibench.models.deltanet:DeltaNet",
    "schnet": "replibench.models.schnet:SchNet",
    "dimenet-pp": "replibench.models.dimenet_pp:DimeNetPP",
    "equivariant-cg": "replibench.models.equivariant:EquivariantCG",
    "equivariant-gaunt": "replibench.models.equivariant:EquivariantGaunt",
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
