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
  64, loss base.yml 2 / 100, fairchem's cosine (``fairchem-cosine``: from 0.2× to 0.01×).
* S2EF-2M, EquiformerV2 and EquiformerV2 + Gaunt-Selfmix (the Gaunt paper's Table 1 rows, one run
  per maximum degree L = 4, 6: config ``max_degrees``, variant ``l4`` / ``l6``):
  ``s2ef/2M/equiformer_v2/equiformer_v2_N@12_L@6_M@2.yml`` with ``lmax_list: [L]``
  (:data:`EQUIFORMER_V2_PAPER`, every value beside its source): AdamW lr 4e-4, weight decay 1e-3,
  fairchem's cosine (warm-up from 0.2× over 0.1 epoch, to 0.01× at the end), 30 epochs, grad-norm
  clip 100, EMA 0.999, batch 4 × 16 GPUs = 64, loss 2 / 100, radius graph 12 Å with at most 20
  neighbours. fairchem validates every 5,000 steps; we validate once per epoch.
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
S2EF_MODELS = ("schnet", "dimenet-pp", "equivariant-cg", "equivariant-gaunt", "equiformer-v2",
               "equiformer-v2-gaunt-selfmix")
IS2RE_MODELS = ("schnet", "dimenet-pp")
EQUIVARIANT_MODELS = ("equivariant-cg", "equivariant-gaunt")
#: the Gaunt paper's Table 1 backbones: one run per maximum degree L (the variant, ``l4`` / ``l6``)
EQUIFORMER_MODELS = ("equiformer-v2", "equiformer-v2-gaunt-selfmix")
#: the degrees Table 1 reports (Gaunt paper; research notes oc20.md §5.1)
TABLE1_MAX_DEGREES = (4, 6)

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
              "weight_decay": 1e-3, "lr_schedule": "fairchem-cosine", "warmup_factor": 0.2, "lr_min_factor": 0.01,
              "warmup_steps": _EQUIFORMER_V2_2M_STEPS_PER_EPOCH // 10,
              "grad_clip": 100.0, "ema_decay": 0.999, "patience": None, "drop_last": False,
              "checkpoint_every": 1000, "loader_workers": PAPER_LOADER_WORKERS},
    "task": {"energy_coefficient": 2.0, "force_coefficient": 100.0, "eval_batch_size": 4, **_PER_BATCH_GRAPHS},
}

#: EquiformerV2 and EquiformerV2 + Gaunt-Selfmix on S2EF-2M (Gaunt paper Table 1). Every value is
#: fairchem's ``configs/oc20/s2ef/2M/equiformer_v2/equiformer_v2_N@12_L@6_M@2.yml`` (FAIR-Chem/fairchem
#: 31c0963) and its ``base.yml``; the model's other sizes are ``EquiformerV2Config``'s defaults, which
#: are that file's. Only ``lmax_list`` changes with the run's L: fairchem ships no L = 4 S2EF-2M file,
#: and the EquiformerV2 paper's L = 4 row (which the Gaunt paper's Table 1 quotes) changes L alone.
#: The Gaunt variant adds its Selfmix blocks and keeps every optimiser setting (the paper states no
#: other; its OC20 training code was never released).
EQUIFORMER_V2_PAPER = {
    "model": {"mmax_list": [2]},  # mmax_list: [2] (the file's M@2); lmax_list is set per run
    "train": {"epochs": 30,  # max_epochs: 30
              "batch_size": 4 * 16, "micro_batches": 16,  # batch_size: 4 per GPU × 16 GPUs (the file's run)
              "optimizer": "adamw", "lr": 4e-4,  # optimizer: AdamW, lr_initial: 0.0004
              "weight_decay": 1e-3,  # optimizer_params.weight_decay: 0.001
              "lr_schedule": "fairchem-cosine",  # scheduler: LambdaLR, lambda_type: cosine
              "warmup_steps": _EQUIFORMER_V2_2M_STEPS_PER_EPOCH // 10,  # warmup_epochs: 0.1
              "warmup_factor": 0.2,  # warmup_factor: 0.2
              "lr_min_factor": 0.01,  # lr_min_factor: 0.01
              "grad_clip": 100.0,  # clip_grad_norm: 100
              "ema_decay": 0.999,  # ema_decay: 0.999
              "patience": None, "drop_last": False, "checkpoint_every": 1000, "loader_workers": PAPER_LOADER_WORKERS},
    "task": {"energy_coefficient": 2.0, "force_coefficient": 100.0,  # base.yml loss_functions: energy mae × 2, forces l2mae × 100
             "eval_batch_size": 4,  # eval_batch_size: 4
             # max_radius: 12.0, max_neighbors: 20 (otf_graph: fairchem's strict neighbour selection)
             "graph": {"mode": "per_batch", "cutoff": 12.0, "max_neighbors": 20}},
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
    # EquiformerV2 code paths of the 2M config at toy widths (lmax_list comes from the run's L)
    "equiformer-v2": {"num_layers": 2, "sphere_channels": 8, "attn_hidden_channels": 8, "num_heads": 2,
                      "attn_alpha_channels": 4, "attn_value_channels": 4, "ffn_hidden_channels": 8,
                      "edge_channels": 8, "mmax_list": [2], "num_sphere_samples": 16},
}
SMOKE_MODEL["equiformer-v2-gaunt-selfmix"] = dict(SMOKE_MODEL["equiformer-v2"])
#: Adam-style training on the synthetic set's 768 frames (48 batches of 16 per epoch), for a
#: CPU budget of about a minute or two per model on a quiet 2-core machine (process CPU time per
#: step of 16: SchNet ~0.15 s, equivariant CG ~1.0 s, Gaunt ~1.8 s, DimeNet++ ~3 s)
SMOKE_TRAIN = {"epochs": 5, "batch_size": 16, "optimizer": "adamw", "weight_decay": 0.0,
               "lr_schedule": "cosine", "warmup_steps": 10, "patience": None, "drop_last": True,
               "checkpoint_every": 50, "grad_clip": 100.0}
