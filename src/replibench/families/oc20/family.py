"""OC20 family: which runs a config asks for, the settings each run gets, and the synthetic set's size.

Settings of a run = the preset's (``paper``: fairchem's OC20 baseline configs; ``smoke``: CPU sizes
and step counts, same code paths) overlaid with the user's per-model ``overrides``. Imported by
``snakemake -n``: no heavy imports here.

``paper`` sources (FAIR-Chem/fairchem ``configs/oc20/``; research notes ``oc20.md`` §5):

* S2EF-2M, SchNet: ``s2ef/2M/schnet/schnet.yml`` — model = ``SchNetConfig`` defaults; loss energy
  MAE × 1 + forces L2-MAE × 100; AdamW, lr 1e-4, warm-up 31,250 steps from 0.2×, × 0.1 at steps
  52,083 / 83,333 / 104,166; 30 epochs; batch 24 on each of 8 GPUs = global batch 192.
* S2EF-2M, DimeNet++: ``s2ef/2M/dimenet_plus_plus/dpp.yml`` — loss 1 / 50; lr 1e-4, warm-up
  10,416, milestones 20,833 / 31,250 / 41,666; 15 epochs; batch 12 on each of 32 GPUs = 384.
* S2EF-2M, our equivariant models: no published config exists for them (the Gaunt paper's OC20
  model is EquiformerV2 + Gaunt-Selfmix and its training code was never released), so they take
  the optimiser of the EquiformerV2 S2EF-2M config the Gaunt paper built on
  (``s2ef/2M/equiformer_v2/equiformer_v2_N@12_L@6_M@2.yml``): AdamW lr 4e-4, weight decay 1e-3,
  cosine with a 0.1-epoch warm-up, 30 epochs, grad-norm clip 100, EMA 0.999, batch 4 × 16 GPUs =
  64, loss base.yml 2 / 100. Our cosine warms up from 0 (theirs from 0.2×) and ends at 0 (theirs
  at 0.01×).
* IS2RE-All (direct), SchNet / DimeNet++: ``is2re/all/{schnet/schnet.yml,dimenet_plus_plus/dpp.yml}``
  and ``is2re/100k/base.yml`` (normaliser, energy-MAE loss).

fairchem's optimiser is ``torch.optim.AdamW`` built without a ``weight_decay`` argument in these
configs, i.e. torch's default 0.01 (``BaseTrainer.load_optimizer``); we state it explicitly.
Global batches are kept with ``micro_batches`` = the number of GPUs of the config: a paper run asks
for that many GPUs up to one node's 8 (:meth:`OC20Family.paper_resources`) and each rank accumulates
the remaining micro-batches (:mod:`replibench.train`), so the step-based schedules apply unchanged.
fairchem validates every ``eval_every`` steps (default one epoch; DimeNet++: 10,000 steps) and
keeps the checkpoint with the lowest val-ID force MAE (energy MAE for IS2RE); we validate once per
epoch with the same metric.

Graphs: ``paper`` builds each batch's radius graphs when the batch is made (``graph.mode:
per_batch``): stored edges of S2EF-2M would take ~90 GB (2 M structures × ~4,000 edges × 11
bytes). That costs ~30 ms of CPU per 80-atom structure; :data:`PAPER_LOADER_WORKERS` loader
processes build the coming steps' batches while the model steps (``train.loader_workers``), so it
stays off the critical path (fairchem builds them on the GPU, ``otf_graph``). ``smoke`` stores
them once per structure (``precompute``).
"""

from __future__ import annotations

import copy
from typing import Any

from replibench.families.base import RehearsalProxy, Cost, Family, PaperTable, Resources, deep_merge, expand_sweep
from replibench.runs import RunSpec

