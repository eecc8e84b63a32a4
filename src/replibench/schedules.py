"""Learning-rate schedules of the papers we reproduce, as pure functions of (epoch, step).

Each returns a multiplier of a parameter group's base learning rate. ``plateau`` (reduce on a
validation plateau, as DiffCSP and CrysBFN train) depends on the validation history instead and
is tracked by :class:`PlateauTracker`, whose state is saved in checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SCHEDULES = ("constant", "type1", "cosine", "fairchem-cosine", "rsqrt", "multistep", "plateau")


def lr_factor(config: Any, *, epoch: int, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at 0-based ``epoch`` and global ``step``.

    * ``type1`` — TSLib's ``adjust_learning_rate``: epochs 1–2 at lr, epoch 3 at lr/2, epoch 4 at
      lr/4 … (halved after every epoch from the second on).
    * ``cosine`` — linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total_steps``
      (the S4/S5 LRA configs).
    * ``fairchem-cosine`` — fairchem's ``CosineLRLambda`` (``LambdaLR``, ``lambda_type: cosine``;
      EquiformerV2's OC20 configs): linear warm-up from ``warmup_factor`` to 1 over steps
      0..``warmup_steps`` (inclusive), then ``lr_min_factor + (1 - lr_min_factor) (1 + cos(pi
      step / total_steps)) / 2`` — the cosine runs over the whole run, warm-up included, as there
      — and ``lr_min_factor`` from ``total_steps`` on.
    * ``rsqrt`` — LRA's Transformer schedule ``min(1, step/warmup) / sqrt(max(step, warmup))``
      (peak ``lr / sqrt(warmup)``).
    * ``multistep`` — fairchem's OC20 schedule: linear warm-up from ``warmup_factor`` to 1 over
      ``warmup_steps``, then × ``gamma`` at each step in ``milestones``.
    * ``constant`` and ``plateau`` — 1 (plateau reductions are applied on top, per epoch).
    """
    schedule = config.lr_schedule
    if schedule in ("constant", "plateau"):
        return 1.0
    if schedule == "type1":
        return 0.5 ** max(0, epoch - 1)
    if schedule == "cosine":
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        span = max(1, total_steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "fairchem-cosine":
        if step <= config.warmup_steps:
            alpha = step / config.warmup_steps if config.warmup_steps else 1.0
            return config.warmup_factor * (1.0 - alpha) + alpha
        if step >= total_steps:
            return config.lr_min_factor
        return config.lr_min_factor + 0.5 * (1.0 - config.lr_min_factor) * (1.0 + math.cos(math.pi * step / total_steps))
    if schedule == "rsqrt":
        warmup = max(1, config.warmup_steps)
        step = step + 1  # LRA counts from step 1 here; step 0 would give lr 0
        return min(1.0, step / warmup) / math.sqrt(max(step, warmup))
    if schedule == "multistep":
        if config.warmup_steps and step < config.warmup_steps:
            alpha = step / config.warmup_steps
            return config.warmup_factor * (1.0 - alpha) + alpha
        return config.gamma ** sum(step >= milestone for milestone in config.milestones)
    raise ValueError(f"unknown lr_schedule {schedule!r}; expected one of {SCHEDULES}")


@dataclass
class PlateauTracker:
    """``torch.optim.lr_scheduler.ReduceLROnPlateau`` semantics (mode min, relative threshold,
    no cooldown): after more than ``patience`` epochs without a relative improvement of
    ``threshold``, the scale is multiplied by ``factor`` (never below ``min_lr / base_lr``)."""

    scale: float = 1.0
    best: float = math.inf
    bad_epochs: int = 0

    def update(self, val_loss: float, *, factor: float, patience: int, threshold: float = 1e-4) -> None:
        if val_loss < self.best * (1.0 - threshold):
            self.best, self.bad_epochs = val_loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > patience:
            self.scale *= factor
            self.bad_epochs = 0
