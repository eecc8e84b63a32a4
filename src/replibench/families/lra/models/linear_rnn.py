"""Diagonal selective linear RNN (Mamba) with the eigenvalue range [0, 1] or [-1, 1].

Grazzi, Siems, Zela, Franke, Hutter, Pontil: "Unlocking State-Tracking in Linear RNNs Through
Negative Eigenvalues", ICLR 2025 (arXiv 2411.12537). The Mamba layer (Gu & Dao 2023) multiplies
its state by ``exp(Δ A)`` ∈ (0, 1) per channel; the paper's extension maps it to
``2 exp(Δ A) - 1`` ∈ (-1, 1), which is what lets a linear RNN flip a sign per input and so solve
parity. Block layout as the paper's code (mambapy): embedding → n × [x + Mamba(RMSNorm(x))] →
LM head over the vocabulary (their ``MambaLM`` has no final norm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LinearRNNConfig:
    # paper §5.1 / automl/unlocking_state_tracking configs (parity_mamba*.yaml; notes §3.4)
    vocab_size: int = 3
    d_model: int = 128
    n_layers: int = 2
    negative_eigenvalues: bool = True  # True: [-1, 1] (``positive_and_negative``); False: [0, 1]
    # Mamba defaults of the paper's own Mamba (unlocking_state_tracking xlstm/mamba/mamba.py
    # MambaConfig, built on mambapy): its d_conv default is 1 (a per-channel scale, no mixing of
    # neighbouring tokens), not mambapy's 4; the parity configs do not override it
    d_state: int = 16
    expand: int = 2
    d_conv: int = 1
    dt_rank: int | None = None  # None → ceil(d_model / 16)
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    norm_eps: float = 1e-5

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def rank(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight  # (..., D)


def transition(delta: torch.Tensor, A: torch.Tensor, negative: bool) -> torch.Tensor:
    """Per-step diagonal state multiplier: exp(ΔA) ∈ (0,1), or 2·exp(ΔA) − 1 ∈ (−1,1)."""
    decay = torch.exp(delta.unsqueeze(-1) * A)  # (B, L, E, N)
    return 2.0 * decay - 1.0 if negative else decay


class MambaMixer(nn.Module):
    """Selective SSM layer: h_t = a_t ⊙ h_{t-1} + Δ_t B_t x_t,  y_t = C_t h_t + D x_t, gated."""

    def __init__(self, config: LinearRNNConfig):
        super().__init__()
        self.config = config
        E, N, R = config.d_inner, config.d_state, config.rank
        self.in_proj = nn.Linear(config.d_model, 2 * E, bias=False)
        self.conv1d = nn.Conv1d(E, E, config.d_conv, groups=E, padding=config.d_conv - 1, bias=True)
        self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        self.out_proj = nn.Linear(E, config.d_model, bias=False)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1))  # (E, N)
        self.D = nn.Parameter(torch.ones(E))
        # Δ initialised log-uniformly in [dt_min, dt_max] through the inverse softplus (Mamba)
        nn.init.uniform_(self.dt_proj.weight, -R ** -0.5, R ** -0.5)
        dt = torch.exp(torch.rand(E) * (math.log(config.dt_max) - math.log(config.dt_min)) + math.log(config.dt_min))
        dt = dt.clamp(min=config.dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        N, R = self.config.d_state, self.config.rank
        xs, z = self.in_proj(x).chunk(2, dim=-1)  # (B, L, E) each
        xs = self.conv1d(xs.transpose(1, 2))[..., :L].transpose(1, 2)  # causal depthwise conv, (B, L, E)
        xs = F.silu(xs)
        dt, Bm, Cm = torch.split(self.x_proj(xs), [R, N, N], dim=-1)  # (B, L, R), (B, L, N), (B, L, N)
        delta = F.softplus(self.dt_proj(dt))  # (B, L, E)
        A = -torch.exp(self.A_log)  # (E, N), negative real
        a = transition(delta, A, self.config.negative_eigenvalues)  # (B, L, E, N)
        bx = delta.unsqueeze(-1) * Bm.unsqueeze(2) * xs.unsqueeze(-1)  # (B, L, E, N)
        states = self.scan(a, bx)  # (B, L, E, N)
        y = (states @ Cm.unsqueeze(-1)).squeeze(-1) + self.D * xs  # (B, L, E)
        return self.out_proj(y * F.silu(z))  # (B, L, D)

    @staticmethod
    def scan(a: torch.Tensor, bx: torch.Tensor) -> torch.Tensor:
        """Sequential linear recurrence h_t = a_t h_{t-1} + bx_t, h_0 = 0 (exact for any sign of a).

        ``unbind`` rather than ``a[:, t]``: the backward of an indexed slice writes a zero tensor of
        the full (B, L, E, N) size per step (quadratic in L); unbind's backward is one stack.
        """
        out, h = [], None
        for a_t, bx_t in zip(a.unbind(1), bx.unbind(1)):  # (B, E, N) each
            h = bx_t if h is None else torch.addcmul(bx_t, a_t, h)  # a_t * h + bx_t
            out.append(h)
        return torch.stack(out, dim=1)  # (B, L, E, N)


class LinearRNN(nn.Module):
    """Language model over a small vocabulary; returns logits (B, L, vocab_size)."""

    #: the tasks this model implements: its family and the sweeps that may name it come from here
    TASKS = ("state-tracking",)

    Config = LinearRNNConfig  # the registry contract: ``cls(cls.Config(...))``

    def __init__(self, config: LinearRNNConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.norms = nn.ModuleList(RMSNorm(config.d_model, config.norm_eps) for _ in range(config.n_layers))
        self.mixers = nn.ModuleList(MambaMixer(config) for _ in range(config.n_layers))
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens)  # (B, L, D)
        for norm, mixer in zip(self.norms, self.mixers):
            x = x + mixer(norm(x))  # (B, L, D)
        return self.lm_head(x)  # (B, L, V)
