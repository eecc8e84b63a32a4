"""DimeNet++ building blocks shared by the OC20 (fairchem) and crystal (CDVAE) DimeNet++ models.

Gasteiger (Klicpera), Giri, Margraf, Günnemann, "Fast and Uncertainty-Aware Directional Message
Passing for Non-Equilibrium Molecules", NeurIPS-W 2020, arXiv:2011.14115. Both fairchem's
``DimeNetPlusPlusWrap`` (``src/fairchem/core/models/dimenet_plus_plus.py``) and CDVAE's
(txie-93/cdvae ``cdvae/pl_modules/gnn.py``, l. 133-171, adapted from the OCP code) use the same
output block (``lin_up`` with a bias, unlike PyG's) and PyG's 2D spherical basis; they differ in
how triplets are built, which stays in each family's model file.

* :func:`spherical_bessel`, :class:`SphericalBasis`: PyG's ``SphericalBasisLayer`` functions,
  evaluated in float64 by recurrences instead of sympy closed forms (see the class docstring).
* :class:`OutputBlock`: fairchem's / CDVAE's ``OutputPPBlock``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch_geometric.nn.inits import glorot_orthogonal
from torch_geometric.nn.models.dimenet import Envelope
from torch_geometric.nn.models.dimenet_utils import Jn_zeros
from torch_geometric.utils import scatter


def spherical_bessel(order: int, x: torch.Tensor) -> torch.Tensor:
    """(..., order + 1) spherical Bessel functions j_0..j_order at x > 0 (upward recurrence)."""
    values = [torch.sin(x) / x, torch.sin(x) / x**2 - torch.cos(x) / x]
    for l in range(1, order):
        values.append((2 * l + 1) / x * values[l] - values[l - 1])  # j_{l+1}
    return torch.stack(values[: order + 1], dim=-1)


class SphericalBasis(nn.Module):
    """DimeNet's 2D basis a_ln(d/c) * Y_l0(angle) * envelope(d/c), l < S, n < R: (T, S * R).

    a_ln(x) = j_l(z_ln x) / sqrt(j_{l+1}(z_ln)^2 / 2), z_ln the n-th zero of j_l; Y_l0 the real
    spherical harmonic of order 0 (orthonormal), as in DimeNet and PyG's SphericalBasisLayer.
    """

    def __init__(self, num_spherical: int, num_radial: int, cutoff: float, envelope_exponent: int) -> None:
        super().__init__()
        self.num_spherical, self.num_radial, self.cutoff = num_spherical, num_radial, cutoff
        self.envelope = Envelope(envelope_exponent)
        zeros = torch.from_numpy(Jn_zeros(num_spherical, num_radial).astype(np.float64))  # (S, R)
        next_order = spherical_bessel(num_spherical, zeros)  # (S, R, S + 1)
        j_next = next_order.gather(-1, torch.arange(1, num_spherical + 1)[:, None, None].expand(-1, num_radial, 1))
        # derived constants (not learnt, so not in state_dict); used in float64 in forward
        self.register_buffer("zeros", zeros, persistent=False)  # (S, R)
        self.register_buffer("normalizer", (0.5 * j_next.squeeze(-1) ** 2).rsqrt(), persistent=False)  # (S, R)
        prefactor = [math.sqrt((2 * l + 1) / (4 * math.pi)) for l in range(num_spherical)]
        self.register_buffer("prefactor", torch.tensor(prefactor, dtype=torch.float64), persistent=False)  # (S,)

    def forward(self, distance: torch.Tensor, angle: torch.Tensor, idx_kj: torch.Tensor) -> torch.Tensor:
        # float64 inside: the closed forms of j_l cancel badly at small arguments in float32
        x = (distance.double() / self.cutoff).unsqueeze(-1).unsqueeze(-1)  # (E, 1, 1)
        bessel = spherical_bessel(self.num_spherical - 1, self.zeros.double() * x)  # (E, S, R, S): j_0..j_{S-1}
        order = torch.arange(self.num_spherical, device=x.device)
        radial = bessel[:, order, :, order].transpose(0, 1) * self.normalizer.double()  # (E, S, R): j_l(z_ln x)
        radial = self.envelope(x.squeeze(-1)).unsqueeze(-1) * radial  # (E, S, R)
        cosine = torch.cos(angle.double())  # (T,)
        legendre = [torch.ones_like(cosine), cosine]
        for l in range(1, self.num_spherical - 1):
            legendre.append(((2 * l + 1) * cosine * legendre[l] - l * legendre[l - 1]) / (l + 1))  # P_{l+1}
        angular = torch.stack(legendre[: self.num_spherical], dim=-1) * self.prefactor.double()  # (T, S)
        basis = radial[idx_kj] * angular.unsqueeze(-1)  # (T, S, R)
        return basis.flatten(1).to(distance.dtype)  # (T, S * R)


class OutputBlock(nn.Module):
    """DimeNet++ output block as fairchem's OC20 baseline has it (``OutputPPBlock`` in
    ``fairchem/core/models/dimenet_plus_plus.py``): edge messages (E, H), gated by a linear map
    of the radial basis, summed onto their target atom, up-projected to ``out_emb_channels``
    **with a bias** (PyG's block has none), ``num_layers`` SiLU layers, and a bias-free linear
    map to ``out_channels`` per atom, initialised to zero.

    Parameter names (``lin_rbf``, ``lin_up``, ``lins.<k>``, ``lin``) are fairchem's and PyG's, so
    their state dicts load as they are. Initialisation as fairchem's: glorot-orthogonal (scale
    2) weights, zero biases in ``lins``, zero ``lin``; the ``lin_up`` bias keeps PyTorch's default
    uniform(±1/sqrt(hidden)) because fairchem never resets it.
    """

    def __init__(self, num_radial: int, hidden_channels: int, out_emb_channels: int, out_channels: int,
                 num_layers: int, act) -> None:
        super().__init__()
        self.act = act
        self.lin_rbf = nn.Linear(num_radial, hidden_channels, bias=False)
        self.lin_up = nn.Linear(hidden_channels, out_emb_channels, bias=True)
        self.lins = nn.ModuleList(nn.Linear(out_emb_channels, out_emb_channels) for _ in range(num_layers))
        self.lin = nn.Linear(out_emb_channels, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_orthogonal(self.lin_rbf.weight, scale=2.0)
        glorot_orthogonal(self.lin_up.weight, scale=2.0)
        for layer in self.lins:
            glorot_orthogonal(layer.weight, scale=2.0)
            layer.bias.data.fill_(0)
        self.lin.weight.data.fill_(0)

    def forward(self, x: torch.Tensor, rbf: torch.Tensor, target: torch.Tensor, num_nodes: int) -> torch.Tensor:
        """x (E, H) edge messages, rbf (E, R), target (E,) atom index i of edge j->i → (N, out_channels)."""
        per_atom = scatter(self.lin_rbf(rbf) * x, target, dim=0, dim_size=num_nodes, reduce="sum")  # (N, H)
        h = self.lin_up(per_atom)  # (N, out_emb)
        for layer in self.lins:
            h = self.act(layer(h))
        return self.lin(h)  # (N, out_channels)