S2EF_DATASETS = ("s2ef-synthetic-emt", "s2ef-200k", "s2ef-2m")
IS2RE_DATASETS = ("is2re-10k", "is2re-100k", "is2re-all")
SYNTHETIC_DATASET = "s2ef-synthetic-emt"
S2EF_MODELS = ("schnet", "dimenet-pp", "equivariant-cg", "equivariant-gaunt")
IS2RE_MODELS = ("schnet", "dimenet-pp")
EQUIVARIANT_MODELS = ("equivariant-cg", "equivariant-gaunt")

#: fairchem AdamW without a weight_decay argument = torch's default
TORCH_ADAMW_DEFAULT_WEIGHT_DECAY = 0.01

# --- paper: S2EF-2M ---------------------------------------------------------------------------
_PER_BATCH_GRAPHS = {"graph": {"mode": "per_batch"}}  # see "Graphs" in the module docstring
#: paper runs build each batch's radius graphs in 3 loader processes per training process (of the 4
#: CPUs a GPU gets, paper_resources), while the model steps: ~30 ms of CPU per structure is then off
#: the critical path (benchmarks/oc20_loader.py measures loader vs model step)
PAPER_LOADER_WORKERS = 3
S2EF_PAPER = {
    "schnet": {
        "model": {},  # SchNetConfig defaults = schnet.yml
        "train": {"epochs": 30, "batch_size": 24 * 8, "micro_batches": 8, "optimizer": "adamw", "lr": 1e-4,
                  "weight_decay": TORCH_ADAMW_DEFAULT_WEIGHT_DECAY, "lr_schedule": "multistep",
                  "warmup_steps": 31250, "warmup_factor": 0.2, "milestones": [52083, 83333, 104166],
                  "gamma": 0.1, "patience": None, "drop_last": False, "checkpoint_every": 1000,
                  "loader_workers": PAPER_LOADER_WORKERS},
        "task": {"energy_coefficient": 1.0, "force_coefficient": 100.0, "eval_batch_size": 24, **_PER_BATCH_GRAPHS},
    },
    "dimenet-pp": {
        "model": {},  # DimeNetPPConfig defaults = dpp.yml
        "train": {"epochs": 15, "batch_size": 12 * 32, "micro_batches": 32, "optimizer": "adamw", "lr": 1e-4,
                  "weight_decay": TORCH_ADAMW_DEFAULT_WEIGHT_DECAY, "lr_schedule": "multistep",
                  "warmup_steps": 10416, "warmup_factor": 0.2, "milestones": [20833, 31250, 41666],
                  "gamma": 0.1, "patience": None, "drop_last": False, "checkpoint_every": 1000,
                  "loader_workers": PAPER_LOADER_WORKERS},
        "task": {"energy_coefficient": 1.0, "force_coefficient": 50.0, "eval_batch_size": 12, **_PER_BATCH_GRAPHS},
    },
}
#: EquiformerV2 S2EF-2M optimiser (see module docstring); 2,000,000 / 64 = 31,250 steps per epoch
_EQUIFORMER_V2_2M_STEPS_PER_EPOCH = 2_000_000 // 64
EQUIVARIANT_PAPER = {
    "model": {},  # EquivariantConfig defaults (our sizes: lmax 4, 32 channels, 4 layers)
    "train": {"epochs": 30, "batch_size": 4 * 16, "micro_batches": 16, "optimizer": "adamw", "lr": 4e-4,
              "weight_decay": 1e-3, "lr_schedule": "cosine", "warmup_steps": _EQUIFORMER_V2_2M_STEPS_PER_EPOCH // 10,
              "grad_clip": 100.0, "ema_decay": 0.999, "patience": None, "drop_last": False,
              "checkpoint_every": 1000, "loader_workers": PAPER_LOADER_WORKERS},
    "task": {"energy_coefficient": 2.0, "force_coefficient": 100.0, "eval_batch_size": 4, **_PER_BATCH_GRAPHS},
}