SMOKE_MAX_STEPS = {"schnet": 240, "dimenet-pp": 20, "equivariant-cg": 60, "equivariant-gaunt": 60,
                   "equiformer-v2": 20, "equiformer-v2-gaunt-selfmix": 20}
#: the equivariant models barely move at 2e-3 in 60 steps (val force MAE 0.274 -> 0.270 after 32
#: steps on the smoke set) and learn at 1e-2 (-> 0.238); SchNet learns at 2e-3
SMOKE_LR = {"schnet": 2e-3, "dimenet-pp": 2e-3, "equivariant-cg": 1e-2, "equivariant-gaunt": 1e-2,
            "equiformer-v2": 2e-3, "equiformer-v2-gaunt-selfmix": 2e-3}
#: EMT energies are on another scale than DFT adsorption energies: normalise with the training set
SMOKE_TASK = {"normalizer": "dataset", "eval_batch_size": 32}


def paper_settings(run: RunSpec) -> dict[str, Any]:
    """fairchem's configs for the run's task and model (see the module docstring)."""
    if run.task == "is2re":
        return copy.deepcopy(IS2RE_PAPER[run.model])
    if run.model in EQUIVARIANT_MODELS:
        return copy.deepcopy(EQUIVARIANT_PAPER)
    if run.model in EQUIFORMER_MODELS:
        settings = copy.deepcopy(EQUIFORMER_V2_PAPER)
        settings["model"]["lmax_list"] = [run.values["lmax"]]
        return settings
    return copy.deepcopy(S2EF_PAPER[run.model])


def smoke_settings(run: RunSpec) -> dict[str, Any]:
    """CPU sizes: small models, a few epochs of the synthetic set; the task's loss coefficients
    stay the paper's (they are part of the protocol, not of the size)."""
    paper = paper_settings(run)
    task = {key: value for key, value in paper["task"].items() if key.endswith("_coefficient")}
    train = {**SMOKE_TRAIN, "max_steps": SMOKE_MAX_STEPS[run.model], "lr": SMOKE_LR[run.model]}
    model = dict(SMOKE_MODEL[run.model])
    if run.model in EQUIFORMER_MODELS:  # the run's L, and the radius graph of the paper's config
        model["lmax_list"] = [run.values["lmax"]]
        model["grid_resolution"] = 2 * (run.values["lmax"] + 1)  # the coarsest S2 grid e3nn allows at L
        graph = {key: value for key, value in paper["task"]["graph"].items() if key != "mode"}
        task["graph"] = graph  # stored once per structure (precompute), as every smoke run
    return {"model": model, "train": train, "task": {**task, **SMOKE_TASK}}


