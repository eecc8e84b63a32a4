"""LRA family: Long Range Arena (six tasks, generated stand-ins) and the state-tracking tasks.

Which runs a config asks for, the settings each run gets, the options of the generated datasets,
and the rows derived from the per-run results (both LRA averages; the state-tracking paper's
best-of-seeds). Imported by ``snakemake -n``: no heavy imports here.

Settings of a run = the preset's (``paper``: the papers' hyper-parameters, from
:mod:`replibench.families.lra.models.presets` for LRA and :data:`STATE_TRACKING_PAPER` for state
tracking; ``smoke``: CPU sizes and step counts, same code paths) overlaid with the user's
per-model ``overrides``. Sources: research notes ``lra.md`` §3.2–3.4.

Variants: LRA runs are ``default`` (no values); a state-tracking run's variant is the eigenvalue
range of the state transition, :data:`EIGENVALUE_RANGES` (``[-1,1]`` in config.yaml →
``{"eigenvalue_low": -1, "eigenvalue_high": 1}``, named ``range-neg1-1``), which sets the models'
``negative_eigenvalues``.
"""

from __future__ import annotations

import copy
from typing import Any

from replibench.families.base import Cost, Family, PaperTable, Resources, deep_merge, expand_sweep
from replibench.runs import RunSpec

#: the six LRA tasks in the papers' column order (dataset names), and what each generated
#: dataset stands in for
LRA_DATASETS = ("listops", "text", "retrieval", "image", "pathfinder", "path-x")
GENERATED_STAND_INS = {"listops-generated": "listops", "pathfinder-generated": "pathfinder"}
#: the rehearsal's stand-ins for the tasks whose archives are not at hand and that have no
#: generator of their own: random examples at the task's longest shape (:mod:`.datasets.shaped_gen`)
#: and Path-X from the Pathfinder generator at 128 × 128; never a run's dataset
REHEARSAL_STAND_INS = {"text": "text-generated", "retrieval": "retrieval-generated", "image": "image-generated",
                       "path-x": "path-x-generated"}
STATE_TRACKING_DATASETS = ("parity", "mod-arithmetic", "mod-arithmetic-brackets")
#: dataset → task name in families/lra/models/presets.py
PRESET_TASK = {"listops": "listops", "text": "text", "retrieval": "retrieval", "image": "image",
               "pathfinder": "pathfinder", "path-x": "pathx",
               "listops-generated": "listops", "pathfinder-generated": "pathfinder"}
LRA_MODELS = ("s4d-legs", "s4d-inv", "s4d-lin", "s4-legs", "s4-fout", "s4-ptd", "s5", "s5-ptd", "transformer")
STATE_TRACKING_MODELS = ("mamba", "deltanet")

#: derived rows: the two LRA averages (dataset "average", task lra-classify) and best-of-seeds
AVERAGE_DATASET = "average"
AVERAGE_VARIANTS = {"lra-5": "avg-lra-5", "s4-6": "avg-s4-6"}
BEST_SUFFIX = "-best"

# --- generated data -------------------------------------------------------------------------
#: seed of every generated dataset (data are shared by all runs; the run seed is the model's)
DATA_SEED = 0
#: LRA generator defaults (lra_benchmarks/data/listops.py flags; the released task)
LISTOPS_PAPER = {"max_depth": 10, "max_args": 10, "min_length": 500, "max_length": 2000,
                 "num_train": 96_000, "num_val": 2_000, "num_test": 2_000}
#: smoke: a shorter, recorded length window (tokens, exclusive bounds) and small splits, so an
#: S4 layer step costs milliseconds; the tree grammar is unchanged
LISTOPS_SMOKE = {**LISTOPS_PAPER, "min_length": 60, "max_length": 200, "num_train": 200, "num_val": 32,
                 "num_test": 64}
