"""DLinear (Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023).

The input window is split by a moving average (kernel 25, replicate padding at both ends) into a
trend and a remainder ("seasonal") part; one linear map over time per part, shared across
channels (``individual=False``), and the two forecasts are summed. Weights start at ``1/seq_len``
(the mean of the window) as in Time-Series-Library's DLinear, the code base behind the TimesNet
paper's table.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class DLinearConfig:
    task: str = "forecast"
    seq_len: int = 96  # input length of the TimesNet protocol
    pred_len: int = 96
    enc_in: int = 7
    moving_avg: int = 25  # DLinear paper / TSLib default kernel
    individual: bool = False  # one linear map per channel when True


def moving_average_trend(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Moving average over time with the ends replicated, same length as the input.

    x: (B, L, C) → (B, L, C). With an odd kernel k, (k-1)/2 copies of the first and last step pad
    the two ends, so the average is centred.
    """
    pad = (kernel - 1) // 2
    front = x[:, :1, :].expand(-1, pad, -1)  # (B, pad, C)
    end = x[:, -1:, :].expand(-1, pad, -1)  # (B, pad, C)
    padded = torch.cat([front, x, end], dim=1)  # (B, L + 2*pad, C)
    return nn.functional.avg_pool1d(padded.transpose(1, 2), kernel_size=kernel, stride=1).transpose(1, 2)  # (B, L, C)


class DLinear(nn.Module):
    #: the tasks this model implements: its family and the sweeps that may name it come from here
    TASKS = ("forecast",)

    Config = DLinearConfig
    batch_dependent = False

    def __init__(self, config: DLinearConfig) -> None:
        super().__init__()
        if config.task != "forecast":
            raise ValueError("DLinear is a forecasting model")
        if config.moving_avg % 2 == 0:
            raise ValueError(f"moving_avg must be odd to stay centred, got {config.moving_avg}")
        self.config = config
        maps = config.enc_in if config.individual else 1
        self.seasonal = nn.ModuleList(nn.Linear(config.seq_len, config.pred_len) for _ in range(maps))
        self.trend = nn.ModuleList(nn.Linear(config.seq_len, config.pred_len) for _ in range(maps))
        for layer in [*self.seasonal, *self.trend]:
            nn.init.constant_(layer.weight, 1.0 / config.seq_len)

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, L, C)
        trend = moving_average_trend(x, self.config.moving_avg)  # (B, L, C)
        seasonal = (x - trend).transpose(1, 2)  # (B, C, L)
        trend = trend.transpose(1, 2)  # (B, C, L)
        if self.config.individual:
            out = torch.stack([
                self.seasonal[c](seasonal[:, c]) + self.trend[c](trend[:, c]) for c in range(self.config.enc_in)
            ], dim=1)  # (B, C, H)
        else:
            out = self.seasonal[0](seasonal) + self.trend[0](trend)  # (B, C, H)
        return out.transpose(1, 2)  # (B, H, C)
