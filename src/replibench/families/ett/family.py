"""ETT family: which runs a config asks for, and the settings each run gets.

Settings of a run = the preset's defaults (the papers' for ``paper``; smaller sizes and steps for
``smoke`` — never other code paths) overlaid with the user's per-model ``overrides``. Only these
settings reach a job as Snakemake ``params``, so changing one model's hyper-parameter reruns only
that model's jobs.

Sources: TSLib ``run.py`` defaults and ``scripts/long_term_forecast/ETT_script/TimesNet_*.sh`` /
``scripts/imputation/ETT_script/TimesNet_*.sh`` (research notes, timeseries.md §2, §2a, §2b).
"""

from __future__ import annotations

import copy
from typing import Any

from replibench.families.base import Cost, Family, PaperTable, Resources, deep_merge, expand_sweep
from replibench.runs import RunSpec

SEQ_LEN = 96  # TimesNet paper, long-term forecasting input length
HORIZONS = (96, 192, 336, 720)
MASK_RATIOS = (0.125, 0.25, 0.375, 0.5)

# TSLib run.py defaults, used unchanged by the TimesNet ETT forecasting scripts.
_FORECAST_TRAIN = {"epochs": 10, "batch_size": 32, "lr": 1e-4, "lr_schedule": "type1", "patience": 3,
                   "optimizer": "adam", "drop_last": True}
# TimesNet imputation scripts: batch 16, lr 1e-3, 10 epochs, patience 3, type1.
_IMPUTE_TRAIN = {"epochs": 10, "batch_size": 16, "lr": 1e-3, "lr_schedule": "type1", "patience": 3,
                 "optimizer": "adam", "drop_last": True}

# TimesNet forecasting scripts (timeseries.md §2a): (dataset, horizon) → overrides of the ETTh1
# defaults (d_model 16, d_ff 32, top_k 5, num_kernels 6, e_layers 2) and of train_epochs.
_TIMESNET_FORECAST = {
    "etth1": {h: ({}, {}) for h in HORIZONS},
    "etth2": {h: ({"d_model": 32, "d_ff": 32}, {}) for h in HORIZONS},
    "ettm1": {96: ({"d_model": 64, "d_ff": 64}, {}), 192: ({"d_model": 64, "d_ff": 64}, {}),
              336: ({"d_model": 16, "d_ff": 32}, {"epochs": 3}), 720: ({"d_model": 16, "d_ff": 32}, {})},
    "ettm2": {96: ({"d_model": 32, "d_ff": 32}, {}), 192: ({"d_model": 32, "d_ff": 32}, {"epochs": 1}),
              336: ({"d_model": 32, "d_ff": 32}, {}), 720: ({"d_model": 16, "d_ff": 32}, {"epochs": 1})},
}
# TimesNet imputation scripts (timeseries.md §2b): top_k 3 for all, d_model/d_ff per dataset.
_TIMESNET_IMPUTE = {
    "etth1": {"d_model": 16, "d_ff": 32, "top_k": 3},
    "etth2": {"d_model": 32, "d_ff": 32, "top_k": 3},
    "ettm1": {"d_model": 64, "d_ff": 64, "top_k": 3},
    "ettm2": {"d_model": 64, "d_ff": 64, "top_k": 3},
}


#: forecasters whose forecast of a window does not depend on the other windows of its batch
#: (TimesNet's does: its FFT periods are chosen per batch, so it is tested at batch size 1)
BATCH_INDEPENDENT_FORECASTERS = ("naive", "naive-mean", "dlinear")
BATCH_INDEPENDENT_TEST_BATCH = 256


#: task → the one variant value its runs carry: forecast horizon (time steps), test mask ratio
VARIANT_VALUE = {"forecast": "horizon", "impute": "mask_ratio", "zeroshot": "horizon", "zeroshot-lsf": "horizon"}


def variant_values(task: str, value: float) -> dict[str, int | float]:
    """``{"horizon": 96}`` for a forecast horizon, ``{"mask_ratio": 0.125}`` for a mask ratio."""
    return {"mask_ratio": float(value)} if task == "impute" else {"horizon": int(value)}


