"""Crystal family (CDVAE benchmarks MP-20, Perov-5, Carbon-24, and DiffCSP's MPTS-52 × DiffCSP, CrysBFN × csp, gen).

Runs and their variants:

- ``csp`` — variant ``{"samples": K}``, named ``k<K>``: ``K`` samples per test structure, ``K`` the largest of the entry's
  ``samples`` (DiffCSP Table 1 reports 1 and 20). One run draws ``K`` samples with one generator
  stream per sample index, so its first ``k`` samples *are* a ``k``-sample run; the run's
  ``metrics.json`` holds ``match_rate_k1`` … for the smaller counts and :meth:`derived_results` turns
  them into ``k1`` rows (one trained model, not one per row) — unless the preset samples one sample
  with other settings (DiffCSP on Carbon-24: Langevin step 5e-6 for 1 sample, 5e-7 for 20), in which
  case the ``k1`` row gets a run of its own (``crystals_presets.DIFFCSP_PAPER_SINGLE_SAMPLE``).
- ``gen`` — variant ``default``: the papers' 10,000 crystals (smoke: 100).
- ``steps`` (optional) sets the model's step count (CrysBFN ``num_steps``, DiffCSP ``timesteps``,
  both fixed at training): variant value ``"steps": N``, which adds ``-steps<N>`` to the name
  (``{"samples": 1, "steps": 10}`` is ``k1-steps10``: CrysBFN's 10-step row; gen: ``steps10``).

Every run is scored under its model's paper's convention (DiffCSP → ``diffcsp``, CrysBFN →
``crysbfn``), so each number sits beside that paper's number; ``conventions`` in the config adds
others, whose metrics carry ``@<convention>`` (``match_rate@crysbfn``).

Settings = :mod:`.crystals_presets` (the papers' per dataset and task; smoke sizes) + the variant
+ the user's ``overrides``. The smoke preset trains on val.csv and tests on test.csv (both in the
offline mirror, byte-identical to upstream); paper reads all three CSVs.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from replibench.errors import ConfigError
from replibench.families.base import RehearsalProxy, Cost, Family, PaperTable, Resources, deep_merge, entry_preset, entry_seeds
from replibench.families.crystals.presets import (
    CDVAE_PAPER,
    CDVAE_SMOKE,
    CRYSBFN_PAPER,
    CRYSBFN_SMOKE,
    DIFFCSP_PAPER,
    DIFFCSP_PAPER_SINGLE_SAMPLE,
    DIFFCSP_SMOKE,
)
from replibench.runs import RunSpec

#: each model's own paper's evaluation convention (replibench.families.crystals.metrics.conventions)
PAPER_CONVENTION = {"cdvae": "cdvae", "diffcsp": "diffcsp", "crysbfn": "crysbfn"}
#: the model config field that holds the sampling step count
STEP_FIELD = {"cdvae": "n_step_each", "diffcsp": "timesteps", "crysbfn": "num_steps"}
#: models whose class reads the CrystalNN graph (``reads_crystal_graphs``; named here so planning imports no
#: torch, checked against the classes by a test)
GRAPH_MODELS = {"cdvae"}
#: sampling steps of the paper presets (DiffCSP conf/model/diffusion.yaml timesteps; CrysBFN's
#: released scripts STEPS=1000; CDVAE: Langevin steps per noise level, scripts/evaluate.py n_step_each),
#: the steps a run has when its variant does not set them
PAPER_SAMPLING_STEPS = {"cdvae": 100, "diffcsp": 1000, "crysbfn": 1000}
_PRESETS = {("cdvae", "paper"): CDVAE_PAPER, ("cdvae", "smoke"): CDVAE_SMOKE,
            ("diffcsp", "paper"): DIFFCSP_PAPER, ("diffcsp", "smoke"): DIFFCSP_SMOKE,
            ("crysbfn", "paper"): CRYSBFN_PAPER, ("crysbfn", "smoke"): CRYSBFN_SMOKE}
#: (model, preset) -> dataset -> model settings of 1-sample CSP runs that differ from multi-sample ones
_SINGLE_SAMPLE = {("diffcsp", "paper"): DIFFCSP_PAPER_SINGLE_SAMPLE}


def single_sample_model(model: str, dataset: str, preset: str) -> dict[str, Any]:
    """Model settings a 1-sample CSP run uses instead of the preset's (empty: the same sampler)."""
    return dict(_SINGLE_SAMPLE.get((model, preset), {}).get(dataset, {}))


