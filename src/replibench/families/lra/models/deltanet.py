"""DeltaNet with β ∈ [0, 1] or [0, 2], i.e. state-transition eigenvalues in [0, 1] or [-1, 1].

Grazzi et al., "Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues", ICLR 2025
(arXiv 2411.12537); DeltaNet: Schlag et al. 2021, Yang et al. 2024. The delta rule updates a matrix
state ``S_t = S_{t-1} (I - β_t k_t k_tᵀ) + β_t v_t k_tᵀ`` with unit-norm keys, so the transition
has eigenvalue ``1 - β_t`` along ``k_t`` and 1 elsewhere. With ``β = σ(·)`` that is [0, 1]; the
paper's extension ``β = 2 σ(·)`` (``sigmoid_scale: 2.0`` in its configs) gives [-1, 1]: a
Householder reflection at β = 2. Layer as the paper's fla code: q, k, v projections, causal short
convolutions with SiLU, L2-normalised q and k, per-head β, per-head RMSNorm on the output;
blocks ``x + attn(norm(x))``, ``x + SwiGLU(norm(x))``; final norm; LM head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replibench.families.lra.models.linear_rnn import RMSNorm


@dataclass
class DeltaNetConfig:
    # paper §5.1 / automl/unlocking_state_tracking configs (parity_delta_net*.yaml; notes §3.4)
    vocab_size: int = 3
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    negative_eigenvalues: bool = True  # β = 2σ(·) (sigmoid_scale 2.0); False: β = σ(·)
    use_short_conv: bool = True
    conv_size: int = 4  # fla default
    mlp_ratio: int = 4  # fla hidden_ratio; SwiGLU width: see ``mlp_width``
    # fla DeltaNetConfig defaults (flash-linear-attention_mod/fla/models/delta_net/
    # configuration_delta_net.py, automl/unlocking_state_tracking@df8f840): norm_eps 1e-6 for
    # every RMSNorm (block, per-head output, final), initializer_range 0.02
    norm_eps: float = 1e-6
    initializer_range: float = 0.02
    intermediate_size: int | None = None  # fla's override of the SwiGLU width; None: the rule below

    @property
    def mlp_width(self) -> int:
        """SwiGLU hidden width: ⌊d_model · ratio · 2/3⌋ rounded up to a multiple of 256 (fla DeltaNetMLP).

        512 at d_model 128 (ratio 4): ⌊341.3⌋ = 341 → 512; 256 at d_model 16.
        """
        if self.intermediate_size is not None:
            return self.intermediate_size
        width = int(self.d_model * self.mlp_ratio * 2 / 3)
        return 256 * ((width + 256 - 1) // 256)

    @property
    def beta_scale(self) -> float:
        return 2.0 if self.negative_eigenvalues else 1.0


class ShortConv(nn.Module):
    """Causal depthwise convolution over time followed by SiLU (fla ShortConvolution)."""

    def __init__(self, dim: int, size: int):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, size, groups=dim, padding=size - 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L = x.shape[1]
        return F.silu(self.conv(x.transpose(1, 2))[..., :L].transpose(1, 2))  # (B, L, C)


def l2_norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x / √(Σ x² + eps) over the last axis: fla ``l2_norm_fn`` (``modules/l2norm.py``, eps 1e-6)."""
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps)


def delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """o_t = S_t q_t / √dk with S_t = S_{t-1}(I − β_t k_t k_tᵀ) + β_t v_t k_tᵀ, S_0 = 0; sequential.

    The 1/√dk on the query is fla's: every delta-rule kernel of the paper's fork (``chunk``, used in
    training at length ≥ 64, ``fused_recurrent``, ``naive``) defaults to ``scale = dk ** -0.5``.
    Shapes: q, k (B, H, L, dk); v (B, H, L, dv); beta (B, H, L) → o (B, H, L, dv).
    """
    B, H, L, dk = k.shape
    q = q * dk**-0.5
    S = q.new_zeros(B, H, v.shape[-1], dk)  # (B, H, dv, dk)
    out = []
    # unbind, not k[:, :, t]: an indexed slice's backward writes a full-size zero tensor per step
    for qt, kt, vt, bt in zip(q.unbind(2), k.unbind(2), v.unbind(2), beta.unsqueeze(-1).unbind(2)):
        # qt, kt (B, H, dk); vt (B, H, dv); bt (B, H, 1)
        error = torch.einsum("bhvk,bhk->bhv", S, kt) - vt  # S k − v, (B, H, dv)
        S = S - torch.einsum("bhv,bhk->bhvk", bt * error, kt)  # S − β (S k − v) kᵀ
        out.append(torch.einsum("bhvk,bhk->bhv", S, qt))  # (B, H, dv)
    return torch.stack(out, dim=2)  # (B, H, L, dv)


