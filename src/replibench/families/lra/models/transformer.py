"""The Long Range Arena Transformer baseline encoder.

Tay et al., "Long Range Arena: A Benchmark for Efficient Transformers", ICLR 2021. Architecture
as in google-research/long-range-arena ``lra_benchmarks/models/transformer/transformer.py`` and
``models/layers/common_layers.py`` (facts, not code):

* Pre-LayerNorm blocks: x + Dropout(SelfAttention(LN(x))), then + MLP(LN(.)) with the MLP
  Dense(mlp_dim) -> GELU -> Dropout -> Dense(emb_dim) -> Dropout. Attention projects to
  ``qkv_dim`` split over ``num_heads`` without biases; attention-weight dropout.
* Optional [CLS] token (zeros) prepended when pooling is "CLS"; sinusoidal position embeddings
  (sin/cos interleaved over the features, ``sinusoidal_init``) or learned (normal std 0.02,
  ``learn_pos_emb``); embedding dropout; final LayerNorm.
* ``tied_weights``: one block applied ``num_layers`` times (LRA ListOps config).
* Pooling: CLS (the prepended token), FIRST (position 0 without a [CLS] token: LRA's dual encoder
  builds its ``TransformerEncoder`` with ``classifier=False``, so its "CLS" pooling in
  ``classifier_head_dual`` takes the first document token), MEAN / MAX / SUM over all positions
  (LRA does not mask these).
* Padding mask: keys that are padding are excluded from attention, and a padding query attends
  uniformly to all positions (what LRA's -1e10 query-and-key bias does in float32). LRA derives
  the mask from token id > 0, which also masks black pixels in the image tasks (and the [CLS]
  token takes the first token's mask); the caller passes the mask it wants.
The classifier head (Dense(mlp_dim) -> ReLU -> Dense(classes)) lives in sequence_classifier.py.

Numerics of the flax (``flax.deprecated.nn``) code, google-research/long-range-arena@cd31e5c:
LayerNorm epsilon 1e-6 (flax default; PyTorch's is 1e-5); q, k, v and output projections each
xavier-uniform over their own (in, out) matrix (flax DenseGeneral flattens the kernel to 2-D
before ``kernel_init``); MLP Dense kernels xavier-uniform with biases N(0, 1e-6²)
(``common_layers.MlpBlock``); ``nn.gelu`` is ``jax.nn.gelu``, whose default is the tanh
approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replibench.errors import ConfigError


LN_EPS = 1e-6  # flax nn.LayerNorm default epsilon (LRA never overrides it)


@dataclass
class TransformerConfig:
    """Defaults: LRA ListOps base config (``listops/configs/base_listops_config.py``)."""

    emb_dim: int = 512
    num_heads: int = 8
    num_layers: int = 6
    qkv_dim: int = 512
    mlp_dim: int = 2048
    dropout: float = 0.1
    attention_dropout: float = 0.1
    max_len: int = 2000
    learn_pos_emb: bool = False
    pool: str = "CLS"  # "CLS" | "FIRST" | "MEAN" | "MAX" | "SUM"
    tied_weights: bool = False


def sinusoidal_positions(max_len: int, dim: int) -> torch.Tensor:
    """(max_len, dim) float32: sin on the even features, cos on the odd ones, interleaved.

    LRA ``common_layers.sinusoidal_init``: ``pe[:, 0::2] = sin(p·w)``, ``pe[:, 1::2] = cos(p·w)``
    with ``w = exp(-(2i) ln(10000) / dim)``, computed in float64 (numpy) and stored as float32.
    """
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(-1)  # (L, 1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))  # (ceil(dim/2),)
    pe = torch.zeros(max_len, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
    return pe.float()


class SelfAttention(nn.Module):
    """Multi-head attention emb_dim -> qkv_dim -> emb_dim, no biases (flax SelfAttention bias=False)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        if cfg.qkv_dim % cfg.num_heads:
            raise ConfigError(f"transformer: qkv_dim={cfg.qkv_dim} not divisible by num_heads={cfg.num_heads}")
        self.heads = cfg.num_heads
        self.qkv = nn.Linear(cfg.emb_dim, 3 * cfg.qkv_dim, bias=False)  # rows: q, then k, then v
        self.out = nn.Linear(cfg.qkv_dim, cfg.emb_dim, bias=False)
        with torch.no_grad():  # LRA: three separate Dense(emb -> qkv) kernels, each xavier-uniform
            for block in self.qkv.weight.view(3, cfg.qkv_dim, cfg.emb_dim):
                nn.init.xavier_uniform_(block)
        nn.init.xavier_uniform_(self.out.weight)
        self.p = cfg.attention_dropout

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        Bsz, L, _ = x.shape
        q, k, v = self.qkv(x).view(Bsz, L, 3, self.heads, -1).permute(2, 0, 3, 1, 4)  # 3 x (B, h, L, d)
        bias = None
        if key_mask is not None:  # (B, L) True = attend
            bias = torch.zeros(Bsz, 1, 1, L, dtype=x.dtype, device=x.device)
            bias = bias.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.p if self.training else 0.0)
        if key_mask is not None:
            # LRA masks padding *queries* too (flax make_padding_mask: query x key): every bias of a
            # padding query's row is -1e10, which in float32 swamps its logits (spacing 1024 at 1e10),
            # so its softmax is uniform over all L positions: the row becomes the mean of every value.
            # (LRA's attention dropout also drops these uniform weights; here they are not dropped.)
            y = torch.where(key_mask[:, None, :, None], y, v.mean(dim=2, keepdim=True))  # (B, h, L, d)
        return self.out(y.transpose(1, 2).reshape(Bsz, L, -1))  # (B, L, E)


