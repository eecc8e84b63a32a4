"""TimesNet (Wu et al., "TimesNet: Temporal 2D-Variation Modeling for General Time Series
Analysis", ICLR 2023), as run by Time-Series-Library for the paper's ETT tables.

Each TimesBlock finds the top-k periods of its input by FFT, folds the 1-D sequence into a 2-D
(cycles × period) grid per period, applies a 2-D Inception block (kernels 1, 3, …, 2k-1 averaged),
unfolds, and mixes the k results with softmax weights from the periods' FFT amplitudes.

Batch dependence (kept on purpose, it is the paper's method): the periods are chosen from FFT
amplitudes averaged over the **whole batch** and the channels, so a window's prediction depends
on the other windows in its batch. The paper-era test loader used batch size 1; the evaluation
records the test batch size and flags a batch size above 1 (``batch_dependent = True``).

Defaults are the ETTh1 long-term forecasting script (d_model 16, d_ff 32, top_k 5, 6 kernels,
2 layers, dropout 0.1, timeF embedding with freq 'h').
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TimesNetConfig:
    task: str = "forecast"  # "forecast" | "impute"
    seq_len: int = 96
    pred_len: int = 96  # 0 for imputation
    enc_in: int = 7
    c_out: int = 7
    d_model: int = 16
    d_ff: int = 32
    e_layers: int = 2
    top_k: int = 5
    num_kernels: int = 6
    dropout: float = 0.1
    time_features: int = 4  # timeF, freq 'h': hour, weekday, day of month, day of year


class InceptionBlock(nn.Module):
    """Parallel 2-D convolutions with kernels 1, 3, …, 2·num_kernels−1, averaged."""

    def __init__(self, in_channels: int, out_channels: int, num_kernels: int) -> None:
        super().__init__()
        self.kernels = nn.ModuleList(
            nn.Conv2d(in_channels, out_channels, kernel_size=2 * i + 1, padding=i) for i in range(num_kernels)
        )
        for conv in self.kernels:
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, D, rows, period)
        return torch.stack([conv(x) for conv in self.kernels], dim=-1).mean(dim=-1)  # (B, D', rows, period)


def fft_periods(x: torch.Tensor, k: int) -> tuple[list[int], torch.Tensor]:
    """Top-k periods from the batch- and channel-averaged amplitude spectrum.

    x: (B, T, D). Returns the k periods ``T // frequency`` (shared by the batch) and each
    sample's amplitude at those frequencies, (B, k), used as mixing weights.
    """
    # float32: cuFFT has no bfloat16 (and half only for powers of two), so under mixed precision
    # the spectrum is taken at full precision; a no-op for float32/64 input
    spectrum = torch.fft.rfft(x.float() if x.dtype in (torch.float16, torch.bfloat16) else x, dim=1).abs()  # (B, T//2+1, D)
    frequency_strength = spectrum.mean(dim=0).mean(dim=-1)  # (T//2+1,)
    frequency_strength[0] = 0.0  # the mean is not a period
    _, top = torch.topk(frequency_strength, k)  # (k,)
    top_list = top.detach().cpu().tolist()
    periods = [x.shape[1] // f for f in top_list]
    return periods, spectrum.mean(dim=-1)[:, top]  # (B, k)


class TimesBlock(nn.Module):
    def __init__(self, config: TimesNetConfig) -> None:
        super().__init__()
        self.total_len = config.seq_len + config.pred_len
        self.top_k = config.top_k
        self.conv = nn.Sequential(
            InceptionBlock(config.d_model, config.d_ff, config.num_kernels),
            nn.GELU(),
            InceptionBlock(config.d_ff, config.d_model, config.num_kernels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, T, D) with T = seq_len + pred_len
        B, T, D = x.shape
        periods, amplitudes = fft_periods(x, self.top_k)  # k ints, (B, k)
        outputs = []
        for period in periods:
            length = math.ceil(self.total_len / period) * period
            padded = torch.cat([x, x.new_zeros(B, length - T, D)], dim=1) if length > T else x  # (B, length, D)
            grid = padded.reshape(B, length // period, period, D).permute(0, 3, 1, 2)  # (B, D, rows, period)
            grid = self.conv(grid)  # (B, D, rows, period)
            outputs.append(grid.permute(0, 2, 3, 1).reshape(B, -1, D)[:, :self.total_len])  # (B, T, D)
        stacked = torch.stack(outputs, dim=-1)  # (B, T, D, k)
        weights = torch.softmax(amplitudes, dim=1)[:, None, None, :]  # (B, 1, 1, k)
        return (stacked * weights).sum(dim=-1) + x  # (B, T, D), residual


class DataEmbedding(nn.Module):
    """Value (circular conv, k=3) + calendar (linear timeF) + fixed sinusoidal position embedding."""

    def __init__(self, config: TimesNetConfig, max_len: int = 5000) -> None:
        super().__init__()
        self.value = nn.Conv1d(config.enc_in, config.d_model, kernel_size=3, padding=1,
                               padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.value.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.temporal = nn.Linear(config.time_features, config.d_model, bias=False)
        position = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
        frequencies = torch.exp(torch.arange(0, config.d_model, 2, dtype=torch.float32)
                                * -(math.log(10000.0) / config.d_model))  # (D/2,)
        table = torch.zeros(max_len, config.d_model)  # (max_len, D)
        table[:, 0::2] = torch.sin(position * frequencies)
        table[:, 1::2] = torch.cos(position * frequencies)[:, : config.d_model // 2]
        self.register_buffer("position", table, persistent=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None) -> torch.Tensor:
        # x: (B, L, C), x_mark: (B, L, 4)
        out = self.value(x.transpose(1, 2)).transpose(1, 2) + self.position[: x.shape[1]]  # (B, L, D)
        if x_mark is not None:
            out = out + self.temporal(x_mark)  # (B, L, D)
        return self.dropout(out)


class TimesNet(nn.Module):
    #: the tasks this model implements: its family and the sweeps that may name it come from here
    TASKS = ("forecast", "impute")

    Config = TimesNetConfig
    batch_dependent = True  # periods are chosen per batch, see the module docstring

    def __init__(self, config: TimesNetConfig) -> None:
        super().__init__()
        if config.task not in ("forecast", "impute"):
            raise ValueError(f"TimesNet task must be forecast or impute, got {config.task!r}")
        if config.task == "impute" and config.pred_len != 0:
            raise ValueError("imputation reconstructs the input window: pred_len must be 0")
        self.config = config
        self.embedding = DataEmbedding(config)
        self.blocks = nn.ModuleList(TimesBlock(config) for _ in range(config.e_layers))
        self.layer_norm = nn.LayerNorm(config.d_model)  # one norm shared by every block, as TSLib
        self.projection = nn.Linear(config.d_model, config.c_out)
        if config.task == "forecast":
            self.predict_linear = nn.Linear(config.seq_len, config.seq_len + config.pred_len)

    def encode(self, x: torch.Tensor, x_mark: torch.Tensor | None) -> torch.Tensor:
        out = self.embedding(x, x_mark)  # (B, L, D)
        if self.config.task == "forecast":
            out = self.predict_linear(out.transpose(1, 2)).transpose(1, 2)  # (B, L+H, D)
        for block in self.blocks:
            out = self.layer_norm(block(out))  # (B, T, D)
        return self.projection(out)  # (B, T, C)

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, L, C); mask (imputation): (B, L, C), 1 where observed
        if self.config.task == "forecast":
            means = x.mean(dim=1, keepdim=True).detach()  # (B, 1, C)
            centred = x - means
            stdev = torch.sqrt(centred.var(dim=1, keepdim=True, unbiased=False) + 1e-5)  # (B, 1, C)
            out = self.encode(centred / stdev, x_mark)  # (B, L+H, C)
            return (out * stdev + means)[:, -self.config.pred_len:]  # (B, H, C)
        assert mask is not None, "imputation needs the observation mask"
        observed = mask.sum(dim=1, keepdim=True)  # (B, 1, C)
        means = (x.sum(dim=1, keepdim=True) / observed).detach()  # (B, 1, C), masked entries are 0
        centred = (x - means).masked_fill(mask == 0, 0.0)
        stdev = torch.sqrt((centred * centred).sum(dim=1, keepdim=True) / observed + 1e-5).detach()  # (B, 1, C)
        out = self.encode(centred / stdev, x_mark)  # (B, L, C)
        return out * stdev + means  # (B, L, C)