def variant_name(task: str, values: dict[str, Any]) -> str:
    """``h96`` for ``{"horizon": 96}``, ``mask0.125`` for ``{"mask_ratio": 0.125}``."""
    if set(values) != {VARIANT_VALUE[task]}:
        raise ValueError(f"ETT {task} variant values {values} must be exactly {{{VARIANT_VALUE[task]!r}: …}}")
    return f"mask{values['mask_ratio']:g}" if task == "impute" else f"h{values['horizon']}"


#: Moirai-MoE zero-shot settings. Prediction length and windows: uni2ts eval_util/_pf_dataset.py
#: (_load_etth: 24 steps, _load_ettm: 96, 7 rolling windows). patch_size 16: the only one the
#: released models have (config.json patch_sizes [16]). num_samples 100 and batch size 32: the
#: Moirai-MoE README example (project/moirai-moe-1/README.md; uni2ts cli/conf/eval default batch 512
#: only changes which draws go to which item). context_length 1000: the README example's CTX; the
#: paper does not state the context of its zero-shot table and its scripts are "coming soon" —
#: our choice, recorded in every row's protocol.
MOIRAI_ZEROSHOT = {"windows": 7, "patch_size": 16, "num_samples": 100, "batch_size": 32, "context_length": 1000}
#: the smoke preset's tiny checkpoint: same format and code path, random weights, CPU-sized
MOIRAI_TINY = {"d_model": 64, "d_ff": 32, "num_layers": 2}
MOIRAI_SIZES = {"moirai-moe-small": "small", "moirai-moe-base": "base"}
#: where the download rule puts released files of this family
RAW_FOLDER = "data/raw/ett"


#: Moirai's LSF scripts (uni2ts project/moirai-1/eval/lsf_*.sh): context_length 5000 for every ETT file;
#: their patch sizes (64/64/64/128) do not exist in Moirai-MoE, which has only 16
MOIRAI_LSF = {"patch_size": 16, "num_samples": 100, "batch_size": 32, "context_length": 5000, "max_windows": None}


def zeroshot_settings(run: RunSpec, preset: str) -> dict[str, Any]:
    """Moirai-MoE on the PF (``zeroshot``) or LSF (``zeroshot-lsf``) protocol: the released weights
    (paper) or the tiny test checkpoint (smoke: short context, 20 samples, LSF on 8 windows)."""
    from replibench.families.ett.models.moirai_moe_files import moirai_moe_files

    base = MOIRAI_ZEROSHOT if run.task == "zeroshot" else MOIRAI_LSF
    task = dict(base, prediction_length=int(run.values["horizon"]))
    if preset == "smoke":
        task.update(context_length=128, num_samples=20, weights={"source": "tiny", "seed": run.seed})
        if run.task == "zeroshot-lsf":
            task["max_windows"] = 8
        return {"task": task, "model": dict(MOIRAI_TINY), "train": {"epochs": 1, "batch_size": 1}}
    files = moirai_moe_files(MOIRAI_SIZES[run.model])
    task["weights"] = {"source": "released", "size": MOIRAI_SIZES[run.model],
                       "config": f"{RAW_FOLDER}/{files['config'].name}",
                       "weights": f"{RAW_FOLDER}/{files['weights'].name}"}
    return {"task": task, "model": {}, "train": {"epochs": 1, "batch_size": 1}}


def timesnet_paper_hparams(dataset: str, task: str, value: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, train) overrides of the TimesNet scripts for one dataset and horizon/mask ratio."""
    if task == "forecast":
        model, train = _TIMESNET_FORECAST[dataset][int(value)]
        return dict(model), dict(train)
    return dict(_TIMESNET_IMPUTE[dataset]), {}


def paper_settings(run: RunSpec) -> dict[str, Any]:
    """The papers' settings for ``run`` (the ``paper`` preset)."""
    if run.task in ("zeroshot", "zeroshot-lsf"):
        return zeroshot_settings(run, "paper")
    value = run.values[VARIANT_VALUE[run.task]]
    # The paper-era TSLib loaders (Feb 2023) validated with the training batch size and tested
    # with batch size 1 (timeseries.md §2, drop_last history); TimesNet's batch-averaged periods
    # make the test batch size part of the protocol.
    if run.task == "forecast":
        settings = {"task": {"seq_len": SEQ_LEN, "pred_len": int(value), "eval_batch_size": 1,
                             "val_batch_size": _FORECAST_TRAIN["batch_size"]},
                    "train": dict(_FORECAST_TRAIN), "model": {}}
    else:
        settings = {"task": {"seq_len": SEQ_LEN, "mask_ratio": value, "mask_seed": run.seed, "eval_batch_size": 1,
                             "val_batch_size": _IMPUTE_TRAIN["batch_size"]},
                    "train": dict(_IMPUTE_TRAIN), "model": {}}
    if run.task == "forecast" and run.model in BATCH_INDEPENDENT_FORECASTERS:
        # each window's forecast is a function of that window alone, so the test batch size changes
        # only speed (tests/spine/test_ett_protocol.py checks DLinear's forecasts at 1 and 256 agree);
        # at 1, DLinear's ETTm tests took ~30 CPU-s each and the default run would exceed its budget
        settings["task"]["eval_batch_size"] = BATCH_INDEPENDENT_TEST_BATCH
    if run.model == "timesnet":
        model, train = timesnet_paper_hparams(run.dataset, run.task, value)
        settings["model"].update(model)
        settings["train"].update(train)
    return settings


