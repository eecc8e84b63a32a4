"""TimesNet at the paper preset on ETT, on a bare GPU machine: train, evaluate, write ``metrics.json``.

    PYTHONPATH=src python benchmarks/gpu_reproduce.py --data data/parquet/ett --out gpu-out \\
        [--runs etth1:96,etth1:192 | --runs all] [--seeds 2021] [--max-steps N] [--budget-s 600] \\
        [--workers N] [--deadline-s S] [--plan-only]

Needs only PyTorch, NumPy, pandas and pyarrow: no Snakemake, no YAML, no tqdm, no pymatgen, and
jsonschema only if it is installed (without it the records are written unvalidated and validated
when ``replibench report`` gathers them; ``read_metrics`` refuses an invalid one).
``--data`` is the folder of the preprocessed datasets (``<data>/etth1/series.parquet`` +
``card.json``, …: what ``snakemake data/parquet/ett/etth1`` or ``benchmarks/gpu_data.sh`` writes).

Everything is the pipeline's own code: the settings are the ETT family's ``paper`` preset
(``families/ett/family.py``, the TSLib TimesNet scripts), training is ``stages.train_stage`` (the one
trainer, ``replibench.train``) and evaluation is ``stages.evaluate_stage`` (predictions stored,
scored from the stored file, provenance, schema) — the same functions ``replibench train`` and
``replibench evaluate`` call from ``rules/train.smk`` and ``rules/evaluate.smk``. Outputs follow the
workflow's layout under ``--out``::

    checkpoints/ett/<dataset>/forecast/timesnet/h<H>/seed<S>/{model.pt,train.json,last.pt}
    results/ett/<dataset>/forecast/timesnet/h<H>/seed<S>/{metrics.json,predictions.parquet}
    gpu_reproduce.json   the plan, the estimates and each run's measured wall time

Bring ``<out>/results/ett`` back and record each run for the leaderboard with
``replibench record <out>/results/ett/*/forecast/timesnet/*/seed*/metrics.json`` (validates it and
copies it to ``recorded/``, which is committed); each record names its device, wall times and settings.

Time estimate (printed before anything trains). TimesNet at these sizes (d_model ≤ 64, batch 32)
is launch-bound on a GPU, not FLOP-bound: a training step is ~1,400 ATen ops, with two host syncs
per TimesBlock (the top-k periods go to the host). So one step costs about
``ops × LAUNCH_S + FLOPs / GPU_FLOPS``, with ``GPU_FLOPS`` = 10 TFLOP/s effective (an assumption:
small convolutions reach a fraction of the H200's peak) and ``LAUNCH_S`` = 24 µs per op, measured
(below). Ops and FLOPs are counted, not guessed: one step of the run's own model is traced on the
CPU (batch 2, FLOPs scaled to the batch). A run then costs
``steps × step + epochs × val batches × forward(32) + test windows × forward(1)`` (the paper-era
test loader has batch size 1), with ``steps = steps per epoch × epochs`` (at most ``--max-steps``)
and epochs the preset's maximum (early stopping, patience 3, can only shorten it). The default run
list is the longest prefix of ETTh1, ETTh2, ETTm2, ETTm1 (horizons 96→720) whose estimate fits
``--budget-s`` (600 s): ETTh1-96, -192 and -336 (150 + 164 + 183 s + 20 s start); all 16 runs
come to ~2.4 h. Each run's measured wall time is written beside its estimate.

Measured on a lent H200 (2026-12-04, torch 2.11 + CUDA 13, gVisor, 16 cores): ETTh1-96 alone ran
2,640 steps (10 epochs, no early stop) in 115.8 s, i.e. 43.9 ms a step, and evaluated in 26.2 s;
142 s in all against 83 s estimated with the first guess of 10 µs per op — hence 24 µs, which
makes the step 1,407 × 24 µs + 10.8 ms. Eight runs at once (``--workers 8``, 2 threads each) ran at
~230 ms a step each, ~29 ms a step together: 1.5× the throughput of one run, not 8×, so the GPU's
context switching (no MPS) and not the host bounds it; the default stays one run at a time.

``--workers N`` trains N runs at once, each in its own (spawned) process on the same GPU, in the
order of the run list; the default list's budget then counts ``estimate / N`` per run (optimistic:
see the measurement above). ``--deadline-s`` starts no run after that many seconds, so a machine
lent for a fixed time ends with whole runs only. With workers, ``measured_s`` and a record's
GPU-hours are wall time while sharing the GPU, not exclusive GPU time; ``gpu_reproduce.json``
states ``workers``.

Measured on the 2-core development CPU (1 thread, batch 32): an ETTh1-96 step (108 GFLOP counted)
takes 2.1 CPU-s, an ETTm1-96 step (d_model 64, 872 GFLOP) 8.6 CPU-s, i.e. 50–100 GFLOP/s, which
the FLOP counts explain: the H200 ran the ETTh1-96 step 48× faster than one CPU core.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DATASETS = ("etth1", "etth2", "ettm2", "ettm1")  # priority order of the default list: cheapest first
HORIZONS = (96, 192, 336, 720)
DEFAULT_SEED = 2021  # config.yaml's ETT seed (TSLib's fixed seed)
LAUNCH_S = 24e-6  # seconds per ATen op on the GPU path (host dispatch + launch), measured: module docstring
GPU_FLOPS = 10e12  # effective FLOP/s of an H200 on these small convolutions, see the module docstring
STARTUP_S = 20.0  # CUDA context, imports, data loading: once per script
RUN_OVERHEAD_S = 3.0  # per run: model build, checkpoint writes, Parquet predictions
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RunPlan:
    """One run, its settings and what its estimate is made of (counts per example / per step)."""

    run_id: str
    dataset: str
    horizon: int
    seed: int
    epochs: int
    steps_per_epoch: int
    train_steps: int
    val_batches: int  # per epoch
    test_windows: int  # forwards at batch size 1
    step_ops: int
    forward_ops: int
    step_flops_per_example: float
    forward_flops_per_example: float
    estimate_s: float = 0.0
    measured_s: float | None = None  # wall seconds, with --workers runs sharing the GPU
    error: str | None = None  # why the run has no record (failed, or not started before --deadline-s)


def parse_runs(text: str) -> list[tuple[str, int]]:
    """``etth1:96,ettm2:720`` → [(dataset, horizon)]; ``all`` → the 16 runs."""
    if text == "all":
        return [(d, h) for d in DATASETS for h in HORIZONS]
    runs = []
    for item in text.split(","):
        dataset, _, horizon = item.strip().partition(":")
        if dataset not in DATASETS or not horizon.isdigit() or int(horizon) not in HORIZONS:
            raise SystemExit(f"--runs: {item!r} is not <dataset>:<horizon> with dataset in {DATASETS} "
                             f"and horizon in {HORIZONS}")
        runs.append((dataset, int(horizon)))
    return runs


def planned_settings(dataset: str, horizon: int, seed: int, max_steps: int | None) -> tuple[Any, dict[str, Any]]:
    """The run and the exact settings the workflow gives it at the paper preset (no overrides),
    with ``train.max_steps`` set when a step budget is asked for."""
    from replibench.families.ett.family import FAMILY
    from replibench.families.ett.family import FAMILY as ETT_FAMILY

    run = ETT_FAMILY.make_run(dataset, "forecast", "timesnet", {"horizon": horizon}, seed, "paper")
    settings = FAMILY.run_settings({"overrides": {}}, run)
    if max_steps is not None:
        settings["train"]["max_steps"] = max_steps
    return run, settings


def settings_json(run, settings: dict[str, Any]) -> str:
    """What a Snakemake job receives (``PlannedRun.settings_json``), so the config digest matches."""
    from replibench.config import PlannedRun

    return PlannedRun(run, settings).settings_json


def _count_step(model, x, mark, y) -> tuple[int, int, float, float]:
    """(ATen ops of a train step, of a forward; FLOPs of each) on one batch."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class OpCounter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.count += 1
            return func(*args, **(kwargs or {}))

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, foreach=True)  # CUDA's default implementation
    model.train()
    with OpCounter() as ops, FlopCounterMode(display=False) as flops:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x, mark), y).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad(), OpCounter() as forward_ops, FlopCounterMode(display=False) as forward_flops:
        model(x, mark)
    return ops.count, forward_ops.count, float(flops.get_total_flops()), float(forward_flops.get_total_flops())


