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

Checkpoints hold only tensors and plain Python values and are read with ``weights_only=True``.
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

from replibench.runs import RunSpec

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
    drop_last: bool = True  # train batches only; evaluation never drops windows
    optimizer: str = "adam"  # "adam" | "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.0
    lr_schedule: str = "type1"  # "constant" | "type1" (halve each epoch from the 3rd) | "cosine" | "rsqrt"
    warmup_steps: int = 0  # linear warm-up (cosine and rsqrt schedules)
    patience: int | None = 3  # epochs without validation improvement before stopping; None = off
    grad_clip: float | None = None  # max global grad norm
    checkpoint_every: int = 200  # steps
    amp: str = "off"  # "off" | "fp16" | "bf16" (CUDA only)
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    param_group_options: dict[str, Any] = field(default_factory=dict)  # passed to model.optimizer_param_groups

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> "TrainConfig":
        from replibench.errors import ConfigError

        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise ConfigError(f"train settings: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**settings)


def lr_factor(config: TrainConfig, *, epoch: int, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at 0-based ``epoch`` and global ``step``.

    ``type1`` is TSLib's ``adjust_learning_rate``: epochs 1–2 at lr, epoch 3 at lr/2, epoch 4 at
    lr/4 … (halved after every epoch from the second on). ``cosine`` is linear warm-up then a
    cosine decay to 0 at ``total_steps``. ``rsqrt`` is LRA's Transformer schedule,
    ``lr · min(1, step/warmup) / sqrt(max(step, warmup))`` (peak ``lr / sqrt(warmup)``).
    """
    if config.lr_schedule == "constant":
        return 1.0
    if config.lr_schedule == "type1":
        return 0.5 ** max(0, epoch - 1)
    if config.lr_schedule == "cosine":
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        span = max(1, total_steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.lr_schedule == "rsqrt":
        warmup = max(1, config.warmup_steps)
        step = step + 1  # LRA counts from step 1 here; step 0 would give lr 0
        return min(1.0, step / warmup) / math.sqrt(max(step, warmup))
    raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}")


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
    history: list[dict[str, Any]] = field(default_factory=list)


def _save_checkpoint(path: Path, model, optimizer, scaler, state: TrainState, best_weights, digest: str) -> None:
    import torch

    from replibench.atomic import atomic_path

    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "scaler": scaler.state_dict() if scaler is not None else {},
        "state": dataclasses.asdict(state),
        "best_weights": best_weights,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "settings_sha256": digest,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def train(task, data: Any, run: RunSpec, settings: dict[str, Any], *, checkpoint_dir: Path,
          progress: bool = True) -> tuple[Any, dict[str, Any]]:
    """Seed, build the run's model, train it on ``task``/``data`` and return ``(model, summary)``.

    The returned model holds the best-validation weights; the summary holds the loss history.
    Resumes from ``checkpoint_dir/last.pt`` when that checkpoint was written for the same settings.
    """
    import torch
    from tqdm import tqdm

    config = TrainConfig.from_settings(settings["train"])
    digest = settings_digest(settings)
    checkpoint_dir = Path(checkpoint_dir)
    last_path = checkpoint_dir / "last.pt"
    device = resolve_device(config.device)
    seed_everything(run.seed)  # before building the model: initial weights come from this seed
    model = task.build_model(data, run, settings).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = scaler = None
    if trainable:
        groups = (model.optimizer_param_groups(lr=config.lr, weight_decay=config.weight_decay,
                                               **config.param_group_options)
                  if hasattr(model, "optimizer_param_groups") else
                  [{"params": trainable, "lr": config.lr, "weight_decay": config.weight_decay}])
        optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[config.optimizer]
        optimizer = optimizer_class(groups, lr=config.lr)
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
    use_amp = config.amp != "off" and device.type == "cuda"
    amp_dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
    if use_amp and config.amp == "fp16":
        scaler = torch.amp.GradScaler("cuda")

    state = TrainState()
    best_weights: dict[str, Any] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if last_path.exists():
        checkpoint = torch.load(last_path, map_location=device, weights_only=True)
        if checkpoint.get("settings_sha256") == digest:
            model.load_state_dict(checkpoint["model"])
            if optimizer is not None:
                optimizer.load_state_dict(checkpoint["optimizer"])
            if scaler is not None and checkpoint["scaler"]:
                scaler.load_state_dict(checkpoint["scaler"])
            state = TrainState(**checkpoint["state"])
            best_weights = checkpoint["best_weights"]
            torch.set_rng_state(checkpoint["rng_cpu"].cpu())
            if checkpoint["rng_cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in checkpoint["rng_cuda"]])
            log.info("resumed from %s at epoch %d, step %d", last_path, state.epoch, state.global_step)
        else:
            log.warning("%s was written for other settings; starting from scratch", last_path)

    num_examples = task.num_train_examples(data)
    steps_per_epoch = (num_examples // config.batch_size if config.drop_last
                       else math.ceil(num_examples / config.batch_size))
    if steps_per_epoch == 0:
        raise ValueError(f"{run.run_id}: {num_examples} training examples < batch size {config.batch_size}")
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    started = time.perf_counter()

    def checkpoint() -> None:
        nonlocal started
        now = time.perf_counter()
        state.train_wall_s += now - started
        started = now
        _save_checkpoint(last_path, model, optimizer, scaler, state, best_weights, digest)

    with _StopSignals() as stop:
        while not state.finished and optimizer is not None:
            if state.epoch >= config.epochs or state.global_step >= total_steps:
                state.finished = True
                break
            order = epoch_order(num_examples, seed=run.seed, epoch=state.epoch)
            factor = lr_factor(config, epoch=state.epoch, step=state.global_step, total_steps=total_steps)
            model.train()
            losses: list[float] = []
            bar = tqdm(total=steps_per_epoch, initial=state.step_in_epoch, disable=not progress,
                       desc=f"{run.run_id} epoch {state.epoch + 1}", mininterval=10 if not sys.stderr.isatty() else 0.1,
                       file=sys.stderr)
            while state.step_in_epoch < steps_per_epoch and state.global_step < total_steps:
                if stop.received is not None:
                    checkpoint()
                    log.warning("signal %d: checkpoint written at step %d; exiting with %d for a retry",
                                stop.received, state.global_step, PREEMPTED_EXIT_CODE)
                    raise Preempted()
                indices = order[state.step_in_epoch * config.batch_size:(state.step_in_epoch + 1) * config.batch_size]
                batch = move_to_device(task.make_batch(data, "train", indices), device)
                if config.lr_schedule in ("cosine", "rsqrt"):
                    factor = lr_factor(config, epoch=state.epoch, step=state.global_step, total_steps=total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                    loss = task.training_loss(model, batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{run.run_id}: loss is {loss.item()} at step {state.global_step}")
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                losses.append(float(loss.detach()))
                state.step_in_epoch += 1
                state.global_step += 1
                bar.update(1)
                if config.checkpoint_every and state.global_step % config.checkpoint_every == 0:
                    checkpoint()
            bar.close()
            val_loss = task.validation_loss(model, data, settings)
            improved = val_loss < state.best_val
            if improved:
                state.best_val, state.best_epoch, state.bad_epochs = val_loss, state.epoch, 0
                best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                state.bad_epochs += 1
            state.history.append({
                "epoch": state.epoch + 1, "step": state.global_step, "lr": optimizer.param_groups[0]["lr"],
                "train_loss": float(sum(losses) / len(losses)) if losses else None,
                "val_loss": val_loss, "step_losses": losses,
            })
            log.info("epoch %d: train %.6f val %.6f%s", state.epoch + 1,
                     state.history[-1]["train_loss"] or math.nan, val_loss, " (best)" if improved else "")
            state.epoch += 1
            state.step_in_epoch = 0
            if config.patience is not None and state.bad_epochs >= config.patience:
                log.info("early stop: no improvement for %d epochs", state.bad_epochs)
                state.finished = True
            checkpoint()

    if optimizer is None:  # parameter-free baseline: nothing to fit, still record its val loss
        state.best_val = task.validation_loss(model, data, settings)
        state.finished = True
    model.load_state_dict(best_weights)
    checkpoint()
    return model, {
        "steps": state.global_step,
        "epochs": len(state.history),
        "best_epoch": state.best_epoch + 1 if state.best_epoch >= 0 else None,
        "best_val_loss": state.best_val,
        "stopped_early": bool(config.patience is not None and state.bad_epochs >= config.patience),
        "max_steps": config.max_steps,
        "device": str(device),
        "wall_s": state.train_wall_s,
        "history": state.history,
        "settings_sha256": digest,
    }