# --- paper: IS2RE-All (direct) ----------------------------------------------------------------
IS2RE_PAPER = {
    "schnet": {
        "model": {"hidden_channels": 384, "num_filters": 128, "num_interactions": 4, "num_gaussians": 100},
        "train": {"epochs": 30, "batch_size": 64 * 4, "micro_batches": 4, "optimizer": "adamw", "lr": 1e-3,
                  "weight_decay": TORCH_ADAMW_DEFAULT_WEIGHT_DECAY, "lr_schedule": "multistep",
                  "warmup_steps": 5394, "warmup_factor": 0.2, "milestones": [17981, 26972, 35963],
                  "gamma": 0.1, "patience": None, "drop_last": False, "checkpoint_every": 1000,
                  "loader_workers": PAPER_LOADER_WORKERS},
        "task": {"eval_batch_size": 64, **_PER_BATCH_GRAPHS},
    },
    "dimenet-pp": {
        "model": {"hidden_channels": 256, "out_emb_channels": 192},
        "train": {"epochs": 20, "batch_size": 4 * 4, "micro_batches": 4, "optimizer": "adamw", "lr": 1e-4,
                  "weight_decay": TORCH_ADAMW_DEFAULT_WEIGHT_DECAY, "lr_schedule": "multistep",
                  "warmup_steps": 57541, "warmup_factor": 0.2, "milestones": [115082, 230164, 345246],
                  "gamma": 0.1, "patience": None, "drop_last": False, "checkpoint_every": 1000,
                  "loader_workers": PAPER_LOADER_WORKERS},
        "task": {"eval_batch_size": 4, **_PER_BATCH_GRAPHS},
    },
}

# --- smoke: minutes on a 2-core CPU -----------------------------------------------------------
#: small models: same code, fewer channels/layers (the paper sizes need GPUs)
SMOKE_MODEL = {
    "schnet": {"hidden_channels": 32, "num_filters": 32, "num_interactions": 2, "num_gaussians": 20},
    "dimenet-pp": {"hidden_channels": 32, "out_emb_channels": 32, "num_blocks": 2, "int_emb_size": 16,
                   "basis_emb_size": 4},
    "equivariant-cg": {"lmax": 2, "channels": 8, "num_layers": 2, "radial_hidden": 16},
    "equivariant-gaunt": {"lmax": 2, "channels": 8, "num_layers": 2, "radial_hidden": 16},
}
#: Adam-style training on the synthetic set's 768 frames (48 batches of 16 per epoch), for a
#: CPU budget of about a minute or two per model on a quiet 2-core machine (process CPU time per
#: step of 16: SchNet ~0.15 s, equivariant CG ~1.0 s, Gaunt ~1.8 s, DimeNet++ ~3 s)
SMOKE_TRAIN = {"epochs": 5, "batch_size": 16, "optimizer": "adamw", "weight_decay": 0.0,
               "lr_schedule": "cosine", "warmup_steps": 10, "patience": None, "drop_last": True,
               "checkpoint_every": 50, "grad_clip": 100.0}
SMOKE_MAX_STEPS = {"schnet": 240, "dimenet-pp": 20, "equivariant-cg": 60, "equivariant-gaunt": 60}
#: the equivariant models barely move at 2e-3 in 60 steps (val force MAE 0.274 -> 0.270 after 32
#: steps on the smoke set) and learn at 1e-2 (-> 0.238); SchNet learns at 2e-3
SMOKE_LR = {"schnet": 2e-3, "dimenet-pp": 2e-3, "equivariant-cg": 1e-2, "equivariant-gaunt": 1e-2}
#: EMT energies are on another scale than DFT adsorption energies: normalise with the training set
SMOKE_TASK = {"normalizer": "dataset", "eval_batch_size": 32}


def paper_settings(run: RunSpec) -> dict[str, Any]:
    """fairchem's configs for the run's task and model (see the module docstring)."""
    if run.task == "is2re":
        return copy.deepcopy(IS2RE_PAPER[run.model])
    if run.model in EQUIVARIANT_MODELS:
        return copy.deepcopy(EQUIVARIANT_PAPER)
    return copy.deepcopy(S2EF_PAPER[run.model])