def variant_values(task: str, *, samples: int = 1, steps: int | None = None) -> dict[str, int]:
    """CSP: ``{"samples": K}``; generation: ``{}``; either with ``"steps": N`` when the entry sets it."""
    values = {"samples": int(samples)} if task == "csp" else {}
    if steps:
        values["steps"] = int(steps)
    return values


def variant_name(task: str, values: dict[str, Any]) -> str:
    """``k20`` / ``k1-steps10`` for CSP, ``default`` / ``steps10`` for generation."""
    allowed = {"samples", "steps"} if task == "csp" else {"steps"}
    if not set(values) <= allowed or (task == "csp") != ("samples" in values):
        raise ValueError(f"crystals {task} variant values {values} must be "
                         + ("{'samples': K[, 'steps': N]}" if task == "csp" else "{} or {'steps': N}"))
    steps = f"steps{values['steps']}" if values.get("steps") else ""
    if task == "csp":
        return f"k{values['samples']}" + (f"-{steps}" if steps else "")
    return steps or "default"


CRYSTAL_LABELS = {"mp-20": "MP-20", "perov-5": "Perov-5", "mpts-52": "MPTS-52",
                  "cdvae": "CDVAE", "diffcsp": "DiffCSP", "crysbfn": "CrysBFN",
                  "k1": "k = 1", "k20": "k = 20", "match_rate": "match rate (%)", "rmse": "RMSE",
                  "k1-steps10": "k = 1, 10 steps", "k1-steps200": "k = 1, 200 steps", "default": "", "steps10": "(10 steps)",
                  "struct_validity": "validity: struct. (%)", "comp_validity": "validity: comp. (%)",
                  "cov_recall": "COV-R (%)", "cov_precision": "COV-P (%)", "wdist_density": "wdist ρ",
                  "wdist_prop": "wdist E", "wdist_num_elems": "wdist # elem.", "nfe_per_crystal": "NFE per crystal",
                  "carbon-24": "Carbon-24", "sr5": "SR5 (%)", "sr10": "SR10 (%)", "sr15": "SR15 (%)"}


#: training crystals per dataset (research/materials.md §1: MP-20 27,136; Perov-5 11,356; Carbon-24 6,091;
#: MPTS-52 27,380, its published chronological split, datasets/sources.py)
TRAIN_CRYSTALS = {"mp-20": 27_136, "perov-5": 11_356, "carbon-24": 6_091, "mpts-52": 27_380}
#: test crystals per dataset (MP-20 9,046; Perov-5 3,785; Carbon-24 2,030: research/materials.md §1;
#: MPTS-52 8,096)
TEST_CRYSTALS = {"mp-20": 9_046, "perov-5": 3_785, "carbon-24": 2_030, "mpts-52": 8_096}
#: mean atoms and mean squared atoms per crystal (CSPNet is fully connected within a crystal: edges ~ N²)
#: of MPTS-52 (GenSI-THUAIR/CrysBFN conf/data/mpts.yaml num_atoms_dist, all 40,476 crystals) and of the
#: MP-20 fork subset's 847 training crystals (counted here with pymatgen): the rehearsal's stand-in for
#: MPTS-52 has ~1.9x fewer atoms and ~4.1x fewer edges per crystal, so its step times underestimate
STAND_IN_ATOMS = {"mpts-52": (20.41, 598.5), "mp-20-fork-subset": (10.68, 144.3)}
#: mean squared atoms per Carbon-24 test crystal after CDVAE preprocessing (all 2,030 of test.csv, counted
#: with pymatgen; mean 9.19 atoms, at most 24): what a Carbon-24 sampling step costs per crystal in CSPNet
CARBON24_MEAN_SQUARED_ATOMS = 97.63
#: GPU-hours per crystal-epoch of training: PaddleMaterial's DiffCSP on MP-20, ~13.5 h for 1,000
#: epochs of 27,136 crystals on one GPU (research/materials.md §3; GPU model not stated)
GPU_HOURS_PER_CRYSTAL_EPOCH = 13.5 / (1_000 * 27_136)
#: CPU-hours of scoring one CSP sample (fingerprints + StructureMatcher) and of a generation
#: evaluation, single core: research/materials.md §7.4 (MP-20: 20 samples ≈ 9 h; generation ≈ 1 h)
CSP_CPU_HOURS_PER_SAMPLE = 9.0 / (20 * 9_046)
GEN_CPU_HOURS = 1.0
#: processes of the CPU job that gathers a crystal run's prediction shards and scores them
SCORE_CPUS = 16


