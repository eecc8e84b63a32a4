"""CDVAE's own tasks: reconstruction (``recon``, Table 2) and property optimisation (``opt``, Table 4).

Generation (Table 3) is the shared ``gen`` task (:mod:`.csp_gen`): CDVAE decodes its atom counts from z.

- ``recon`` (``scripts/evaluate.py`` ``reconstructon`` + ``compute_metrics.py`` ``RecEval``): every test
  crystal is encoded, one z is drawn from its posterior and decoded by annealed Langevin dynamics with
  predicted atom count, lattice and types; scored like one-sample CSP (match rate and RMSE of the
  valid predictions, CDVAE's gate).
- ``opt`` (``evaluate.py`` ``optimization`` + ``compute_metrics.py`` ``OptEval``): the first
  ``num_starting_points`` (100) test crystals are encoded (one z each), z is moved by Adam (lr 1e-3)
  for ``num_gradient_steps`` (5,000) steps on the mean of the property head's output (minimising it),
  and decoded at steps ``i % (steps // (num_saved - 1)) == 0`` and at the last step (11 decodings for
  5,000 steps and 10 saved: upstream's rule, which gives one more than ``num_saved_crys``). The
  property of every valid decoded crystal is predicted by the released property model of the
  dataset (``prop_models/<eval_model_name>``); SR5/SR10/SR15 are the fractions of starting points
  whose best (lowest) valid property is at or below the 5th/10th/15th percentile of the training
  property, percentiles fixed in ``compute_metrics.py`` (:data:`PROPERTY_PERCENTILES`).

Task settings (``settings["task"]``): ``sample_batch_size`` (recon), ``num_starting_points``,
``num_gradient_steps``, ``opt_lr``, ``num_saved_crys`` (opt), ``property_model`` (folder of the released
property model; absent: SR and ``wdist_prop`` are reported unavailable with the reason), and the
shared ``limit_test`` / ``splits`` / ``convention``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from replibench.families.crystals.tasks.csp_gen import (
    CrystalStructurePrediction,
    _CrystalTask,
    _MetricInfoTable,
    evaluation_seed,
    metric_workers,
)
from replibench.families.crystals.tasks.data import CrystalData
from replibench.families.crystals.tasks.samples import (
    batch_seed,
    concat_crystals,
    empty_crystals,
    merge_prediction_tables,
    num_sample_batches,
    predictions_table,
)
from replibench.families.metric_info import MetricInfo
from replibench.runs import RunSpec

#: 5th, 10th and 15th percentiles of the training property per property model (``compute_metrics.py``
#: ``Percentiles``, txie-93/cdvae@f857f598): MP-20 formation energy (eV/atom), Carbon-24 energy per atom
#: (eV/atom), Perov-5 heat of formation (eV/atom)
PROPERTY_PERCENTILES = {
    "mp20": (-3.17562208, -2.82196882, -2.52814761),
    "carbon": (-154.527093, -154.45865733, -154.44206825),
    "perovskite": (0.43924842, 0.61202443, 0.7364607),
}
OPT_METRICS = {
    "sr5": MetricInfo("max", "%", "starting points whose best valid optimised crystal's predicted property is at "
                                  "or below the training 5th percentile"),
    "sr10": MetricInfo("max", "%", "as sr5, 10th percentile"),
    "sr15": MetricInfo("max", "%", "as sr5, 15th percentile"),
    "opt_valid": MetricInfo("max", "%", "decoded crystals (all checkpoints) valid under CDVAE's rules"),
}


def _seed(run_seed: int, purpose: str) -> int:
    import numpy as np

    tag = {"recon": 5, "opt": 6}[purpose]
    return int(np.random.SeedSequence([run_seed, tag]).generate_state(1)[0])


class Reconstruction(CrystalStructurePrediction):
    """Prediction units: the test batches of ``sample_batch_size`` crystals, each with its own generator."""

    name = "recon"
    scored_as = "csp"
    score_file_help = None  # outside files are scored as csp (`replibench metrics crystals csp`), the same metrics

    def prediction_units(self, data: CrystalData, settings: dict[str, Any]) -> int:
        return num_sample_batches(self._test_count(data, settings), int(settings.get("task", {}).get("sample_batch_size", 256)))

    def predict_units(self, model, data: CrystalData, run: RunSpec, settings: dict[str, Any], units: range):
        import torch

        n, size = self._test_count(data, settings), int(settings.get("task", {}).get("sample_batch_size", 256))
        device = next(model.parameters()).device
        parts, ids, calls, start = [], [], 0, time.perf_counter()
        model.eval()
        for number in units:
            rows = torch.arange(number * size, min(n, (number + 1) * size))
            generator = torch.Generator(device=device).manual_seed(batch_seed(_seed(run.seed, "recon"), number))
            result = model.reconstruct(self.make_batch(data, "test", rows).to(device), generator=generator)
            parts.append(result.crystals)
            calls += result.network_evaluations
            ids += [data.splits["test"].material_ids[int(i)] for i in rows]
        metadata = {"network_evaluations_per_crystal": str(model.expected_network_evaluations()),
                    "batched_forward_calls": str(calls), "sampling_wall_s": f"{time.perf_counter() - start:.3f}",
                    "num_samples": "1"}
        return predictions_table(ids, [0] * len(ids), concat_crystals(parts) if parts else empty_crystals(), metadata)

    def merge_predictions(self, tables: list, data: CrystalData, settings: dict[str, Any]):
        return merge_prediction_tables(tables)


class PropertyOptimisation(_CrystalTask):
    """Not sharded: 100 latents optimised together, one job. Rows: ``material_id`` of the starting test
    crystal, ``sample_index`` = the decoding checkpoint (0 … 10)."""

    name = "opt"
    scored_as = "opt"
    score_file_help = None  # SR needs the run's own starting points and decodings: no outside files

    def checkpoints(self, settings: dict[str, Any]) -> list[int]:
        """Gradient steps (0-based) after which z is decoded: upstream's interval rule."""
        task = settings.get("task", {})
        steps, saved = int(task.get("num_gradient_steps", 5000)), int(task.get("num_saved_crys", 10))
        interval = steps // (saved - 1)
        return [i for i in range(steps) if i % interval == 0 or i == steps - 1]

    def _optimise(self, model, data: CrystalData, run: RunSpec, settings: dict[str, Any]):
        """The decoded crystals of every checkpoint, as a prediction table without CIFs."""
        import torch

        task = settings.get("task", {})
        n = min(int(task.get("num_starting_points", 100)), self._test_count(data, settings))
        steps, lr = int(task.get("num_gradient_steps", 5000)), float(task.get("opt_lr", 1e-3))
        device = next(model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(_seed(run.seed, "opt"))
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            _, _, z = model.encode(self.make_batch(data, "test", torch.arange(n)).to(device), generator)
        z = z.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        saved_at = set(self.checkpoints(settings))
        frozen = [p for p in model.parameters() if p.requires_grad]
        for p in frozen:  # model.freeze(): only z moves
            p.requires_grad_(False)
        parts, ids, sample_index = [], [], []
        try:
            for step in range(steps):
                optimizer.zero_grad()
                model.fc_property(z).mean().backward()
                optimizer.step()
                if step in saved_at:
                    parts.append(model._sample_result(model.langevin_dynamics(z.detach(), generator)).crystals)
                    ids += [data.splits["test"].material_ids[i] for i in range(n)]
                    sample_index += [len(parts) - 1] * n
        finally:
            for p in frozen:
                p.requires_grad_(True)
        metadata = {"network_evaluations_per_crystal": str(model.expected_network_evaluations()),
                    "batched_forward_calls": str(len(parts) * model.expected_network_evaluations()),
                    "sampling_wall_s": f"{time.perf_counter() - start:.3f}", "num_starting_points": str(n),
                    "gradient_steps": str(steps)}
        return predictions_table(ids, sample_index, concat_crystals(parts), metadata)

    def merge_predictions(self, tables: list, data: CrystalData, settings: dict[str, Any]):
        return merge_prediction_tables(tables)

    def predict(self, model, data: CrystalData, run: RunSpec, settings: dict[str, Any]):
        return self.merge_predictions([self._optimise(model, data, run, settings)], data, settings)

    def score(self, predictions, data: CrystalData, settings: dict[str, Any]) -> dict[str, float | None]:
        """SR5/10/15 (%) with the released property model, validity of the decoded crystals (CDVAE rules)."""
        from replibench.families.crystals.datasets.sources import dataset_spec
        from replibench.families.crystals.metrics.assess import assess_crystal
        from replibench.parallel import ordered_map

        task = settings.get("task", {})
        cifs = [cif or "" for cif in predictions.column("cif").to_pylist()]
        records = ordered_map(assess_crystal, [(cif, "cdvae", False, True) for cif in cifs],
                              workers=metric_workers(task))
        metrics: dict[str, float | None] = {"opt_valid": 100.0 * sum(r.valid for r in records) / max(len(records), 1)}
        model_name = dataset_spec(data.dataset).eval_model_name
        property_model = load_property_model_for(task, model_name)
        unavailable: dict[str, str] = {}
        if property_model is None:
            reason = (f"no property model: task.property_model is not set (CDVAE's released prop_models/{model_name} "
                      f"predicts the property SR is judged on)")
            for name in ("sr5", "sr10", "sr15"):
                metrics[name] = None
                unavailable[name] = reason
        else:
            metrics.update(success_rates(predictions, records, property_model, PROPERTY_PERCENTILES[model_name]))
        data.evaluation = {"unavailable": unavailable, "property_model": task.get("property_model"),
                           "percentiles": list(PROPERTY_PERCENTILES[model_name]),
                           "decoded": len(records), "valid": sum(r.valid for r in records)}
        return metrics

    def metric_info(self) -> dict[str, Any]:
        return _MetricInfoTable(OPT_METRICS, OPT_METRICS.__getitem__)

    def protocol(self, data: CrystalData, settings: dict[str, Any]) -> dict[str, Any]:
        task = settings.get("task", {})
        protocol = {"convention": "cdvae", "splits": data.split_files,
                    "num_starting_points": int(task.get("num_starting_points", 100)),
                    "num_gradient_steps": int(task.get("num_gradient_steps", 5000)),
                    "opt_lr": float(task.get("opt_lr", 1e-3)), "decoded_at_steps": self.checkpoints(settings),
                    "data_origin": "official" if task.get("limit_test") is None else "official-subset"}
        if data.evaluation is not None:
            protocol.update(data.evaluation)
        return protocol


def success_rates(predictions, records: list, property_model, percentiles) -> dict[str, float]:
    """SR5/10/15 in % (``OptEval.get_success_rate``): per starting point the lowest predicted property over
    its valid decoded crystals (+inf when none is valid), compared with each percentile."""
    import numpy as np
    from pymatgen.core import Structure

    starts = predictions.column("material_id").to_pylist()
    order = list(dict.fromkeys(starts))
    best = {start: np.inf for start in order}
    valid_rows = [i for i, r in enumerate(records) if r.valid]
    if valid_rows:
        values = property_model([Structure.from_dict(records[i].structure_dict) for i in valid_rows])
        for i, value in zip(valid_rows, values):
            best[starts[i]] = min(best[starts[i]], float(value))
    best_values = np.array([best[start] for start in order])
    return {f"sr{p}": float(100.0 * np.mean(best_values <= threshold))
            for p, threshold in zip((5, 10, 15), percentiles)}


def load_property_model_for(task_settings: dict[str, Any], model_name: str):
    """The callable (pymatgen structures -> property values) of the property model folder named in
    ``task_settings["property_model"]``, or None when none is configured."""
    folder = task_settings.get("property_model")
    if not folder:
        return None
    from replibench.families.crystals.models.cdvae_property import structure_property_predictor

    return structure_property_predictor(Path(folder), eval_model_name=model_name)


RECON = Reconstruction()
OPT = PropertyOptimisation()