#: Pathfinder-32 "hard" (contour length 14): 200,000 images as in the release; smoke 240
#: (192/24/24 after the 80/10/10 split; generation costs ~0.1 s per image on a CPU)
PATHFINDER_PAPER = {"resolution": 32, "contour_length": 14, "count": 200_000}
PATHFINDER_SMOKE = {**PATHFINDER_PAPER, "count": 240}
#: rehearsal stand-ins: the paper's shapes (lengths, image size) with just enough examples for
#: a few steps at the largest paper batch (ListOps 50, Pathfinder 512: 80 % of 640 train, state
#: tracking 256, Text 50, Retrieval 64, Image 256, Path-X 64: 80 % of 160; presets.py)
REHEARSAL_COUNTS = {"listops-generated": {"num_train": 256, "num_val": 16, "num_test": 16},
                    "pathfinder-generated": {"count": 640},
                    "path-x-generated": {"count": 160},
                    "text-generated": {"num_train": 128, "num_val": 16, "num_test": 16},
                    "retrieval-generated": {"num_train": 128, "num_val": 16, "num_test": 16},
                    "image-generated": {"num_train": 512, "num_val": 16, "num_test": 16},
                    "state-tracking": {"num_train": 512, "num_val": 16, "num_test": 16}}
#: state tracking (paper §5.1; unlocking_state_tracking parity_*.yaml): 5.12 M training
#: sequences of sizes 3–40, 8,192 val/test of sizes 40–256, sizes uniform
STATE_TRACKING_SIZES_PAPER = {"num_train": 5_120_000, "num_val": 8_192, "num_test": 8_192,
                              "train_sizes": [3, 40], "test_sizes": [40, 256], "train_size_power": 0.0}

# --- state-tracking settings ------------------------------------------------------------------
#: paper (notes §3.4; unlocking_state_tracking xlstm/experiments/parity_*.yaml): AdamW, lr 1e-3,
#: 2,000 linear warm-up steps then cosine, 20,000 steps of batch 256 (one pass over 5.12 M
#: sequences), no weight decay, no clipping, bf16 autocast. Their cosine ends at 1e-3 × lr, ours
#: at 0 (a difference below 1e-6 absolute). Model: 2 layers, d_model 128 (notes §3.4).
STATE_TRACKING_TRAIN_PAPER = {"epochs": 1, "max_steps": 20_000, "batch_size": 256, "optimizer": "adamw",
                              "lr": 1e-3, "weight_decay": 0.0, "lr_schedule": "cosine", "warmup_steps": 2_000,
                              "patience": None, "grad_clip": None, "amp": "bf16", "checkpoint_every": 1000}
STATE_TRACKING_MODEL_PAPER = {"mamba": {"d_model": 128, "n_layers": 2},
                              "deltanet": {"d_model": 128, "n_layers": 2, "n_heads": 4}}
#: smoke: the one-layer, width-16 models of the repository's parity_*_single_layer.yaml, trained
#: for a CPU budget (see README "State tracking on a CPU"): batch 64, lr 3e-3, 10 % warm-up, and
#: training sizes drawn with P(size) ∝ size^-2 over the same 3–40 support (SMOKE_SIZE_POWER)
STATE_TRACKING_MODEL_SMOKE = {"mamba": {"d_model": 16, "n_layers": 1},
                              "deltanet": {"d_model": 16, "n_layers": 1, "n_heads": 4}}
STATE_TRACKING_SMOKE_STEPS = 1_200
STATE_TRACKING_SMOKE_BATCH = 64
SMOKE_SIZE_POWER = 2.0
STATE_TRACKING_TRAIN_SMOKE = {**STATE_TRACKING_TRAIN_PAPER, "max_steps": STATE_TRACKING_SMOKE_STEPS,
                              "batch_size": STATE_TRACKING_SMOKE_BATCH, "lr": 3e-3,
                              "warmup_steps": STATE_TRACKING_SMOKE_STEPS // 10, "amp": "off",
                              "checkpoint_every": 400}
STATE_TRACKING_SIZES_SMOKE = {**STATE_TRACKING_SIZES_PAPER,
                              "num_train": STATE_TRACKING_SMOKE_STEPS * STATE_TRACKING_SMOKE_BATCH,
                              "num_val": 256, "num_test": 1_024, "train_size_power": SMOKE_SIZE_POWER}


#: config spelling of an eigenvalue range → the run's variant values (the interval's ends)
EIGENVALUE_RANGES = {"[0,1]": {"eigenvalue_low": 0, "eigenvalue_high": 1},
                     "[-1,1]": {"eigenvalue_low": -1, "eigenvalue_high": 1}}


def eigenvalue_values(spelling: str) -> dict[str, int]:
    """``"[-1,1]"`` (config.yaml) → ``{"eigenvalue_low": -1, "eigenvalue_high": 1}``."""
    key = spelling.replace(" ", "")
    if key not in EIGENVALUE_RANGES:
        raise ValueError(f"eigenvalue range {spelling!r} is not one of {sorted(EIGENVALUE_RANGES)}")
    return dict(EIGENVALUE_RANGES[key])


