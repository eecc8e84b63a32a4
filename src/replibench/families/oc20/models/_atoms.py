"""Geometry and force plumbing shared by the OC20 models (SchNet, DimeNet++, equivariant).

Every OC20 model returns ``(energy (B,), forces (N, 3))`` for an ``AtomsGraph``. Forces are either
``-d energy / d pos`` (autograd, conservative; the graph is kept when training so the force loss
can be back-propagated) or come from a direct-force head. Edge vectors are recomputed here from
``pos`` so that autograd sees every dependence on the positions.
"""

from __future__ import annotations

import contextlib

import torch

from replibench.families.oc20.types import AtomsGraph


def grad_for_forces(autograd_forces: bool):
    """Context enabling autograd for -dE/dpos even under an outer ``torch.no_grad()`` (evaluation)."""
    return torch.enable_grad() if autograd_forces else contextlib.nullcontext()


def positions_for_forces(graph: AtomsGraph, need_grad: bool) -> torch.Tensor:
    """(N, 3) positions; a fresh leaf that requires grad when forces come from autograd."""
    if need_grad and not graph.pos.requires_grad:
        return graph.pos.detach().requires_grad_(True)
    return graph.pos


def edge_vectors(graph: AtomsGraph, pos: torch.Tensor) -> torch.Tensor:
    """(E, 3) vectors from target i to the periodic image of source j (Å)."""
    source, target = graph.edge_index
    return pos[source] + graph.edge_shift - pos[target]  # (E, 3)


def sum_per_structure(values: torch.Tensor, graph: AtomsGraph) -> torch.Tensor:
    """(N, ...) per-atom values -> (B, ...) sums over each structure's atoms."""
    out = values.new_zeros((graph.num_structures, *values.shape[1:]))  # (B, ...)
    return out.index_add(0, graph.batch, values)


def sum_per_target(values: torch.Tensor, graph: AtomsGraph) -> torch.Tensor:
    """(E, ...) per-edge values -> (N, ...) sums over the edges arriving at each atom."""
    out = values.new_zeros((graph.pos.shape[0], *values.shape[1:]))  # (N, ...)
    return out.index_add(0, graph.edge_index[1], values)


def conservative_forces(
    energy: torch.Tensor, pos: torch.Tensor, training: bool, grad_enabled_outside: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(energy (B,), forces (N, 3) = -d(sum of energies)/d pos).

    The graph through the forces is kept when training (the force loss back-propagates through
    it); when the caller disabled autograd (evaluation) both outputs come back detached.
    """
    (grad,) = torch.autograd.grad(energy.sum(), pos, create_graph=training and grad_enabled_outside)
    if not grad_enabled_outside:
        return energy.detach(), -grad.detach()
    return energy, -grad  # (B,), (N, 3)


def direct_edge_forces(coefficient: torch.Tensor, vectors: torch.Tensor, graph: AtomsGraph) -> torch.Tensor:
    """(N, 3) forces as sum over incoming edges of a learnt invariant (E,) times the unit vector.

    Rotating the structure rotates the unit vectors and leaves the invariant coefficient alone,
    so the head is rotation-equivariant by construction (the direct heads of GemNet/PaiNN work so).
    """
    unit = vectors / vectors.norm(dim=-1, keepdim=True)  # (E, 3)
    return sum_per_target(coefficient.unsqueeze(-1) * unit, graph)  # (N, 3)
