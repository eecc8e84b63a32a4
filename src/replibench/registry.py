"""Registries: config names → the module attribute that implements them, imported lazily.

Adding a dataset, task or model is one new module plus one line here. Names are kebab-case and
are the names used in ``config.yaml``, in result paths and on the leaderboard. A contract test
walks every entry and checks it against the config schema and the families.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from replibench.errors import ConfigError

if TYPE_CHECKING:
    from replibench.data.download import RemoteFile

FAMILIES: dict[str, str] = {
    "ett": "replibench.families.ett.family:FAMILY",
    "crystals": "replibench.families.crystals.family:FAMILY",
    "lra": "replibench.families.lra.family:FAMILY",
    "oc20": "replibench.families.oc20.family:FAMILY",
}

DATASETS: dict[str, str] = {
    "etth1": "replibench.families.ett.datasets.ett:ETTH1",
    "etth2": "replibench.families.ett.datasets.ett:ETTH2",
    "ettm1": "replibench.families.ett.datasets.ett:ETTM1",
    "ettm2": "replibench.families.ett.datasets.ett:ETTM2",
    "mp-20": "replibench.families.crystals.datasets:MP20",
    "perov-5": "replibench.families.crystals.datasets:PEROV5",
    "carbon-24": "replibench.families.crystals.datasets:CARBON24",
    "mpts-52": "replibench.families.crystals.datasets:MPTS52",
    "mp-20-fork-subset": "replibench.families.crystals.datasets:MP20_FORK_SUBSET",
    # lra: the six LRA tasks, generated stand-ins, state-tracking tasks
    "listops": "replibench.families.lra.datasets.lra:LISTOPS",
    "text": "replibench.families.lra.datasets.lra:TEXT",
    "retrieval": "replibench.families.lra.datasets.lra:RETRIEVAL",
    "image": "replibench.families.lra.datasets.lra:IMAGE",
    "pathfinder": "replibench.families.lra.datasets.lra:PATHFINDER",
    "path-x": "replibench.families.lra.datasets.lra:PATH_X",
    "listops-generated": "replibench.families.lra.datasets.lra:LISTOPS_GENERATED",
    "pathfinder-generated": "replibench.families.lra.datasets.lra:PATHFINDER_GENERATED",
    "path-x-generated": "replibench.families.lra.datasets.lra:PATH_X_GENERATED",
    "text-generated": "replibench.families.lra.datasets.lra:TEXT_GENERATED",
    "retrieval-generated": "replibench.families.lra.datasets.lra:RETRIEVAL_GENERATED",
    "image-generated": "replibench.families.lra.datasets.lra:IMAGE_GENERATED",
    "parity": "replibench.families.lra.datasets.lra:PARITY",
    "mod-arithmetic": "replibench.families.lra.datasets.lra:MOD_ARITHMETIC",
    "mod-arithmetic-brackets": "replibench.families.lra.datasets.lra:MOD_ARITHMETIC_BRACKETS",
    "s2ef-synthetic-emt": "replibench.families.oc20.datasets.synthetic:S2EF_SYNTHETIC_EMT",
    "is2re-synthetic-emt": "replibench.families.oc20.datasets.synthetic_is2re:IS2RE_SYNTHETIC_EMT",
    "s2ef-200k": "replibench.families.oc20.datasets.s2ef:S2EF_200K",
    "s2ef-2m": "replibench.families.oc20.datasets.s2ef:S2EF_2M",
    "is2re-10k": "replibench.families.oc20.datasets.is2re:IS2RE_10K",
    "is2re-100k": "replibench.families.oc20.datasets.is2re:IS2RE_100K",
    "is2re-all": "replibench.families.oc20.datasets.is2re:IS2RE_ALL",
}

TASKS: dict[str, str] = {
    "forecast": "replibench.families.ett.tasks.forecast:FORECAST",
    "impute": "replibench.families.ett.tasks.impute:IMPUTE",
    "zeroshot": "replibench.families.ett.tasks.zeroshot:ZEROSHOT",
    "zeroshot-lsf": "replibench.families.ett.tasks.zeroshot:ZEROSHOT_LSF",
    "csp": "replibench.families.crystals.tasks.csp_gen:CSP",
    "gen": "replibench.families.crystals.tasks.csp_gen:GEN",
    "recon": "replibench.families.crystals.tasks.cdvae_tasks:RECON",
    "opt": "replibench.families.crystals.tasks.cdvae_tasks:OPT",
    "lra-classify": "replibench.families.lra.tasks.classify:LRA_CLASSIFY",
    "state-tracking": "replibench.families.lra.tasks.state_tracking:STATE_TRACKING",
    "s2ef": "replibench.families.oc20.tasks.s2ef_is2re:S2EF",
    "is2re": "replibench.families.oc20.tasks.s2ef_is2re:IS2RE",
}

MODELS: dict[str, str] = {
    "naive": "replibench.families.ett.models.naive:NaiveLast",
    "naive-mean": "replibench.families.ett.models.naive:NaiveMean",
    "dlinear": "replibench.families.ett.models.dlinear:DLinear",
    "timesnet": "replibench.families.ett.models.timesnet:TimesNet",
    "moirai-moe-small": "replibench.families.ett.models.moirai_moe:MoiraiMoESmall",
    "moirai-moe-base": "replibench.families.ett.models.moirai_moe:MoiraiMoEBase",
    "cdvae": "replibench.families.crystals.models.cdvae:CDVAE",
    "diffcsp": "replibench.families.crystals.models.diffcsp:DiffCSP",
    "crysbfn": "replibench.families.crystals.models.crysbfn:CrysBFN",
    # lra: every LRA model is a preset of one classifier (families/lra/models/presets.py)
    "s4d-legs": "replibench.families.lra.models.sequence_classifier:SequenceClassifier",
    "s4d-inv": "replibench.families.lra.models.sequence_classifier:SequenceClassifier",
    "s4d-lin": "replibench.families.lra.models.sequence_classifier:SequenceClassifier",
    "s4-legs": "replibench.families.lra.models.sequence_classifier:SequenceClassifier",
    "s4-fout": "replibench.families.lra.models.sequence_classifier:SequenceClassifier",
    "s4-ptd": "replibench.families.lra.models.sequence_classifier:SequenceClassifier",
    "s5": "replibench.families.lra.models.sequence_classifier:SequenceClassifier",
    "s5-ptd": "replibench.families.lra.models.sequence_classifier:SequenceClassifier",
    "transformer": "replibench.families.lra.models.sequence_classifier:SequenceClassifier",
    "mamba": "replibench.families.lra.models.linear_rnn:LinearRNN",
    "deltanet": "replibench.families.lra.models.deltanet:DeltaNet",
    "schnet": "replibench.families.oc20.models.schnet:SchNet",
    "dimenet-pp": "replibench.families.oc20.models.dimenet_pp:DimeNetPP",
    "equivariant-cg": "replibench.families.oc20.models.equivariant:EquivariantCG",
    "equivariant-gaunt": "replibench.families.oc20.models.equivariant:EquivariantGaunt",
    "equiformer-v2": "replibench.families.oc20.models.equiformer_v2:EquiformerV2",
    "equiformer-v2-gaunt-selfmix": "replibench.families.oc20.models.equiformer_v2_gaunt:EquiformerV2GauntSelfmix",
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


def family_module(family: str, module: str) -> Any:
    """Import module ``module`` of family package ``family`` (e.g. ``family_module("oc20", "byo")``):
    the one way the shared core reaches a family's code that is not a registered object."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown family {family!r}; allowed: {', '.join(sorted(FAMILIES))}")
    return importlib.import_module(f"replibench.families.{family}.{module}")