def eigenvalue_variant_name(values: dict[str, Any]) -> str:
    """``{"eigenvalue_low": -1, "eigenvalue_high": 1}`` → ``range-neg1-1`` (``-`` separates, so a
    negative end is spelled ``neg``)."""
    if set(values) != {"eigenvalue_low", "eigenvalue_high"}:
        raise ValueError(f"state-tracking variant values {values} must be eigenvalue_low and eigenvalue_high")
    ends = [f"neg{-values[key]:g}" if values[key] < 0 else f"{values[key]:g}"
            for key in ("eigenvalue_low", "eigenvalue_high")]
    return f"range-{ends[0]}-{ends[1]}"


def lra_run_settings(run: RunSpec, listops_window: int = LISTOPS_SMOKE["max_length"]) -> dict[str, Any]:
    """Preset settings of an LRA classification run (model + train from models/presets.py, + task).

    ``listops_window``: the (exclusive) maximum token length of smoke's generated ListOps, which
    sets the S4 kernel length and the Transformer's positions there.
    """
    from replibench.families.lra.models.presets import preset

    settings = preset(run.model, run.preset, PRESET_TASK[run.dataset])
    model, train = settings["model"], settings["train"]
    task: dict[str, Any] = {"eval_batch_size": train["batch_size"] if run.preset == "paper" else 64}
    if model["layer"] == "transformer" and not run.dataset.startswith(("image", "pathfinder", "path-x")):
        task["max_length"] = model["transformer"]["max_len"]  # LRA reads at most max_len tokens
    if run.preset == "smoke" and run.dataset == "listops-generated":
        if model["layer"] == "s4":  # the DPLR kernel is built at l_max: the smoke window's, not 2,048
            model["s4"]["l_max"] = listops_window + listops_window % 2  # an even length >= any sequence
        if model["layer"] == "transformer":
            model["transformer"]["max_len"] = task["max_length"] = listops_window
    return {"model": model, "train": train, "task": task}


def state_tracking_run_settings(run: RunSpec) -> dict[str, Any]:
    models = STATE_TRACKING_MODEL_PAPER if run.preset == "paper" else STATE_TRACKING_MODEL_SMOKE
    train = STATE_TRACKING_TRAIN_PAPER if run.preset == "paper" else STATE_TRACKING_TRAIN_SMOKE
    negative = run.values["eigenvalue_low"] < 0
    return {"model": {**models[run.model], "negative_eigenvalues": negative}, "train": dict(train),
            "task": {"eval_batch_size": 256}}


#: S4's own per-epoch times (s4 repo models/s4/experiments.md, research/lra.md §3.1): dataset →
#: (minutes per epoch, GPU, training examples, test examples; split sizes from research/lra.md §1)
S4_EPOCH_MINUTES = {"listops": (15, "T4", 96_000, 2_000), "text": (17, "T4", 25_000, 25_000),
                    "retrieval": (23, "A100", 147_086, 17_437), "image": (2, "A100", 45_000, 10_000),
                    "pathfinder": (7, "A100", 160_000, 20_000), "path-x": (56, "A100", 160_000, 20_000)}
#: state tracking, measured here on one CPU core (Grazzi et al.'s protocol, per run): no GPU figure yet
STATE_TRACKING_CPU_HOURS = {"mamba": 24.0, "deltanet": 7.0}


