"""CSPNet: the periodic-E(3)-equivariant denoiser of DiffCSP, also the backbone of CrysBFN.

Jiao et al., "Crystal Structure Prediction by Joint Equivariant Diffusion", NeurIPS 2023
(arXiv 2309.04475), Sec. 4.2, Eqs. 6-9; released code jiaor17/DiffCSP@7121d15
``diffcsp/pl_modules/cspnet.py`` (read, not copied). CrysBFN (Wu et al., "A Periodic Bayesian Flow
for Material Generation", ICLR 2025, arXiv 2502.02016) reuses the same network and feeds it, per
atom, the log-accuracy of the von Mises posterior of each fractional coordinate ("entropy
conditioning", ``extra_node_dim=3``).

One message-passing layer over the fully connected graph of each crystal (self-loops included, as
the paper's ``fc`` edges):
    m_ij = MLP_e(h_i, h_j, vec(L L^T), psi(f_j - f_i mod 1)),   h_i <- h_i + MLP_n(h_i, mean_j m_ij)
with psi the Fourier features sin/cos(2 pi k d), k = 0..K-1. Inputs are the lattice only through the
inner products L L^T (O(3)-invariant) and the coordinates only through differences mod 1
(periodic-translation invariant); sums over atoms make it permutation-equivariant. Heads: a lattice
update F L with F = Linear(mean_i h_i) reshaped 3x3 (O(3)-equivariant: L -> L Q^T gives F L Q^T), a
per-atom fractional-coordinate output (invariant) and optional atom-type logits (invariant).

Conventions: ``lattice`` (B, 3, 3) has the lattice vectors a, b, c as rows (Å, or normalised units
for CrysBFN); ``frac_coords`` (N, 3) are fractional; ``batch`` (N,) maps atoms to structures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from replibench.families.crystals.types import CrystalBatch, structure_index


@dataclass
class CSPNetConfig:
    hidden_dim: int = 512  # DiffCSP conf/model/decoder/cspnet.yaml hidden_dim
    num_layers: int = 6  # cspnet.yaml num_layers
    num_freqs: int = 128  # cspnet.yaml num_freqs (Fourier features of fractional differences)
    time_dim: int = 256  # DiffCSP conf/model/diffusion.yaml time_dim (CrysBFN bfn.yaml: 128)
    layer_norm: bool = True  # cspnet.yaml ln (pre-norm in every layer + final norm)
    num_type_classes: int = 100  # DiffCSP MAX_ATOMIC_NUM (class Z-1); CrysBFN: dataset vocabulary
    dense_type_input: bool = False  # True: Linear on a K-vector (generation), False: nn.Embedding
    predict_types: bool = False  # atom-type logits head (generation)
    extra_node_dim: int = 0  # per-atom inputs joined to the time embedding (CrysBFN: 3)


@dataclass
class CSPNetOutput:
    lattice: torch.Tensor  # (B, 3, 3) lattice output F @ L
    coords: torch.Tensor  # (N, 3) per-atom fractional-coordinate output
    type_logits: torch.Tensor | None  # (N, K) atom-type logits, or None


@dataclass
class SampleResult:
    """Crystals drawn by a sampler, with the number of network forward passes it took."""

    crystals: CrystalBatch
    network_evaluations: int  # forward calls of the backbone (each call covers the whole batch)


def wrap_fractional(x: torch.Tensor) -> torch.Tensor:
    """Map fractional coordinates into [0, 1) (``x % 1`` can round up to exactly 1.0 in float32)."""
    x = torch.remainder(x, 1.0)
    return torch.where(x >= 1.0, x - 1.0, x)


def sinusoidal_time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) time values -> (B, dim) transformer sinusoids (DiffCSP SinusoidalTimeEmbeddings)."""
    half = dim // 2
    scale = math.log(10000.0) / (half - 1)
    freqs = torch.exp(-scale * torch.arange(half, device=t.device, dtype=torch.float32))  # (half,)
    args = t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([args.sin(), args.cos()], dim=-1)  # (B, dim)


