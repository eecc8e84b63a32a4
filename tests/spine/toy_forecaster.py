"""A new ETT model, as a contributor adds one (CONTRIBUTING.md, "Add a model"): this file and one
registry line. ``tests/spine/test_add_a_model.py`` registers it and runs it through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ToyForecasterConfig:
    """Hyper-parameters (the preset and the user's overrides) and the shapes the task passes in."""

    task: str = "forecast"
    seq_len: int = 96  # input window length (steps)
    pred_len: int = 96  # forecast horizon (steps)
    enc_in: int = 7  # channels


class ToyForecaster(nn.Module):
    """One linear map over time shared by the channels: (B, L, C) → (B, H, C)."""

    TASKS = ("forecast",)  # where the model may run: its family (ETT) follows from the task
    Config = ToyForecasterConfig

    def __init__(self, config: ToyForecasterConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.seq_len, config.pred_len)

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(x.transpose(1, 2)).transpose(1, 2)  # (B, H, C)