def plan_run(data_root: Path, dataset: str, horizon: int, seed: int, max_steps: int | None) -> tuple[RunPlan, str]:
    """Settings, window counts and the counted cost of one run (see the module docstring)."""
    import torch

    from replibench.families.ett.tasks.forecast import FORECAST

    run, settings = planned_settings(dataset, horizon, seed, max_steps)
    data = FORECAST.load(data_root / dataset, run, settings)
    train = settings["train"]
    examples = data.window_count("train")
    steps_per_epoch = examples // train["batch_size"] if train["drop_last"] else math.ceil(examples / train["batch_size"])
    train_steps = train["epochs"] * steps_per_epoch
    if max_steps is not None:
        train_steps = min(train_steps, max_steps)
    epochs = math.ceil(train_steps / steps_per_epoch)
    torch.manual_seed(0)
    model = FORECAST.build_model(data, run, settings)
    x, mark, y = data.gather("train", torch.arange(2))
    step_ops, forward_ops, step_flops, forward_flops = _count_step(model, x, mark, y)
    plan = RunPlan(run_id=run.run_id, dataset=dataset, horizon=horizon, seed=seed, epochs=epochs,
                   steps_per_epoch=steps_per_epoch, train_steps=train_steps,
                   val_batches=math.ceil(data.window_count("val") / settings["task"]["val_batch_size"]),
                   test_windows=math.ceil(data.window_count("test") / settings["task"]["eval_batch_size"]),
                   step_ops=step_ops, forward_ops=forward_ops, step_flops_per_example=step_flops / 2,
                   forward_flops_per_example=forward_flops / 2)
    plan.estimate_s = estimate_seconds(plan, settings)
    return plan, settings_json(run, settings)


