"""The one training loop every family uses.

Seeded and deterministic on CPU; device auto (CUDA when present) with optional mixed precision;
gradient clipping; per-epoch validation with early stopping; a progress bar; an atomic checkpoint
every ``checkpoint_every`` steps, at every epoch end and at the end; resume from the last
checkpoint; and preemption handling: on SIGTERM or SIGUSR1 (what SLURM sends before a time limit
or a preemption) the loop finishes the current step, writes a checkpoint and exits with
:data:`PREEMPTED_EXIT_CODE`, so the retried job resumes where this one stopped.

Exact resume: the epoch's example order comes from a generator seeded by ``(seed, epoch)``; the
global torch RNG state (training randomness: dropout, masks, noise) is saved in every checkpoint.
A resumed run therefore replays the same batches with the same randomness, and on CPU its final
weights equal an uninterrupted run's bit for bit.

Data parallel: under torchrun (``replibench train --processes N``) every rank trains the same
global batches, each on its shard, with gradients summed by share (see
:mod:`replibench.distributed`); rank 0 validates, checkpoints and writes outputs. With one
process the loop is exactly the single-process loop.

Checkpoints hold only tensors and plain Python values and are read with ``weights_only=True``.

Global batches on fewer devices than the paper's: ``micro_batches = k`` is the number of parts of
every global batch of ``batch_size`` examples — the paper's GPU count. Each of the run's ``w``
data-parallel processes takes its share and splits it into ⌈k / w⌉ near-equal parts, accumulating
the gradients of (loss of a part) × (its share of the rank's examples) before one optimiser step
— the gradient a data-parallel run on k GPUs (each with one part, gradients averaged) takes.
Papers trained on several GPUs state their global batch and step-based schedules for it; this
keeps both on w < k devices (w = 1: all on one), at the memory cost of one part.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replibench.distributed import (World, all_reduce_gradients, any_rank, barrier, broadcast_object,
                                    broadcast_state, current_world, shard)
from replibench.errors import ConfigError
from replibench.runs import RunSpec
from replibench.schedules import SCHEDULES, PlateauTracker, lr_factor

__all__ = ["PREEMPTED_EXIT_CODE", "Preempted", "TrainConfig", "epoch_order", "lr_factor", "rehearse_steps", "train"]

log = logging.getLogger(__name__)

#: exit status of a run stopped by SIGTERM/SIGUSR1 after writing its checkpoint (EX_TEMPFAIL)
PREEMPTED_EXIT_CODE = 75


class Preempted(SystemExit):
    """Raised after the checkpoint is written when a stop signal arrived."""

    def __init__(self) -> None:
        super().__init__(PREEMPTED_EXIT_CODE)


@dataclass
class TrainConfig:
    """Optimisation settings; the presets fill them from the papers (see the family modules)."""

    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimiser steps (smoke runs)
    batch_size: int = 32
    micro_batches: int = 1  # parts of each global batch (the paper's GPU count), over all ranks (see above)
    drop_last: bool = True  # train batches only; evaluation never drops windows
    optimizer: str = "adam"  # "adam" | "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.0
    lr_schedule: str = "type1"  # one of replibench.schedules.SCHEDULES
    warmup_steps: int = 0  # linear warm-up (cosine, rsqrt, multistep)
    warmup_factor: float = 0.2  # multistep, fairchem-cosine: lr factor at step 0 of the warm-up (fairchem)
    lr_min_factor: float = 0.01  # fairchem-cosine: lr factor the cosine ends at (fairchem)
    milestones: list[int] = field(default_factory=list)  # multistep: steps where lr is multiplied by gamma
    gamma: float = 0.1  # multistep
    plateau_factor: float = 0.6  # plateau: lr × factor after `plateau_patience` epochs without improvement
    plateau_patience: int = 30
    min_lr: float = 0.0  # plateau: lower bound
    patience: int | None = 3  # epochs without validation improvement before stopping; None = off
    grad_clip: float | None = None  # max global grad norm
    grad_clip_value: float | None = None  # clip each gradient element to [-v, v] (DiffCSP)
    ema_decay: float | None = None  # exponential moving average of weights, used for validation and the result
    checkpoint_every: int = 200  # steps
    loader_workers: int = 0  # processes building the coming steps' batches while the model steps (0: none)
    amp: str = "off"  # "off" | "fp16" | "bf16" (CUDA only)
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    param_group_options: dict[str, Any] = field(default_factory=dict)  # passed to model.optimizer_param_groups

    @classmethod
    def check(cls, settings: dict[str, Any], *, where: str = "train") -> None:
        """Refuse unknown keys, wrong types and values outside :meth:`rules` (a ConfigError naming
        ``where.key``, the value and what is allowed). Runs when the workflow is planned."""
        from replibench.settings import check_section, dataclass_fields

        check_section(where, settings, dataclass_fields(cls), cls.rules())
        micro, batch = settings.get("micro_batches", 1), settings.get("batch_size", cls.batch_size)
        if micro > batch:
            raise ConfigError(f"{where}.micro_batches = {micro}: must be <= batch_size ({batch}); "
                              "each part needs at least one example")
        milestones = settings.get("milestones", [])
        if list(milestones) != sorted(set(milestones)):
            raise ConfigError(f"{where}.milestones = {milestones!r}: must be strictly increasing step numbers")

    @staticmethod
    def rules() -> dict[str, Any]:
        """Allowed range of each setting (units: steps, epochs, examples; learning rates per step)."""
        from replibench.settings import above, at_least, between, each, one_of

        return {
            "epochs": at_least(1), "max_steps": at_least(1), "batch_size": at_least(1), "micro_batches": at_least(1),
            "optimizer": one_of("adam", "adamw"), "lr": above(0.0), "weight_decay": at_least(0.0),
            "lr_schedule": one_of(*SCHEDULES), "warmup_steps": at_least(0),
            "warmup_factor": between(0.0, 1.0), "lr_min_factor": between(0.0, 1.0),
            "milestones": each(at_least(1)), "gamma": above(0.0),
            "plateau_factor": between(0.0, 1.0, low_open=True), "plateau_patience": at_least(0),
            "min_lr": at_least(0.0), "patience": at_least(1), "grad_clip": above(0.0),
            "grad_clip_value": above(0.0), "ema_decay": between(0.0, 1.0, high_open=True),
            "checkpoint_every": at_least(0), "loader_workers": at_least(0), "amp": one_of("off", "fp16", "bf16"),
            "device": _DeviceRule(),
        }

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> "TrainConfig":
        cls.check(settings)
        return cls(**settings)


class _DeviceRule:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:<index>``."""

    allowed = "'auto', 'cpu', 'cuda' or 'cuda:<index>'"

    @staticmethod
    def ok(value: Any) -> bool:
        return value in ("auto", "cpu", "cuda") or (isinstance(value, str) and value.startswith("cuda:")
                                                    and value[5:].isdigit())


