"""OC20 task settings (``settings["task"]`` of a run) and the protocol constants they default to.

Constants are named with their source (fairchem's OC20 configs); the task
(:mod:`replibench.families.oc20.tasks.s2ef_is2re`) reads them here and the family (:mod:`replibench.families.oc20.family`)
sets the per-model values (loss coefficients) from the same configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from replibench.families.oc20.types import VAL_SPLITS
from replibench.errors import ConfigError
from replibench.families.oc20.tasks.data import GraphSettings

#: S2EF energy normaliser (mean, std) in eV: fairchem ``configs/oc20/s2ef/2M/base.yml``
#: (``normalizer.energy`` -0.7554450631141663 / 2.887317180633545; forces: mean 0, same std).
S2EF_NORMALIZER = (-0.7554450631141663, 2.887317180633545)
#: IS2RE energy normaliser (mean, std) in eV: fairchem ``configs/oc20/is2re/100k/base.yml``.
IS2RE_NORMALIZER = (-1.525913953781128, 2.279365062713623)
#: (energy, force) loss coefficients of ``configs/oc20/s2ef/2M/base.yml`` (2 / 100), used by every
#: S2EF model config that does not set its own (schnet.yml 1/100 and dpp.yml 1/50 do: the family
#: passes those); IS2RE configs train on the energy alone (MAE, coefficient 1).
S2EF_BASE_LOSS_COEFFICIENTS = (2.0, 100.0)
IS2RE_LOSS_COEFFICIENTS = (1.0, 0.0)
#: hyper-parameters the task decides from the data, not the user (passed to the model's Config)
TASK_DECIDED_MODEL_FIELDS = ("cutoff", "regress_forces")


@dataclass
class OC20Settings:
    """Task settings (keys of ``settings["task"]``); defaults = the OC20 protocol."""

    energy_target: str = "energy_ref"  # S2EF: adsorption energy (all released OC20 models); or "energy"
    train_split: str = "train"
    val_split: str = "val_id"  # fairchem selects checkpoints on val_id (base.yml ``val.src``)
    test_splits: tuple[str, ...] = VAL_SPLITS  # test labels are hidden: the four val splits are scored
    normalizer: Any = "oc20"  # "oc20" | "dataset" | "none" | {"mean": float, "std": float}
    energy_coefficient: float | None = None  # None: the task's base-config value (see above)
    force_coefficient: float | None = None
    train_on_free_atoms: bool = True  # fairchem outputs.forces.train_on_free_atoms
    eval_batch_size: int = 24
    val_max_structures: int | None = None  # validation loss on the first N val structures (None: all)
    graph: GraphSettings = field(default_factory=GraphSettings)

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> "OC20Settings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"oc20 task settings: unknown key(s) {unknown}; allowed: {sorted(known)}")
        values = dict(settings)
        graph = values.pop("graph", None) or {}
        if isinstance(graph, dict):
            graph_known = {f.name for f in fields(GraphSettings)}
            if set(graph) - graph_known:
                raise ConfigError(f"oc20 task settings: unknown graph key(s) {sorted(set(graph) - graph_known)}; "
                                  f"allowed: {sorted(graph_known)}")
            graph = GraphSettings(**graph)
        if "test_splits" in values:
            values["test_splits"] = tuple(values["test_splits"])
        parsed = cls(**values, graph=graph)
        if parsed.graph.mode not in ("precompute", "per_batch"):
            raise ConfigError(f"oc20 task settings: graph.mode must be 'precompute' or 'per_batch', "
                              f"got {parsed.graph.mode!r}")
        if not parsed.test_splits or set(parsed.test_splits) - set(VAL_SPLITS):
            raise ConfigError(f"oc20 task settings: test_splits must be among {list(VAL_SPLITS)} (OC20 test "
                              f"labels are hidden), got {list(parsed.test_splits)}")
        return parsed


def model_hyperparameters(name: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The user's model settings, refusing the fields the task decides (cutoff = the graph's)."""
    decided = sorted(set(hyperparameters) & set(TASK_DECIDED_MODEL_FIELDS))
    if decided:
        raise ConfigError(f"model {name!r}: {decided} are set by the task (the radius graph's cutoff is "
                          f"task.graph.cutoff; forces follow the task); remove them from the model settings")
    return dict(hyperparameters)
