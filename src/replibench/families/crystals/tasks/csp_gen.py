"""Crystal tasks: structure prediction (``csp``) and ab initio generation (``gen``).

- ``csp`` (DiffCSP Sec. 5.1, CrysBFN Sec. 5.1): for every test structure its composition (atom count
  and types) is given and ``num_samples`` structures are sampled (1, or 20 in the multi-sample rows).
- ``gen`` (CDVAE protocol as used by DiffCSP/CrysBFN): ``num_generated`` crystals (10,000 in the
  papers) are sampled with atom counts drawn from the training split's histogram of atom counts.

Settings: ``settings["model"]`` holds the model config fields (``DiffCSPConfig`` / ``CrysBFNConfig``),
``settings["task"]`` the protocol: ``num_samples`` (csp), ``num_generated`` (gen),
``sample_batch_size``, ``eval_batch_size``, ``convention`` (cdvae | diffcsp | crysbfn: the model's
paper's evaluation rules), ``extra_conventions`` (the same samples scored under other papers' rules
too), ``report_samples`` (csp: smaller sample counts reported from the first samples, e.g. [1] of a
20-sample run), ``allow_fewer_valid`` (gen: EMDs on all valid crystals when fewer than the papers'
1,000; smoke only), ``splits`` (role -> file stem; the smoke preset trains on ``val``), ``limit_test``
(first n test structures; smoke only), ``num_workers`` (metric evaluation processes; default: the
job's threads). Predictions are a pyarrow table,
one row per generated structure: material_id (the test structure answered in csp, ``gen-000000``…
in gen), sample_index, num_atoms, atomic_numbers, frac_coords, lattice, and cif (null when the sampled
lattice cannot make a structure, which the metrics count as invalid).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replibench.runs import RunSpec
from replibench.families.task import Task
from replibench.families.crystals.tasks.data import CrystalData, gather_batch, load_crystal_data
from replibench.families.crystals.tasks.samples import (
    concat_crystals,
    empty_crystals,
    measure_sampling,
    merge_prediction_tables,
    num_sample_batches,
    predictions_table,
)

DEFAULT_SPLITS = {"train": "train", "val": "val", "test": "test"}
CONVENTIONS = ("cdvae", "diffcsp", "crysbfn")
_SEED_TAGS = {"validation": 0, "csp": 1, "gen-counts": 2, "gen": 3, "efficiency": 4}


def evaluation_seed(run_seed: int, purpose: str, index: int = 0) -> int:
    """Seed of an evaluation generator, derived from the run seed so that test numbers do not depend
    on training; sample k of CSP has its own stream, so k=1 results are a prefix of k=20 results."""
    import numpy as np

    return int(np.random.SeedSequence([run_seed, _SEED_TAGS[purpose], index]).generate_state(1)[0])


class _CrystalTask(Task):
    """Shared loading, batching, training and validation for the crystal tasks."""

    scored_as = "csp"  # the metric suite the predictions get: "csp" (match rate, RMSE) or "gen"

    def add_score_file_arguments(self, parser) -> None:
        from replibench.families.crystals.byo import add_crystal_arguments

        add_crystal_arguments(parser, self.name)

    def score_file(self, options: dict[str, Any]) -> dict[str, Any]:
        from replibench.families.crystals.byo import score_crystal_files

        return score_crystal_files(task=self.name, **options)

    def load(self, data_dir: Path, run: RunSpec, settings: dict[str, Any]) -> CrystalData:
        task = settings.get("task", {})
        for convention in (task.get("convention", "diffcsp"), *task.get("extra_conventions", ())):
            if convention not in CONVENTIONS:
                from replibench.errors import ConfigError

                raise ConfigError(f"settings['task'] conventions must be among {CONVENTIONS}, found {convention!r}")
        data = load_crystal_data(
            Path(data_dir), dataset=run.dataset, seed=run.seed, split_files=task.get("splits", DEFAULT_SPLITS)
        )
        if _reads_crystal_graphs(run.model):  # CDVAE: CrystalNN graph, lengths/angles, the training property
            from replibench.families.crystals.datasets.sources import dataset_spec
            from replibench.families.crystals.tasks.cdvae_data import read_crystal_graphs

            prop = dataset_spec(run.dataset).target_property
            stems = {stem: read_crystal_graphs(Path(data_dir) / f"{stem}.parquet", prop)
                     for stem in dict.fromkeys(data.split_files.values())}
            data.graphs = {role: stems[stem] for role, stem in data.split_files.items()}
        return data

    def build_model(self, data: CrystalData, run: RunSpec, settings: dict[str, Any]):
        from replibench.families.task import build_registered_model

        # the elements the data holds are a fact; lattice_std is a setting (CrysBFN's released
        # configs fix it per dataset: the presets carry their values)
        model = build_registered_model(run.model, dict(settings.get("model", {})), task=self.name,
                                       type_vocab=tuple(int(z) for z in data.type_vocab))
        if data.graphs is not None:  # scalers fitted on the training split, as CDVAE's data module does
            model.fit_data_statistics(data.splits["train"], data.graphs["train"])
        return model

    def num_train_examples(self, data: CrystalData) -> int:
        return len(data.splits["train"])

    def make_batch(self, data: CrystalData, split: str, indices):
        if data.graphs is not None:
            from replibench.families.crystals.tasks.cdvae_data import gather_cdvae_batch

            return gather_cdvae_batch(data.splits[split], data.graphs[split], indices)
        return gather_batch(data.splits[split], indices)

    def start_epoch(self, model, epoch: int) -> None:
        """CDVAE feeds the true lattice to its decoder while ``epoch <= teacher_forcing_max_epoch``
        (Lightning's 0-based ``current_epoch``); other models have no per-epoch switch."""
        if hasattr(model, "teacher_forcing"):
            model.teacher_forcing = epoch <= model.config.teacher_forcing_max_epoch

    def training_loss(self, model, batch):
        return model.loss(batch)

    def validation_loss(self, model, data: CrystalData, settings: dict[str, Any]) -> float:
        """The training objective on the validation split with a fixed generator (same draws every
        epoch), averaged over structures."""
        import torch

        device = next(model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(evaluation_seed(data.seed, "validation"))
        split = data.splits["val"]
        size = int(settings.get("task", {}).get("eval_batch_size", 256))
        objective = getattr(model, "validation_loss", model.loss)  # CDVAE validates on coord + type terms only
        was_training, total = model.training, 0.0
        model.eval()
        with torch.no_grad():
            for lo in range(0, len(split), size):
                idx = torch.arange(lo, min(lo + size, len(split)))
                total += float(objective(self.make_batch(data, "val", idx).to(device), generator)) * idx.shape[0]
        model.train(was_training)
        return total / len(split)

    def _test_count(self, data: CrystalData, settings: dict[str, Any]) -> int:
        limit = settings.get("task", {}).get("limit_test")
        return len(data.splits["test"]) if limit is None else min(int(limit), len(data.splits["test"]))

    def score(self, predictions, data: CrystalData, settings: dict[str, Any]) -> dict[str, float | None]:
        """The full metric suite of the papers on the stored samples (their CIFs), under the run's
        ``convention`` and every one of ``extra_conventions``, plus the sampling cost recorded in
        the prediction file. Names: :mod:`replibench.families.crystals.metrics.samples`. The reasons for
        unavailable metrics, counts and property histograms go to :meth:`protocol` (the evaluate
        stage asks for it after scoring)."""
        import pyarrow as pa

        from replibench.families.crystals.metrics import evaluate_samples

        test, n = data.splits["test"], self._test_count(data, settings)
        task = settings.get("task", {})
        truth = pa.table({"material_id": test.material_ids[:n], "cif": test.cifs[:n]})
        evaluation = evaluate_samples(
            task=self.scored_as,
            predictions=predictions.select(["material_id", "sample_index", "cif"]),
            truth=truth,
            convention=task.get("convention", "diffcsp"),
            dataset=data.dataset,
            seed=data.seed,
            num_workers=metric_workers(task),
            primary_samples=int(task.get("num_samples", 1)) if self.scored_as == "csp" else None,
            ks=task.get("report_samples"),
            extra_conventions=task.get("extra_conventions", ()),
            allow_fewer_valid=bool(task.get("allow_fewer_valid", False)),
            property_model=self._property_model(data, task),
        )
        metrics = {**evaluation["metrics"], **sampling_cost(predictions)}
        data.evaluation = {"unavailable": evaluation["unavailable"], "by_convention": evaluation["details"]}
        return metrics

    def _property_model(self, data: CrystalData, task: dict[str, Any]):
        """Generation: the released property model of the dataset when ``task.property_model`` names its
        folder (wdist_prop), else None (wdist_prop unavailable, with the reason)."""
        if self.scored_as != "gen" or not task.get("property_model"):
            return None
        from replibench.families.crystals.datasets.sources import dataset_spec
        from replibench.families.crystals.tasks.cdvae_tasks import load_property_model_for

        return load_property_model_for(task, dataset_spec(data.dataset).eval_model_name)

    def metric_info(self) -> dict[str, Any]:
        """Direction and unit of every metric this task can write (suffixed names included)."""
        from replibench.families.crystals.metrics import METRICS, metric_info_for

        return _MetricInfoTable(METRICS, metric_info_for)

    def protocol(self, data: CrystalData, settings: dict[str, Any]) -> dict[str, Any]:
        task = settings.get("task", {})
        full = task.get("limit_test") is None and data.split_files == DEFAULT_SPLITS
        protocol = {
            "convention": task.get("convention", "diffcsp"),
            "extra_conventions": list(task.get("extra_conventions", ())),
            "splits": data.split_files,
            "test_structures": self._test_count(data, settings),
            "limit_test": task.get("limit_test"),
            "data_origin": "official" if full else "official-subset",
            "sample_batch_size": int(task.get("sample_batch_size", 500)),
            "type_vocab_size": len(data.type_vocab),
            "train_lattice_std": data.lattice_std,
        }
        if self.scored_as == "csp":
            protocol.update(num_samples=int(task.get("num_samples", 1)),
                            report_samples=sorted(task.get("report_samples") or []))
        else:
            protocol.update(num_generated=int(task.get("num_generated", 10000)),
                            allow_fewer_valid=bool(task.get("allow_fewer_valid", False)))
        if data.evaluation is not None:
            protocol.update(data.evaluation)
        return protocol


class _MetricInfoTable(dict):
    """``METRICS`` that also answers for suffixed names (``match_rate_k1@crysbfn``)."""

    def __init__(self, base: dict[str, Any], lookup) -> None:
        super().__init__(base)
        self._lookup = lookup

    def __contains__(self, name: object) -> bool:
        if dict.__contains__(self, name):
            return True
        try:
            self._lookup(name)
        except (KeyError, ValueError):
            return False
        return True

    def __missing__(self, name: str):
        return self._lookup(name)


def _reads_crystal_graphs(model_name: str) -> bool:
    """Whether registry model ``model_name`` reads the CrystalNN graph (CDVAE's encoder) — a class attribute."""
    from replibench.registry import resolve

    return bool(getattr(resolve("model", model_name), "reads_crystal_graphs", False))


def metric_workers(task_settings: dict[str, Any]) -> int:
    """Processes for metric evaluation: ``num_workers`` if set, else the job's threads (the evaluate
    stage sets torch's thread count from Snakemake's ``threads``). Results do not depend on it."""
    import torch

    return int(task_settings.get("num_workers") or torch.get_num_threads())


def sampling_cost(predictions) -> dict[str, float]:
    """``sampling_s_per_1000`` and ``nfe_per_crystal`` from the prediction file's metadata."""
    metadata = predictions.schema.metadata or {}
    wall, nfe = metadata.get(b"sampling_wall_s"), metadata.get(b"network_evaluations_per_crystal")
    if wall is None or nfe is None or predictions.num_rows == 0:
        return {}
    return {"sampling_s_per_1000": float(wall) * 1000.0 / predictions.num_rows, "nfe_per_crystal": float(nfe)}


def _sampling_sizes(settings: dict[str, Any]) -> tuple[int, int]:
    """(samples per test crystal, crystals per sample batch) of a run's ``task`` settings."""
    task = settings.get("task", {})
    return int(task.get("num_samples", 1)), int(task.get("sample_batch_size", 500))


def _sampling_metadata(model, stats: list[dict[str, Any]], **extra: str) -> dict[str, str]:
    return {"network_evaluations_per_crystal": str(model.expected_network_evaluations()),
            "batched_forward_calls": str(sum(s["batched_forward_calls"] for s in stats)),
            "sampling_wall_s": f"{sum(s['wall_s'] for s in stats):.3f}", **extra}


class CrystalStructurePrediction(_CrystalTask):
    """Prediction units: the sample batches, sample index by sample index (unit u is batch
    ``u % B`` of sample ``u // B``, B batches per sample): each has its own generator
    (:func:`~replibench.families.crystals.tasks.samples.batch_seed`), so shards draw exactly what one
    job would."""

    name = "csp"
    score_file_help = ("crystal structure prediction: CSVs with material_id, cif; several rows per "
                       "material_id are its samples in file order")

    def prediction_units(self, data: CrystalData, settings: dict[str, Any]) -> int:
        k, size = _sampling_sizes(settings)
        return k * num_sample_batches(self._test_count(data, settings), size)

    def predict_units(self, model, data: CrystalData, run: RunSpec, settings: dict[str, Any], units: range):
        import torch

        test, n = data.splits["test"], self._test_count(data, settings)
        k, size = _sampling_sizes(settings)
        per_sample = num_sample_batches(n, size)
        batch = gather_batch(test, torch.arange(n))
        parts, ids, sample_index, stats = [], [], [], []
        for sample in range(k):  # one generator per sample index: sample 0 is the same for k=1 and k=20
            mine = range(max(units.start - sample * per_sample, 0), min(units.stop - sample * per_sample, per_sample))
            if not len(mine):
                continue
            seed = evaluation_seed(run.seed, "csp", sample)
            stats.append(measure_sampling(model, batch.num_atoms, batch.atomic_numbers, batch_size=size, seed=seed,
                                          batches=mine))
            parts.append(stats[-1]["samples"])
            rows = range(mine.start * size, min(n, mine.stop * size))
            ids += [test.material_ids[i] for i in rows]
            sample_index += [sample] * len(rows)
        crystals = concat_crystals(parts) if parts else empty_crystals()
        return predictions_table(ids, sample_index, crystals, _sampling_metadata(model, stats, num_samples=str(k)))

    def merge_predictions(self, tables: list, data: CrystalData, settings: dict[str, Any]):
        """Sample-major shards → test order, then sample index (as the paper's scripts list them)."""
        n, (k, _) = self._test_count(data, settings), _sampling_sizes(settings)
        return merge_prediction_tables(tables, [sample * n + i for i in range(n) for sample in range(k)])

    def predict(self, model, data: CrystalData, run: RunSpec, settings: dict[str, Any]):
        units = range(self.prediction_units(data, settings))
        return self.merge_predictions([self.predict_units(model, data, run, settings, units)], data, settings)


class AbInitioGeneration(_CrystalTask):
    """Prediction units: the sample batches of ``num_generated`` crystals, whose atom counts are drawn
    once from the training histogram (all of them in every shard: the draw is cheap and fixed)."""

    name = "gen"
    scored_as = "gen"
    score_file_help = "ab initio generation: a CSV with material_id, cif, one row per generated crystal"

    def prediction_units(self, data: CrystalData, settings: dict[str, Any]) -> int:
        return num_sample_batches(int(settings.get("task", {}).get("num_generated", 10000)), _sampling_sizes(settings)[1])

    def predict_units(self, model, data: CrystalData, run: RunSpec, settings: dict[str, Any], units: range):
        import torch

        count, size = int(settings.get("task", {}).get("num_generated", 10000)), _sampling_sizes(settings)[1]
        if getattr(model, "decodes_atom_counts", False):  # CDVAE: counts come from z, not from a histogram
            num_atoms = count
        else:
            counts_gen = torch.Generator().manual_seed(evaluation_seed(run.seed, "gen-counts"))
            num_atoms = torch.multinomial(data.num_atoms_probs.float(), count, replacement=True, generator=counts_gen)
        stats = measure_sampling(model, num_atoms, None, batch_size=size, seed=evaluation_seed(run.seed, "gen"),
                                 batches=units)
        rows = range(units.start * size, min(count, units.stop * size)) if len(units) else range(0)
        return predictions_table([f"gen-{i:06d}" for i in rows], [0] * len(rows),
                                 stats["samples"] if stats["samples"] is not None else empty_crystals(),
                                 _sampling_metadata(model, [stats]))

    def merge_predictions(self, tables: list, data: CrystalData, settings: dict[str, Any]):
        return merge_prediction_tables(tables)

    def predict(self, model, data: CrystalData, run: RunSpec, settings: dict[str, Any]):
        units = range(self.prediction_units(data, settings))
        return self.merge_predictions([self.predict_units(model, data, run, settings, units)], data, settings)


def sampling_efficiency(
    model, data: CrystalData, run: RunSpec, settings: dict[str, Any], num_crystals: int = 1000
) -> dict[str, Any]:
    """Wall time and network evaluations per 1,000 crystals for this run's model and task: CSP uses the
    first test compositions (cycled), generation draws atom counts from the training histogram."""
    import torch

    size = int(settings.get("task", {}).get("sample_batch_size", 500))
    seed = evaluation_seed(run.seed, "efficiency")
    if model.config.task in ("csp", "recon", "opt"):
        test = data.splits["test"]
        batch = gather_batch(test, torch.arange(num_crystals) % len(test))
        stats = measure_sampling(model, batch.num_atoms, batch.atomic_numbers, batch_size=size, seed=seed)
    elif getattr(model, "decodes_atom_counts", False):
        stats = measure_sampling(model, num_crystals, None, batch_size=size, seed=seed)
    else:
        counts = torch.multinomial(
            data.num_atoms_probs.float(), num_crystals, replacement=True, generator=torch.Generator().manual_seed(seed)
        )
        stats = measure_sampling(model, counts, None, batch_size=size, seed=seed)
    stats.pop("samples")
    return stats


CSP = CrystalStructurePrediction()
GEN = AbInitioGeneration()