def fully_connected_edges(num_atoms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered pairs (i, j) inside each structure, self-pairs included, row-major per atom i.

    Returns ``src`` (E,) and ``dst`` (E,) with E = sum(n_b^2); vectorised, no Python loop.
    """
    batch = structure_index(num_atoms)  # (N,)
    first_atom = torch.cumsum(num_atoms, 0) - num_atoms  # (B,)
    degree = num_atoms[batch]  # (N,) each atom talks to every atom of its structure
    src = torch.repeat_interleave(torch.arange(batch.shape[0], device=num_atoms.device), degree)  # (E,)
    edge_start = torch.cumsum(degree, 0) - degree  # (N,)
    local = torch.arange(src.shape[0], device=num_atoms.device) - edge_start[src]  # (E,) 0..n_b-1
    dst = first_atom[batch[src]] + local  # (E,)
    return src, dst


def fourier_features(diff: torch.Tensor, num_freqs: int) -> torch.Tensor:
    """(E, 3) fractional differences -> (E, 6 * num_freqs) sin/cos(2 pi k d), k = 0..num_freqs-1."""
    freqs = 2 * math.pi * torch.arange(num_freqs, device=diff.device, dtype=diff.dtype)  # (F,)
    args = (diff[:, :, None] * freqs).reshape(diff.shape[0], -1)  # (E, 3F)
    return torch.cat([args.sin(), args.cos()], dim=-1)  # (E, 6F)


class CSPLayer(nn.Module):
    def __init__(self, hidden: int, edge_feature_dim: int, layer_norm: bool) -> None:
        super().__init__()
        self.edge_mlp = nn.Sequential(
            nn.Linear(2 * hidden + 9 + edge_feature_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()
        )
        self.node_mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.norm = nn.LayerNorm(hidden) if layer_norm else nn.Identity()

    def forward(
        self,
        h: torch.Tensor,  # (N, H)
        edge_geometry: torch.Tensor,  # (E, 9 + 6F) lattice inner products of the edge's crystal + Fourier features
        src: torch.Tensor,  # (E,)
        dst: torch.Tensor,  # (E,)
        inv_degree: torch.Tensor,  # (N, 1) 1 / atoms in the structure
    ) -> torch.Tensor:
        x = self.norm(h)  # (N, H)
        messages = self.edge_mlp(torch.cat([x[src], x[dst], edge_geometry], dim=-1))  # (E, H)
        agg = messages.new_zeros(x.shape[0], messages.shape[1]).index_add_(0, src, messages) * inv_degree  # (N, H)
        return h + self.node_mlp(torch.cat([x, agg], dim=-1))  # (N, H)


class CSPNet(nn.Module):
    """The denoiser phi(L, F, A, t) of DiffCSP Eq. 6-9; ``evaluations`` counts forward calls."""

    def __init__(self, config: CSPNetConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        if c.dense_type_input:
            self.type_embedding: nn.Module = nn.Linear(c.num_type_classes, c.hidden_dim)
        else:
            self.type_embedding = nn.Embedding(c.num_type_classes, c.hidden_dim)
        self.input_mix = nn.Linear(c.hidden_dim + c.time_dim + c.extra_node_dim, c.hidden_dim)
        edge_dim = 6 * c.num_freqs
        self.layers = nn.ModuleList(CSPLayer(c.hidden_dim, edge_dim, c.layer_norm) for _ in range(c.num_layers))
        self.final_norm = nn.LayerNorm(c.hidden_dim) if c.layer_norm else nn.Identity()
        self.coord_head = nn.Linear(c.hidden_dim, 3, bias=False)
        self.lattice_head = nn.Linear(c.hidden_dim, 9, bias=False)
        self.type_head = nn.Linear(c.hidden_dim, c.num_type_classes) if c.predict_types else None
        self.evaluations = 0

    def forward(
        self,
        time_embedding: torch.Tensor,  # (B, time_dim)
        types: torch.Tensor,  # (N,) class index, or (N, K) dense vector when dense_type_input
        frac_coords: torch.Tensor,  # (N, 3)
        lattice: torch.Tensor,  # (B, 3, 3) rows a, b, c
        num_atoms: torch.Tensor,  # (B,)
        batch: torch.Tensor,  # (N,)
        extra: torch.Tensor | None = None,  # (N, extra_node_dim)
    ) -> CSPNetOutput:
        self.evaluations += 1
        src, dst = fully_connected_edges(num_atoms)  # (E,), (E,)
        inv_degree = (1.0 / num_atoms.to(frac_coords.dtype))[batch][:, None]  # (N, 1)
        diff = torch.remainder(frac_coords[dst] - frac_coords[src], 1.0)  # (E, 3) periodic differences
        inner = (lattice @ lattice.transpose(-1, -2)).reshape(-1, 9)  # (B, 9) O(3)-invariant L L^T
        edge_geometry = torch.cat([inner[batch[src]], fourier_features(diff, self.config.num_freqs)], -1)  # (E, 9+6F)
        parts = [self.type_embedding(types), time_embedding[batch]]  # (N, H), (N, T)
        if self.config.extra_node_dim:
            parts.append(extra)  # (N, extra)
        h = self.input_mix(torch.cat(parts, dim=-1))  # (N, H)
        for layer in self.layers:
            h = layer(h, edge_geometry, src, dst, inv_degree)  # (N, H)
        h = self.final_norm(h)  # (N, H)
        pooled = h.new_zeros(lattice.shape[0], h.shape[1]).index_add_(0, batch, h)  # (B, H) sum over atoms
        pooled = pooled / num_atoms[:, None].to(h.dtype)  # (B, H) mean over atoms
        lattice_out = self.lattice_head(pooled).reshape(-1, 3, 3) @ lattice  # (B, 3, 3) equivariant F L
        type_logits = self.type_head(h) if self.type_head is not None else None  # (N, K)
        return CSPNetOutput(lattice=lattice_out, coords=self.coord_head(h), type_logits=type_logits)