def settings_digest(settings: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a run's settings (what a checkpoint must match to resume)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_order(num_examples: int, *, seed: int, epoch: int):
    """The example order of ``epoch``: a permutation drawn from a generator seeded by (seed, epoch)."""
    import torch

    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(num_examples, generator=generator)


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def move_to_device(batch: Any, device) -> Any:
    """Tensors (also inside tuples, lists, dicts and dataclasses with ``.to``) onto ``device``."""
    import torch

    if isinstance(batch, torch.Tensor) or (dataclasses.is_dataclass(batch) and hasattr(batch, "to")):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(move_to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    return batch


class _StopSignals:
    """Turns SIGTERM/SIGUSR1 into a flag the loop checks between steps."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopSignals":
        for number in (signal.SIGTERM, signal.SIGUSR1):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, _frame: Any) -> None:
        self.received = number

    def __exit__(self, *_exc: Any) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


@dataclass
class TrainState:
    epoch: int = 0  # 0-based epoch in progress
    step_in_epoch: int = 0  # batches of this epoch already done
    global_step: int = 0
    train_wall_s: float = 0.0  # summed over attempts (a resumed run keeps counting)
    best_val: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    finished: bool = False
    plateau: dict[str, float] = field(default_factory=lambda: dataclasses.asdict(PlateauTracker()))
    history: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # one per start or resume: where and from which step
    epoch_losses: list[float] = field(default_factory=list)  # this epoch's step losses so far (kept across a resume)


class WeightAverage:
    """Exponential moving average of the floating-point weights (buffers are copied as they are)."""

    def __init__(self, model, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def update(self, model) -> None:
        import torch

        with torch.no_grad():
            for key, value in model.state_dict().items():
                if value.is_floating_point():
                    self.shadow[key].mul_(self.decay).add_(value.detach(), alpha=1.0 - self.decay)
                else:
                    self.shadow[key].copy_(value)


class _SwapIn:
    """Temporarily load other weights (the average) into the model, e.g. for validation."""

    def __init__(self, model, weights: dict[str, Any] | None) -> None:
        self.model, self.weights, self.saved = model, weights, None

    def __enter__(self):
        if self.weights is not None:
            self.saved = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.model.load_state_dict(self.weights)
        return self.model

    def __exit__(self, *_exc: Any) -> None:
        if self.saved is not None:
            self.model.load_state_dict(self.saved)


def _build_optimizer(model, config: TrainConfig):
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        return None
    if hasattr(model, "optimizer_param_groups"):
        groups = model.optimizer_param_groups(lr=config.lr, weight_decay=config.weight_decay,
                                              **config.param_group_options)
    else:
        groups = [{"params": trainable, "lr": config.lr, "weight_decay": config.weight_decay}]
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[config.optimizer]
    optimizer = optimizer_class(groups, lr=config.lr)
    for group in optimizer.param_groups:
        group.setdefault("base_lr", group["lr"])
    return optimizer


def _set_learning_rates(optimizer, config: TrainConfig, factor: float, plateau_scale: float) -> None:
    for group in optimizer.param_groups:
        lr = group["base_lr"] * factor * plateau_scale
        group["lr"] = max(lr, config.min_lr) if config.lr_schedule == "plateau" else lr


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    import torch

    from replibench.atomic import atomic_path

    payload = {**payload, "rng_cpu": torch.get_rng_state(),
               "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def resume_mismatch(recorded: dict[str, Any] | None, current: dict[str, Any]) -> str | None:
    """Why a checkpoint recorded with ``recorded`` (its ``resume_key``) may not be resumed by a run
    whose key is ``current``; ``None`` when it may. A key holds ``settings_sha256``, ``code``
    (commit, dirty flag, source digest) and ``data_sha256`` (the data card's source checksums)."""
    if not recorded:
        return "it records no code/data/settings key (written by an older version)"
    reasons = []
    if recorded.get("settings_sha256") != current["settings_sha256"]:
        reasons.append("other settings")
    old_code, new_code = recorded.get("code") or {}, current["code"]
    for key, what in (("source_sha256", "package source"), ("commit", "git commit"), ("commit_dirty", "dirty flag")):
        if old_code.get(key) != new_code.get(key):
            reasons.append(f"other {what} ({old_code.get(key)} → {new_code.get(key)})")
    if recorded.get("data_sha256") != current["data_sha256"]:
        reasons.append("other data")
    return ", ".join(reasons) or None


def _read_resume_checkpoint(path: Path, resume_key: dict[str, Any], device, world: World) -> dict[str, Any] | None:
    """``path``'s checkpoint when the same settings, code and data wrote it (rank 0 reads it,
    every rank gets it). Otherwise it is deleted — its weights came from something else — and the
    run starts fresh, logging why."""
    import torch

    checkpoint = None
    if world.is_main and path.exists():
        checkpoint = torch.load(path, map_location=device if world.size == 1 else "cpu", weights_only=True)
        reason = resume_mismatch(checkpoint.get("resume_key"), resume_key)
        if reason is not None:
            log.warning("%s not resumed: written with %s; deleted, training from scratch", path, reason)
            path.unlink()
            checkpoint = None
    return broadcast_object(checkpoint, world)


def _remove_partial_checkpoints(last_path: Path) -> None:
    """Delete temporary files a checkpoint write killed mid-way (``kill -9``) left beside ``last.pt``
    (:func:`replibench.atomic.atomic_path` names them ``.last.pt.<random>.tmp``); ``last.pt`` itself
    is only ever replaced whole."""
    for partial in sorted(last_path.parent.glob(f".{last_path.name}.*.tmp")):
        log.warning("removing %s, a checkpoint write that was interrupted", partial)
        partial.unlink(missing_ok=True)


def _attempt_record(state: TrainState, world: World) -> dict[str, Any]:
    import os
    import socket

    return {"start_step": state.global_step, "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "hostname": socket.gethostname(), "world_size": world.size}


class _NoBar:
    """Stands in for tqdm where it is not installed (a bare GPU host); progress is then not shown."""

    def update(self, _n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(**options: Any):
    """A tqdm bar, or :class:`_NoBar` when tqdm is absent or the bar is disabled."""
    if options.get("disable"):
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(**options)


def train(task, data: Any, run: RunSpec, settings: dict[str, Any], *, last_checkpoint: Path,
          progress: bool = True, data_sha256: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    """Seed, build the run's model, train it on ``task``/``data`` and return ``(model, summary)``.

    The returned model holds the best-validation weights (of the weight average when
    ``ema_decay`` is set); the summary holds the loss history. ``last_checkpoint`` is the resume
    checkpoint's path, declared by the caller (the train rule: ``checkpoints/<run>/last.pt``): it
    is written every ``checkpoint_every`` steps, at every epoch end and at the end, and resumed
    only when the same settings, code (commit, dirty flag, package source digest) and data
    (``data_sha256``: the data card's source checksums) wrote it; the summary records that code
    and data, so provenance names what produced the weights.
    """
    training = _Training(task, data, run, settings, Path(last_checkpoint), data_sha256 or {})
    training.restore()
    try:
        with _StopSignals() as stop:
            while training.optimizer is not None and not training.reached_the_end():
                losses = training.run_epoch(stop, progress)
                training.validate(losses)
                training.save_checkpoint()
    finally:
        if training.loader is not None:
            training.loader.close()
    return training.finish()


#: (task, data) of this loader worker process, set once when the worker starts (fork: inherited, not copied)
_WORKER_INPUTS: tuple[Any, Any] | None = None


def _start_loader_worker(task, data) -> None:
    import torch

    global _WORKER_INPUTS
    _WORKER_INPUTS = (task, data)
    torch.set_num_threads(1)


def _build_train_batch(indices):
    task, data = _WORKER_INPUTS
    return task.make_batch(data, "train", indices)


class BatchLoader:
    """Builds the coming optimiser steps' training batches in ``workers`` processes while the model
    steps, so CPU work such as OC20's radius graphs (~30 ms a structure) stays off the critical
    path. The processes are forked: they share the task's data with the trainer, and each returns
    the batch ``task.make_batch`` gives for the same indices — only for tasks whose batch building
    draws no randomness (``Task.batches_are_pure``), so the run is the same with or without them."""

    def __init__(self, task, data, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.depth = 2 * workers  # steps in flight
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                        initializer=_start_loader_worker, initargs=(task, data))
        self.pending: dict[int, list] = {}

    def keep_ahead(self, order, step: int, steps_per_epoch: int, batch_size: int, parts_of) -> None:
        """Submit the batches of steps ``step`` … ``step + depth`` of this epoch not yet submitted."""
        for ahead in range(step, min(step + self.depth, steps_per_epoch)):
            if ahead not in self.pending:
                indices = order[ahead * batch_size:(ahead + 1) * batch_size]
                self.pending[ahead] = [self.pool.submit(_build_train_batch, part) for part in parts_of(indices)]

    def take(self, step: int) -> list:
        """The built batches of ``step``'s parts (waiting for them if needed)."""
        return [future.result() for future in self.pending.pop(step)]

    def drop(self) -> None:
        for futures in self.pending.values():
            for future in futures:
                future.cancel()
        self.pending.clear()

    def close(self) -> None:
        self.drop()
        self.pool.shutdown(wait=True, cancel_futures=True)


def schedule_steps(config: TrainConfig, num_examples: int) -> tuple[int, int]:
    """(optimiser steps per epoch, steps of the whole schedule) for ``num_examples`` training
    examples: global batches of ``batch_size`` (the last one kept unless ``drop_last``), ``epochs``
    of them, capped at ``max_steps``."""
    per_epoch = (num_examples // config.batch_size if config.drop_last
                 else math.ceil(num_examples / config.batch_size))
    total = config.epochs * per_epoch
    return per_epoch, (min(total, config.max_steps) if config.max_steps is not None else total)


def rehearse_steps(task, data: Any, run: RunSpec, settings: dict[str, Any], *, last_checkpoint: Path,
                   steps: int, predict_units: int = 0) -> dict[str, Any]:
    """A rehearsal of the run's training: ``steps`` optimiser steps of the run's real model on
    one GPU's share of its global batch (``batch_size / micro_batches``: what each of the paper's
    GPUs computed per step), the first warm-up and the others timed; a checkpoint, and a resume
    from it that must give the same step count and weights; then one forward pass of a batch in
    evaluation mode without gradients. No validation, no early stopping: it measures what a step
    costs and checks that a long run can stop and resume.

    Returns seconds per share-step (median of the timed steps; a global step on ``w`` devices
    takes ⌈micro_batches / w⌉ of them), seconds per example of the forward pass, the parameter
    count, the global steps the run's full schedule takes on this data, and whether the resume
    reproduced the weights. A parameter-free model has no steps to rehearse.

    With ``predict_units`` > 0 and a task whose prediction splits into units, the first units of
    the test prediction are also made (:meth:`Task.predict_units`, the evaluation's own code at its
    own batch sizes): seconds per predicted row, which the plan scales to the official test set.
    """
    import statistics

    import torch

    paper = TrainConfig.from_settings(settings["train"])
    # one GPU's share: a global batch the paper spread over k GPUs (micro_batches = k) is k steps
    # of batch_size / k here, each what one of its GPUs computed
    share = {**settings["train"], "batch_size": max(1, paper.batch_size // paper.micro_batches), "micro_batches": 1}
    share["loader_workers"] = 0  # the rehearsal times the step itself (benchmarks/oc20_loader.py: the loader)
    training = _Training(task, data, run, {**settings, "train": share}, Path(last_checkpoint), {})
    model, config, device = training.model, training.config, training.device
    parameters = sum(p.numel() for p in model.parameters())
    facts = {"parameters": int(parameters), "batch_size": paper.batch_size, "micro_batches": paper.micro_batches,
             "batch_per_step_here": config.batch_size, "device": str(device),
             "amp": config.amp if training.use_amp else "off",
             "steps_of_the_schedule_here": schedule_steps(paper, training.num_examples)[1],
             "train_examples_here": training.num_examples}
    if training.optimizer is None:
        return {**facts, "steps": 0, "seconds_per_step": 0.0, "resume_reproduces_weights": True,
                "forward_seconds_per_example": None}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    order = epoch_order(training.num_examples, seed=run.seed, epoch=0)
    per_epoch = training.steps_per_epoch
    durations = []
    for step in range(steps):
        start = (step % per_epoch) * config.batch_size
        began = time.perf_counter()
        training._step(order[start:start + config.batch_size])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        durations.append(time.perf_counter() - began)
        training.state.step_in_epoch += 1
        training.state.global_step += 1
    training.save_checkpoint()
    weights = {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}
    resumed = _Training(task, data, run, {**settings, "train": share}, Path(last_checkpoint), {})
    resumed.restore()
    reproduces = resumed.state.global_step == steps and all(
        torch.equal(weights[name], value.detach().cpu()) for name, value in resumed.model.state_dict().items())
    batch = move_to_device(task.make_batch(data, "train", order[:config.batch_size]), device)
    model.eval()
    with torch.no_grad(), torch.autocast(device_type=device.type, dtype=training.amp_dtype, enabled=training.use_amp):
        began = time.perf_counter()
        task.training_loss(model, batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        forward = (time.perf_counter() - began) / min(config.batch_size, training.num_examples)
    prediction = {}
    total_units = task.prediction_units(data, settings) if predict_units else None
    if total_units:
        with torch.autocast(device_type=device.type, dtype=training.amp_dtype, enabled=training.use_amp):
            began = time.perf_counter()
            table = task.predict_units(model, data, run, settings, range(min(predict_units, total_units)))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - began
        prediction = {"predicted_units": min(predict_units, total_units), "predicted_rows": table.num_rows,
                      "predict_seconds": seconds,
                      "predict_seconds_per_row": seconds / table.num_rows if table.num_rows else None}
    timed = durations[1:] or durations
    return {**facts, **prediction, "steps": steps, "seconds_per_step": statistics.median(timed),
            "step_seconds": durations, "forward_seconds_per_example": forward,
            "resume_reproduces_weights": bool(reproduces),
            "peak_gpu_memory_mb": (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
                                   else None)}


class _Training:
    """One training run's state and its four pieces: :meth:`restore` (from ``last_checkpoint``),
    :meth:`run_epoch` (the optimiser steps of one epoch, stopping at a signal), :meth:`validate`
    (validation loss, best weights, early stop) and :meth:`save_checkpoint`."""

    def __init__(self, task, data: Any, run: RunSpec, settings: dict[str, Any], last_checkpoint: Path,
                 data_sha256: dict[str, str]) -> None:
        import torch

        from replibench.provenance import code_version

        self.task, self.data, self.run, self.settings = task, data, run, settings
        self.config = config = TrainConfig.from_settings(settings["train"])
        self.digest = settings_digest(settings)
        self.resume_key = {"settings_sha256": self.digest, "code": code_version(), "data_sha256": dict(data_sha256)}
        self.last_path = last_checkpoint
        self.world = current_world()
        if self.world.is_main:
            _remove_partial_checkpoints(self.last_path)
        self.device = resolve_device(config.device)
        if self.device.type == "cuda" and self.world.size > 1:
            self.device = torch.device("cuda", self.world.local_rank)
        seed_everything(run.seed)  # before building the model: initial weights come from this seed
        self.model = task.build_model(data, run, settings).to(self.device)
        broadcast_state(self.model.state_dict().values(), self.world)  # identical start on every rank
        self.optimizer = _build_optimizer(self.model, config)
        self.use_amp = config.amp != "off" and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.use_amp and config.amp == "fp16" else None
        self.average = (WeightAverage(self.model, config.ema_decay)
                        if config.ema_decay and self.optimizer is not None else None)
        self.state = TrainState()
        self.best_weights: dict[str, Any] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.num_examples = task.num_train_examples(data)
        self.steps_per_epoch, self.total_steps = schedule_steps(config, self.num_examples)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{run.run_id}: {self.num_examples} training examples < batch size {config.batch_size}")
        self.plateau = PlateauTracker()
        self.loader = None
        if config.loader_workers and self.optimizer is not None:
            if not getattr(task, "batches_are_pure", False):
                raise ConfigError(f"{run.run_id}: train.loader_workers = {config.loader_workers}, but task "
                                  f"{task.name!r} draws randomness while it builds batches; building them in other "
                                  "processes would change the run. Use loader_workers: 0.")
            self.loader = BatchLoader(task, data, config.loader_workers)
        self.started = time.perf_counter()

    def restore(self) -> None:
        """Continue from ``last_checkpoint`` when this run's settings, code and data wrote it."""
        import torch

        checkpoint = _read_resume_checkpoint(self.last_path, self.resume_key, self.device, self.world)
        if checkpoint is not None:
            self.model.load_state_dict(checkpoint["model"])
            if self.optimizer is not None:
                self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.scaler is not None and checkpoint["scaler"]:
                self.scaler.load_state_dict(checkpoint["scaler"])
            if self.average is not None:
                self.average.shadow = {k: v.to(self.device) for k, v in checkpoint["average"].items()}
            self.state = TrainState(**checkpoint["state"])
            self.best_weights = {k: v.to(self.device) for k, v in checkpoint["best_weights"].items()}
            torch.set_rng_state(checkpoint["rng_cpu"].cpu())
            if checkpoint["rng_cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in checkpoint["rng_cuda"]])
            log.info("resumed from %s at epoch %d, step %d", self.last_path, self.state.epoch, self.state.global_step)
        self.plateau = PlateauTracker(**self.state.plateau)
        self.state.attempts.append(_attempt_record(self.state, self.world))
        self.started = time.perf_counter()

    def reached_the_end(self) -> bool:
        """Whether training is over (early stop, last epoch or step budget); marks it finished."""
        if not self.state.finished and (self.state.epoch >= self.config.epochs
                                        or self.state.global_step >= self.total_steps):
            self.state.finished = True
        return self.state.finished

    def run_epoch(self, stop: _StopSignals, progress: bool) -> list[float]:
        """The optimiser steps of the current epoch (from where a resumed epoch stopped); their
        losses. At a stop signal: checkpoint, then :class:`Preempted`."""
        state, config = self.state, self.config
        order = epoch_order(self.num_examples, seed=self.run.seed, epoch=state.epoch)
        self.model.train()
        self.task.start_epoch(getattr(self.model, "module", self.model), state.epoch)  # DDP wraps the model
        losses = state.epoch_losses  # a resumed epoch keeps the losses of its steps before the stop
        bar = _progress_bar(total=self.steps_per_epoch, initial=state.step_in_epoch,
                            disable=not progress or not self.world.is_main,
                            desc=f"{self.run.run_id} epoch {state.epoch + 1}", file=sys.stderr,
                            mininterval=0.1 if sys.stderr.isatty() else 10)
        while state.step_in_epoch < self.steps_per_epoch and state.global_step < self.total_steps:
            if any_rank(stop.received is not None, self.world, self.device):  # all ranks stop at the same step
                self.save_checkpoint()
                barrier(self.world)  # rank 0's checkpoint is on disk before any rank exits
                log.warning("signal %s: checkpoint written at step %d; exiting with %d for a retry",
                            stop.received, state.global_step, PREEMPTED_EXIT_CODE)
                raise Preempted()
            start = state.step_in_epoch * config.batch_size
            indices = order[start:start + config.batch_size]  # the global batch
            if self.loader is not None:
                self.loader.keep_ahead(order, state.step_in_epoch, self.steps_per_epoch, config.batch_size,
                                       self._parts)
            losses.append(self._step(indices, self.loader.take(state.step_in_epoch) if self.loader else None))
            state.step_in_epoch += 1
            state.global_step += 1
            bar.update(1)
            if config.checkpoint_every and state.global_step % config.checkpoint_every == 0:
                self.save_checkpoint()
        bar.close()
        if self.loader is not None:
            self.loader.drop()  # the next epoch has another order
        return losses

    def _parts(self, indices) -> list:
        """This rank's parts of the global batch ``indices``: micro_batches (parts of the global
        batch, the paper's GPU count) over this run's w ranks — ceil(k / w) parts of its share."""
        world = self.world
        local = shard(indices, world) if world.size > 1 else indices
        parts_per_rank = -(-self.config.micro_batches // world.size)
        return [part for part in local.tensor_split(parts_per_rank) if len(part)]

    def _step(self, indices, batches: list | None = None) -> float:
        """One optimiser step on the global batch ``indices`` (its parts' batches already built
        when ``batches`` is given, by the loader workers); its loss. Gradients are accumulated over
        the parts, each part's mean loss weighted by its share of the rank's examples."""
        import torch

        config, optimizer, world = self.config, self.optimizer, self.world
        parts = self._parts(indices)
        local_count = sum(len(part) for part in parts)  # this rank's share of the global batch
        factor = lr_factor(config, epoch=self.state.epoch, step=self.state.global_step, total_steps=self.total_steps)
        _set_learning_rates(optimizer, config, factor, self.plateau.scale)
        optimizer.zero_grad(set_to_none=True)
        step_loss = torch.zeros((), device=self.device)  # stays 0 on a rank a small last batch leaves empty
        for number, part in enumerate(parts):
            built = batches[number] if batches is not None else self.task.make_batch(self.data, "train", part)
            batch = move_to_device(built, self.device)
            with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                loss = self.task.training_loss(self.model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{self.run.run_id}: loss is {loss.item()} at step {self.state.global_step}")
            if len(parts) > 1:
                loss = loss * (len(part) / local_count)
            (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            step_loss = step_loss + loss.detach()
        if world.size > 1:
            step_loss = all_reduce_gradients(self.model.parameters(), weight=local_count / len(indices), loss=step_loss)
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if config.grad_clip_value:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), config.grad_clip_value)
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
        if self.average is not None:
            self.average.update(self.model)
        return float(step_loss)

    def validate(self, losses: list[float]) -> None:
        """End of an epoch: validation loss (rank 0, on the averaged weights when there are any),
        best weights, plateau schedule, history and early stopping."""
        state, config = self.state, self.config
        val_loss = None
        if self.world.is_main:
            with _SwapIn(self.model, self.average.shadow if self.average is not None else None):
                val_loss = self.task.validation_loss(self.model, self.data, self.settings)
        val_loss = broadcast_object(val_loss, self.world)  # every rank takes rank 0's decisions
        improved = val_loss < state.best_val
        if improved:
            state.best_val, state.best_epoch, state.bad_epochs = val_loss, state.epoch, 0
            weights = self.average.shadow if self.average is not None else self.model.state_dict()
            self.best_weights = {k: v.detach().clone() for k, v in weights.items()}
        else:
            state.bad_epochs += 1
        if config.lr_schedule == "plateau":
            self.plateau.update(val_loss, factor=config.plateau_factor, patience=config.plateau_patience)
        state.history.append({
            "epoch": state.epoch + 1, "step": state.global_step, "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": float(sum(losses) / len(losses)) if losses else None,
            "val_loss": val_loss, "step_losses": losses,
        })
        log.info("epoch %d: train %.6f val %.6f%s", state.epoch + 1,
                 state.history[-1]["train_loss"] or math.nan, val_loss, " (best)" if improved else "")
        state.epoch += 1
        state.step_in_epoch = 0
        state.epoch_losses = []
        if config.patience is not None and state.bad_epochs >= config.patience:
            log.info("early stop: no improvement for %d epochs", state.bad_epochs)
            state.finished = True

    def save_checkpoint(self) -> None:
        """Add the wall time since the last call and write ``last_checkpoint`` (rank 0, atomically)."""
        now = time.perf_counter()
        self.state.train_wall_s += now - self.started
        self.started = now
        self.state.plateau = dataclasses.asdict(self.plateau)
        if not self.world.is_main:
            return
        _save_checkpoint(self.last_path, {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else {},
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "average": self.average.shadow if self.average is not None else {},
            "state": dataclasses.asdict(self.state), "best_weights": self.best_weights,
            "settings_sha256": self.digest, "resume_key": self.resume_key,
        })

    def finish(self) -> tuple[Any, dict[str, Any]]:
        """The best weights loaded into the model, a last checkpoint, and the training summary."""
        state, config = self.state, self.config
        if self.optimizer is None:  # parameter-free baseline: nothing to fit, still record its val loss
            state.best_val = broadcast_object(
                self.task.validation_loss(self.model, self.data, self.settings) if self.world.is_main else None,
                self.world)
            state.finished = True
        self.model.load_state_dict(self.best_weights)
        self.save_checkpoint()
        return self.model, {
            "steps": state.global_step,
            "epochs": len(state.history),
            "best_epoch": state.best_epoch + 1 if state.best_epoch >= 0 else None,
            "best_val_loss": state.best_val,
            "stopped_early": bool(config.patience is not None and state.bad_epochs >= config.patience),
            "max_steps": config.max_steps,
            "device": str(self.device),
            "wall_s": state.train_wall_s,
            "history": state.history,
            "settings_sha256": self.digest,
            "code": self.resume_key["code"],
            "data_sha256": self.resume_key["data_sha256"],
            "weights": "exponential moving average" if self.average is not None else "raw",
            "world_size": self.world.size,
            "attempts": state.attempts,
        }