class DeltaNetAttention(nn.Module):
    def __init__(self, config: DeltaNetConfig):
        super().__init__()
        self.config = config
        D, H = config.d_model, config.n_heads
        if D % H:
            raise ValueError(f"d_model {D} must be divisible by n_heads {H}")
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(D, D, bias=False) for _ in range(3))
        self.b_proj = nn.Linear(D, H, bias=False)
        if config.use_short_conv:
            self.q_conv, self.k_conv, self.v_conv = (ShortConv(D, config.conv_size) for _ in range(3))
        self.o_norm = RMSNorm(D // H, config.norm_eps)
        self.o_proj = nn.Linear(D, D, bias=False)
        for module in self.modules():  # fla DeltaNet init
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight, gain=2 ** -2.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        H = self.config.n_heads
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)  # (B, L, D) each
        if self.config.use_short_conv:
            q, k, v = self.q_conv(q), self.k_conv(k), self.v_conv(v)
        else:
            v = F.silu(v)
        q, k, v = (t.view(B, L, H, D // H).transpose(1, 2) for t in (q, k, v))  # (B, H, L, d)
        q, k = l2_norm(q), l2_norm(k)
        beta = self.config.beta_scale * torch.sigmoid(self.b_proj(x)).transpose(1, 2)  # (B, H, L)
        o = delta_rule(q, k, v, beta).transpose(1, 2)  # (B, L, H, d)
        return self.o_proj(self.o_norm(o).reshape(B, L, D))  # (B, L, D)


class SwiGLU(nn.Module):
    def __init__(self, config: DeltaNetConfig):
        super().__init__()
        hidden = config.mlp_width
        self.gate = nn.Linear(config.d_model, hidden, bias=False)
        self.up = nn.Linear(config.d_model, hidden, bias=False)
        self.down = nn.Linear(hidden, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))  # (B, L, D)


class DeltaNet(nn.Module):
    """Language model; returns logits (B, L, vocab_size)."""

    #: the tasks this model implements: its family and the sweeps that may name it come from here
    TASKS = ("state-tracking",)

    Config = DeltaNetConfig  # the registry contract: ``cls(cls.Config(...))``

    def __init__(self, config: DeltaNetConfig):
        super().__init__()
        self.config = config
        D = config.d_model
        self.embedding = nn.Embedding(config.vocab_size, D)
        self.attn_norms = nn.ModuleList(RMSNorm(D, config.norm_eps) for _ in range(config.n_layers))
        self.attns = nn.ModuleList(DeltaNetAttention(config) for _ in range(config.n_layers))
        self.mlp_norms = nn.ModuleList(RMSNorm(D, config.norm_eps) for _ in range(config.n_layers))
        self.mlps = nn.ModuleList(SwiGLU(config) for _ in range(config.n_layers))
        self.final_norm = RMSNorm(D, config.norm_eps)
        self.lm_head = nn.Linear(D, config.vocab_size, bias=False)
        self._init_outside_attention()

    def _init_outside_attention(self) -> None:
        """fla ``DeltaNetPreTrainedModel._init_weights`` as run by Hugging Face ``post_init``.

        Embedding, SwiGLU and LM head weights ~ N(0, initializer_range²); then every
        ``down_proj`` is divided by √(2 · n_layers) (GPT-2 residual scaling; the same rule names
        ``o_proj`` but never reaches it, because the attention layer has already marked its own
        modules initialised). The attention layers keep their xavier(gain 2^-2.5) projections
        and PyTorch-default short convolutions; RMSNorm weights stay 1.
        """
        std = self.config.initializer_range
        nn.init.normal_(self.embedding.weight, mean=0.0, std=std)
        nn.init.normal_(self.lm_head.weight, mean=0.0, std=std)
        for mlp in self.mlps:
            for lin in (mlp.gate, mlp.up, mlp.down):
                nn.init.normal_(lin.weight, mean=0.0, std=std)
            with torch.no_grad():
                mlp.down.weight /= math.sqrt(2 * self.config.n_layers)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens)  # (B, L, D)
        for attn_norm, attn, mlp_norm, mlp in zip(self.attn_norms, self.attns, self.mlp_norms, self.mlps):
            x = x + attn(attn_norm(x))  # (B, L, D)
            x = x + mlp(mlp_norm(x))  # (B, L, D)
        return self.lm_head(self.final_norm(x))  # (B, L, V)