def smoke_settings(run: RunSpec) -> dict[str, Any]:
    """CPU sizes: small models, a few epochs of the synthetic set; the task's loss coefficients
    stay the paper's (they are part of the protocol, not of the size)."""
    paper = paper_settings(run)
    task = {key: value for key, value in paper["task"].items() if key.endswith("_coefficient")}
    train = {**SMOKE_TRAIN, "max_steps": SMOKE_MAX_STEPS[run.model], "lr": SMOKE_LR[run.model]}
    return {"model": dict(SMOKE_MODEL[run.model]), "train": train, "task": {**task, **SMOKE_TASK}}


#: GPUs one training job may ask for: the trainer's data-parallel processes run on one node
GPUS_PER_NODE = 8
#: training samples per GPU-second on a V100 (EquiformerV2 paper, Table 2; research/oc20.md): the
#: only published throughput among our models
V100_SAMPLES_PER_S = {"dimenet-pp": 4.6}
#: frames or systems per split (OC20 README; research/oc20.md §1)
TRAIN_SIZE = {"s2ef-2m": 2_000_000, "is2re-all": 460_328}
VAL_SIZE = {"s2ef-2m": 4 * 1_000_000, "is2re-all": 25_000}
#: single-core seconds per validation frame of fairchem's S2EF metrics, measured here by
#: benchmarks/oc20_score.py (200,000 random frames of 77 atoms, 2026-12-04: 66 µs, with another
#: job sharing the 2 cores, so an upper bound); sizes the job that scores gathered shards
SCORE_SECONDS_PER_FRAME = 66e-6


