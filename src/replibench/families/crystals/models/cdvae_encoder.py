"""CDVAE's periodic DimeNet++ encoder (``DimeNetPlusPlusWrap``), as the released code runs it.

Xie et al., "Crystal Diffusion Variational Autoencoder for Periodic Material Generation", ICLR 2022
(arXiv 2110.06197); released code txie-93/cdvae@f857f59 ``cdvae/pl_modules/gnn.py`` (read, not
copied). DimeNet++: Gasteiger et al., arXiv 2011.14115. CDVAE uses it twice: as the VAE's encoder
(``num_targets`` = latent size) and, trained on its own, as the property model that scores
generated crystals (``CrystGNN_Supervise``, see ``cdvae_property.py``).

What the network does, in CDVAE's conventions (``cdvae_graph.py``): messages live on directed
edges ``(edge_index[0], edge_index[1]) = (j, i)`` from the image ``to_jimages`` of atom j to the
centre atom i; the edge vector points from i to that image. The graph is CDVAE's precomputed
CrystalNN graph (``otf_graph: false`` in every ``conf/data/*.yaml``) or, with ``otf_graph``, the
periodic radius graph (cutoff 7 Å, at most 20 neighbours).

Matched upstream behaviours (``gnn.py``):

* Triplets (``DimeNetPlusPlus.triplets``, l. 270-291): edge k->j is paired with edge j->i for
  every edge arriving at j, except when k and i are the same ATOM (``idx_i != idx_k``), whatever
  the periodic images -- so, unlike fairchem's OC20 rule, the triplet going from i to j and back
  to a *different* image of i is dropped too. Kept as the authors have it.
* Angle (l. 369-378): between the vector i->j (``pos_j - pos_i + offset_ji``) and the vector
  j->k (``pos_k - pos_j + offset_kj``), ``atan2(|a x b|, a . b)``, from detached positions.
* Bases and blocks: PyG's ``BesselBasisLayer``, ``EmbeddingBlock``, ``InteractionPPBlock``
  (CDVAE's own copy is the same function), the 2D spherical basis and CDVAE's ``OutputPPBlock``
  (``lin_up`` with a bias) from ``replibench.nn.dimenet_pp_blocks``; swish = SiLU.
* Readout (l. 397-413): per-atom outputs summed over the ``num_blocks + 1`` output blocks, then
  ``scatter(..., reduce=readout)`` per crystal: ``mean`` (all released configs) or ``sum``.

Difference stated plainly: the 2D spherical basis is evaluated in float64 by recurrences (shared
with OC20's DimeNet++), where upstream evaluates PyG's sympy closed forms in the input dtype; in
float64 they agree to ~1e-7 (golden test ``tests/golden/test_cdvae_encoder_golden.py``).

Parameter names are upstream's (``rbf.freq``, ``emb.*``, ``output_blocks.<k>.*``,
``interaction_blocks.<k>.*``), so an upstream state dict loads as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.models.dimenet import BesselBasisLayer, EmbeddingBlock, InteractionPPBlock
from torch_geometric.utils import scatter

from replibench.families.crystals.models.cdvae_graph import (
    frac_to_cart,
    lattice_params_to_matrix,
    pbc_edge_vectors,
    radius_graph_pbc,
)
from replibench.nn.dimenet_pp_blocks import OutputBlock, SphericalBasis

READOUTS = ("mean", "sum")


@dataclass
class CdvaeEncoderConfig:
    """Sizes of CDVAE's DimeNet++ encoder.

    Defaults: txie-93/cdvae ``conf/model/encoder/dimenet.yaml`` (the released property models'
    ``hparams.yaml`` repeat them); ``num_targets``, ``otf_graph`` and ``readout`` come from
    ``conf/data/*.yaml`` (``num_targets: 1`` for the property models; the VAE sets it to its
    ``latent_dim`` 256 in ``conf/model/vae.yaml``; ``otf_graph: false``; ``readout: mean``).
    """

    num_targets: int = 1
    hidden_channels: int = 128
    num_blocks: int = 4
    int_emb_size: int = 64
    basis_emb_size: int = 8
    out_emb_channels: int = 256
    num_spherical: int = 7
    num_radial: int = 6
    otf_graph: bool = False  # True: build the radius graph (cutoff, max_num_neighbors) in forward
    cutoff: float = 7.0  # Å, for the radial bases and the on-the-fly graph (yaml; gnn.py default 10)
    max_num_neighbors: int = 20
    envelope_exponent: int = 5
    num_before_skip: int = 1
    num_after_skip: int = 2
    num_output_layers: int = 3
    readout: str = "mean"

    def __post_init__(self) -> None:
        if self.readout not in READOUTS:
            # upstream also lists 'cat', whose branch stops in pdb.set_trace(): not a usable option
            raise ValueError(f"CdvaeEncoderConfig.readout must be one of {READOUTS}, got {self.readout!r}")


def cdvae_triplets(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """CDVAE's DimeNet++ triplets k->j->i as edge-index pairs ``(idx_kj, idx_ji)``, each (T,) long.

    For every edge e = (j -> i) (``edge_index[:, e] = (j, i)``), every edge arriving at j is paired
    with e unless its source atom k equals i (atom index only, images ignored: upstream
    ``gnn.py`` l. 286). Order: by edge ji, then the arriving edges by target-sorted position.
    """
    source, target = edge_index  # (E,), (E,): j, i
    num_edges = source.shape[0]
    device = source.device
    by_target = torch.argsort(target, stable=True)  # (E,) edges grouped by arrival atom
    in_degree = torch.bincount(target, minlength=num_nodes)  # (N,)
    first_slot = torch.cumsum(in_degree, 0) - in_degree  # (N,)
    count = in_degree[source]  # (E,) edges k->j arriving at the source j of each edge j->i
    idx_ji = torch.repeat_interleave(torch.arange(num_edges, device=device), count)  # (T0,)
    group_start = torch.repeat_interleave(torch.cumsum(count, 0) - count, count)  # (T0,)
    rank = torch.arange(idx_ji.shape[0], device=device) - group_start  # (T0,)
    idx_kj = by_target[first_slot[source[idx_ji]] + rank]  # (T0,)
    keep = source[idx_kj] != target[idx_ji]  # k != i
    return idx_kj[keep], idx_ji[keep]


class CdvaeDimeNetPP(nn.Module):
    """CDVAE's ``DimeNetPlusPlusWrap``: a batch of crystals -> (B, num_targets)."""

    Config = CdvaeEncoderConfig

    def __init__(self, config: CdvaeEncoderConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        act = F.silu  # torch_geometric's swish
        self.rbf = BesselBasisLayer(c.num_radial, c.cutoff, c.envelope_exponent)
        self.sbf = SphericalBasis(c.num_spherical, c.num_radial, c.cutoff, c.envelope_exponent)
        self.emb = EmbeddingBlock(c.num_radial, c.hidden_channels, act)
        self.output_blocks = nn.ModuleList(
            OutputBlock(c.num_radial, c.hidden_channels, c.out_emb_channels, c.num_targets, c.num_output_layers, act)
            for _ in range(c.num_blocks + 1)
        )
        self.interaction_blocks = nn.ModuleList(
            InteractionPPBlock(
                c.hidden_channels, c.int_emb_size, c.basis_emb_size, c.num_spherical, c.num_radial,
                c.num_before_skip, c.num_after_skip, act,
            )
            for _ in range(c.num_blocks)
        )

    def forward(
        self,
        atom_types: Tensor,
        frac_coords: Tensor,
        lengths: Tensor,
        angles: Tensor,
        num_atoms: Tensor,
        edge_index: Tensor | None = None,
        to_jimages: Tensor | None = None,
        num_bonds: Tensor | None = None,
    ) -> Tensor:
        """Per-crystal outputs (B, num_targets).

        Arguments: ``atom_types`` (N,) atomic numbers 1..94; ``frac_coords`` (N, 3); ``lengths``
        (B, 3) Å; ``angles`` (B, 3) degrees; ``num_atoms`` (B,); the graph ``edge_index`` (2, E)
        long rows (neighbour j, centre i), ``to_jimages`` (E, 3) long, ``num_bonds`` (B,) long,
        edges grouped by crystal -- required unless ``otf_graph`` (then built here and ignored).
        """
        num_atoms = num_atoms.long()
        num_nodes = atom_types.shape[0]
        lattice = lattice_params_to_matrix(lengths, angles)  # (B, 3, 3) Å
        pos = frac_to_cart(frac_coords, lengths, angles, num_atoms)  # (N, 3) Å
        if self.config.otf_graph:
            edge_index, to_jimages, num_bonds = radius_graph_pbc(
                pos, lattice, num_atoms, self.config.cutoff, self.config.max_num_neighbors
            )
        elif edge_index is None or to_jimages is None or num_bonds is None:
            raise ValueError("CdvaeDimeNetPP: edge_index, to_jimages and num_bonds are required when otf_graph is off")
        distance, vectors = pbc_edge_vectors(pos, edge_index, lattice, to_jimages, num_bonds.long())  # (E,), (E, 3)
        source, target = edge_index  # j, i
        idx_kj, idx_ji = cdvae_triplets(edge_index, num_nodes)  # (T,), (T,)
        vec_ij = vectors.detach()[idx_ji]  # (T, 3) i -> j
        vec_jk = vectors.detach()[idx_kj]  # (T, 3) j -> k
        angle = torch.atan2(torch.cross(vec_ij, vec_jk, dim=-1).norm(dim=-1), (vec_ij * vec_jk).sum(dim=-1))  # (T,)
        rbf = self.rbf(distance)  # (E, R)
        sbf = self.sbf(distance, angle, idx_kj)  # (T, S * R)
        x = self.emb(atom_types.long(), rbf, target, source)  # (E, H)
        per_atom = self.output_blocks[0](x, rbf, target, num_nodes=num_nodes)  # (N, num_targets)
        for interaction, output in zip(self.interaction_blocks, self.output_blocks[1:]):
            x = interaction(x, rbf, sbf, idx_kj, idx_ji)
            per_atom = per_atom + output(x, rbf, target, num_nodes=num_nodes)
        crystal_of_atom = torch.repeat_interleave(torch.arange(num_atoms.shape[0], device=num_atoms.device), num_atoms)
        return scatter(per_atom, crystal_of_atom, dim=0, dim_size=num_atoms.shape[0], reduce=self.config.readout)
