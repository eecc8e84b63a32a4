"""OC20 tasks: ``s2ef`` (structure → energy + forces) and ``is2re`` (initial structure → relaxed energy).

Protocol (fairchem OCP trainer and the OC20 configs):

* targets: S2EF energy = ``energy_ref`` (adsorption energy; all released OC20 models) unless
  ``energy_target: energy``; IS2RE energy = ``energy_relaxed``. Units eV and eV/Å.
* normalisation: the model predicts ``(E - mean) / std`` and forces ``F / std`` (fairchem's
  ``normalizer`` with the forces' std equal to the energy std, mean 0), so ``-dE/dpos`` of the
  normalised energy is the normalised force. Predictions are de-normalised before scoring.
  ``normalizer: oc20`` uses the constants of the OC20 configs (:data:`S2EF_NORMALIZER`,
  :data:`IS2RE_NORMALIZER`); ``dataset`` computes mean/std of the training targets (for the
  synthetic set, whose EMT energies are on another scale); ``none`` = (0, 1).
* S2EF loss: ``energy_coefficient * MAE(E) + force_coefficient * mean over free atoms of
  ||F_pred - F||_2`` (fairchem ``mae`` + ``l2mae``, ``train_on_free_atoms: True``); the
  coefficients come from the run's settings (the family sets each model's config values), else
  base.yml's 2 / 100. IS2RE loss: MAE(E).
* model selection (``validation_loss``): fairchem's ``primary_metric`` — force MAE (S2EF) or energy
  MAE (IS2RE) on ``val_split``.
* scoring: every split in ``test_splits`` (the four validation splits: OC20 test labels are
  hidden) with :mod:`replibench.families.oc20.metrics.energy_forces`, reported as ``<split>_<metric>``; when all four are
  scored, also ``val_avg_<metric>``, the unweighted mean over the four (the Gaunt paper's Table 1).
* data origin: a dataset whose card says ``synthetic`` (the EMT smoke set) makes every result
  ``data_origin: synthetic``, which the leaderboard never calls a reproduction.

The model is the run's registry model, built as ``cls(cls.Config(**settings["model"],
cutoff=graph cutoff, regress_forces=S2EF))``; its forward is ``model(graph: AtomsGraph) ->
(energy (B,), forces (N, 3) | None)`` in normalised units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replibench.errors import ConfigError, DataError
from replibench.families.oc20.metrics.energy_forces import (
    IS2RE_METRICS, S2EF_METRICS, energy_mae, forces_mae, metrics_over_splits, split_metric_infos,
)
from replibench.families.oc20.metrics.files import score_is2re_arrays, score_s2ef_table
from replibench.runs import RunSpec
from replibench.families.task import Task
from replibench.families.oc20.tasks.data import (
    LossSpec, OC20Batch, StructureSplit, gather_batch, precompute_edges, read_structure_split,
)
from replibench.families.oc20.tasks.settings import (
    IS2RE_LOSS_COEFFICIENTS, IS2RE_NORMALIZER, S2EF_BASE_LOSS_COEFFICIENTS, S2EF_NORMALIZER, OC20Settings,
    model_hyperparameters,
)

#: evaluation batches per prediction unit (a shard is a range of units): ~25k frames at fairchem's
#: eval batch of 24 → ~1.5 h of DimeNet++ on a V100 at 4.6 frames/s; the four S2EF val splits
#: (~4 M frames) are ~160 units
UNIT_BATCHES = 1000


@dataclass
class OC20Data:
    splits: dict[str, StructureSplit]
    settings: OC20Settings
    mean: float  # energy normaliser, eV
    std: float  # energy (and force) normaliser, eV
    data_dir: Path | None = None
    synthetic: bool = False  # the dataset card says the data are generated (EMT smoke set)


def _model_device(model):
    import torch

    parameter = next(iter(model.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


class _OC20Task(Task):
    """Shared loading, batching, prediction loop and scoring of the two OC20 tasks."""

    with_forces = True
    default_normalizer = S2EF_NORMALIZER
    metric_names: tuple[str, ...] = S2EF_METRICS
    base_loss_coefficients = S2EF_BASE_LOSS_COEFFICIENTS
    batches_are_pure = True  # gather_batch: arrays and radius graphs of the indexed structures, no RNG

    def energy_column(self, settings: OC20Settings) -> str:
        raise NotImplementedError

    def add_score_file_arguments(self, parser) -> None:
        from replibench.families.oc20.byo import add_oc20_arguments

        add_oc20_arguments(parser, self.name)

    def score_file(self, options: dict[str, Any]) -> dict[str, Any]:
        from replibench.families.oc20.byo import score_oc20_files

        return score_oc20_files(task=self.name, **options)

    def load(self, data_dir: Path, run: RunSpec, settings: dict[str, Any]) -> OC20Data:
        from replibench.data.tables import read_data_card

        parsed = OC20Settings.from_dict(settings.get("task", {}))
        names = dict.fromkeys([parsed.train_split, parsed.val_split, *parsed.test_splits])
        splits = {}
        for name in names:
            split = read_structure_split(Path(data_dir) / name, name=name, energy_column=self.energy_column(parsed),
                                         with_forces=self.with_forces)
            if parsed.graph.mode == "precompute":
                precompute_edges(split, parsed.graph)
            splits[name] = split
        train_energy = splits[parsed.train_split].energy
        if np.isnan(train_energy).any():
            raise DataError(f"{data_dir}/{parsed.train_split}: training energies contain nulls")
        mean, std = self._normalizer(parsed, train_energy)
        card = read_data_card(data_dir) if (Path(data_dir) / "card.json").is_file() else {}
        synthetic = bool(card.get("notes", {}).get("synthetic", False))
        return OC20Data(splits, parsed, mean, std, Path(data_dir), synthetic)

    def _normalizer(self, settings: OC20Settings, train_energy: np.ndarray) -> tuple[float, float]:
        choice = settings.normalizer
        if isinstance(choice, dict):
            return float(choice["mean"]), float(choice["std"])
        if choice == "oc20":
            return self.default_normalizer
        if choice == "dataset":
            std = float(np.std(train_energy))
            return float(np.mean(train_energy)), std if std > 0 else 1.0
        if choice == "none":
            return 0.0, 1.0
        raise ConfigError(f"normalizer must be 'oc20', 'dataset', 'none' or {{mean, std}}, got {choice!r}")

    def build_model(self, data: OC20Data, run: RunSpec, settings: dict[str, Any]):
        """The run's registry model; its cutoff is the graph's and it predicts forces for S2EF only."""
        from replibench.families.task import build_registered_model

        hyperparameters = model_hyperparameters(run.model, settings.get("model", {}))
        return build_registered_model(run.model, hyperparameters, cutoff=data.settings.graph.cutoff,
                                      regress_forces=self.with_forces)

    def metric_info(self) -> dict[str, Any]:
        return split_metric_infos(self.metric_names)

    def num_train_examples(self, data: OC20Data) -> int:
        return len(data.splits[data.settings.train_split])

    def make_batch(self, data: OC20Data, split: str, indices) -> OC20Batch:
        name = data.settings.train_split if split == "train" else split
        batch = gather_batch(data.splits[name], indices, data.settings.graph)
        energy_coefficient, force_coefficient = self.loss_coefficients(data.settings)
        batch.loss = LossSpec(energy_coefficient, force_coefficient, data.mean, data.std,
                              data.settings.train_on_free_atoms)
        return batch

    def loss_coefficients(self, settings: OC20Settings) -> tuple[float, float]:
        """(energy, force) coefficients: the run's settings, else the task's base config."""
        energy, force = self.base_loss_coefficients
        return (energy if settings.energy_coefficient is None else settings.energy_coefficient,
                force if settings.force_coefficient is None else settings.force_coefficient)

    def training_loss(self, model, batch: OC20Batch):
        """fairchem objective on normalised targets (see :func:`oc20_loss`)."""
        return oc20_loss(model_output=self._forward(model, batch), batch=batch)

    def _forward(self, model, batch: OC20Batch):
        output = model(batch.graph)
        if isinstance(output, (tuple, list)):
            energy, forces = output[0], (output[1] if len(output) > 1 else None)
        else:
            energy, forces = output, None
        return energy.reshape(-1), forces  # (B,), (N, 3) | None — normalised units

    def _predict_split(self, model, data: OC20Data, split: StructureSplit, limit: int | None = None,
                       start: int = 0):
        """De-normalised predictions of structures ``start`` to ``limit`` (exclusive; default: the
        split's end): energies (S,), forces (A, 3)."""
        import torch

        count = len(split) if limit is None else min(limit, len(split))
        size = data.settings.eval_batch_size
        device = _model_device(model)
        was_training = model.training
        model.eval()
        energies, forces = [], []
        try:
            for first in range(start, count, size):
                batch = self.make_batch(data, split.name, torch.arange(first, min(count, first + size))).to(device)
                with torch.set_grad_enabled(self.with_forces):  # gradient-force models need autograd
                    energy, force = self._forward(model, batch)
                energies.append(energy.detach().double().cpu().numpy() * data.std + data.mean)
                if self.with_forces:
                    if force is None:
                        raise DataError("the model returned no forces for S2EF")
                    forces.append(force.detach().double().cpu().numpy().reshape(-1, 3) * data.std)
        finally:
            model.train(was_training)
        if not energies:
            return np.zeros(0), (np.zeros((0, 3)) if self.with_forces else None)
        return np.concatenate(energies), (np.concatenate(forces) if self.with_forces else None)

    # --- sharded prediction: units are blocks of UNIT_BATCHES evaluation batches of each test split,
    # split after split; predictions need no randomness, and blocks keep the evaluation batches whole
    def _unit_blocks(self, data: OC20Data) -> list[tuple[str, int, int]]:
        """(split, first structure, end) of every unit, in order."""
        block = UNIT_BATCHES * data.settings.eval_batch_size
        return [(name, first, min(first + block, len(data.splits[name])))
                for name in data.settings.test_splits for first in range(0, len(data.splits[name]), block)]

    def prediction_units(self, data: OC20Data, settings: dict[str, Any]) -> int:
        return len(self._unit_blocks(data))

    def predict_units(self, model, data: OC20Data, run: RunSpec, settings: dict[str, Any], units: range):
        import pyarrow as pa

        tables = [self._prediction_rows(model, data, name, first, end)
                  for name, first, end in self._unit_blocks(data)[units.start:units.stop]]
        return pa.concat_tables(tables) if tables else self._prediction_rows(model, data, data.settings.test_splits[0], 0, 0)

    def predict(self, model, data: OC20Data, run: RunSpec, settings: dict[str, Any]):
        return self.predict_units(model, data, run, settings, range(self.prediction_units(data, settings)))

    def protocol(self, data: OC20Data, settings: dict[str, Any]) -> dict[str, Any]:
        parsed = data.settings
        return {
            "energy_target": self.energy_column(parsed), "normalizer": {"mean": data.mean, "std": data.std,
                                                                        "source": str(parsed.normalizer)},
            "graph": asdict(parsed.graph), "test_splits": list(parsed.test_splits),
            "structures": {name: len(split) for name, split in data.splits.items()},
            "eval_on_free_atoms": True,
            "split_average": "val_avg_<metric> = unweighted mean of the four val splits' metrics (Gaunt paper)",
            "eval_batch_size": parsed.eval_batch_size,
            "loss_coefficients": dict(zip(("energy", "forces"), self.loss_coefficients(parsed))),
            "data_origin": "synthetic" if data.synthetic else "official",
        }


class S2EFTask(_OC20Task):
    """OC20 S2EF: energy and per-atom forces of one DFT frame."""

    name = "s2ef"
    score_file_help = "OC20 S2EF: per-frame energy + per-atom forces keyed by sid/fid (Parquet)"
    with_forces = True
    default_normalizer = S2EF_NORMALIZER
    metric_names: tuple[str, ...] = S2EF_METRICS
    base_loss_coefficients = S2EF_BASE_LOSS_COEFFICIENTS

    def energy_column(self, settings: OC20Settings) -> str:
        if settings.energy_target not in ("energy_ref", "energy"):
            raise ConfigError(f"energy_target must be 'energy_ref' or 'energy', got {settings.energy_target!r}")
        return settings.energy_target

    def validation_loss(self, model, data: OC20Data, settings: dict[str, Any]) -> float:
        split = data.splits[data.settings.val_split]
        energy, forces = self._predict_split(model, data, split, data.settings.val_max_structures)
        atoms = split.atom_ptr[len(energy)]
        return forces_mae(pred_forces=forces, true_forces=split.forces[:atoms], free_mask=~split.fixed[:atoms])

    def _prediction_rows(self, model, data: OC20Data, name: str, first: int, end: int):
        """Rows of structures ``first``–``end`` of test split ``name``: split, sid, fid, energy (eV), forces (eV/Å)."""
        import pyarrow as pa

        split = data.splits[name]
        energy, forces = self._predict_split(model, data, split, end, start=first)
        offsets = (3 * (split.atom_ptr[first:end + 1] - split.atom_ptr[first])).astype(np.int32)
        return pa.table({
            "split": pa.array([name] * (end - first), pa.string()), "sid": pa.array(split.sid[first:end], pa.int64()),
            "fid": pa.array(split.fid[first:end], pa.int64()), "energy": pa.array(energy, pa.float64()),
            "forces": pa.ListArray.from_arrays(pa.array(offsets), pa.array(forces.reshape(-1), pa.float64())),
        })

    def score(self, predictions, data: OC20Data, settings: dict[str, Any]) -> dict[str, float]:
        return _score_by_split(predictions, data, lambda table, split: score_s2ef_table(
            table, split.s2ef_truth(), pred_source=f"predictions[{split.name}]", truth_source=f"split {split.name}"))


def oc20_loss(*, model_output, batch: OC20Batch):
    """fairchem objective on normalised targets: ``cE * MAE(E) + cF * mean_atoms ||ΔF||_2``
    (``mae`` + ``l2mae``; atoms restricted to free ones when ``batch.loss.free_only``)."""
    import torch

    spec = batch.loss
    energy, forces = model_output  # (B,), (N, 3) | None — normalised units
    target_energy = (batch.energy - spec.mean) / spec.std  # (B,)
    loss = spec.energy_coefficient * torch.mean(torch.abs(energy - target_energy))
    if spec.force_coefficient:
        if forces is None:
            raise DataError("S2EF loss: the model returned no forces")
        target_forces = batch.forces / spec.std  # (N, 3)
        mask = ~batch.graph.fixed if spec.free_only else torch.ones_like(batch.graph.fixed)
        error = torch.linalg.vector_norm(forces - target_forces, dim=-1)  # (N,) per-atom L2 error
        loss = loss + spec.force_coefficient * error[mask].mean()
    return loss


class IS2RETask(_OC20Task):
    """OC20 IS2RE (direct): relaxed adsorption energy from the initial structure."""

    name = "is2re"
    score_file_help = "OC20 IS2RE: relaxed adsorption energy per system keyed by sid (Parquet)"
    with_forces = False
    default_normalizer = IS2RE_NORMALIZER
    metric_names = IS2RE_METRICS
    base_loss_coefficients = IS2RE_LOSS_COEFFICIENTS

    def energy_column(self, settings: OC20Settings) -> str:
        return "energy_relaxed"

    def validation_loss(self, model, data: OC20Data, settings: dict[str, Any]) -> float:
        split = data.splits[data.settings.val_split]
        energy, _ = self._predict_split(model, data, split, data.settings.val_max_structures)
        return energy_mae(pred_energy=energy, true_energy=split.energy[:len(energy)])

    def _prediction_rows(self, model, data: OC20Data, name: str, first: int, end: int):
        """Rows of structures ``first``–``end`` of test split ``name``: split, sid, energy (eV)."""
        import pyarrow as pa

        split = data.splits[name]
        energy, _ = self._predict_split(model, data, split, end, start=first)
        return pa.table({"split": pa.array([name] * (end - first), pa.string()),
                         "sid": pa.array(split.sid[first:end], pa.int64()), "energy": pa.array(energy, pa.float64())})

    def score(self, predictions, data: OC20Data, settings: dict[str, Any]) -> dict[str, float]:
        return _score_by_split(predictions, data, lambda table, split: score_is2re_arrays(
            table, split.sid, split.energy, pred_source=f"predictions[{split.name}]",
            truth_source=f"split {split.name}"))


def _score_by_split(predictions, data: OC20Data, score_one) -> dict[str, float]:
    """Per-split metrics (``<split>_<metric>``) and, over all four val splits, ``val_avg_<metric>``."""
    import pyarrow.compute as pc

    known = set(data.settings.test_splits)
    found = set(predictions.column("split").unique().to_pylist())
    if found - known:
        raise DataError(f"predictions: rows of splits {sorted(found - known)} that this run does not score "
                        f"(test_splits {sorted(known)})")
    per_split = {}
    for name in data.settings.test_splits:
        table = predictions.filter(pc.equal(predictions.column("split"), name))
        per_split[name] = score_one(table, data.splits[name])
    return metrics_over_splits(per_split)


#: registry targets
S2EF = S2EFTask()
IS2RE = IS2RETask()