def estimate_seconds(plan: RunPlan, settings: dict[str, Any]) -> float:
    """GPU seconds of one run by the launch + FLOP model of the module docstring."""
    batch, val_batch = settings["train"]["batch_size"], settings["task"]["val_batch_size"]
    step = plan.step_ops * LAUNCH_S + batch * plan.step_flops_per_example / GPU_FLOPS
    val = plan.forward_ops * LAUNCH_S + val_batch * plan.forward_flops_per_example / GPU_FLOPS
    test = plan.forward_ops * LAUNCH_S + settings["task"]["eval_batch_size"] * plan.forward_flops_per_example / GPU_FLOPS
    return (plan.train_steps * step + plan.epochs * plan.val_batches * val + plan.test_windows * test
            + RUN_OVERHEAD_S)


def print_plan(plans: list[RunPlan], device: str) -> None:
    print(f"{'run':44s} {'epochs':>6s} {'steps':>6s} {'ops/step':>8s} {'GFLOP/step':>10s} "
          f"{'est. GPU s':>10s}")
    for p in plans:
        print(f"{p.run_id:44s} {p.epochs:6d} {p.train_steps:6d} {p.step_ops:8d} "
              f"{32 * p.step_flops_per_example / 1e9:10.2f} {p.estimate_s:10.0f}")
    total = STARTUP_S + sum(p.estimate_s for p in plans)
    print(f"{len(plans)} runs, estimated {total / 60:.1f} min on one H200 "
          f"(upper bound: every run to its last epoch; this machine: {device})")