#: GPUs one training job may ask for: the trainer's data-parallel processes run on one node
GPUS_PER_NODE = 8
#: training samples per GPU-second on a V100 (EquiformerV2 paper, Table 2; research/oc20.md): the
#: only published throughput among our models
V100_SAMPLES_PER_S = {"dimenet-pp": 4.6}
#: EquiformerV2 at the S2EF-2M config (12 blocks, M = 2), training samples per V100-second, by L:
#: no rate is published for it, so it is estimated from the two the EquiformerV2 paper's Table 2
#: gives (research notes oc20.md §5.2b), per block: the 31M model (8 blocks, L = 4, M = 2) trains
#: 7.1 samples/s -> 8/12 of that with 12 blocks; the 153M model (20 blocks, L = 6, M = 3) 1.8/s ->
#: 20/12 of that with 12 blocks, a lower bound for M = 2 (fewer SO(2) orders per block). Same
#: channel widths in all three configs. The Gaunt-Selfmix variant is priced at the same rate (its
#: blocks add one Gaunt product per node per layer, small beside the edge attention): an estimate,
#: which a GPU rehearsal replaces.
EQUIFORMER_V2_V100_SAMPLES_PER_S = {4: 7.1 * 8 / 12, 6: 1.8 * 20 / 12}

#: the Gaunt paper's efficiency claim as the default benchmark measures it on a CPU (one thread):
#: per setting of its notebooks, the degrees L (their convention: degrees 0..L-1) timed and, for the
#: many-body setting, the correlation orders nu (3 over its L range; 4..7 at L = 2, as there). The
#: notebooks go further on their GPU (feature interaction to L = 14, convolution to 12); the default
#: run stops at L = 10 to stay within a minute or two per setting on one CPU thread
#: (benchmarks/oc20_gaunt_efficiency.py runs to 14). Both passes: forward, and forward + backward.
CLAIM_DEGREES = {"feature-interaction": tuple(range(2, 11)), "convolution": tuple(range(2, 11)),
                 "many-body": (2, 3, 4, 5, 6)}
CLAIM_MANY_BODY_CORRELATIONS_AT_L2 = (4, 5, 6, 7)
#: timed calls per row (best of them is reported, after one warm-up call)
CLAIM_REPEATS = 5

#: frames or systems per split (OC20 README; research/oc20.md §1)
TRAIN_SIZE = {"s2ef-2m": 2_000_000, "is2re-all": 460_328}
VAL_SIZE = {"s2ef-2m": 4 * 1_000_000, "is2re-all": 25_000}
#: single-core seconds per validation frame of fairchem's S2EF metrics, measured here by
#: benchmarks/oc20_score.py (200,000 random frames of 77 atoms, 2026-12-04: 66 µs, with another
#: job sharing the 2 cores, so an upper bound); sizes the job that scores gathered shards
SCORE_SECONDS_PER_FRAME = 66e-6


