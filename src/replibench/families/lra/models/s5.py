"""S5: MIMO diagonal state space layer computed with a parallel scan in PyTorch.

Smith, Warrington, Linderman, "Simplified State Space Layers for Sequence Modeling", ICLR 2023.
Facts from the paper and lindermanlab/S5 (``s5/ssm.py``, ``ssm_init.py``, ``layers.py``,
``train_helpers.py``, ``bin/run_experiments/run_lra_*.sh``), not its code:

* Init "HiPPO-N": the normal part of HiPPO-LegS (A + P P^T) of size P/J, unitarily diagonalised,
  repeated on J blocks; with conjugate symmetry only the P/2 modes with Im > 0 are kept and
  y = 2 Re(C~ x). B ~ lecun normal (P, H) real, B~ = V^{-1} B.
* C is drawn *complex* in the original basis, C = C_re + i C_im of shape (H, P), then C~ = C V
  (``ssm.py`` samples shape (H, P, 2)): ``lecun_normal`` over (H, P, 2) has fan-in P*H, so each
  part has variance 1/(P H); ``trunc_standard_normal`` draws each row with lecun_normal over
  (1, P, 2), variance 1/P. ``complex_normal`` draws C~ directly (std sqrt(1/2) per part).
* log Delta ~ U[log dt_min, log dt_max] per state, shape (P/2,) — always: ``dt_global`` is never
  read by upstream's S5SSM; it only moves log Delta into the AdamW group at the base lr with
  weight decay (``train_helpers.create_train_state``; see ``SequenceClassifier.optimizer_param_groups``).
  ZOH: Lambda_bar = exp(Lambda Delta), B_bar = (Lambda_bar - 1)/Lambda * B~. D ~ N(0, 1).
* Bidirectional: a second scan in reverse time (it includes the current step) read out by its
  own C2; the outputs are summed through C~ = [C1, C2].
* Activations after the SSM: gelu | half_glu1: x * sigmoid(W gelu(x)) ... (see ``S5Layer``);
  GELU is flax ``nn.gelu``, i.e. the tanh approximation. Dropout is flax ``nn.Dropout`` with
  ``broadcast_dims=[0]`` on an (L, H) example: one mask per example and channel, constant in time.
* S5-PTD (Yu et al., ICLR 2024): same layer, blocks initialised by perturb-then-diagonalise of
  the non-normal HiPPO-LegS block instead of its normal part.

The scan: the recurrence x_k = Lambda_bar x_{k-1} + b_k is time-invariant, so the associative
scan reduces to Hillis-Steele doubling x_k += Lambda_bar^(2^s) x_{k-2^s} (log2 L steps, exact).
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
from replibench.families.lra.models.s4d import TiedDropout, tag


def linear_scan(log_a: torch.Tensor, b: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """x_k = a x_{k-1} + b_k (x_{-1} = 0) for constant diagonal a = exp(log_a) (P,), b (B, L, P)."""
    if reverse:
        return linear_scan(log_a, b.flip(1)).flip(1)
    x, L, shift = b, b.shape[1], 1
    while shift < L:
        a_pow = torch.exp(log_a * shift)  # (P,) = a^shift
        x = torch.cat([x[:, :shift], x[:, shift:] + a_pow * x[:, :-shift]], dim=1)  # (B, L, P)
        shift *= 2
    return x


def _lecun_normal(shape: tuple[int, ...], fan_in: int, generator: torch.Generator | None) -> torch.Tensor:
    """Truncated normal (+-2 sd) with variance 1/fan_in, as jax.nn.initializers.lecun_normal."""
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978  # truncation correction
    x = torch.empty(shape)
    nn.init.trunc_normal_(x, mean=0.0, std=std, a=-2 * std, b=2 * std, generator=generator)
    return x


def hippo_n_blocks(P: int, J: int, conj_sym: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Lambda (P'), V (P, P'), V_inv (P', P)) of block-diagonal HiPPO-N, P' = P/2 if conj_sym."""
    if P % J or (P // J) % 2:
        raise ConfigError(f"S5: ssm_size={P} must split into {J} blocks of even size")
    form = hippo.nplr("legs", P // J)
    lam, V = form.Lambda, form.V  # (m,), (n, m) with m = n/2 (Im > 0 half)
    if not conj_sym:
        lam, V = np.concatenate([lam, lam.conj()]), np.concatenate([V, V.conj()], axis=1)
    V_inv = V.conj().T  # unitary columns
    return np.tile(lam, J), _block_diag([V] * J), _block_diag([V_inv] * J)


def ptd_blocks(P: int, J: int, cfg: "S5Config", generator: torch.Generator | None):
    """Block-diagonal S5-PTD: PTD of HiPPO-LegS of size P/J, kept modes per block (conj_sym)."""
    A, B = hippo.legs_matrices(P // J)
    init = hippo.ptd_init(
        A, B, relative_size=cfg.ptd_relative_size, gamma=cfg.ptd_gamma, steps=cfg.ptd_steps, generator=generator
    )
    keep = init.Lambda.imag > 1e-9 if cfg.conj_sym else np.ones_like(init.Lambda.real, dtype=bool)
    if cfg.conj_sym:
        keep |= np.abs(init.Lambda.imag) <= 1e-9  # real modes kept once
    real_half = np.where(np.abs(init.Lambda.imag) <= 1e-9, 0.5, 1.0)[keep] if cfg.conj_sym else 1.0
    lam, V, V_inv = init.Lambda[keep], init.V[:, keep], init.V_inv[keep] * np.reshape(real_half, (-1, 1))
    return np.tile(lam, J), _block_diag([V] * J), _block_diag([V_inv] * J)


def _block_diag(blocks: list[np.ndarray]) -> np.ndarray:
    rows = sum(b.shape[0] for b in blocks)
    cols = sum(b.shape[1] for b in blocks)
    out = np.zeros((rows, cols), dtype=np.complex128)
    r = c = 0
    for b in blocks:
        out[r : r + b.shape[0], c : c + b.shape[1]] = b
        r, c = r + b.shape[0], c + b.shape[1]
    return out


@dataclass
class S5Config:
    """S5 layer; defaults = lindermanlab/S5 ``run_train.py`` defaults and LRA scripts."""

    d_model: int = 128  # H
    ssm_size: int = 256  # P real states (ssm_size_base)
    blocks: int = 8  # J
    C_init: str = "lecun_normal"  # "lecun_normal" | "trunc_standard_normal" | "complex_normal"
    discretization: str = "zoh"  # "zoh" | "bilinear"
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    dt_global: bool = False  # optimiser grouping only (log Delta at the base lr, with wd); Delta stays per state
    conj_sym: bool = True
    clip_eigs: bool = False
    bidirectional: bool = True
    activation: str = "half_glu1"  # "gelu" | "half_glu1" | "half_glu2" | "full_glu"
    dropout: float = 0.0
    opt_config: str = "standard"  # "standard" | "BandCdecay" | "BfastandCdecay" (B's optimiser group)
    init: str = "hippo"  # "hippo" (HiPPO-N) | "ptd" (S5-PTD)
    ptd_relative_size: float = 1e-3
    ptd_gamma: float = 1.0
    ptd_steps: int = 0


class S5SSM(nn.Module):
    """u (B, L, H) -> y (B, L, H) = Re(C~ x) (x2 with conj_sym) + D u."""

    def __init__(self, cfg: S5Config, generator: torch.Generator | None = None) -> None:
        super().__init__()
        H, P = cfg.d_model, cfg.ssm_size
        if cfg.init == "hippo":
            lam, V, V_inv = hippo_n_blocks(P, cfg.blocks, cfg.conj_sym)
        elif cfg.init == "ptd":
            lam, V, V_inv = ptd_blocks(P, cfg.blocks, cfg, generator)
        else:
            raise ConfigError(f"S5: init must be 'hippo' or 'ptd', found {cfg.init!r}")
        self.cfg, self.factor = cfg, 2.0 if cfg.conj_sym else 1.0
        Pk = lam.shape[0]  # kept modes
        self.Lambda_re = tag(nn.Parameter(torch.tensor(lam.real.copy(), dtype=torch.float32)), "A")  # (Pk,)
        self.Lambda_im = tag(nn.Parameter(torch.tensor(lam.imag.copy(), dtype=torch.float32)), "A")  # (Pk,)
        Vt, Vit = torch.as_tensor(V), torch.as_tensor(V_inv)  # (P, Pk), (Pk, P)
        B = _lecun_normal((P, H), fan_in=P, generator=generator).to(torch.complex128)  # (P, H)
        self.B = tag(nn.Parameter(torch.view_as_real((Vit @ B).to(torch.complex64))), "B")  # (Pk, H, 2)
        n_c = 2 if cfg.bidirectional else 1
        if cfg.C_init == "complex_normal":
            C = torch.randn(n_c, H, Pk, 2, generator=generator) * math.sqrt(0.5)  # (n_c, H, Pk, 2)
        elif cfg.C_init in ("lecun_normal", "trunc_standard_normal"):
            # complex C (H, P) per direction: lecun over (H, P, 2) -> fan-in P*H; per row -> fan-in P
            fan_in = P * H if cfg.C_init == "lecun_normal" else P
            parts = _lecun_normal((n_c, H, P, 2), fan_in=fan_in, generator=generator).double()  # (n_c, H, P, 2)
            C0 = torch.view_as_complex(parts)  # (n_c, H, P)
            C = torch.view_as_real((C0 @ Vt).to(torch.complex64))  # (n_c, H, Pk, 2): C~ = C V
        else:
            raise ConfigError(f"S5: unknown C_init {cfg.C_init!r}")
        self.C = tag(nn.Parameter(C), "C")
        self.D = tag(nn.Parameter(torch.randn(H, generator=generator)), "D")  # (H,)
        u = torch.rand(Pk, generator=generator)  # one log Delta per state, whatever dt_global says
        self.log_step = tag(nn.Parameter(u * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min)), "dt")

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(log Lambda_bar (Pk,), B_bar (Pk, H))."""
        re = torch.clamp(self.Lambda_re, max=-1e-4) if self.cfg.clip_eigs else self.Lambda_re
        lam = re + 1j * self.Lambda_im  # (Pk,)
        step = torch.exp(self.log_step)  # (Pk,)
        B = torch.view_as_complex(self.B)  # (Pk, H)
        if self.cfg.discretization == "zoh":
            log_a = lam * step
            return log_a, (torch.expm1(log_a) / lam).unsqueeze(-1) * B
        if self.cfg.discretization == "bilinear":
            denom = 1.0 - step * lam / 2
            return torch.log((1.0 + step * lam / 2) / denom), (step / denom).unsqueeze(-1) * B
        raise ConfigError(f"S5: unknown discretization {self.cfg.discretization!r}")

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        log_a, B_bar = self.discrete()
        bu = torch.einsum("ph,blh->blp", B_bar, u.to(B_bar.dtype))  # (B, L, Pk)
        C = torch.view_as_complex(self.C)  # (n_c, H, Pk)
        y = torch.einsum("hp,blp->blh", C[0], linear_scan(log_a, bu)).real  # (B, L, H)
        if self.cfg.bidirectional:
            y = y + torch.einsum("hp,blp->blh", C[1], linear_scan(log_a, bu, reverse=True)).real
        return self.factor * y + self.D * u  # (B, L, H)


class S5Layer(nn.Module):
    """S5 SSM followed by the S5 activation block and dropout, (B, L, H) -> (B, L, H)."""

    def __init__(self, cfg: S5Config, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.ssm, self.config, H = S5SSM(cfg, generator), cfg, cfg.d_model
        if cfg.activation not in ("gelu", "half_glu1", "half_glu2", "full_glu"):
            raise ConfigError(f"S5: unknown activation {cfg.activation!r}")
        if cfg.activation == "full_glu":
            self.out1 = nn.Linear(H, H)
        if cfg.activation != "gelu":
            self.out2 = nn.Linear(H, H)
        # flax Dropout(broadcast_dims=[0]) on (L, H): mask (B, 1, H), shared over time
        self.drop = TiedDropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            x = x * mask.unsqueeze(-1).to(x.dtype)  # (B, L, H)
        y = self.ssm(x)  # (B, L, H)
        act = self.config.activation
        if act == "gelu":
            return self.drop(F.gelu(y, approximate="tanh"))
        g = self.drop(F.gelu(y, approximate="tanh"))  # (B, L, H): flax nn.gelu is the tanh form
        if act == "full_glu":
            y = self.out1(g) * torch.sigmoid(self.out2(g))
        elif act == "half_glu1":
            y = g * torch.sigmoid(self.out2(g))
        else:  # half_glu2: gate from GELU, value the raw SSM output
            y = y * torch.sigmoid(self.out2(g))
        return self.drop(y)