class LraFamily(Family):
    name = "lra"
    paper_tables = (
        PaperTable("Long Range Arena: accuracy (%) per model and task, as the S4/S4D/S5 papers print it",
                   rows=("model",), columns=("dataset", "variant"), select={"task": ("lra-classify",)},
                   order={"model": ("transformer", "s4-legs", "s4-fout", "s4d-legs", "s4d-inv", "s4d-lin", "s5",
                                    "s4-ptd", "s5-ptd"),
                          "dataset": LRA_DATASETS + ("average",), "variant": ("default", "avg-lra-5", "avg-s4-6")},
                   labels={"listops": "ListOps", "text": "Text", "retrieval": "Retrieval", "image": "Image",
                           "pathfinder": "Pathfinder", "path-x": "Path-X", "average": "Avg", "default": "",
                           "avg-lra-5": "(5 tasks)", "avg-s4-6": "(6 tasks)", "transformer": "Transformer",
                           "s4-legs": "S4-LegS", "s4-fout": "S4-FouT", "s4d-legs": "S4D-LegS", "s4d-inv": "S4D-Inv",
                           "s4d-lin": "S4D-Lin", "s5": "S5", "s4-ptd": "S4-PTD", "s5-ptd": "S5-PTD"}),
        PaperTable("Grazzi et al. (ICLR 2025): state tracking, scaled accuracy (best of 3 seeds)",
                   rows=("model", "variant"), columns=("dataset",), select={"task": ("state-tracking",)},
                   order={"model": STATE_TRACKING_MODELS, "variant": ("range-0-1-best", "range-neg1-1-best"),
                          "dataset": STATE_TRACKING_DATASETS},
                   labels={"mamba": "Mamba", "deltanet": "DeltaNet", "range-0-1-best": "[0, 1]",
                           "range-neg1-1-best": "[−1, 1]", "parity": "Parity", "mod-arithmetic": "Mod. arithmetic",
                           "mod-arithmetic-brackets": "Mod. arithmetic (brackets)"}),
    )
    datasets = LRA_DATASETS + tuple(GENERATED_STAND_INS) + STATE_TRACKING_DATASETS
    rehearsal_datasets = tuple(REHEARSAL_STAND_INS.values())
    tasks = ("lra-classify", "state-tracking")
    task_datasets = {"lra-classify": LRA_DATASETS + tuple(GENERATED_STAND_INS),
                     "state-tracking": STATE_TRACKING_DATASETS}

    def paper_resources(self, run: RunSpec, stage: str) -> Resources:
        """One GPU per run; the long sequences (Path-X: 16,384 steps) need the memory."""
        if run.task == "state-tracking":
            return Resources(gpus=1, cpus=4, mem_mb=16000, runtime_min=240 if stage == "train" else 30,
                             reason="Grazzi et al.'s protocol: ~24 CPU-h (Mamba) / ~7 CPU-h (DeltaNet) per run "
                                    "measured on one CPU core here; an hour or two on one GPU")
        if stage == "train":
            return Resources(gpus=1, cpus=8, mem_mb=64000, runtime_min=240,
                             reason="S4's logs: Pathfinder ≈ 23 h and Path-X ≈ 47 h on an A100, so 4 h "
                                    "attempts that resume from last.pt; data loading on 8 CPUs")
        return Resources(gpus=1, cpus=4, mem_mb=32000, runtime_min=60,
                         reason="one pass over the test split (≤ 10,000 sequences)")

    def paper_cost(self, run: RunSpec, settings: dict[str, Any]) -> Cost | None:
        """LRA: S4's logged minutes per epoch (per training example) × the examples the run's
        schedule sees, testing at the same per-example time (an upper bound: no backward pass);
        state tracking: the CPU hours measured here, an upper bound for a GPU (marked an estimate: the
        GPU rehearsal's figure, where there is one, is the plan's)."""
        if run.task == "state-tracking":
            hours = STATE_TRACKING_CPU_HOURS[run.model]
            return Cost(hours, 0.0, "cpu (1 core)", f"measured here: a {run.model} paper-protocol run on one CPU "
                        "core (an upper bound for one GPU)", estimate=True)
        if run.dataset not in S4_EPOCH_MINUTES:
            return None
        minutes, gpu, train_n, test_n = S4_EPOCH_MINUTES[run.dataset]
        train = settings["train"]
        seen = train["epochs"] * train_n
        if train.get("max_steps"):
            seen = min(seen, train["max_steps"] * train["batch_size"])
        per_example_h = minutes / 60.0 / train_n
        return Cost(seen * per_example_h, test_n * per_example_h, gpu,
                    f"s4 repo experiments.md: S4 {minutes} min/epoch of {train_n:,} examples on a {gpu}, × "
                    f"{seen / train_n:.3g} epochs of this run's schedule (same per-example time assumed for "
                    "every LRA model)")

    def prediction_is_one_forward_pass(self, run: RunSpec) -> bool:
        return True  # a classification of one sequence

    def preprocess_resources(self, dataset: str, preset: str) -> Resources:
        return Resources(gpus=0, cpus=4, mem_mb=32000, runtime_min=180,
                         reason="LRA release archive (7.7 GB) → Parquet: Path-X images of 128 × 128")

    def variant_name(self, task: str, values: dict[str, Any]) -> str:
        return eigenvalue_variant_name(values) if task == "state-tracking" else super().variant_name(task, values)

    def variant_settings(self, run: RunSpec) -> dict[str, Any]:
        """The eigenvalue range fixes whether the state-tracking model has negative eigenvalues."""
        if run.task != "state-tracking":
            return {}
        return {"model.negative_eigenvalues": run.values["eigenvalue_low"] < 0}

    def expand_runs(self, family_config: dict[str, Any], preset: str) -> list[RunSpec]:
        """The sweep; an entry's own ``seeds`` replace the family's (the state-tracking paper
        reports the best of 3 seeds, the LRA papers one seed per task)."""
        return expand_sweep(self, family_config, preset, variant_axes={
            "state-tracking": ("eigenvalue_ranges", eigenvalue_values)})

    def check_run(self, run: RunSpec) -> None:
        from replibench.errors import ConfigError

        super().check_run(run)
        if run.dataset not in self.task_datasets[run.task]:
            raise ConfigError(f"lra/{run.task}: dataset {run.dataset!r} belongs to another task; allowed: "
                              f"{', '.join(self.task_datasets[run.task])}")

    def run_settings(self, family_config: dict[str, Any], run: RunSpec) -> dict[str, Any]:
        if run.task == "lra-classify":
            window = self.dataset_options(family_config, "listops-generated", run.preset)["generator"]["max_length"]
            base = lra_run_settings(run, window)
        else:
            base = state_tracking_run_settings(run)
        override = copy.deepcopy(family_config.get("overrides", {}).get(run.model, {}))
        return deep_merge(base, override)

    def official_train_examples(self, dataset: str) -> int | None:
        if dataset in STATE_TRACKING_DATASETS:
            return STATE_TRACKING_SIZES_PAPER["num_train"]
        return S4_EPOCH_MINUTES[dataset][2] if dataset in S4_EPOCH_MINUTES else None

    def rehearsal_data(self, dataset: str, family_config: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """Generated data of the paper's shapes (sequence length, vocabulary, image size, classes)
        and few examples: ListOps, Pathfinder and Path-X from their generators, Text, Retrieval
        and Image as random examples at their longest shapes, state tracking at its paper lengths."""
        stand_in = {"listops": "listops-generated", "pathfinder": "pathfinder-generated",
                    **REHEARSAL_STAND_INS}.get(dataset, dataset)
        if stand_in not in GENERATED_STAND_INS and stand_in not in STATE_TRACKING_DATASETS \
                and stand_in not in REHEARSAL_STAND_INS.values():
            return None
        options = self.dataset_options(family_config, stand_in, "paper")
        if stand_in == "listops-generated":
            options["generator"].update(REHEARSAL_COUNTS["listops-generated"])
        elif stand_in in ("pathfinder-generated", "path-x-generated"):
            options["count"] = REHEARSAL_COUNTS[stand_in]["count"]
        elif stand_in in REHEARSAL_COUNTS:
            options["generator"].update(REHEARSAL_COUNTS[stand_in])
        else:
            options["sizes"].update(REHEARSAL_COUNTS["state-tracking"])
        return stand_in, options

    def dataset_options(self, family_config: dict[str, Any], dataset: str, preset: str) -> dict[str, Any]:
        """Generator settings of a generated dataset under ``preset`` (+ ``generated_data``
        overrides from the config); downloaded datasets have none."""
        paper = preset == "paper"
        if dataset == "listops-generated":
            options = {"generator": dict(LISTOPS_PAPER if paper else LISTOPS_SMOKE), "seed": DATA_SEED}
        elif dataset == "pathfinder-generated":
            options = {**(PATHFINDER_PAPER if paper else PATHFINDER_SMOKE), "seed": DATA_SEED}
        elif dataset == "path-x-generated":  # Path-X: the release's pathfinder128, contour length 14
            options = {"resolution": 128, "contour_length": 14, "count": REHEARSAL_COUNTS[dataset]["count"],
                       "seed": DATA_SEED}
        elif dataset in REHEARSAL_COUNTS and dataset.endswith("-generated"):  # text/retrieval/image stand-ins
            task = dataset.removesuffix("-generated")
            options = {"generator": {"task": task, **REHEARSAL_COUNTS[dataset]}, "seed": DATA_SEED}
        elif dataset in STATE_TRACKING_DATASETS:
            options = {"sizes": dict(STATE_TRACKING_SIZES_PAPER if paper else STATE_TRACKING_SIZES_SMOKE),
                       "seed": DATA_SEED}
        else:
            return {}
        override = family_config.get("generated_data", {}).get(dataset, {})
        return deep_merge(options, override)

    def derived_results(self, results):  # (pd.DataFrame) -> pd.DataFrame
        """Both LRA averages and the state-tracking paper's best-of-seeds rows."""
        import pandas as pd

        frames = [lra_average_rows(results), best_of_seeds_rows(results)]
        frames = [frame for frame in frames if len(frame)]
        return pd.concat(frames, ignore_index=True) if frames else results.iloc[0:0]


def lra_average_rows(results):  # (pd.DataFrame) -> pd.DataFrame
    """Per (model, preset, seed): the LRA "Avg" under both conventions, where the tasks exist.

    ``avg-lra-5``: mean of the five tasks without Path-X (LRA leaderboard); ``avg-s4-6``: mean of
    all six with a missing or failed Path-X counted as 50 % (S4/S4D/HTTYH/S5/PTD papers). A task
    may be given by its official dataset or, failing that, its generated stand-in; the row's
    ``data_origin`` is then ``generated``. Computed by :func:`replibench.families.lra.metrics.accuracy.lra_average`.
    """
    import pandas as pd

    from replibench.families.lra.metrics.accuracy import lra_average

    part = results[(results["task"] == "lra-classify") & (results["metric"] == "accuracy")
                   & (results["dataset"] != AVERAGE_DATASET)]
    rows = []
    for _, group in part.groupby(["family", "model", "preset", "seed"], sort=True):
        chosen: dict[str, Any] = {}
        for dataset in LRA_DATASETS:
            official = group[group["dataset"] == dataset]
            stand_in = group[group["dataset"].map(GENERATED_STAND_INS.get) == dataset]
            pick = official if len(official) else stand_in
            if len(pick):
                chosen[dataset] = pick.iloc[0]
        if any(dataset not in chosen for dataset in LRA_DATASETS[:5]):
            continue
        used = list(chosen.values())
        origin = "official" if all(r["data_origin"] == "official" for r in used) else "generated"
        accuracies = {dataset: float(row["value"]) for dataset, row in chosen.items()}
        for convention, variant in AVERAGE_VARIANTS.items():
            counted = used if convention == "s4-6" else [chosen[d] for d in LRA_DATASETS[:5]]
            row = used[0].to_dict()
            row.update(dataset=AVERAGE_DATASET, variant=variant, data_origin=origin,
                       value=lra_average(accuracies, convention),
                       steps=int(max(r["steps"] for r in counted)),
                       train_wall_s=float(sum(r["train_wall_s"] for r in counted)),
                       gpu_hours=float(sum(r["gpu_hours"] for r in counted)),
                       run_id=";".join(sorted(r["run_id"] for r in counted)),
                       metrics_path=";".join(sorted(r["metrics_path"] for r in counted)))
            rows.append(row)
    return pd.DataFrame(rows, columns=results.columns)


def best_of_seeds_rows(results):  # (pd.DataFrame) -> pd.DataFrame
    """State tracking: the paper reports the best of 3 seeds; one row per (dataset, model,
    variant, preset, metric) with the maximum over the seeds run, variant ``<range>-best``."""
    import pandas as pd

    part = results[(results["task"] == "state-tracking") & ~results["variant"].str.endswith(BEST_SUFFIX)]
    rows = []
    group = ["family", "dataset", "task", "model", "variant", "preset", "metric", "data_origin"]
    for _, runs in part.groupby(group, dropna=False, sort=True):
        best = runs.loc[runs["value"].idxmax()].to_dict()
        best.update(variant=best["variant"] + BEST_SUFFIX, run_id=";".join(sorted(runs["run_id"])),
                    metrics_path=";".join(sorted(runs["metrics_path"])),
                    train_wall_s=float(runs["train_wall_s"].sum()), gpu_hours=float(runs["gpu_hours"].sum()))
        rows.append(best)
    return pd.DataFrame(rows, columns=results.columns)


FAMILY = LraFamily()
