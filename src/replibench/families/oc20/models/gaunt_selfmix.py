"""Gaunt-Selfmix: the equivariant feature-interaction block the Gaunt paper adds to EquiformerV2.

Luo, Chen, Krishnapriyan, "Enabling Efficient Equivariant Operations in the Fourier Basis via
Gaunt Tensor Products", ICLR 2024 (arXiv:2401.10216), OC20 S2EF-2M experiment (its Table 1,
rows "EquiformerV2 + Gaunt-Selfmix", L = 4 and 6). The authors never released this code (their
repository's README lists the force-field code as a to-do; research notes ``oc20.md`` §5.1), so
this block is built from the paper's description: a node's features interact with themselves
through the Gaunt tensor product, whose fixed Gaunt coefficients are made learnable by
re-weighting every degree of each input and mixing channels per degree on the output.

What the paper leaves open, and what we chose (each is a parameter-free structural choice or an
initialisation; a reader who knows the authors' choice changes it here):

* **channels**: the product is channel-wise (channel ``c`` of the output is the Gaunt product of
  channel ``c`` of the two re-weighted inputs), as in the paper's feature-interaction
  efficiency setting (``test_equi_feat.ipynb``: e3nn ``"uuu"`` instructions, 128 channels).
* **re-weighting**: one learnable weight per (degree l, channel) for each input, initialised to 1
  (the plain Gaunt product at initialisation).
* **output**: truncated to the input's degrees 0..lmax (the block is residual), then an
  equivariant linear map per degree (a (C, C) matrix per l; bias on l = 0 only), initialised like
  EquiformerV2's ``SO3_LinearV2`` (uniform in +-1/sqrt(C), zero bias).
* **placement** (in :mod:`replibench.families.oc20.models.equiformer_v2`): one block per
  transformer block, after its feed-forward residual, with its own layer norm of the block's kind:
  ``x <- x + GauntSelfmix(norm(x))``.

Layout: features are ``(N, (lmax+1)^2, C)`` with coefficients in e3nn's real-SH order (index
``l*l + l + m``), which is also fairchem's ``SO3_Embedding`` order for a single resolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from replibench.families.oc20.models.gaunt import GauntTensorProduct, num_coefficients


class GauntSelfmix(nn.Module):
    """``x -> W_l (GTP(a_l * x, b_l * x))_l`` per degree l; input and output ``(N, (L+1)^2, C)``."""

    def __init__(self, lmax: int, channels: int) -> None:
        super().__init__()
        if lmax < 0 or channels < 1:
            raise ValueError(f"GauntSelfmix needs lmax >= 0 and channels >= 1, got lmax={lmax}, channels={channels}")
        self.lmax = lmax
        self.channels = channels
        self.product = GauntTensorProduct(lmax, lmax, lmax)
        self.weight_in1 = nn.Parameter(torch.ones(lmax + 1, channels))  # (L+1, C)
        self.weight_in2 = nn.Parameter(torch.ones(lmax + 1, channels))  # (L+1, C)
        bound = 1.0 / math.sqrt(channels)
        self.weight_out = nn.Parameter(torch.empty(lmax + 1, channels, channels).uniform_(-bound, bound))  # (L+1, C, C)
        self.bias_out = nn.Parameter(torch.zeros(channels))  # (C,), degree 0 only: other degrees must stay equivariant
        degree_of_coefficient = torch.cat([torch.full((2 * l + 1,), l, dtype=torch.long) for l in range(lmax + 1)])
        self.register_buffer("degree_of_coefficient", degree_of_coefficient, persistent=False)  # ((L+1)^2,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, (lmax+1)^2, C) node features -> (N, (lmax+1)^2, C), same layout."""
        if x.shape[-2:] != (num_coefficients(self.lmax), self.channels):
            raise ValueError(f"GauntSelfmix(lmax={self.lmax}, channels={self.channels}) expects features of shape "
                             f"(N, {num_coefficients(self.lmax)}, {self.channels}), got {tuple(x.shape)}")
        degree = self.degree_of_coefficient
        first = (x * self.weight_in1[degree]).transpose(1, 2)  # (N, C, K)
        second = (x * self.weight_in2[degree]).transpose(1, 2)  # (N, C, K)
        mixed = self.product(first, second).transpose(1, 2)  # (N, K, C)
        out = torch.einsum("nkc,kcd->nkd", mixed, self.weight_out[degree])  # (N, K, C)
        return torch.cat([out[:, :1] + self.bias_out, out[:, 1:]], dim=1)