def smoke_settings(run: RunSpec) -> dict[str, Any]:
    """``paper`` with CPU-sized steps: DLinear still trains to convergence (seconds per epoch);
    TimesNet (~2.4 s per CPU step with the ETTh1 config) trains a handful of steps and is tested in
    batches of 32, not one window at a time as the paper's test loader does: a smoke run checks the
    pipeline, never the paper, and the batch-1 test took 2 of the default run's 30 minutes."""
    if run.task in ("zeroshot", "zeroshot-lsf"):
        return zeroshot_settings(run, "smoke")
    settings = paper_settings(run)
    if not run.model == "timesnet":  # batch-independent models: the test batch size changes only speed
        settings["task"]["eval_batch_size"] = settings["task"]["val_batch_size"] = 256
    if run.model == "timesnet":
        settings["train"].update({"max_steps": 4, "epochs": 1})
        settings["task"]["eval_batch_size"] = 32
    return settings


#: how TimesNet's and DLinear's tables order and spell the ETT rows and columns
ETT_ORDER = {"dataset": ("etth1", "etth2", "ettm1", "ettm2"),
             "variant": ("h24", "h96", "h192", "h336", "h720", "avg"),
             "model": ("timesnet", "dlinear", "naive", "moirai-moe-small", "moirai-moe-base"),
             "metric": ("mse", "mae", "mse_droplast32", "mae_droplast32", "crps", "mase")}
ETT_LABELS = {"etth1": "ETTh1", "etth2": "ETTh2", "ettm1": "ETTm1", "ettm2": "ETTm2", "h96": "96", "h192": "192",
              "h336": "336", "h720": "720", "avg": "Avg", "timesnet": "TimesNet", "dlinear": "DLinear",
              "naive": "Repeat", "mse": "MSE", "mae": "MAE", "mse_droplast32": "MSE", "mae_droplast32": "MAE",
              "h24": "24", "moirai-moe-small": "Moirai-MoE-S", "moirai-moe-base": "Moirai-MoE-B", "crps": "CRPS",
              "mase": "MASE"}


#: TimesNet forecasting on one H200, seconds per run (training to its last epoch + the batch-1 test):
#: `benchmarks/gpu_reproduce.py --plan-only --runs all`, an ATen-op × FLOP model calibrated on the
#: measured ETTh1-96 run (150 s estimated, 142 s measured: 116 s train + 26 s test)
TIMESNET_H200_S = {
    ("etth1", 96): 150, ("etth1", 192): 164, ("etth1", 336): 183, ("etth1", 720): 230,
    ("etth2", 96): 184, ("etth2", 192): 219, ("etth2", 336): 259, ("etth2", 720): 355,
    ("ettm1", 96): 1525, ("ettm1", 192): 2070, ("ettm1", 336): 290, ("ettm1", 720): 1005,
    ("ettm2", 96): 759, ("ettm2", 192): 165, ("ettm2", 336): 1053, ("ettm2", 720): 178,
}
#: share of the measured ETTh1-96 H200 run spent testing (26 s of 142 s)
TIMESNET_TEST_SHARE = 26.0 / 142.0
#: the slowest ETTh / ETTm runs of each CPU model in the default run (leaderboard/results.parquet at
#: 02141cf, one CPU core): (train s, evaluate s)
CPU_MEASURED_S = {("dlinear", "etth"): (17, 5), ("dlinear", "ettm"): (76, 17),
                  ("naive", "etth"): (1, 4), ("naive", "ettm"): (8, 16)}