# --- datasets: lookups by registry, never by if/elif ------------------------------------------
# Every registered dataset object provides ``name``, ``family``, ``remote_files`` and
# ``preprocess(raw_files, out_dir, *, workers)``.


def dataset_spec(name: str):
    return resolve("dataset", name)


def remote_file(family: str, file_name: str) -> RemoteFile:
    """The spec of ``file_name`` among the registered datasets of ``family``."""
    known = []
    for name in DATASETS:
        spec = dataset_spec(name)
        if spec.family != family:
            continue
        for remote in spec.remote_files:
            if remote.name == file_name:
                return remote
            known.append(remote.name)
    for remote in resolve("family", family).released_files() if family in FAMILIES else ():
        if remote.name == file_name:
            return remote
        known.append(remote.name)
    raise ConfigError(f"no remote file {file_name!r} in family {family!r}; known: {', '.join(sorted(set(known)))}")


def declared_mirror_paths() -> dict[str, RemoteFile]:
    """Every declared remote file of every registered dataset, by its ``mirror_path`` (the key of a
    ``data.checksums`` pin)."""
    declared = {remote.mirror_path: remote for name in DATASETS for remote in dataset_spec(name).remote_files}
    for family in FAMILIES:
        declared.update({remote.mirror_path: remote for remote in resolve("family", family).released_files()})
    return declared