def write_report(path: Path, plans: list[RunPlan], extra: dict[str, Any]) -> None:
    from replibench.atomic import write_json_atomic

    write_json_atomic(path, {**extra, "launch_s_per_op": LAUNCH_S, "gpu_flops": GPU_FLOPS,
                             "startup_s": STARTUP_S, "runs": [asdict(p) for p in plans]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="folder with etth1/, etth2/, ettm1/, ettm2/ (Parquet)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--runs", default=None, help="dataset:horizon list, or 'all'; default: what fits --budget-s")
    parser.add_argument("--seeds", default=str(DEFAULT_SEED), help="comma-separated seeds (default 2021)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop every run after this many steps (tests)")
    parser.add_argument("--budget-s", type=float, default=600.0, help="time budget of the default run list")
    parser.add_argument("--threads", type=int, default=4, help="CPU threads per stage")
    parser.add_argument("--workers", type=int, default=1,
                        help="runs trained at once, each in its own process on the same GPU (see the module docstring)")
    parser.add_argument("--deadline-s", type=float, default=None,
                        help="start no run after this many seconds (a lent machine's time limit); runs "
                             "already started go on")
    parser.add_argument("--plan-only", action="store_true", help="print the plan and the estimate, train nothing")
    args = parser.parse_args(argv)

    import torch

    seeds = [int(s) for s in args.seeds.split(",")]
    wanted = parse_runs(args.runs) if args.runs else [(d, h) for d in DATASETS for h in HORIZONS]
    device = "cuda (" + torch.cuda.get_device_name(0) + ")" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(args.threads)
    plans, jobs, elapsed = [], [], STARTUP_S
    for dataset, horizon in wanted:
        if not (args.data / dataset / "series.parquet").is_file():
            raise SystemExit(f"--data {args.data}: no {dataset}/series.parquet (see benchmarks/gpu_data.sh)")
        for seed in seeds:
            plan, settings_text = plan_run(args.data, dataset, horizon, seed, args.max_steps)
            if args.runs is None and elapsed + plan.estimate_s / args.workers > args.budget_s:
                break
            elapsed += plan.estimate_s / args.workers  # launch-bound runs share the GPU (module docstring)
            plans.append(plan)
            jobs.append(settings_text)
        else:
            continue
        break  # the budget is spent: the default list is a prefix
    if args.workers < 1 or args.threads < 1:
        raise SystemExit("--workers and --threads must be at least 1")
    print_plan(plans, device)
    report = args.out / "gpu_reproduce.json"
    validate = importlib.util.find_spec("jsonschema") is not None
    if not validate:
        print("jsonschema is not installed: metrics.json is written unvalidated "
              "(replibench report validates it when it gathers results)")
    write_report(report, plans, {"device": device, "plan_only": args.plan_only, "validated": validate})
    if args.plan_only:
        return 0
    extra = {"device": device, "plan_only": False, "validated": validate, "workers": args.workers,
             "threads_per_worker": args.threads}
    started_all = time.perf_counter()
    pending = list(zip(plans, jobs))
    # one scheduling loop (deadline, failures, report) for both: one worker runs in this process
    # (nothing to spawn, and a test's monkeypatches hold), several in spawned processes
    executor = (_InProcessExecutor() if args.workers == 1
                else ProcessPoolExecutor(max_workers=args.workers, mp_context=multiprocessing.get_context("spawn")))
    with executor as pool:
        running = {}
        while pending or running:
            while pending and len(running) < args.workers:
                if args.deadline_s is not None and time.perf_counter() - started_all > args.deadline_s:
                    for plan, _ in pending:
                        plan.error = f"not started: past --deadline-s {args.deadline_s:.0f}"
                    pending = []
                    break
                plan, text = pending.pop(0)
                running[pool.submit(run_one, plan.run_id, plan.dataset, text, str(args.data), str(args.out),
                                    args.threads, validate)] = plan
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                plan = running.pop(future)
                try:
                    plan.measured_s = future.result()
                    print(f"{plan.run_id}: {plan.measured_s:.0f} s (estimated {plan.estimate_s:.0f} s, "
                          f"{args.workers} at once)", flush=True)
                except Exception as error:  # one failed run must not lose the others' records
                    plan.error = f"{type(error).__name__}: {error}"
                    print(f"{plan.run_id}: FAILED {plan.error}", flush=True)
                write_report(report, plans, {**extra, "elapsed_s": time.perf_counter() - started_all})
    write_report(report, plans, {**extra, "elapsed_s": time.perf_counter() - started_all})
    return 0 if all(p.error is None for p in plans) else 1


class _InProcessExecutor:
    """``submit`` runs the call at once in this process and returns its finished Future."""

    def __enter__(self) -> _InProcessExecutor:
        return self

    def __exit__(self, *_exc: Any) -> None:
        pass

    def submit(self, function, *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(function(*args))
        except Exception as error:  # reported by the scheduling loop, like a worker's failure
            future.set_exception(error)
        return future


def run_one(run_path: str, dataset: str, settings_text: str, data: str, out: str, threads: int,
            validate: bool) -> float:
    """Train and evaluate one run in this (worker) process; the seconds it took."""
    import torch

    from replibench.stages import evaluate_stage, train_stage

    torch.set_num_threads(threads)
    data_dir, out_dir = Path(data) / dataset, Path(out)
    lock = ROOT / "requirements.lock"
    started = time.perf_counter()
    train_stage(settings_json=settings_text, data_dir=data_dir,
                out_model=out_dir / "checkpoints" / run_path / "model.pt",
                out_summary=out_dir / "checkpoints" / run_path / "train.json",
                checkpoint=out_dir / "checkpoints" / run_path / "last.pt", threads=threads, progress=False)
    evaluate_stage(settings_json=settings_text, data_dir=data_dir,
                   model_path=out_dir / "checkpoints" / run_path / "model.pt",
                   train_summary=out_dir / "checkpoints" / run_path / "train.json",
                   out_metrics=out_dir / "results" / run_path / "metrics.json",
                   out_predictions=out_dir / "results" / run_path / "predictions.parquet",
                   lock_file=lock if lock.is_file() else None, threads=threads, validate=validate)
    return time.perf_counter() - started
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
