"""S4D: diagonal state space layer (ZOH or bilinear), Vandermonde kernel, FFT convolution.

Gu, Gupta, Goel, Ré, "On the Parameterization and Initialization of Diagonal State Space Models",
NeurIPS 2022 (arXiv 2206.11893). Facts taken from the paper and the state-spaces/s4 code base
(``models/s4/s4.py``: ``SSMKernelDiag``, ``FFTConv``, ``S4Block``), not its code:

* A = -exp(a_re) + i a_im (real part kept negative), dt = exp(log_dt) with log_dt ~ U[log dt_min,
  log dt_max] per channel, C ~ complex normal (variance 1), D ~ N(0, 1).
* ZOH: dA = exp(dt A), dB = (exp(dt A) - 1) / A * B; bilinear: dA = (1 + dt A/2)/(1 - dt A/2),
  dB = dt / (1 - dt A/2) * B. Kernel K_l = 2 Re(sum_n C_n dB_n dA_n^l) (conjugate pairs).
* Bidirectional: a second C (channel) gives an anti-causal kernel, flipped and padded so that
  y_t also sees u_{t+1..L-1} (strictly future; lag 0 only through the causal kernel and D).
* Layer: y = GELU(K * u + D u) -> dropout -> Linear(H, 2H) -> GLU (s4 ``final_act: glu``).
``n_ssm`` ties (A, B) across channels (copy h uses SSM h mod n_ssm), each channel keeps C and dt.

The kernel module, ``fft_conv`` and ``SSMConvLayer`` are shared with S4 (``s4.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from replibench.errors import ConfigError
from replibench.families.lra.models import hippo

SSM_ROLE = "_ssm_role"  # attribute on parameters: "A" | "B" | "dt" | "C"


def tag(param: nn.Parameter, role: str) -> nn.Parameter:
    """Mark a parameter with its SSM role so optimiser grouping can find it."""
    setattr(param, SSM_ROLE, role)
    return param


def init_log_dt(H: int, dt_min: float, dt_max: float, generator: torch.Generator | None) -> torch.Tensor:
    """log dt ~ U[log dt_min, log dt_max], one per channel (S4/S4D, HTTYH §4.3)."""
    u = torch.rand(H, generator=generator)  # (H,)
    return u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)


def fft_conv(u: torch.Tensor, k: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """Causal (or two-sided) convolution of u (B, H, L) with k (C, H, L) via FFT of length 2L.

    Half-precision input is computed in float32 (and returned so): cuFFT has no bfloat16 and takes half only at powers
    of two, so under mixed precision the convolution stays at full precision (the S4 authors'
    FFTConv likewise runs its FFTs on float32 kernels); float32/64 input is unchanged."""
    u, k = (x.float() if x.dtype in (torch.float16, torch.bfloat16) else x for x in (u, k))
    L = u.shape[-1]
    if bidirectional:
        # (H, 2L): causal taps at [0, L), anti-causal taps k1[j-1] at lag -j stored at 2L - j.
        k = F.pad(k[0], (0, L)) + F.pad(k[1].flip(-1), (L, 0))
    else:
        k = k[0]  # (H, L)
    k_f = torch.fft.rfft(k, n=2 * L)  # (H, L+1)
    u_f = torch.fft.rfft(u, n=2 * L)  # (B, H, L+1)
    return torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L]  # (B, H, L)


class DiagonalKernel(nn.Module):
    """Diagonal SSM convolution kernel with M complex modes per channel (S4D, S4-PTD)."""

    def __init__(
        self,
        H: int,
        Lambda: np.ndarray,
        B: np.ndarray,
        *,
        channels: int,
        n_ssm: int | None,
        dt_min: float,
        dt_max: float,
        disc: str,
        V: np.ndarray | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        """``V`` (N, M): eigenvectors of a non-unitary init (PTD); C is then drawn in the original
        basis (real normal) and mapped, C~ = C V, so that C~ B~ keeps the scale of the HiPPO system."""
        super().__init__()
        S = H if n_ssm is None else n_ssm
        if H % S:
            raise ConfigError(f"S4D: n_ssm={S} must divide d_model={H}")
        if disc not in ("zoh", "bilinear"):
            raise ConfigError(f"S4D: disc must be 'zoh' or 'bilinear', found {disc!r}")
        self.H, self.S, self.disc = H, S, disc
        lam = torch.as_tensor(Lambda, dtype=torch.complex128)  # (M,)
        b = torch.as_tensor(B, dtype=torch.complex128)  # (M,)
        M = lam.shape[0]
        self.log_dt = tag(nn.Parameter(init_log_dt(H, dt_min, dt_max, generator)), "dt")  # (H,)
        re = torch.clamp(-lam.real, min=1e-4)  # (M,) positive decay rates
        self.log_A_real = tag(nn.Parameter(torch.log(re).float().repeat(S, 1)), "A")  # (S, M)
        self.A_imag = tag(nn.Parameter(lam.imag.float().repeat(S, 1)), "A")  # (S, M)
        self.B = tag(nn.Parameter(torch.view_as_real(b.to(torch.complex64)).repeat(S, 1, 1)), "B")  # (S, M, 2)
        if V is None:
            C = torch.randn(channels, H, M, dtype=torch.complex64, generator=generator)  # (C, H, M)
        else:
            # real C in the original basis keeps 2 Re(sum over kept modes) exact (hippo.conjugate_half)
            C0 = torch.randn(channels, H, V.shape[0], dtype=torch.float64, generator=generator)  # (C, H, N)
            C = (C0.to(torch.complex128) @ torch.as_tensor(V, dtype=torch.complex128)).to(torch.complex64)
        self.C = tag(nn.Parameter(torch.view_as_real(C)), "C")  # (C, H, M, 2)

    def _tile(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat(self.H // self.S, *([1] * (x.ndim - 1)))  # (S, ...) -> (H, ...)

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dtA (H, M), dB (H, M), C (channels, H, M)); dtA is log(dA) under ZOH."""
        A = self._tile(-torch.exp(self.log_A_real) + 1j * self.A_imag)  # (H, M)
        B = self._tile(torch.view_as_complex(self.B))  # (H, M)
        dt = torch.exp(self.log_dt).unsqueeze(-1)  # (H, 1)
        dtA = dt * A  # (H, M)
        if self.disc == "zoh":
            dB = B * torch.expm1(dtA) / A  # (H, M)
            log_dA = dtA
        else:
            dB = B * dt / (1.0 - dtA / 2)  # (H, M)
            log_dA = torch.log((1.0 + dtA / 2) / (1.0 - dtA / 2))  # (H, M)
        return log_dA, dB, torch.view_as_complex(self.C)

    def forward(self, L: int) -> torch.Tensor:
        """Kernel (channels, H, L): K_l = 2 Re(sum_m C_m dB_m dA_m^l)."""
        log_dA, dB, C = self.discrete()
        coef = C * dB  # (C, H, M)
        ell = torch.arange(L, device=log_dA.device, dtype=log_dA.real.dtype)  # (L,)
        vander = torch.exp(log_dA.unsqueeze(-1) * ell)  # (H, M, L)
        return 2.0 * torch.einsum("chm,hml->chl", coef, vander).real  # (C, H, L)