def _cpu_name(machine: str) -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else the machine architecture: claim rows say
    where their times were measured."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{machine} CPU"


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
    claims = {"gaunt-efficiency": tuple(CLAIM_DEGREES)}
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
        backward pass; IS2RE uses the S2EF figure, also an upper bound). EquiformerV2 (± Gaunt):
        the same, at a rate estimated from that paper's two published ones (see
        :data:`EQUIFORMER_V2_V100_SAMPLES_PER_S`). SchNet and our equivariant
        models: no published throughput — rehearse them; their Cost prices only the CPU scoring of
        the gathered shards (measured rate, :data:`SCORE_SECONDS_PER_FRAME`)."""
        rate = V100_SAMPLES_PER_S.get(run.model)
        source = f"EquiformerV2 paper Table 2: DimeNet++ trains {rate} samples/GPU-s on a V100"
        if run.model in EQUIFORMER_MODELS:
            rate = EQUIFORMER_V2_V100_SAMPLES_PER_S[run.values["lmax"]]
            source = (f"estimate: {rate:.2g} samples/GPU-s on a V100, from the EquiformerV2 paper's Table 2 rates "
                      "(31M: 7.1/s with 8 blocks at L = 4; 153M: 1.8/s with 20 blocks at L = 6, M = 3) scaled to "
                      "12 blocks (EQUIFORMER_V2_V100_SAMPLES_PER_S)")
        scoring = VAL_SIZE[run.dataset] * SCORE_SECONDS_PER_FRAME / 3600
        score_note = (f"scoring: {VAL_SIZE[run.dataset]:,} frames × {SCORE_SECONDS_PER_FRAME * 1e6:.0f} µs "
                      "(benchmarks/oc20_score.py)")
        if rate is None:  # a figure for the CPU scoring only; the rehearsal prices the GPU stages
            return Cost(None, None, "cpu", score_note, score_core_hours=scoring, estimate=True)
        epochs = settings["train"]["epochs"]
        train_gpus, evaluate_gpus = (self.paper_resources(run, stage).gpus for stage in ("train", "evaluate"))
        return Cost(epochs * TRAIN_SIZE[run.dataset] / rate / 3600 / train_gpus,
                    VAL_SIZE[run.dataset] / rate / 3600 / evaluate_gpus, "V100",
                    f"{source}; × {epochs} epochs × {TRAIN_SIZE[run.dataset]:,}, evaluated at the same rate; "
                    f"{score_note}", score_core_hours=scoring, estimate=run.model in EQUIFORMER_MODELS)

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
        """Each entry's runs; an entry with ``max_degrees`` (the EquiformerV2 models) has one
        variant per degree L (``l4``, ``l6``: the rows of the Gaunt paper's Table 1)."""
        runs: dict[str, RunSpec] = {}  # run id -> run, first entry wins (as expand_sweep dedupes)
        for entry in family_config.get("runs", []):
            axes = ({entry["task"]: ("max_degrees", lambda degree: {"lmax": int(degree)})}
                    if "max_degrees" in entry else None)
            for run in expand_sweep(self, {**family_config, "runs": [entry]}, preset, axes):
                runs.setdefault(run.run_id, run)
        return list(runs.values())

    def variant_name(self, task: str, values: dict[str, Any]) -> str:
        """``l<L>`` for a run at maximum degree L; ``default`` for a model without that knob."""
        if set(values) - {"lmax"}:
            raise ValueError(f"oc20/{task}: unknown variant values {dict(values)}; only lmax (the EquiformerV2 "
                             "models' maximum degree) names a variant")
        return f"l{values['lmax']}" if values else "default"

    def check_run(self, run: RunSpec) -> None:
        from replibench.errors import ConfigError

        super().check_run(run)
        if run.dataset not in self.task_datasets[run.task]:
            raise ConfigError(f"oc20/{run.task}: dataset {run.dataset!r} belongs to another task; allowed: "
                              f"{', '.join(self.task_datasets[run.task])}")
        if (run.model in EQUIFORMER_MODELS) != ("lmax" in run.values):
            need = "needs max_degrees (e.g. [4, 6])" if run.model in EQUIFORMER_MODELS else "takes no max_degrees"
            raise ConfigError(f"oc20/{run.task}/{run.model}: the run entry {need}: only "
                              f"{', '.join(EQUIFORMER_MODELS)} have one variant per maximum degree L")

    def run_settings(self, family_config: dict[str, Any], run: RunSpec) -> dict[str, Any]:
        base = smoke_settings(run) if run.preset == "smoke" else paper_settings(run)
        override = copy.deepcopy(family_config.get("overrides", {}).get(run.model, {}))
        return deep_merge(base, override)

    def official_train_examples(self, dataset: str) -> int | None:
        return TRAIN_SIZE.get(dataset)

    def measure_claim(self, claim: str, setting: str, *, device: str, threads: int) -> dict[str, Any]:
        """The Gaunt paper's efficiency claim, one setting of its notebooks: our Gaunt tensor product
        against e3nn's CG product (and eSCN's rotation trick for the convolution) at
        :data:`CLAIM_DEGREES`, forward and forward + backward, with the notebooks' printed times
        beside (:mod:`replibench.families.oc20.efficiency`)."""
        import platform

        import torch

        from replibench.errors import ConfigError
        from replibench.families.oc20.efficiency import claim_file, measure

        if claim not in self.claims or setting not in self.claims[claim]:
            known = "; ".join(f"{name}: {', '.join(settings)}" for name, settings in self.claims.items())
            raise ConfigError(f"oc20: no claim {claim!r} with setting {setting!r} (known: {known})")
        torch.set_num_threads(threads)
        rows = []
        for backward in (False, True):
            rows += measure(setting, list(CLAIM_DEGREES[setting]), repeats=CLAIM_REPEATS, device=device,
                            backward=backward)
            if setting == "many-body":
                for correlation in CLAIM_MANY_BODY_CORRELATIONS_AT_L2:
                    rows += measure(setting, [2], correlation=correlation, repeats=CLAIM_REPEATS, device=device,
                                    backward=backward)
        where = torch.cuda.get_device_name() if device.startswith("cuda") else _cpu_name(platform.machine())
        return claim_file(setting, rows, f"{device}: {where}, {threads} thread{'s' if threads > 1 else ''}, "
                                         f"float32, best of {CLAIM_REPEATS} (process CPU time on CPU)")

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