class CrystalsFamily(Family):
    name = "crystals"
    paper_tables = (
        PaperTable("DiffCSP Table 1: crystal structure prediction (one sample, k = 1; best of 20, k = 20)",
                   rows=("dataset", "model"), columns=("variant", "metric"), select={"task": ("csp",)},
                   paper="DiffCSP", table="Table 1",
                   order={"model": ("cdvae", "diffcsp"), "variant": ("k1", "k20"), "metric": ("match_rate", "rmse")},
                   labels=CRYSTAL_LABELS),
        PaperTable("Ab initio generation (CDVAE, DiffCSP and CrysBFN tables)",
                   rows=("dataset", "model", "variant"), columns=("metric",), select={"task": ("gen",)},
                   order={"model": ("cdvae", "diffcsp", "crysbfn"),
                          "metric": ("struct_validity", "comp_validity", "cov_recall", "cov_precision",
                                     "wdist_density", "wdist_prop", "wdist_num_elems", "nfe_per_crystal")},
                   labels=CRYSTAL_LABELS),
        PaperTable("CDVAE Table 2: reconstruction (match rate, RMSE)", rows=("model",),
                   columns=("metric", "dataset"), select={"task": ("recon",), "variant": ("default",)},
                   paper="CDVAE", table="Table 2",
                   order={"metric": ("match_rate", "rmse"), "dataset": ("perov-5", "carbon-24", "mp-20")},
                   labels=CRYSTAL_LABELS),
        PaperTable("CDVAE Table 4: property optimisation (success rates)", rows=("model",),
                   columns=("dataset", "metric"), select={"task": ("opt",), "variant": ("default",)},
                   paper="CDVAE", table="Table 4",
                   order={"dataset": ("perov-5", "carbon-24", "mp-20"), "metric": ("sr5", "sr10", "sr15")},
                   labels=CRYSTAL_LABELS),
    )
    datasets = ("mp-20", "perov-5", "carbon-24", "mpts-52")
    rehearsal_datasets = ("mp-20-fork-subset",)
    tasks = ("csp", "gen", "recon", "opt")
    shardable_tasks = ("csp", "gen", "recon")  # sample batches (tasks/csp_gen.py, tasks/cdvae_tasks.py)
    scores_on_cpu = True  # StructureMatcher, CrystalNN, CIF writing: pymatgen on the CPU

    def paper_resources(self, run: RunSpec, stage: str) -> Resources:
        """DiffCSP and CrysBFN train for 1,000–5,000 epochs on one GPU; evaluation samples on the GPU
        and matches structures on the CPU (pymatgen's StructureMatcher, CrystalNN)."""
        if stage == "train":
            return Resources(gpus=1, cpus=8, mem_mb=32000, runtime_min=240,
                             reason="500-4,000 (DiffCSP) to 5,000-20,000 (CrysBFN) epochs: a day or more on "
                                    "MP-20 and MPTS-52 (crystals of up to 52 atoms), so 4 h attempts that "
                                    "resume from last.pt")
        return Resources(gpus=1, cpus=4, mem_mb=32000, runtime_min=480,
                         reason="sampling only (its shard of the sample batches): CSP k = 20 is 20 samples × "
                                "1,000 (DiffCSP) or 2,000 (CrysBFN) network calls per test crystal on the GPU; "
                                "scoring runs in the CPU job that gathers the shards")

    def score_resources(self, run: RunSpec) -> Resources:
        return Resources(gpus=0, cpus=SCORE_CPUS, mem_mb=64000, runtime_min=240,
                         reason=f"CIFs, StructureMatcher and CrystalNN (pymatgen) over {SCORE_CPUS} processes")

    def paper_cost(self, run: RunSpec, settings: dict[str, Any]) -> Cost | None:
        """Training: DiffCSP's logged GPU time per crystal-epoch (PaddleMaterial) × the run's epochs
        × its training crystals, CrysBFN assumed the same (the same CSPNet backbone); evaluation:
        the single-core scoring figures of research/materials.md §7.4 (the CPU job that gathers the
        shards); sampling time on the GPU: no published figure (a GPU rehearsal measures it)."""
        epochs = settings["train"]["epochs"]
        if run.task == "csp":
            scoring = CSP_CPU_HOURS_PER_SAMPLE * run.values["samples"] * TEST_CRYSTALS[run.dataset]
        elif run.task == "recon":
            scoring = CSP_CPU_HOURS_PER_SAMPLE * TEST_CRYSTALS[run.dataset]
        elif run.task == "opt":  # ~1,100 decoded crystals: fingerprints (materials.md §7.2, 161 ms each)
            scoring = self.official_prediction_rows(run, settings) * 0.161 / 3600
        else:
            scoring = GEN_CPU_HOURS
        if run.model == "cdvae":  # no published training time; its GemNet decoder is not DiffCSP's CSPNet
            return Cost(None, None, "GPU (model not stated)",
                        "no published CDVAE training time (a rehearsal measures it); scoring: materials.md §7.4 "
                        "single-core figures", score_core_hours=scoring)
        train_hours = GPU_HOURS_PER_CRYSTAL_EPOCH * epochs * TRAIN_CRYSTALS[run.dataset]
        return Cost(train_hours, None, "GPU (model not stated)",
                    f"PaddleMaterial DiffCSP MP-20: 13.5 GPU-h / 1,000 epochs × 27,136 crystals, scaled to "
                    f"{epochs:,} epochs × {TRAIN_CRYSTALS[run.dataset]:,} crystals; scoring: materials.md §7.4 "
                    f"single-core figures", score_core_hours=scoring)

    def preprocess_resources(self, dataset: str, preset: str) -> Resources:
        return Resources(gpus=0, cpus=4, mem_mb=8000, runtime_min=60,
                         reason="CIF parsing and canonical cells with pymatgen: MP-20's 45,231 crystals, "
                                "MPTS-52's 40,476 (up to 52 atoms)")

    def expand_runs(self, family_config: dict[str, Any], preset: str) -> list[RunSpec]:
        runs, seen = [], set()
        for entry in family_config.get("runs", []):
            run_preset = entry_preset(entry, preset)
            if run_preset is None:
                continue
            samples = max(entry.get("samples", [1])) if entry["task"] == "csp" else 1
            for dataset in entry["datasets"]:
                for model in entry["models"]:
                    counts = [samples]
                    if (samples > 1 and 1 in entry.get("samples", [])
                            and single_sample_model(model, dataset, run_preset)):
                        counts.append(1)  # the 1-sample row needs its own sampler settings: its own run
                    for count in counts:
                        values = variant_values(entry["task"], samples=count, steps=entry.get("steps"))
                        for seed in entry_seeds(entry, family_config):
                            run = self.make_run(dataset, entry["task"], model, values, seed, run_preset)
                            if run.run_id not in seen:
                                seen.add(run.run_id)
                                runs.append(run)
        return runs

    def variant_name(self, task: str, values: dict[str, Any]) -> str:
        return variant_name(task, values)

    def variant_settings(self, run: RunSpec) -> dict[str, Any]:
        """``{"samples": 20}`` fixes ``task.num_samples``; ``"steps": 10`` the model's step count."""
        values = run.values
        fixed: dict[str, Any] = {"task.num_samples": values["samples"]} if run.task == "csp" else {}
        if values.get("steps"):
            fixed[f"model.{STEP_FIELD[run.model]}"] = values["steps"]
        return fixed

    def run_settings(self, family_config: dict[str, Any], run: RunSpec) -> dict[str, Any]:
        presets = _PRESETS[run.model, run.preset]
        if run.dataset not in presets:
            raise ConfigError(f"crystals: the {run.preset} preset has no {run.model} settings for {run.dataset!r}; "
                              f"it covers {', '.join(presets)}")
        settings = copy.deepcopy(presets[run.dataset][run.task])
        samples, steps = run.values.get("samples", 1), run.values.get("steps")
        task = settings["task"]
        task["convention"] = PAPER_CONVENTION[run.model]
        extra = [c for c in family_config.get("conventions", {}).get(run.model, []) if c != task["convention"]]
        if extra:
            task["extra_conventions"] = extra
        if run.task == "csp":
            task["num_samples"] = samples
            task["report_samples"] = self._report_samples(family_config, run, samples)
        if run.task == "csp" and samples == 1:
            settings["model"].update(single_sample_model(run.model, run.dataset, run.preset))
        if steps:
            settings["model"][STEP_FIELD[run.model]] = steps
        if run.task in ("gen", "opt") and _property_models(family_config, run.preset) == "released":
            task["property_model"] = RAW_FOLDER  # wdist_prop / SR5-15 from CDVAE's released property model
        override = copy.deepcopy(family_config.get("overrides", {}).get(run.model, {}))
        return deep_merge(settings, override)

    def released_files(self) -> tuple:
        """CDVAE's released property models (all three; a run reads its dataset's)."""
        from replibench.families.crystals.models.cdvae_property_files import PROPERTY_MODEL_FILES, property_model_files

        return tuple(remote for name in PROPERTY_MODEL_FILES for remote in property_model_files(name).values())

    def evaluation_files(self, run: RunSpec, settings: dict[str, Any]) -> dict[str, str]:
        """The four files of the dataset's property model when the run scores with it."""
        folder = settings.get("task", {}).get("property_model")
        if not folder:
            return {}
        from replibench.families.crystals.datasets.sources import dataset_spec
        from replibench.families.crystals.models.cdvae_property_files import property_model_files

        remotes = property_model_files(dataset_spec(run.dataset).eval_model_name)
        return {f"property_model_{key}": f"{folder}/{remote.name}" for key, remote in remotes.items()}

    @staticmethod
    def _report_samples(family_config: dict[str, Any], run: RunSpec, samples: int) -> list[int]:
        """The smaller sample counts the entries producing ``run`` ask for (reported from its first samples)."""
        wanted: set[int] = set()
        for entry in family_config.get("runs", []):
            if entry["task"] == "csp" and max(entry.get("samples", [1])) == samples \
                    and run.model in entry["models"] and run.dataset in entry["datasets"]:
                wanted.update(k for k in entry.get("samples", [1]) if k < samples)
        if single_sample_model(run.model, run.dataset, run.preset):
            wanted.discard(1)  # sampled by its own k1 run (expand_runs)
        return sorted(wanted)

    def official_train_examples(self, dataset: str) -> int | None:
        return TRAIN_CRYSTALS.get(dataset)

    def official_prediction_rows(self, run: RunSpec, settings: dict[str, Any]) -> int | None:
        """CSP: samples × test crystals; reconstruction: the test crystals; optimisation: starting points ×
        decodings; generation: the crystals generated."""
        if run.task == "csp":
            return run.values["samples"] * TEST_CRYSTALS[run.dataset]
        if run.task == "recon":
            return TEST_CRYSTALS[run.dataset]
        if run.task == "opt":
            from replibench.families.crystals.tasks.cdvae_tasks import OPT

            return int(settings["task"]["num_starting_points"]) * len(OPT.checkpoints(settings))
        return int(settings["task"]["num_generated"])

    def rehearsal_proxies(self, run: RunSpec, settings: dict[str, Any]) -> list[RehearsalProxy]:
        """Sampling a crystal costs one network call per sampling step for crystals of up to
        ``max_atoms``: Carbon-24's runs of the same model (up to 24 atoms, more than MP-20's 20 and
        Perov-5's 5) price any dataset's from above — the same task first, then the other task
        (the same network per step) — scaled by the run's sampling steps over theirs (the paper
        default, :data:`PAPER_SAMPLING_STEPS`). MPTS-52's crystals reach 52 atoms: its figure is
        Carbon-24's × the ratio of mean N² per crystal (CSPNet's fully connected edges: 599 against
        98, :data:`STAND_IN_ATOMS`, :data:`CARBON24_MEAN_SQUARED_ATOMS`), an estimate that assumes a
        step's work per crystal grows no faster than its edges; a GPU rehearsal of MPTS-52 replaces
        it. CDVAE's three tasks share one sampler, so each prices the others."""
        steps = settings.get("model", {}).get(STEP_FIELD[run.model], PAPER_SAMPLING_STEPS[run.model])
        factor = steps / PAPER_SAMPLING_STEPS[run.model]
        size = ""
        if run.dataset == "mpts-52":  # fully connected crystals: a step's work per crystal grows as N²
            edges = STAND_IN_ATOMS["mpts-52"][1] / CARBON24_MEAN_SQUARED_ATOMS
            factor *= edges
            size = f" × {edges:.1f} (mean N² per crystal, MPTS-52 {STAND_IN_ATOMS['mpts-52'][1]:.0f} / Carbon-24 " \
                   f"{CARBON24_MEAN_SQUARED_ATOMS:.0f}: CSPNet's edges)"
        proxies = []
        if run.model == "cdvae":  # the same Langevin sampler in all three tasks
            tasks = (run.task, *[t for t in ("recon", "gen", "opt") if t != run.task])
        else:
            tasks = (run.task, "gen" if run.task == "csp" else "csp")
        for task in tasks:
            for variant in (("k20", "k1") if task == "csp" else ("default",)):
                proxies.append(RehearsalProxy(f"crystals/carbon-24/{task}/{run.model}/{variant}/", factor,
                                              f"Carbon-24 {task} {variant} (up to 24 atoms per crystal) × {steps} / "
                                              f"{PAPER_SAMPLING_STEPS[run.model]} sampling steps{size}"))
        return proxies

    def rehearsal_settings(self, run: RunSpec, settings: dict[str, Any]) -> dict[str, Any]:
        """Perov-5 / Carbon-24: val.csv trains (and validates), as in the smoke preset (the
        rehearsal has no train.csv of theirs); MP-20's and MPTS-52's stand-in has all three splits."""
        if run.dataset in ("mp-20", "mpts-52"):
            return settings
        return deep_merge(settings, {"task": {"splits": {"train": "val", "val": "val", "test": "test"}}})

    def rehearsal_data(self, dataset: str, family_config: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """Perov-5 / Carbon-24: their own val.csv and test.csv (in the offline mirror; train.csv is
        not): real crystals of the paper's sizes, val standing in for train as in the smoke preset.
        MP-20 (none of its files mirrored): ``mp-20-fork-subset``, 847 / 123 / 142 genuine MP-20
        rows kept in a fork, so a training batch of MP-20's size (up to 256) holds real MP-20 crystals.
        MPTS-52 (none of its files mirrored either): the same ``mp-20-fork-subset``, real Materials
        Project crystals at MPTS-52's batch size (128) and its runs' own model, but of at most 20 atoms
        where MPTS-52's reach 52 (:data:`STAND_IN_ATOMS`: ~1.9x fewer atoms, ~4.1x fewer edges per
        crystal), so the rehearsal's seconds per step are a lower bound for MPTS-52's."""
        from replibench.families.crystals.datasets import SPLITS, raw_file_name
        from replibench.families.crystals.datasets.sources import SMOKE_DATASETS

        if dataset in ("mp-20", "mpts-52"):
            stand_in = "mp-20-fork-subset"
            options: dict[str, Any] = {"files": [raw_file_name(stand_in, split) for split in SPLITS]}
            if stand_in in _datasets_with_crystal_graphs(family_config):
                options["crystal_graph"] = "crystalnn"
            return stand_in, options
        if dataset not in SMOKE_DATASETS:
            return None
        return dataset, self.dataset_options(family_config, dataset, "smoke")

    def dataset_options(self, family_config: dict[str, Any], dataset: str, preset: str) -> dict[str, Any]:
        """Which raw files the preset reads (smoke val.csv + test.csv, paper all three splits) and, when a
        CDVAE run of the config uses the dataset under any preset, its CrystalNN graphs (the rehearsal
        and the run read the same folder)."""
        from replibench.families.crystals.datasets import SPLITS, raw_file_name, smoke_split_files

        if preset == "smoke":
            options: dict[str, Any] = {"files": sorted({remote.name for remote in smoke_split_files(dataset).values()})}
        else:
            options = {"files": [raw_file_name(dataset, split) for split in SPLITS]}
        if dataset in _datasets_with_crystal_graphs(family_config):
            options["crystal_graph"] = "crystalnn"
        return options

    def derived_results(self, results):  # (pd.DataFrame) -> pd.DataFrame
        """CSP rows for smaller sample counts (``k1``) from the ``match_rate_k1``-style metrics of a
        run that drew more samples, unless a run of that variant exists itself."""
        import pandas as pd

        from replibench.families.crystals.metrics.samples import metric_info_for, metric_name, split_metric_name

        csp = results[results["task"] == "csp"]
        own = set(zip(csp["dataset"], csp["model"], csp["variant"], csp["seed"], csp["preset"]))
        rows = []
        for row in csp.to_dict("records"):
            base, k, convention = split_metric_name(row["metric"])
            if k is None:
                continue
            values = {**json.loads(row["variant_values"]), "samples": k}
            variant = variant_name("csp", values)
            if (row["dataset"], row["model"], variant, row["seed"], row["preset"]) in own:
                continue
            name = metric_name(base, convention=convention)
            info = metric_info_for(name)
            rows.append({**row, "variant": variant, "variant_values": json.dumps(values, sort_keys=True),
                         "metric": name, "direction": info.direction, "unit": info.unit})
        return pd.DataFrame(rows, columns=results.columns)

    def report_plots(self, runs: list, board, out_dir) -> list:
        """Density and number-of-elements distributions, generated vs test, per dataset (one row of
        panels per generation run), from the histograms the runs' metrics.json hold."""
        from replibench.families.crystals.plots import plot_property_distributions

        return plot_property_distributions([run.record for run in runs], Path(out_dir))


#: where the download rule puts the family's files (datasets' raw files and the released property models)
RAW_FOLDER = "data/raw/crystals"


def _property_models(family_config: dict[str, Any], preset: str) -> str:
    """``property_models`` of the family config: ``released`` (download CDVAE's property models, verify
    them, score wdist_prop and SR5/10/15 with them) or ``none`` (those metrics unavailable, with the
    reason); ``auto`` (default): released for the paper preset, none for the smoke preset, whose
    offline mirror does not hold the checkpoints."""
    choice = family_config.get("property_models", "auto")
    if choice not in ("auto", "released", "none"):
        raise ConfigError(f"crystals.property_models must be auto, released or none, got {choice!r}")
    if choice == "auto":
        return "released" if preset == "paper" else "none"
    return choice


def _datasets_with_crystal_graphs(family_config: dict[str, Any]) -> set[str]:
    """Datasets a CDVAE run of the config (any preset) reads the CrystalNN graph of; MP-20's rehearsal
    stand-in too when CDVAE runs on MP-20."""
    wanted: set[str] = set()
    for entry in family_config.get("runs", []):
        if set(entry.get("models", [])) & GRAPH_MODELS:
            wanted.update(entry.get("datasets", []))
    if wanted & {"mp-20", "mpts-52"}:
        wanted.add("mp-20-fork-subset")
    return wanted


FAMILY = CrystalsFamily()