class TiedDropout(nn.Module):
    """Dropout whose mask is shared along the sequence axis (s4 ``tie_dropout``) for (B, L, H)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], 1, x.shape[2], device=x.device) >= self.p  # (B, 1, H)
        return x * keep / (1.0 - self.p)


def make_dropout(p: float, tie: bool) -> nn.Module:
    if p == 0.0:
        return nn.Identity()
    return TiedDropout(p) if tie else nn.Dropout(p)


class SSMConvLayer(nn.Module):
    """(B, L, H) -> (B, L, H): GELU(K * u + D u) -> dropout -> Linear(H, 2H) -> GLU."""

    def __init__(
        self,
        d_model: int,
        kernel: nn.Module,
        *,
        bidirectional: bool,
        dropout: float,
        tie_dropout: bool,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.kernel = kernel
        self.bidirectional = bidirectional
        self.D = tag(nn.Parameter(torch.randn(d_model, generator=generator)), "D")  # (H,)
        self.drop = make_dropout(dropout, tie_dropout)
        self.output_linear = nn.Linear(d_model, 2 * d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            x = x * mask.unsqueeze(-1).to(x.dtype)  # (B, L, H): padding contributes nothing
        u = x.transpose(1, 2)  # (B, H, L)
        k = self.kernel(u.shape[-1])  # (C, H, L)
        y = fft_conv(u, k.to(u.dtype), self.bidirectional) + self.D.unsqueeze(-1) * u  # (B, H, L)
        y = self.drop(F.gelu(y).transpose(1, 2))  # (B, L, H)
        return F.glu(self.output_linear(y), dim=-1)  # (B, L, H)


@dataclass
class S4DConfig:
    """S4D layer settings; defaults follow the s4 repo's LRA configs (``configs/experiment/lra``)
    with ``layer.mode=diag`` as the S4D paper used them."""

    d_model: int = 256
    d_state: int = 64  # N real states = N/2 complex modes (S4D paper, LRA configs)
    init: str = "legs"  # "legs" | "inv" | "lin" | "ptd" (S4-PTD)
    disc: str = "zoh"  # minimal S4D's choice; the LRA presets use bilinear (see presets._S4D_LRA_DISC)
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    n_ssm: int | None = None  # None: independent (A, B) per channel
    bidirectional: bool = True  # all LRA configs
    dropout: float = 0.0
    tie_dropout: bool = False
    legs_b_scale: float = 1.0  # s4 code drops the theoretical 1/2 (see hippo.py)
    ptd_relative_size: float = 1e-3  # ||E|| / ||A|| (our default; see hippo.ptd_init)
    ptd_gamma: float = 1.0
    ptd_steps: int = 0


def diagonal_init(
    cfg: S4DConfig, generator: torch.Generator | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(Lambda (M,), B (M,), V (N, M) or None) for the config's init."""
    if cfg.init == "ptd":
        return hippo.s4_ptd_init(
            cfg.d_state, relative_size=cfg.ptd_relative_size, gamma=cfg.ptd_gamma,
            steps=cfg.ptd_steps, generator=generator,
        )
    lam, b = hippo.s4d_init(cfg.init, cfg.d_state, legs_b_scale=cfg.legs_b_scale)
    return lam, b, None


class S4DLayer(SSMConvLayer):
    """S4D (or S4-PTD with ``init="ptd"``) layer, (B, L, H) -> (B, L, H)."""

    def __init__(self, cfg: S4DConfig, generator: torch.Generator | None = None) -> None:
        lam, b, V = diagonal_init(cfg, generator)
        kernel = DiagonalKernel(
            cfg.d_model, lam, b, channels=2 if cfg.bidirectional else 1, n_ssm=cfg.n_ssm,
            dt_min=cfg.dt_min, dt_max=cfg.dt_max, disc=cfg.disc, V=V, generator=generator,
        )
        super().__init__(
            cfg.d_model, kernel, bidirectional=cfg.bidirectional, dropout=cfg.dropout,
            tie_dropout=cfg.tie_dropout, generator=generator,
        )
        self.config = cfg
