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
VARIANT_VALUE = {"forecast": "horizon", "impute": "mask_ratio"}


def variant_values(task: str, value: float) -> dict[str, int | float]:
    """``{"horizon": 96}`` for a forecast horizon, ``{"mask_ratio": 0.125}`` for a mask ratio."""
    return {"horizon": int(value)} if task == "forecast" else {"mask_ratio": float(value)}


def variant_name(task: str, values: dict[str, Any]) -> str:
    """``h96`` for ``{"horizon": 96}``, ``mask0.125`` for ``{"mask_ratio": 0.125}``."""
    if set(values) != {VARIANT_VALUE[task]}:
        raise ValueError(f"ETT {task} variant values {values} must be exactly {{{VARIANT_VALUE[task]!r}: …}}")
    return f"h{values['horizon']}" if task == "forecast" else f"mask{values['mask_ratio']:g}"


def timesnet_paper_hparams(dataset: str, task: str, value: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, train) overrides of the TimesNet scripts for one dataset and horizon/mask ratio."""
    if task == "forecast":
        model, train = _TIMESNET_FORECAST[dataset][int(value)]
        return dict(model), dict(train)
    return dict(_TIMESNET_IMPUTE[dataset]), {}


def paper_settings(run: RunSpec) -> dict[str, Any]:
    """The papers' settings for ``run`` (the ``paper`` preset)."""
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
    settings = paper_settings(run)
    if not run.model == "timesnet":  # batch-independent models: the test batch size changes only speed
        settings["task"]["eval_batch_size"] = settings["task"]["val_batch_size"] = 256
    if run.model == "timesnet":
        settings["train"].update({"max_steps": 4, "epochs": 1})
        settings["task"]["eval_batch_size"] = 32
    return settings


#: how TimesNet's and DLinear's tables order and spell the ETT rows and columns
ETT_ORDER = {"dataset": ("etth1", "etth2", "ettm1", "ettm2"), "variant": ("h96", "h192", "h336", "h720", "avg"),
             "model": ("timesnet", "dlinear", "naive"), "metric": ("mse", "mae", "mse_droplast32", "mae_droplast32")}
ETT_LABELS = {"etth1": "ETTh1", "etth2": "ETTh2", "ettm1": "ETTm1", "ettm2": "ETTm2", "h96": "96", "h192": "192",
              "h336": "336", "h720": "720", "avg": "Avg", "timesnet": "TimesNet", "dlinear": "DLinear",
              "naive": "Repeat", "mse": "MSE", "mae": "MAE", "mse_droplast32": "MSE", "mae_droplast32": "MAE"}


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


class EttFamily(Family):
    name = "ett"
    datasets = ("etth1", "etth2", "ettm1", "ettm2")
    tasks = ("forecast", "impute")
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
    )

    def paper_resources(self, run: RunSpec, stage: str) -> Resources:
        """Parameter-free baselines and DLinear are CPU jobs; TimesNet trains on one GPU."""
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
        start, end = split_borders_ett(run.dataset, task["seq_len"])["test"]
        return num_windows(end - start, task["seq_len"], task.get("pred_len", 0))

    def paper_cost(self, run: RunSpec, settings: dict[str, Any]) -> Cost | None:
        """Measured CPU figures for the baselines and DLinear; the calibrated H200 estimate for
        TimesNet forecasting; none yet for TimesNet imputation (to be rehearsed)."""
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
        return {"task.mask_ratio": run.values["mask_ratio"]}

    def run_settings(self, family_config: dict[str, Any], run: RunSpec) -> dict[str, Any]:
        base = smoke_settings(run) if run.preset == "smoke" else paper_settings(run)
        override = copy.deepcopy(family_config.get("overrides", {}).get(run.model, {}))
        return deep_merge(base, override)


FAMILY = EttFamily()