#: Moirai-MoE parameters a token goes through (2 of 32 experts): uni2ts project/moirai-moe-1/README.md
MOIRAI_ACTIVE_PARAMETERS = {"moirai-moe-small": 11e6, "moirai-moe-base": 86e6}
#: sustained float32 rate assumed for the zero-shot estimate (FLOP/s): far below an H200's peak,
#: because each forward is a batch of ~65-token sequences and the 32 experts run one after another
MOIRAI_ASSUMED_FLOPS = 5e12
#: gathering the shards and scoring them: reading ≤ 2 × 10⁷ forecast values and a few array
#: operations (the smoke scoring of 56 rows takes milliseconds): an upper estimate, core-hours
ZEROSHOT_SCORE_CORE_HOURS = 0.05
#: loading the released weights and writing the run's model.pt (base: 3.7 GB): seconds
MOIRAI_LOAD_S = {"moirai-moe-small": 30.0, "moirai-moe-base": 120.0}


def zeroshot_cost(run: RunSpec, settings: dict[str, Any]) -> Cost:
    """An estimate (no run measured yet): 2 FLOP per active parameter per token plus 4·L²·d per layer
    of attention; the first forward sees each item once, every further patch re-runs all
    ``num_samples`` paths (decoder-only autoregression), ``variates × (ceil(context/16) + ceil(H/16))``
    tokens L each time."""
    import math

    from replibench.families.ett.models.moirai_moe_files import ARCHITECTURES
    from replibench.families.ett.tasks.zeroshot import LSF_MODE, lsf_window_count

    task = settings["task"]
    dims, items = 1, 7 * task.get("windows", 0)
    if run.task == "zeroshot-lsf":
        windows = lsf_window_count(run.dataset, task["prediction_length"])
        dims = 7 if LSF_MODE[run.dataset] == "M" else 1
        items = windows * (7 // dims)
    tokens = dims * (math.ceil(task["context_length"] / task["patch_size"]) + math.ceil(
        task["prediction_length"] / task["patch_size"]))
    passes = 1 + task["num_samples"] * (math.ceil(task["prediction_length"] / task["patch_size"]) - 1)
    arch = ARCHITECTURES[MOIRAI_SIZES[run.model]]
    attention = 4 * tokens ** 2 * arch["d_model"] * arch["num_layers"]  # QKᵀ and AV, every layer
    flop = (2 * MOIRAI_ACTIVE_PARAMETERS[run.model] * tokens + attention) * passes * items
    return Cost(MOIRAI_LOAD_S[run.model] / 3600, (flop / MOIRAI_ASSUMED_FLOPS + MOIRAI_LOAD_S[run.model]) / 3600,
                "H200", f"estimate: {flop:.2g} FLOP ((2 × active parameters × tokens + attention) × passes × items) at an "
                "assumed 5 TFLOP/s, plus loading the released weights",
                score_core_hours=ZEROSHOT_SCORE_CORE_HOURS, estimate=True)


class EttFamily(Family):
    name = "ett"
    datasets = ("etth1", "etth2", "ettm1", "ettm2")
    tasks = ("forecast", "impute", "zeroshot", "zeroshot-lsf")
    shardable_tasks = ("zeroshot", "zeroshot-lsf")  # batches of items, each seeded on its own (tasks/zeroshot.py)
    paper_tables = (
        PaperTable("TimesNet Table 13 (ETT part): long-term forecasting, input length 96 (Avg rows: Table 2)",
                   rows=("dataset", "variant"), columns=("model", "metric"),
                   select={"task": ("forecast",), "model": ("timesnet", "dlinear")}, paper="TimesNet",
                   order=ETT_ORDER, labels=ETT_LABELS),
        PaperTable("TimesNet Table 4 (ETT part): imputation, mean over mask ratios 12.5/25/37.5/50 %",
                   rows=("dataset", "variant"), columns=("model", "metric"), select={"task": ("impute",)},
                   paper="TimesNet", order=ETT_ORDER, labels=ETT_LABELS),
        PaperTable("DLinear Table 2 (ETT part): the Repeat baseline (last 32 test windows dropped)",
                   rows=("dataset", "variant"), columns=("model", "metric"),
                   select={"task": ("forecast",), "model": ("naive",)}, paper="DLinear", order=ETT_ORDER,
                   labels=ETT_LABELS),
        PaperTable("Moirai-MoE Table 2 (ETT part): zero-shot CRPS / MASE (paper's ETT1/ETT2 read as ETTh1/ETTh2)",
                   rows=("dataset", "variant"), columns=("model", "metric"), select={"task": ("zeroshot",)},
                   paper="Moirai-MoE", order=ETT_ORDER, labels=ETT_LABELS),
    )

    def paper_resources(self, run: RunSpec, stage: str) -> Resources:
        """Parameter-free baselines and DLinear are CPU jobs; TimesNet trains on one GPU."""
        if run.task in ("zeroshot", "zeroshot-lsf"):
            if stage == "train":  # loads the released weights and writes them as the run's model.pt
                return Resources(gpus=0, cpus=1, mem_mb=16000, runtime_min=30,
                                 reason="zero-shot: nothing is trained; the job checks and loads the released "
                                        "weights (up to 3.7 GB) into the run's model file on a CPU")
            if run.preset == "paper":
                base = run.model == "moirai-moe-base"
                return Resources(gpus=1, cpus=4, mem_mb=32000 if base else 16000, runtime_min=60,
                                 reason="inference only, one GPU: "
                                        + ("935 M parameters (3.7 GB float32)" if base else "117 M parameters (469 MB)")
                                        + "; 100 sample paths per item (PF: 49 items; LSF: every test window, "
                                          "split into shards by the plan)")
            return Resources(gpus=0, cpus=1, mem_mb=4000, runtime_min=30,
                             reason="smoke: a tiny random checkpoint, 20 sample paths; seconds on a CPU")
        if run.model in ("naive", "naive-mean"):
            return Resources(gpus=0, cpus=1, mem_mb=4000, runtime_min=30,
                             reason="no parameters: nothing to learn; the default run scores every ETT "
                                    "test window on one CPU core in under a minute")
        if run.model == "dlinear":
            return Resources(gpus=0, cpus=2, mem_mb=4000, runtime_min=30,
                             reason="one linear layer per channel: an ETTm paper run trains in ~35 s on "
                                    "one CPU core (measured, default run)")
        if stage == "train":
            return Resources(gpus=1, cpus=4, mem_mb=16000, runtime_min=120,
                             reason="TimesNet: ETTh1-96 trained in 116 s on an H200 (measured, recorded/); "
                                    "the largest ETT run, ETTm1-192, is estimated at 35 min there "
                                    "(benchmarks/gpu_reproduce.py); 120 min leaves room for older GPUs")
        return Resources(gpus=1, cpus=2, mem_mb=8000, runtime_min=60,
                         reason="TimesNet's paper test loader has batch size 1: 2,785–11,425 single-window "
                                "forwards (ETTh1: 26 s on an H200, measured)")

    def prediction_is_one_forward_pass(self, run: RunSpec) -> bool:
        return True  # a forecast or an imputation of one window

    def official_prediction_rows(self, run: RunSpec, settings: dict[str, Any]) -> int | None:
        """Test windows of the official split: TSLib's borders, every window counted."""
        from replibench.families.ett.datasets.ett import num_windows, split_borders_ett

        task = settings["task"]
        if run.task == "zeroshot":
            return task["windows"] * 7  # the 7 columns, each a univariate item per rolling window
        if run.task == "zeroshot-lsf":
            from replibench.families.ett.tasks.zeroshot import lsf_window_count

            return lsf_window_count(run.dataset, task["prediction_length"]) * 7  # every window, every channel
        start, end = split_borders_ett(run.dataset, task["seq_len"])["test"]
        return num_windows(end - start, task["seq_len"], task.get("pred_len", 0))

    def paper_cost(self, run: RunSpec, settings: dict[str, Any]) -> Cost | None:
        """Measured CPU figures for the baselines and DLinear; the calibrated H200 estimate for
        TimesNet forecasting; none yet for TimesNet imputation (to be rehearsed)."""
        if run.task in ("zeroshot", "zeroshot-lsf"):
            return zeroshot_cost(run, settings)
        if run.model in ("naive", "naive-mean", "dlinear"):
            kind = "naive" if run.model.startswith("naive") else "dlinear"
            train_s, test_s = CPU_MEASURED_S[kind, run.dataset[:4]]
            return Cost(train_s / 3600, test_s / 3600, "cpu (1 core)",
                        f"measured: the slowest {run.dataset[:4].upper()} {kind} run of the default run "
                        "(leaderboard/results.parquet, 02141cf)")
        if run.task == "forecast":
            total_s = TIMESNET_H200_S[run.dataset, run.values["horizon"]]
            return Cost(total_s * (1 - TIMESNET_TEST_SHARE) / 3600, total_s * TIMESNET_TEST_SHARE / 3600, "H200",
                        "estimate: benchmarks/gpu_reproduce.py op × FLOP model, calibrated on the measured "
                        "ETTh1-96 H200 run (150 s estimated, 142 s measured)", estimate=True)
        return None

    def expand_runs(self, family_config: dict[str, Any], preset: str) -> list[RunSpec]:
        return expand_sweep(self, family_config, preset, variant_axes={
            "forecast": ("horizons", lambda h: variant_values("forecast", h)),
            "impute": ("mask_ratios", lambda r: variant_values("impute", r)),
            "zeroshot": ("horizons", lambda h: variant_values("zeroshot", h)),
            "zeroshot-lsf": ("horizons", lambda h: variant_values("zeroshot-lsf", h)),
        })

    def variant_name(self, task: str, values: dict[str, Any]) -> str:
        return variant_name(task, values)

    def derived_results(self, results):  # (pd.DataFrame) -> pd.DataFrame
        """The papers' "Avg" rows: per seed, the plain mean over all four horizons (forecast) or
        all four mask ratios (imputation); only where every one of them was run."""
        import pandas as pd

        required = {"forecast": {variant_name("forecast", variant_values("forecast", h)) for h in HORIZONS},
                    "impute": {variant_name("impute", variant_values("impute", r)) for r in MASK_RATIOS}}
        group = ["family", "dataset", "task", "model", "preset", "seed", "metric", "data_origin"]
        rows = []
        for _, part in results.groupby(group, dropna=False, sort=True):
            task = part["task"].iloc[0]
            chosen = part[part["variant"].isin(required.get(task, set()))]
            if set(chosen["variant"]) != required.get(task, {None}):
                continue
            row = chosen.iloc[0].to_dict()
            row.update(variant="avg", variant_values=None, value=float(chosen["value"].mean()), steps=int(chosen["steps"].max()),
                       train_wall_s=float(chosen["train_wall_s"].sum()), gpu_hours=float(chosen["gpu_hours"].sum()),
                       run_id=";".join(sorted(chosen["run_id"])))
            rows.append(row)
        return pd.DataFrame(rows, columns=results.columns)

    def variant_settings(self, run: RunSpec) -> dict[str, Any]:
        if run.task == "forecast":
            return {"task.pred_len": run.values["horizon"]}
        if run.task in ("zeroshot", "zeroshot-lsf"):
            return {"task.prediction_length": run.values["horizon"]}
        return {"task.mask_ratio": run.values["mask_ratio"]}

    def run_settings(self, family_config: dict[str, Any], run: RunSpec) -> dict[str, Any]:
        base = smoke_settings(run) if run.preset == "smoke" else paper_settings(run)
        override = copy.deepcopy(family_config.get("overrides", {}).get(run.model, {}))
        return deep_merge(base, override)

    def released_files(self) -> tuple:
        """Moirai-MoE's released weights, both sizes (a run reads its size's two files)."""
        from replibench.families.ett.models.moirai_moe_files import MOIRAI_MOE_FILES, moirai_moe_files

        return tuple(remote for size in MOIRAI_MOE_FILES for remote in moirai_moe_files(size).values())

    def training_files(self, run: RunSpec, settings: dict[str, Any]) -> dict[str, str]:
        """A released-weights run's config.json and model.safetensors: its train job loads them."""
        weights = settings.get("task", {}).get("weights", {})
        if weights.get("source") != "released":
            return {}
        return {"released_config": weights["config"], "released_weights": weights["weights"]}


FAMILY = EttFamily()