class OC20Family(Family):
    name = "oc20"
    # columns: whatever metrics the references give (so a renamed metric needs no change here),
    # in the paper's order where named
    paper_tables = (
        PaperTable("Gaunt Tensor Product Table 1: OC20 S2EF-2M, mean of the four validation splits",
                   rows=("model", "variant"), columns=("metric",),
                   select={"task": ("s2ef",), "dataset": ("s2ef-2m",)}, paper="Gaunt", table="Table 1 (OC20",
                   order={"model": ("schnet", "dimenet-pp", "equiformer-v2", "equiformer-v2-gaunt-selfmix"),
                          "metric": ("val_avg_energy_mae", "val_avg_forces_mae", "val_avg_forces_cosine",
                                     "val_avg_forces_cosine_similarity", "val_avg_energy_forces_within_threshold")},
                   labels={"s2ef-2m": "S2EF-2M", "schnet": "SchNet", "dimenet-pp": "DimeNet++",
                           "equiformer-v2": "EquiformerV2", "equiformer-v2-gaunt-selfmix": "EquiformerV2 + Gaunt",
                           "default": "", "l4": "(L = 4)", "l6": "(L = 6)",
                           "val_avg_energy_mae": "energy MAE (eV)", "val_avg_forces_mae": "forces MAE (eV/Å)",
                           "val_avg_forces_cosine": "forces cos", "val_avg_forces_cosine_similarity": "forces cos",
                           "val_avg_energy_forces_within_threshold": "EFwT"}),
        PaperTable("fairchem released OC20 checkpoints: SchNet and DimeNet++ baselines",
                   rows=("dataset", "model"), columns=("task", "metric"), paper="fairchem",
                   order={"model": ("schnet", "dimenet-pp"), "dataset": ("s2ef-200k", "s2ef-2m", "is2re-all")},
                   labels={"schnet": "SchNet", "dimenet-pp": "DimeNet++", "s2ef-200k": "S2EF-200k",
                           "s2ef-2m": "S2EF-2M", "is2re-all": "IS2RE-All", "s2ef": "S2EF", "is2re": "IS2RE",
                           "val_id_energy_mae": "val ID energy MAE (eV)",
                           "val_id_forces_mae": "val ID forces MAE (eV/Å)",
                           "val_id_energy_forces_within_threshold": "val ID EFwT"}),
    )
    datasets = S2EF_DATASETS + IS2RE_DATASETS
    rehearsal_datasets = ("is2re-synthetic-emt",)  # datasets/synthetic_is2re.py
    tasks = ("s2ef", "is2re")
    shardable_tasks = ("s2ef", "is2re")  # blocks of evaluation batches (tasks/s2ef_is2re.py UNIT_BATCHES)
    task_datasets = {"s2ef": S2EF_DATASETS, "is2re": IS2RE_DATASETS}

    def paper_resources(self, run: RunSpec, stage: str) -> Resources:
        """Training takes the GPUs of fairchem's config, up to one node's :data:`GPUS_PER_NODE`
        (the trainer's data-parallel processes share a node); with fewer GPUs than the config each
        rank accumulates micro-batches, so the global batch and the step schedule are the paper's.
        Radius graphs are built on the CPU while training, hence 4 CPUs per GPU."""
        if stage == "train":
            paper_gpus = paper_settings(run)["train"]["micro_batches"]
            gpus = min(paper_gpus, GPUS_PER_NODE)
            per_rank = -(-paper_gpus // gpus)
            return Resources(gpus=gpus, cpus=4 * gpus, mem_mb=16000 * gpus, runtime_min=240,
                             reason=f"fairchem's config ran {paper_gpus} GPUs; {gpus} on one node (DDP), each "
                                    f"accumulating {per_rank} micro-batch(es): the same global batch and steps; "
                                    "days of training, so 4 h attempts that resume from last.pt")
        return Resources(gpus=1, cpus=8, mem_mb=64000, runtime_min=240,
                         reason="the four S2EF validation splits (~1 M frames each) or the IS2RE split, in "
                                "shards of prediction units when long; graphs built on the CPU")

    def paper_cost(self, run: RunSpec, settings: dict[str, Any]) -> Cost | None:
        """DimeNet++: the EquiformerV2 paper's V100 training throughput × the run's epochs × its
        training set, evaluation at the same rate over the validation splits (an upper bound: no
        backward pass; IS2RE uses the S2EF figure, also an upper bound). SchNet and our equivariant
        models: no published throughput — rehearse them; their Cost prices only the CPU scoring of
        the gathered shards (measured rate, :data:`SCORE_SECONDS_PER_FRAME`)."""
        rate = V100_SAMPLES_PER_S.get(run.model)
        scoring = VAL_SIZE[run.dataset] * SCORE_SECONDS_PER_FRAME / 3600
        score_note = (f"scoring: {VAL_SIZE[run.dataset]:,} frames × {SCORE_SECONDS_PER_FRAME * 1e6:.0f} µs "
                      "(benchmarks/oc20_score.py)")
        if rate is None:  # a figure for the CPU scoring only; the rehearsal prices the GPU stages
            return Cost(None, None, "cpu", score_note, score_core_hours=scoring, estimate=True)
        epochs = settings["train"]["epochs"]
        train_gpus, evaluate_gpus = (self.paper_resources(run, stage).gpus for stage in ("train", "evaluate"))
        return Cost(epochs * TRAIN_SIZE[run.dataset] / rate / 3600 / train_gpus,
                    VAL_SIZE[run.dataset] / rate / 3600 / evaluate_gpus, "V100",
                    f"EquiformerV2 paper Table 2: DimeNet++ trains {rate} samples/GPU-s on a V100; × {epochs} "
                    f"epochs × {TRAIN_SIZE[run.dataset]:,}, evaluated at the same rate; {score_note}",
                    score_core_hours=scoring)

    def rehearsal_proxies(self, run: RunSpec, settings: dict[str, Any]) -> list[RehearsalProxy]:
        """IS2RE SchNet, where no rehearsal of its own is at hand: S2EF SchNet's per structure, an
        upper bound (it also predicts forces — a second backward pass — with a larger model:
        hidden 1024, 5 interactions against IS2RE's 384 and 4)."""
        if run.task == "is2re" and run.model == "schnet":
            return [RehearsalProxy("oc20/s2ef-2m/s2ef/schnet/", 1.0, "S2EF SchNet per structure (forces and a "
                                   "larger model: an upper bound for direct IS2RE)", train=True)]
        return []

    def score_resources(self, run: RunSpec) -> Resources:
        """The gathered prediction of S2EF-2M's four validation splits (~4 M frames: forces of
        ~300 M atoms, float64 predicted and true, ~15 GB) is scored in memory."""
        return Resources(gpus=0, cpus=2, mem_mb=64000, runtime_min=60,
                         reason="gathers ~4 M validation frames' forces (~15 GB predicted + true) and scores "
                                "them in memory with fairchem's metrics (single-threaded NumPy)")

    def preprocess_resources(self, dataset: str, preset: str) -> Resources:
        if dataset == "s2ef-synthetic-emt":
            return Resources(gpus=0, cpus=2, mem_mb=4000, runtime_min=30,
                             reason="generated with ASE's EMT calculator: minutes")
        return Resources(gpus=0, cpus=8, mem_mb=64000, runtime_min=720,
                         reason="fairchem LMDB/extxyz archives of up to 2 M frames → Parquet")

    def expand_runs(self, family_config: dict[str, Any], preset: str) -> list[RunSpec]:
        return expand_sweep(self, family_config, preset)

    def check_run(self, run: RunSpec) -> None:
        from replibench.errors import ConfigError

        super().check_run(run)
        if run.dataset not in self.task_datasets[run.task]:
            raise ConfigError(f"oc20/{run.task}: dataset {run.dataset!r} belongs to another task; allowed: "
                              f"{', '.join(self.task_datasets[run.task])}")

    def run_settings(self, family_config: dict[str, Any], run: RunSpec) -> dict[str, Any]:
        base = smoke_settings(run) if run.preset == "smoke" else paper_settings(run)
        override = copy.deepcopy(family_config.get("overrides", {}).get(run.model, {}))
        return deep_merge(base, override)

    def official_train_examples(self, dataset: str) -> int | None:
        return TRAIN_SIZE.get(dataset)

    def official_prediction_rows(self, run: RunSpec, settings: dict[str, Any]) -> int | None:
        """Frames of the validation splits the paper reports (S2EF: the four val splits)."""
        return VAL_SIZE.get(run.dataset)

    def rehearsal_data(self, dataset: str, family_config: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """S2EF: the synthetic EMT set (real adslab geometry and force labels, ASE's EMT instead of
        DFT); IS2RE: its IS2RE-shaped sibling (initial structures, EMT relaxed energies). Their slabs
        are smaller than OC20's ~80 atoms, so a step here underestimates one there."""
        from replibench.families.oc20.datasets.synthetic_is2re import DATASET_NAME as IS2RE_SYNTHETIC

        if dataset.startswith("s2ef"):
            return SYNTHETIC_DATASET, self.dataset_options(family_config, SYNTHETIC_DATASET, "paper")
        if dataset in IS2RE_DATASETS:
            return IS2RE_SYNTHETIC, self.dataset_options(family_config, IS2RE_SYNTHETIC, "paper")
        return None

    def dataset_options(self, family_config: dict[str, Any], dataset: str, preset: str) -> dict[str, Any]:
        """The synthetic sets' sizes and seed (the same under both presets; override the S2EF set's
        with ``oc20.synthetic_data``); downloaded datasets have none."""
        if dataset == SYNTHETIC_DATASET:
            from replibench.families.oc20.datasets.synthetic import DEFAULT_OPTIONS  # numpy only

            return {**DEFAULT_OPTIONS, **family_config.get("synthetic_data", {})}
        from replibench.families.oc20.datasets.synthetic_is2re import DATASET_NAME, DEFAULT_OPTIONS

        return dict(DEFAULT_OPTIONS) if dataset == DATASET_NAME else {}

FAMILY = OC20Family()
