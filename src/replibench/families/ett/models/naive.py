"""Naive time-series baselines with no parameters.

Forecast: repeat the last observed value of the input window over the horizon (``naive``), or the
window mean (``naive-mean``). Imputation (TimesNet paper, Table 4 baselines are learned models;
these are the usual sanity floors): fill each masked point with the last observed value before
it in its channel (backward fill at the start), or with the mean of the observed values of the
channel in the window. A channel with no observed value gets 0, the train mean in scaled space.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class NaiveConfig:
    task: str = "forecast"  # "forecast" | "impute"
    seq_len: int = 96
    pred_len: int = 96
    enc_in: int = 7
    fill: str = "last"  # "last" | "mean"


def last_observed_fill(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Carry the last observed value forward along time; leading gaps take the first observed.

    x, mask: (B, L, C); mask is 1 where observed. Returns (B, L, C).
    """
    B, L, C = x.shape
    steps = torch.arange(L, device=x.device).view(1, L, 1).expand(B, L, C)  # (B, L, C)
    observed = mask.bool()
    last_index = torch.where(observed, steps, torch.full_like(steps, -1)).cummax(dim=1).values  # (B, L, C)
    first_index = torch.where(observed, steps, torch.full_like(steps, L)).min(dim=1, keepdim=True).values  # (B, 1, C)
    source = torch.where(last_index >= 0, last_index, first_index.expand(B, L, C))  # (B, L, C)
    has_any = source < L
    filled = x.gather(1, source.clamp(max=L - 1))  # (B, L, C)
    return torch.where(has_any, filled, torch.zeros_like(x))


def observed_mean_fill(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of each channel's observed values in the window, broadcast over time. (B, L, C)."""
    count = mask.sum(dim=1, keepdim=True)  # (B, 1, C)
    total = (x * mask).sum(dim=1, keepdim=True)  # (B, 1, C)
    mean = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))  # (B, 1, C)
    return mean.expand_as(x)


class Naive(nn.Module):
    #: the tasks this model implements: its family and the sweeps that may name it come from here
    TASKS = ("forecast", "impute")

    Config = NaiveConfig
    batch_dependent = False

    def __init__(self, config: NaiveConfig) -> None:
        super().__init__()
        if config.task not in ("forecast", "impute") or config.fill not in ("last", "mean"):
            raise ValueError(f"naive model: unsupported task/fill {config.task}/{config.fill}")
        self.config = config

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, L, C)
        if self.config.task == "forecast":
            if self.config.fill == "last":
                level = x[:, -1:, :]  # (B, 1, C)
            else:
                level = x.mean(dim=1, keepdim=True)  # (B, 1, C)
            return level.expand(-1, self.config.pred_len, -1)  # (B, H, C)
        assert mask is not None, "imputation needs the observation mask"
        fill = last_observed_fill(x, mask) if self.config.fill == "last" else observed_mean_fill(x, mask)
        return torch.where(mask.bool(), x, fill)  # (B, L, C)


class NaiveLast(Naive):
    """Registry ``naive``: repeat the last value / carry the last observed value."""


@dataclass
class NaiveMeanConfig(NaiveConfig):
    fill: str = "mean"


class NaiveMean(Naive):
    """Registry ``naive-mean``: the window mean / the observed mean."""

    Config = NaiveMeanConfig