class TransformerBlock(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.emb_dim, eps=LN_EPS), nn.LayerNorm(cfg.emb_dim, eps=LN_EPS)
        self.attn = SelfAttention(cfg)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.emb_dim, cfg.mlp_dim), nn.GELU(approximate="tanh"), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.mlp_dim, cfg.emb_dim), nn.Dropout(cfg.dropout),
        )
        for lin in (self.mlp[0], self.mlp[3]):  # LRA MlpBlock: xavier-uniform kernels, N(0, 1e-6²) biases
            nn.init.xavier_uniform_(lin.weight)
            nn.init.normal_(lin.bias, std=1e-6)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), key_mask))  # (B, L, E)
        return x + self.mlp(self.ln2(x))  # (B, L, E)


class LRATransformerEncoder(nn.Module):
    """Embedded inputs (B, L, E) and mask (B, L) -> pooled features (B, E)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        if cfg.pool not in ("CLS", "FIRST", "MEAN", "MAX", "SUM"):
            raise ConfigError(f"transformer: pool must be CLS, FIRST, MEAN, MAX or SUM, found {cfg.pool!r}")
        self.cfg = cfg
        n_pos = cfg.max_len + (1 if cfg.pool == "CLS" else 0)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.emb_dim)) if cfg.pool == "CLS" else None
        if cfg.learn_pos_emb:
            self.pos = nn.Parameter(torch.randn(n_pos, cfg.emb_dim) * 0.02)
        else:
            self.register_buffer("pos", sinusoidal_positions(n_pos, cfg.emb_dim), persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        n_blocks = 1 if cfg.tied_weights else cfg.num_layers
        self.blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(n_blocks))
        self.norm = nn.LayerNorm(cfg.emb_dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1+L, E)
            if mask is not None:
                mask = torch.cat([mask[:, :1], mask], dim=1)  # LRA: [CLS] takes the first token's mask
        if x.shape[1] > self.pos.shape[0]:
            raise ConfigError(f"transformer: length {x.shape[1]} exceeds max_len {self.cfg.max_len}")
        x = self.drop(x + self.pos[: x.shape[1]])  # (B, L', E)
        for i in range(self.cfg.num_layers):
            x = self.blocks[0 if self.cfg.tied_weights else i](x, mask)
        x = self.norm(x)  # (B, L', E)
        pool = self.cfg.pool
        if pool in ("CLS", "FIRST"):
            return x[:, 0]
        if pool == "MEAN":
            return x.mean(dim=1)
        if pool == "MAX":
            return x.amax(dim=1)
        return x.sum(dim=1)


def flax_dense_init_(linear: nn.Linear) -> None:
    """flax ``nn.Dense`` defaults: kernel lecun-normal (truncated to ±2σ, σ rescaled by 1/0.8796 so the
    variance is 1/fan_in, as ``jax.nn.initializers.lecun_normal``), bias zeros."""
    std = math.sqrt(1.0 / linear.in_features) / 0.87962566103423978
    nn.init.trunc_normal_(linear.weight, std=std, a=-2.0 * std, b=2.0 * std)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


class LRAClassifierHead(nn.Module):
    """LRA ``common_layers.classifier_head`` / ``classifier_head_dual`` on pooled features.

    Single: Dense(mlp_dim) -> ReLU -> Dense(classes) on (B, E). Dual (matching/Retrieval): the
    Transformer is built with ``interaction=None`` (no config sets it), so the two pooled documents
    are only concatenated, (B, 2E), then Dense(mlp_dim) -> ReLU -> Dense(mlp_dim // 2) -> ReLU ->
    Dense(classes).
    """

    def __init__(self, emb_dim: int, mlp_dim: int, n_classes: int, dual: bool) -> None:
        super().__init__()
        if dual:
            layers = [nn.Linear(2 * emb_dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, mlp_dim // 2), nn.ReLU(),
                      nn.Linear(mlp_dim // 2, n_classes)]
        else:
            layers = [nn.Linear(emb_dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, n_classes)]
        self.net = nn.Sequential(*layers)
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                flax_dense_init_(layer)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)  # (B, classes)
