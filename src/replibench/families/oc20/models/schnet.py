"""SchNet on OC20's periodic graphs, as fairchem's S2EF baseline runs it.

Schütt, Kindermans, Sauceda, Chmiela, Tkatchenko, Müller, "SchNet: A continuous-filter
convolutional neural network for modeling quantum interactions", NeurIPS 2017, arXiv:1706.08566.
OC20 baseline: Chanussot et al., ACS Catal. 2021 (arXiv:2010.09990), trained with fairchem's
``SchNetWrap`` (``src/fairchem/core/models/schnet.py``), which runs torch_geometric's SchNet blocks
on a periodic radius graph: atom embedding -> ``num_interactions`` residual continuous-filter
interaction blocks (Gaussian-expanded distances, cosine cutoff) -> per-atom MLP -> sum per
structure. We use the same torch_geometric blocks (``InteractionBlock``, ``GaussianSmearing``,
``ShiftedSoftplus``) but feed our precomputed periodic edges instead of PyG's non-periodic
``radius_graph``. Forces are ``-dE/dpos`` as in fairchem; ``direct_forces`` swaps in a per-edge
force head (our addition, not part of the SchNet baseline); ``regress_forces=False`` (IS2RE)
returns no forces.

Registry name ``schnet``; built as ``SchNet(SchNet.Config(**hyper-parameters, cutoff=...,
regress_forces=...))`` by the OC20 tasks (the graph's cutoff and the task's targets are facts of
the data, passed by the task).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch_geometric.nn.models.schnet import GaussianSmearing, InteractionBlock, ShiftedSoftplus

from replibench.families.oc20.models._atoms import (
    conservative_forces,
    direct_edge_forces,
    edge_vectors,
    grad_for_forces,
    positions_for_forces,
    sum_per_structure,
)
from replibench.families.oc20.types import AtomsGraph


@dataclass
class SchNetConfig:
    # Defaults: fairchem configs/oc20/s2ef/2M/schnet/schnet.yml (S2EF-2M baseline, 9.1 M params).
    hidden_channels: int = 1024
    num_filters: int = 256
    num_interactions: int = 5
    num_gaussians: int = 200
    cutoff: float = 6.0  # Å; the graph itself (<= 50 neighbours) is built by the data pipeline
    readout: str = "add"  # SchNetWrap default: energy = sum of per-atom contributions
    max_atomic_number: int = 100  # PyG SchNet's embedding table size
    direct_forces: bool = False  # fairchem's SchNet regresses forces as -dE/dpos
    regress_forces: bool = True  # S2EF True; IS2RE configs set False (energy only)


class SchNet(nn.Module):
    #: the tasks this model implements: its family and the sweeps that may name it come from here
    TASKS = ("s2ef", "is2re")

    Config = SchNetConfig

    def __init__(self, config: SchNetConfig) -> None:
        super().__init__()
        if config.readout not in ("add", "mean"):
            raise ValueError(f"SchNetConfig.readout must be 'add' or 'mean', found {config.readout!r}")
        self.config = config
        h = config.hidden_channels
        self.embedding = nn.Embedding(config.max_atomic_number, h, padding_idx=0)
        self.distance_expansion = GaussianSmearing(0.0, config.cutoff, config.num_gaussians)
        self.interactions = nn.ModuleList(
            InteractionBlock(h, config.num_gaussians, config.num_filters, config.cutoff)
            for _ in range(config.num_interactions)
        )
        self.lin1 = nn.Linear(h, h // 2)
        self.act = ShiftedSoftplus()
        self.lin2 = nn.Linear(h // 2, 1)
        if config.direct_forces and config.regress_forces:
            self.force_head = nn.Sequential(
                nn.Linear(2 * h + config.num_gaussians, h // 2), ShiftedSoftplus(), nn.Linear(h // 2, 1)
            )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyG SchNet's initialisation (Xavier-uniform weights, zero biases in the readout)
        self.embedding.reset_parameters()
        for block in self.interactions:
            block.reset_parameters()
        for lin in (self.lin1, self.lin2):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, graph: AtomsGraph) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(energy (B,), forces (N, 3) or None when ``regress_forces`` is off)."""
        autograd_forces = self.config.regress_forces and not self.config.direct_forces
        grad_enabled_outside = torch.is_grad_enabled()
        with grad_for_forces(autograd_forces):
            pos = positions_for_forces(graph, autograd_forces)  # (N, 3)
            vectors = edge_vectors(graph, pos)  # (E, 3)
            distance = vectors.norm(dim=-1)  # (E,)
            rbf = self.distance_expansion(distance)  # (E, G)
            h = self.embedding(graph.atomic_numbers)  # (N, H)
            for block in self.interactions:
                h = h + block(h, graph.edge_index, distance, rbf)  # (N, H), residual as in fairchem
            atom_energy = self.lin2(self.act(self.lin1(h))).squeeze(-1)  # (N,)
            energy = sum_per_structure(atom_energy, graph)  # (B,)
            if self.config.readout == "mean":
                energy = energy / graph.natoms.to(energy.dtype)  # (B,)
            if autograd_forces:
                return conservative_forces(energy, pos, self.training, grad_enabled_outside)
        if not self.config.regress_forces:
            return energy, None
        source, target = graph.edge_index
        envelope = 0.5 * (torch.cos(distance * math.pi / self.config.cutoff) + 1.0)  # (E,)
        features = torch.cat([h[target], h[source], rbf], dim=-1)  # (E, 2H + G)
        coefficient = self.force_head(features).squeeze(-1) * envelope  # (E,)
        return energy, direct_edge_forces(coefficient, vectors, graph)  # (B,), (N, 3)

