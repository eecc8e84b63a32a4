"""S4: DPLR state space layer with the Cauchy/Woodbury kernel, in plain PyTorch.

Gu, Goel, Ré, "Efficiently Modeling Long Sequences with Structured State Spaces", ICLR 2022
(Algorithm 1, Lemma C.2-C.4), with the HiPPO-LegS and FouT measures of Gu, Johnson, Timalsina,
Rudra, Ré, "How to Train Your HiPPO", ICLR 2023. Facts from the papers and the s4 code base
(``SSMKernelDPLR``), not its code; no CUDA extension, no pykeops:

* A = diag(Lambda) - P P^* in the unitary eigenbasis of the normal part of the HiPPO matrix
  (conjugate pairs: M = N/2 modes stored), B = V^* B_hippo, C ~ complex normal.
* Bilinear discretisation. The parameter is C~ = C (I - dA^L) for the fixed length L = l_max
  (initialised from a random C, as the s4 code does on its first call).
* Generating function at the roots of unity omega_k = exp(-2 pi i k / L), k = 0..L/2:
  K^(omega) = 2/(1+omega) [k00 - k01 k10 / (1 + k11)], k_ab = a^* (g(omega) - Lambda)^{-1} b with
  g = (2/dt)(1-omega)/(1+omega) (Cauchy sums over both members of every conjugate pair), then
  K = irfft(K^, L). The layer wrapper (D skip, GELU, GLU, bidirectional) is shared with S4D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from replibench.errors import ConfigError
from replibench.families.lra.models import hippo
from replibench.families.lra.models.s4d import SSMConvLayer, init_log_dt, tag


def _conj_ext(x: torch.Tensor) -> torch.Tensor:
    """(..., M) half -> (..., 2M) full state: (x, conj x)."""
    return torch.cat([x, x.conj()], dim=-1)


def cauchy_conj(v: torch.Tensor, g: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """sum_m v_m/(g - lam_m) + conj(v_m)/(g - conj(lam_m)): v (..., H, M), g (H, L'), lam (H, M)."""
    d1 = 1.0 / (g.unsqueeze(-2) - lam.unsqueeze(-1))  # (H, M, L')
    d2 = 1.0 / (g.unsqueeze(-2) - lam.conj().unsqueeze(-1))  # (H, M, L')
    return torch.einsum("...hm,hml->...hl", v, d1) + torch.einsum("...hm,hml->...hl", v.conj(), d2)


class DPLRKernel(nn.Module):
    """S4 kernel (channels, H, L) for L <= l_max from DPLR parameters."""

    def __init__(
        self,
        H: int,
        form: hippo.NPLR,
        *,
        channels: int,
        l_max: int,
        n_ssm: int | None,
        dt_min: float,
        dt_max: float,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        S = H if n_ssm is None else n_ssm
        if H % S:
            raise ConfigError(f"S4: n_ssm={S} must divide d_model={H}")
        if l_max < 2 or l_max % 2:
            raise ConfigError(f"S4: l_max must be an even kernel length >= 2, found {l_max}")
        self.H, self.S, self.l_max = H, S, l_max
        lam = torch.as_tensor(form.Lambda, dtype=torch.complex128)  # (M,)
        M = lam.shape[0]
        self.log_dt = tag(nn.Parameter(init_log_dt(H, dt_min, dt_max, generator)), "dt")  # (H,)
        # Re(Lambda) <= -1e-3 at init, as s4's SSKernelNPLR (``real_tolerance=1e-3``): FouT's normal
        # part has Re = 0 (S4D's diagonal kernel uses 1e-4, see s4d.py)
        re = torch.clamp(-lam.real, min=1e-3)  # (M,)
        self.log_A_real = tag(nn.Parameter(torch.log(re).float().repeat(S, 1)), "A")  # (S, M)
        self.A_imag = tag(nn.Parameter(lam.imag.float().repeat(S, 1)), "A")  # (S, M)
        as_param = lambda x: torch.view_as_real(torch.as_tensor(x, dtype=torch.complex64)).repeat(S, 1, 1)
        self.B = tag(nn.Parameter(as_param(form.B)), "B")  # (S, M, 2)
        self.P = tag(nn.Parameter(as_param(form.P)), "A")  # (S, M, 2): part of the state matrix
        C = torch.randn(channels, H, M, dtype=torch.complex64, generator=generator)  # (C, H, M)
        self.C = tag(nn.Parameter(torch.view_as_real(C)), "C")  # (C, H, M, 2), becomes C~ below
        with torch.no_grad():
            self.C.copy_(torch.view_as_real(self.c_tilde_from_c(C.to(torch.complex128)).to(torch.complex64)))

    def _tile(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat(self.H // self.S, *([1] * (x.ndim - 1)))  # (S, ...) -> (H, ...)

    def params(self) -> tuple[torch.Tensor, ...]:
        """dt (H, 1), Lambda (H, M), B (H, M), P (H, M), C~ (C, H, M) as complex tensors."""
        lam = self._tile(-torch.exp(self.log_A_real) + 1j * self.A_imag)  # (H, M)
        B = self._tile(torch.view_as_complex(self.B))  # (H, M)
        P = self._tile(torch.view_as_complex(self.P))  # (H, M)
        return torch.exp(self.log_dt).unsqueeze(-1), lam, B, P, torch.view_as_complex(self.C)

    def dense_transition(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-state bilinear (dA (H, N, N), dB (H, N)) with N = 2M, for tests and C~ set-up."""
        dt, lam, B, P, _ = (x.to(torch.complex128) for x in self.params())  # exact in float64
        p = _conj_ext(P)  # (H, N)
        A = torch.diag_embed(_conj_ext(lam)) - p.unsqueeze(-1) * p.conj().unsqueeze(-2)  # (H, N, N)
        eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
        left = eye - (dt.unsqueeze(-1) / 2) * A  # (H, N, N)
        dA = torch.linalg.solve(left, eye + (dt.unsqueeze(-1) / 2) * A)  # (H, N, N)
        dB = torch.linalg.solve(left, (dt * _conj_ext(B)).unsqueeze(-1)).squeeze(-1)  # (H, N)
        return dA, dB

    def c_tilde_from_c(self, C: torch.Tensor) -> torch.Tensor:
        """C~ = C (I - dA^L) (half representation (C, H, M)) for L = l_max."""
        dA, _ = self.dense_transition()
        dA = dA.to(C.dtype)
        AL = torch.linalg.matrix_power(dA, self.l_max)  # (H, N, N)
        full = _conj_ext(C)  # (C, H, N)
        full = full - torch.einsum("chn,hnm->chm", full, AL)  # row vector times (I - dA^L)
        return full[..., : C.shape[-1]]

    def dense_system(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dA (H, N, N), dB (H, N), C (channels, H, N)) of the recurrence x_k = dA x_{k-1} + dB u_k,
        y_k = Re(C x_k); C recovered from C~ by solving C (I - dA^L) = C~."""
        dA, dB = self.dense_transition()
        eye = torch.eye(dA.shape[-1], dtype=dA.dtype, device=dA.device)
        AL = torch.linalg.matrix_power(dA, self.l_max)  # (H, N, N)
        ct = _conj_ext(torch.view_as_complex(self.C)).to(dA.dtype)  # (C, H, N)
        # C (I - AL) = C~  <=>  (I - AL)^T C^T = C~^T
        C = torch.linalg.solve((eye - AL).transpose(-1, -2), ct.unsqueeze(-1)).squeeze(-1)  # (C, H, N)
        return dA, dB, C

    def forward(self, L: int) -> torch.Tensor:
        """Kernel (channels, H, L) via Cauchy + Woodbury at the l_max roots of unity."""
        if L > self.l_max:
            raise ConfigError(f"S4: sequence length {L} exceeds the kernel length l_max={self.l_max}")
        dt, lam, B, P, Ct = self.params()
        k = torch.arange(self.l_max // 2 + 1, device=lam.device, dtype=lam.real.dtype)  # (L',)
        omega = torch.exp(-2j * math.pi * k / self.l_max)  # (L',)
        g = (2.0 / dt) * (1.0 - omega) / (1.0 + omega)  # (H, L')
        Q = P.conj()  # (H, M)
        k00 = cauchy_conj(Ct * B, g, lam)  # (C, H, L')  C~^T R B
        k01 = cauchy_conj(Ct * P, g, lam)  # (C, H, L')  C~^T R P
        k10 = cauchy_conj(Q * B, g, lam)  # (H, L')     Q^* R B
        k11 = cauchy_conj(Q * P, g, lam)  # (H, L')     Q^* R P
        k_f = (k00 - k01 * k10 / (1.0 + k11)) * (2.0 / (1.0 + omega))  # (C, H, L')
        return torch.fft.irfft(k_f, n=self.l_max)[..., :L]  # (C, H, L)


@dataclass
class S4Config:
    """S4 (DPLR) layer; defaults from the s4 repo's HTTYH-era LRA configs (``lra/s4-lra-*``)."""

    d_model: int = 256
    d_state: int = 64  # N (HTTYH / S4D LRA configs)
    measure: str = "legs"  # "legs" (S4-LegS) | "fout" (S4-FouT), HTTYH
    l_max: int = 1024  # kernel length = the task's sequence length
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    n_ssm: int | None = None
    bidirectional: bool = True
    dropout: float = 0.0
    tie_dropout: bool = False
    # s4 v4 (March 2023, commits 1eb1007/aec83ea) clamps Im(V^* B) to +-2; the HTTYH-era v3.0.0
    # code that produced the LRA tables does not, so the default is the exact transform
    b_clip: float | None = None


class S4Layer(SSMConvLayer):
    """S4 layer, (B, L, H) -> (B, L, H)."""

    def __init__(self, cfg: S4Config, generator: torch.Generator | None = None) -> None:
        form = hippo.nplr(cfg.measure, cfg.d_state, b_clip=cfg.b_clip)
        kernel = DPLRKernel(
            cfg.d_model, form, channels=2 if cfg.bidirectional else 1, l_max=cfg.l_max,
            n_ssm=cfg.n_ssm, dt_min=cfg.dt_min, dt_max=cfg.dt_max, generator=generator,
        )
        super().__init__(
            cfg.d_model, kernel, bidirectional=cfg.bidirectional, dropout=cfg.dropout,
            tie_dropout=cfg.tie_dropout, generator=generator,
        )
        self.config = cfg


def unrolled_kernel(dA: torch.Tensor, dB: torch.Tensor, C: torch.Tensor, L: int) -> np.ndarray:
    """Reference K_l = Re(C dA^l dB) by stepping the recurrence (tests; O(L N^2))."""
    x = dB.clone()  # (H, N): state after an impulse at step 0
    out = []
    for _ in range(L):
        out.append(torch.einsum("chn,hn->ch", C, x).real)  # (C, H)
        x = torch.einsum("hnm,hm->hn", dA, x)
    return torch.stack(out, dim=-1).detach().numpy()  # (C, H, L)
