"""GemNet-T as CDVAE's decoder: per-atom coordinate-score and atom-type outputs from a latent.

Xie et al., "Crystal Diffusion Variational Autoencoder for Periodic Material Generation", ICLR 2022
(arXiv 2110.06197), Sec. 4 / App. B: the decoder is GemNet-T (Gasteiger, Becker, Günnemann,
"GemNet: Universal Directional Graph Neural Networks for Molecules", NeurIPS 2021, arXiv
2106.08903) with the latent z concatenated into the atom embedding; its direct-force output is
read as the score of the (noisy) Cartesian coordinates and a linear head on the final atom
embeddings gives atom-type logits. Released code txie-93/cdvae@f857f59 (read, not copied):
``cdvae/pl_modules/decoder.py`` (``GemNetTDecoder``), ``cdvae/pl_modules/gemnet/gemnet.py``
(``GemNetT``), ``gemnet/layers/*.py``, ``gemnet/utils.py``; scale factors
``gemnet/gemnet-dT.json`` (copied into ``gemnet_t_scale_factors.json`` beside this file).

Pipeline of one forward pass (shapes: N atoms, B crystals, E directed edges, T triplets):

1. Cartesian positions from fractional coordinates; periodic radius graph (cutoff 7 Å, at most 20
   neighbours per atom, :func:`cdvae_graph.radius_graph_pbc`); edge lengths ``D`` (E,) and unit
   vectors ``V`` (E, 3) pointing from the edge's source atom to its target atom.
2. The graph is made symmetric (:func:`symmetrize_edges`): an edge survives if its source index is
   below its target index (or, between images of one atom, its image offset is lexicographically
   negative), and every survivor gets its reverse; ``id_swap`` maps each edge to its reverse.
3. Triplets b->a<-c: for each edge c->a, every other edge b->a into the same atom
   (:func:`triplets_of_edges`); angle cosines between their unit vectors.
4. Bases: Gaussian radial basis (128 Gaussians on [0, 1] in d / cutoff, PyG ``GaussianSmearing``)
   times a polynomial envelope (p = 5); angular basis Y_l^0(cos) for l < 7.
5. Atom embedding (Z-indexed) concatenated with z and mixed by a linear layer; edge embedding from
   both atom embeddings and the radial basis; 3 interaction blocks (triplet message passing with
   the efficient bilinear layer, edge residual layers, atom update, edge update from atoms); 4
   output blocks (before the first and after each interaction block) add per-edge scalars.
6. Outputs: ``pred_cart_coord_diff[i] = sum over edges e into i of F_e V_e`` (Å-directed, (N, 3))
   and ``pred_atom_type_logits = Linear(h)`` (N, 100).

Left out, because CDVAE's configuration never uses them: the energy branch of the output blocks
(upstream computes a per-crystal energy ``E_t`` that ``GemNetT.forward`` discards, gemnet.py
l. 578-583, so its weights ``out_blocks.*.{dense_rbf, scale_sum, layers/seq_energy, out_energy}``
have no effect on the outputs), the gradient-force variant (``direct_forces=False``), the other
radial/angular bases and envelopes (Bessel, Bernstein, exponential, Gaussian cosine basis), the
non-"efficient" triplet basis, precomputed graphs (``otf_graph=False``), the ``select_edges``
cutoff (commented out upstream) and the scale-factor fitting machinery (the factors are fixed
numbers loaded from the JSON file). Upstream builds two identical radial bases (one for edges, one
inside the circular basis); they hold no trainable weights, so one is used here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.models.schnet import GaussianSmearing

from replibench.families.crystals.models.cdvae_graph import (
    frac_to_cart,
    lattice_params_to_matrix,
    pbc_edge_vectors,
    radius_graph_pbc,
)

MAX_ATOMIC_NUM = 100  # cdvae/pl_modules/embeddings/__init__.py l. 12: atom types are Z = 1..100
SCALE_FACTOR_FILE = Path(__file__).with_name("gemnet_t_scale_factors.json")


@dataclass
class GemNetTDecoderConfig:
    """Sizes of CDVAE's GemNet-T decoder. Defaults are the released configuration."""

    hidden_dim: int = 128  # conf/model/decoder/gemnet.yaml hidden_dim (= emb_size_atom = emb_size_edge)
    latent_dim: int = 256  # conf/model/vae.yaml latent_dim
    radius: float = 7.0  # vae.yaml radius (Å): radius-graph cutoff, passed as GemNetT cutoff
    max_neighbors: int = 20  # vae.yaml max_neighbors
    num_spherical: int = 7  # gemnet.py GemNetT default (angular basis l = 0..6)
    num_radial: int = 128  # GemNetT default (Gaussians of the radial basis)
    num_blocks: int = 3  # GemNetT default (interaction blocks)
    emb_size_trip: int = 64  # GemNetT default (down-projected edge size in the triplet block)
    emb_size_rbf: int = 16  # GemNetT default
    emb_size_cbf: int = 16  # GemNetT default
    emb_size_bil_trip: int = 64  # GemNetT default (bilinear-layer output size)
    num_before_skip: int = 1  # GemNetT default
    num_after_skip: int = 2  # GemNetT default
    num_concat: int = 1  # GemNetT default
    num_atom: int = 3  # GemNetT default (residual layers in atom-update and output blocks)
    envelope_exponent: int = 5  # GemNetT default envelope {"name": "polynomial", "exponent": 5}
    num_atom_types: int = MAX_ATOMIC_NUM  # decoder.py fc_atom output size

    def __post_init__(self) -> None:
        if self.num_blocks < 1:
            raise ValueError(f"GemNetTDecoderConfig.num_blocks must be >= 1, got {self.num_blocks}")
        if self.num_blocks > 3:
            raise ValueError("gemnet_t_scale_factors.json holds scale factors for 3 blocks only")


def load_scale_factors(path: Path = SCALE_FACTOR_FILE) -> dict[str, float]:
    """The fixed GemNet-dT scale factors (name -> value) of upstream ``gemnet-dT.json``."""
    with open(path, encoding="utf-8") as handle:
        content = json.load(handle)
    factors = content.get("scale_factors") if isinstance(content, dict) else None
    if not isinstance(factors, dict) or not all(isinstance(v, float) for v in factors.values()):
        raise ValueError(f"{path}: expected a 'scale_factors' object of name -> float")
    return factors


@torch.no_grad()
def he_orthogonal_(weight: Tensor) -> Tensor:
    """GemNet's weight initialisation (initializers.py ``he_orthogonal_init``), in place.

    A random (semi-)orthogonal matrix, standardised to zero mean and unit (unbiased) variance over
    the fan-in axes (axis 1 of a (out, in) matrix; axes 0, 1 of a 3-D (a, b, out) tensor, with 1e-6
    added to the variance), then scaled by 1 / sqrt(fan_in).
    """
    nn.init.orthogonal_(weight)
    fan_axes = [0, 1] if weight.dim() == 3 else 1
    fan_in = weight.shape[:-1].numel() if weight.dim() == 3 else weight.shape[1]
    variance, mean = torch.var_mean(weight, dim=fan_axes, unbiased=True, keepdim=True)
    weight.copy_((weight - mean) / (variance + 1e-6) ** 0.5 * (1 / fan_in) ** 0.5)
    return weight


class ScaledSiLU(nn.Module):
    """SiLU(x) / 0.6, GemNet's "swish" (layers/base_layers.py ``ScaledSiLU``): roughly
    variance-preserving for unit-variance input."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x) * (1 / 0.6)


class ResidualLayer(nn.Module):
    """x -> (x + act(W2 act(W1 x))) / sqrt(2), two bias-free layers (base_layers.py ``ResidualLayer``)."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(units, units, bias=False) for _ in range(2)])
        self.activation = ScaledSiLU()

    def forward(self, x: Tensor) -> Tensor:
        y = x
        for layer in self.layers:
            y = self.activation(layer(y))
        return (x + y) * (1 / math.sqrt(2))


class DenseResidualStack(nn.Module):
    """act(W x) followed by ``num_residual`` :class:`ResidualLayer` s (the ``get_mlp`` of
    atom_update_block.py)."""

    def __init__(self, in_features: int, units: int, num_residual: int) -> None:
        super().__init__()
        self.input_dense = nn.Linear(in_features, units, bias=False)
        self.residuals = nn.ModuleList([ResidualLayer(units) for _ in range(num_residual)])
        self.activation = ScaledSiLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.activation(self.input_dense(x))
        for layer in self.residuals:
            x = layer(x)
        return x


# ----------------------------------------------------------------------------------- bases
class RadialBasis(nn.Module):
    """Envelope(d / cutoff) x Gaussians(d / cutoff): (E,) Å -> (E, num_radial).

    Gaussians: PyG ``GaussianSmearing(0, 1, num_radial)`` -- the class upstream uses
    (radial_basis.py l. 190), exp(-(x - mu_k)^2 / (2 delta^2)) on an even grid mu_k of [0, 1] with
    spacing delta (grid held as a float32 buffer, as upstream). Envelope (``PolynomialEnvelope``):
    1 + a x^p + b x^(p+1) + c x^(p+2) for x < 1, else 0, with a = -(p+1)(p+2)/2, b = p(p+2),
    c = -p(p+1)/2, so it and its first two derivatives vanish at the cutoff.
    """

    def __init__(self, num_radial: int, cutoff: float, envelope_exponent: int) -> None:
        super().__init__()
        self.inv_cutoff = 1 / cutoff
        self.exponent = envelope_exponent
        p = envelope_exponent
        self.coef_a = -(p + 1) * (p + 2) / 2
        self.coef_b = p * (p + 2)
        self.coef_c = -p * (p + 1) / 2
        self.gaussians = GaussianSmearing(start=0.0, stop=1.0, num_gaussians=num_radial)

    def forward(self, distances: Tensor) -> Tensor:
        scaled = distances * self.inv_cutoff
        p = self.exponent
        envelope = (
            1
            + self.coef_a * scaled**p
            + self.coef_b * scaled ** (p + 1)
            + self.coef_c * scaled ** (p + 2)
        )
        envelope = torch.where(scaled < 1, envelope, torch.zeros_like(scaled))
        return envelope[:, None] * self.gaussians(scaled)


def angular_basis(cosines: Tensor, num_spherical: int) -> Tensor:
    """Real spherical harmonics of order m = 0, Y_l^0 = sqrt((2l+1) / 4pi) P_l(cos), l < num_spherical:
    (T,) -> (T, num_spherical).

    Upstream (spherical_basis.py ``CircularBasisLayer``, basis_utils.py ``real_sph_harm`` with
    ``zero_m_only=True, use_theta=False``) builds the same polynomials symbolically with sympy; here
    the Legendre polynomials come from Bonnet's recurrence (l+1) P_{l+1} = (2l+1) x P_l - l P_{l-1}.
    The golden fixture compares the two on a grid of cosines.
    """
    legendre = [torch.ones_like(cosines), cosines]
    for degree in range(1, num_spherical - 1):
        legendre.append(
            ((2 * degree + 1) * cosines * legendre[degree] - degree * legendre[degree - 1])
            / (degree + 1)
        )
    prefactors = [math.sqrt((2 * degree + 1) / (4 * math.pi)) for degree in range(num_spherical)]
    return torch.stack(
        [prefactor * poly for prefactor, poly in zip(prefactors, legendre[:num_spherical])], dim=1
    )


# ----------------------------------------------------------------------------------- graph
def symmetrize_edges(
    edge_index: Tensor, to_jimages: Tensor, num_bonds: Tensor, distances: Tensor, unit_vectors: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Make a directed periodic graph symmetric, as upstream ``reorder_symmetric_edges`` +
    ``id_swap`` (gemnet.py l. 294-383 and l. 471-480).

    ``edge_index`` (2, E) = (source s, target t); ``to_jimages`` (E, 3) the image of the source;
    ``num_bonds`` (B,) edges per crystal; ``distances`` (E,) Å; ``unit_vectors`` (E, 3) from s to t.
    Keeps the edges with s < t, or s = t with a lexicographically negative image, and appends each
    one's reverse (t, s, -image, same distance, -vector). Within each crystal the kept edges come
    first (in input order), then their reverses in the same order. A max-neighbours cut can leave
    an edge without its reverse; then the edge survives only if s < t (it gains its reverse), else
    it is dropped -- the authors' behaviour.

    Returns (edge_index (2, E'), num_bonds (B,), distances (E',), unit_vectors (E', 3),
    id_swap (E',): the index of each edge's reverse).
    """
    source, target = edge_index
    image = to_jimages
    image_is_earlier = (image[:, 0] < 0) | (
        (image[:, 0] == 0) & ((image[:, 1] < 0) | ((image[:, 1] == 0) & (image[:, 2] < 0)))
    )
    keep = (source < target) | ((source == target) & image_is_earlier)
    num_crystals = num_bonds.shape[0]
    crystal_of_edge = torch.repeat_interleave(
        torch.arange(num_crystals, device=source.device), num_bonds
    )
    kept_crystal = crystal_of_edge[keep]
    num_kept = kept_crystal.shape[0]

    # forward copies first, reverse copies after; then group by (crystal, forward/reverse)
    both_source = torch.cat([source[keep], target[keep]])
    both_target = torch.cat([target[keep], source[keep]])
    both_distances = torch.cat([distances[keep], distances[keep]])
    both_vectors = torch.cat([unit_vectors[keep], -unit_vectors[keep]])
    is_reverse = torch.cat(
        [torch.zeros(num_kept, dtype=torch.long, device=source.device),
         torch.ones(num_kept, dtype=torch.long, device=source.device)]
    )
    order = torch.sort(torch.cat([kept_crystal, kept_crystal]) * 2 + is_reverse, stable=True).indices
    new_position = torch.empty_like(order)
    new_position[order] = torch.arange(order.shape[0], device=order.device)
    partner = torch.cat([torch.arange(num_kept, 2 * num_kept), torch.arange(num_kept)]).to(order)
    id_swap = new_position[partner[order]]

    symmetric_index = torch.stack([both_source[order], both_target[order]])
    symmetric_bonds = 2 * torch.bincount(kept_crystal, minlength=num_crystals)
    return symmetric_index, symmetric_bonds, both_distances[order], both_vectors[order], id_swap


def triplets_of_edges(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """All pairs of distinct edges b->a, c->a into the same atom (gemnet.py ``get_triplets``).

    Returns ``id3_ba`` (T,) and ``id3_ca`` (T,), edge indices, grouped by ``id3_ca`` in edge order
    and, within a group, ordered by the source atom of b->a (upstream's sparse-row order); and
    ``id3_ragged_idx`` (T,), the position of each triplet within its ``id3_ca`` group. Edges are
    distinct by index, so b = c is allowed when b->a and c->a are different periodic images.
    """
    source, target = edge_index
    num_edges = source.shape[0]
    device = source.device
    edges_by_target = torch.sort(target * num_nodes + source, stable=True).indices
    in_degree = torch.bincount(target, minlength=num_nodes)
    first_into = torch.cumsum(in_degree, 0) - in_degree
    candidates = in_degree[target]  # edges b->a offered to each c->a
    id3_ca = torch.repeat_interleave(torch.arange(num_edges, device=device), candidates)
    within = torch.arange(id3_ca.shape[0], device=device) - (torch.cumsum(candidates, 0) - candidates)[id3_ca]
    id3_ba = edges_by_target[first_into[target[id3_ca]] + within]
    distinct = id3_ba != id3_ca
    id3_ba, id3_ca = id3_ba[distinct], id3_ca[distinct]
    per_edge = torch.bincount(id3_ca, minlength=num_edges)
    ragged = torch.arange(id3_ca.shape[0], device=device) - (torch.cumsum(per_edge, 0) - per_edge)[id3_ca]
    return id3_ba, id3_ca, ragged


# ----------------------------------------------------------------------------------- blocks
class TripletInteraction(nn.Module):
    """Triplet message passing of one interaction block (interaction_block.py ``TripletInteraction``).

    x_ba = act(W_ba m) * (W_rbf rbf3) * s_rbf, down-projected to ``emb_size_trip`` (act); for
    each edge c->a the efficient bilinear layer sums, over its triplets b->a<-c,
        x_ca = s_cbf * sum_{j,c,s} W[j, c, :] * rbfW[ca, c, s] * sum_k Y_s(angle_k) x_ba_k[j],
    with rbfW = rbf(d_ca) projected by the shared (num_spherical, num_radial, emb_size_cbf)
    tensor; then up-projected twice (act) and the "a->c" copy moved to the reverse edge:
    out = (up_ca(x) + up_ac(x)[id_swap]) / sqrt(2).
    """

    def __init__(self, config: GemNetTDecoderConfig, rbf_scale: float, cbf_sum_scale: float) -> None:
        super().__init__()
        c = config
        self.edge_dense = nn.Linear(c.hidden_dim, c.hidden_dim, bias=False)
        self.rbf_up = nn.Linear(c.emb_size_rbf, c.hidden_dim, bias=False)
        self.down_projection = nn.Linear(c.hidden_dim, c.emb_size_trip, bias=False)
        # (emb_size_trip, emb_size_cbf, emb_size_bil_trip), efficient.py EfficientInteractionBilinear
        self.bilinear_weight = nn.Parameter(torch.empty(c.emb_size_trip, c.emb_size_cbf, c.emb_size_bil_trip))
        self.up_projection_ca = nn.Linear(c.emb_size_bil_trip, c.hidden_dim, bias=False)
        self.up_projection_ac = nn.Linear(c.emb_size_bil_trip, c.hidden_dim, bias=False)
        self.activation = ScaledSiLU()
        self.register_buffer("rbf_scale", torch.tensor(rbf_scale))
        self.register_buffer("cbf_sum_scale", torch.tensor(cbf_sum_scale))

    def forward(
        self,
        m: Tensor,
        rbf3: Tensor,
        rbf_projected: Tensor,
        angular_padded: Tensor,
        id3_ba: Tensor,
        id3_ca: Tensor,
        id3_ragged_idx: Tensor,
        id_swap: Tensor,
    ) -> Tensor:
        """m (E, H), rbf3 (E, emb_size_rbf), rbf_projected (E, emb_size_cbf, S),
        angular_padded (E, S, Kmax) -> (E, H)."""
        x_ba = self.activation(self.edge_dense(m))
        x_ba = (x_ba * self.rbf_up(rbf3)) * self.rbf_scale
        x_ba = self.activation(self.down_projection(x_ba))[id3_ba]  # (T, emb_size_trip)
        # zero-padded (E, Kmax, emb_size_trip) of each edge's incoming triplet messages
        padded = x_ba.new_zeros(m.shape[0], angular_padded.shape[2], x_ba.shape[1])
        padded[id3_ca, id3_ragged_idx] = x_ba
        angular_sum = torch.matmul(angular_padded, padded)  # (E, S, emb_size_trip)
        radial_angular = torch.matmul(rbf_projected, angular_sum)  # (E, emb_size_cbf, emb_size_trip)
        x = torch.einsum("ecj,jco->eo", radial_angular, self.bilinear_weight) * self.cbf_sum_scale
        x_ca = self.activation(self.up_projection_ca(x))
        x_ac = self.activation(self.up_projection_ac(x))[id_swap]
        return (x_ca + x_ac) * (1 / math.sqrt(2))


class AtomUpdateBlock(nn.Module):
    """h_update_i = MLP(s * sum_{edges e into i} m_e * (W rbf_e)) (atom_update_block.py ``AtomUpdateBlock``)."""

    def __init__(self, config: GemNetTDecoderConfig, sum_scale: float) -> None:
        super().__init__()
        self.rbf_up = nn.Linear(config.emb_size_rbf, config.hidden_dim, bias=False)
        self.mlp = DenseResidualStack(config.hidden_dim, config.hidden_dim, config.num_atom)
        self.register_buffer("sum_scale", torch.tensor(sum_scale))

    def forward(self, num_atoms_total: int, m: Tensor, rbf_h: Tensor, target: Tensor) -> Tensor:
        """m (E, H), rbf_h (E, emb_size_rbf), target (E,) -> (N, H)."""
        messages = m * self.rbf_up(rbf_h)
        summed = messages.new_zeros(num_atoms_total, messages.shape[1]).index_add_(0, target, messages)
        return self.mlp(summed * self.sum_scale)


class InteractionBlock(nn.Module):
    """One GemNet-T interaction block (interaction_block.py ``InteractionBlockTripletsOnly``)."""

    def __init__(self, config: GemNetTDecoderConfig, scale_factors: dict[str, float], block_number: int) -> None:
        super().__init__()
        c = config
        self.skip_dense = nn.Linear(c.hidden_dim, c.hidden_dim, bias=False)
        self.triplet_interaction = TripletInteraction(
            c,
            rbf_scale=scale_factors[f"TripInteraction_{block_number}_had_rbf"],
            cbf_sum_scale=scale_factors[f"TripInteraction_{block_number}_sum_cbf"],
        )
        self.residuals_before_skip = nn.ModuleList([ResidualLayer(c.hidden_dim) for _ in range(c.num_before_skip)])
        self.residuals_after_skip = nn.ModuleList([ResidualLayer(c.hidden_dim) for _ in range(c.num_after_skip)])
        self.atom_update = AtomUpdateBlock(c, sum_scale=scale_factors[f"AtomUpdate_{block_number}_sum"])
        self.edge_from_atoms = nn.Linear(2 * c.hidden_dim + c.hidden_dim, c.hidden_dim, bias=False)
        self.edge_residuals = nn.ModuleList([ResidualLayer(c.hidden_dim) for _ in range(c.num_concat)])
        self.activation = ScaledSiLU()

    def forward(
        self,
        h: Tensor,
        m: Tensor,
        rbf3: Tensor,
        rbf_projected: Tensor,
        angular_padded: Tensor,
        id3_ba: Tensor,
        id3_ca: Tensor,
        id3_ragged_idx: Tensor,
        id_swap: Tensor,
        rbf_h: Tensor,
        edge_index: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """h (N, H) atom, m (E, H) edge embeddings -> updated (h, m)."""
        inv_sqrt_2 = 1 / math.sqrt(2)
        source, target = edge_index
        x = self.activation(self.skip_dense(m)) + self.triplet_interaction(
            m, rbf3, rbf_projected, angular_padded, id3_ba, id3_ca, id3_ragged_idx, id_swap
        )
        x = x * inv_sqrt_2
        for layer in self.residuals_before_skip:
            x = layer(x)
        m = (m + x) * inv_sqrt_2
        for layer in self.residuals_after_skip:
            m = layer(m)
        h = (h + self.atom_update(h.shape[0], m, rbf_h, target)) * inv_sqrt_2
        m_from_atoms = self.activation(self.edge_from_atoms(torch.cat([h[source], h[target], m], dim=-1)))
        for layer in self.edge_residuals:
            m_from_atoms = layer(m_from_atoms)
        return h, (m + m_from_atoms) * inv_sqrt_2


class ForceOutputBlock(nn.Module):
    """Per-edge scalar of the direct-force output (atom_update_block.py ``OutputBlock``, force
    branch): F_e = w . (s * MLP(m_e) * (W rbf_e)), (E, H) -> (E, 1)."""

    def __init__(self, config: GemNetTDecoderConfig, rbf_scale: float) -> None:
        super().__init__()
        self.mlp = DenseResidualStack(config.hidden_dim, config.hidden_dim, config.num_atom)
        self.rbf_up = nn.Linear(config.emb_size_rbf, config.hidden_dim, bias=False)
        self.force_out = nn.Linear(config.hidden_dim, 1, bias=False)
        self.register_buffer("rbf_scale", torch.tensor(rbf_scale))

    def forward(self, m: Tensor, rbf_out: Tensor) -> Tensor:
        x = self.mlp(m)
        x = (x * self.rbf_up(rbf_out)) * self.rbf_scale
        return self.force_out(x)


# ----------------------------------------------------------------------------------- model
class GemNetTDecoder(nn.Module):
    """CDVAE's decoder (decoder.py ``GemNetTDecoder`` = ``GemNetT`` + ``fc_atom``).

    Parameter layout (ours <- upstream ``GemNetTDecoder`` state-dict names): ``radial_basis.gaussians``
    <- ``gemnet.radial_basis.rbf``; ``triplet_rbf_down`` <- ``gemnet.mlp_rbf3.linear``;
    ``triplet_cbf_down`` <- ``gemnet.mlp_cbf3.weight``; ``atom_rbf_down`` <- ``gemnet.mlp_rbf_h.linear``;
    ``output_rbf_down`` <- ``gemnet.mlp_rbf_out.linear``; ``atom_embedding`` <-
    ``gemnet.atom_emb.embeddings``; ``latent_mixing`` <- ``gemnet.atom_latent_emb``;
    ``edge_embedding`` <- ``gemnet.edge_emb.dense.linear``; ``interaction_blocks`` <-
    ``gemnet.int_blocks``; ``output_blocks`` <- ``gemnet.out_blocks`` (force branch);
    ``atom_type_head`` <- ``fc_atom``. The full map is written by
    ``tools/golden/crystals_cdvae_decoder.py`` into the golden fixture. Scale factors are buffers
    set from ``gemnet_t_scale_factors.json``.
    """

    def __init__(self, config: GemNetTDecoderConfig | None = None, scale_factors: dict[str, float] | None = None) -> None:
        super().__init__()
        c = self.config = config or GemNetTDecoderConfig()
        factors = scale_factors if scale_factors is not None else load_scale_factors()
        self.radial_basis = RadialBasis(c.num_radial, c.radius, c.envelope_exponent)
        self.triplet_rbf_down = nn.Linear(c.num_radial, c.emb_size_rbf, bias=False)
        # (num_spherical, num_radial, emb_size_cbf), efficient.py EfficientInteractionDownProjection
        self.triplet_cbf_down = nn.Parameter(torch.empty(c.num_spherical, c.num_radial, c.emb_size_cbf))
        self.atom_rbf_down = nn.Linear(c.num_radial, c.emb_size_rbf, bias=False)
        self.output_rbf_down = nn.Linear(c.num_radial, c.emb_size_rbf, bias=False)
        self.atom_embedding = nn.Embedding(c.num_atom_types, c.hidden_dim)
        self.latent_mixing = nn.Linear(c.hidden_dim + c.latent_dim, c.hidden_dim)
        self.edge_embedding = nn.Linear(2 * c.hidden_dim + c.num_radial, c.hidden_dim, bias=False)
        self.interaction_blocks = nn.ModuleList(
            [InteractionBlock(c, factors, block_number=i + 1) for i in range(c.num_blocks)]
        )
        self.output_blocks = nn.ModuleList(
            [ForceOutputBlock(c, rbf_scale=factors[f"OutBlock_{i}_had"]) for i in range(c.num_blocks + 1)]
        )
        self.atom_type_head = nn.Linear(c.hidden_dim, c.num_atom_types)
        self.activation = ScaledSiLU()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Upstream's initialisation: He-orthogonal (:func:`he_orthogonal_`) for every bias-free
        layer (GemNet's ``Dense``, including the output layers: ``output_init="HeOrthogonal"``) and
        both 3-D basis/bilinear tensors; uniform(-sqrt 3, sqrt 3) atom embeddings
        (embedding_block.py); PyTorch's default for the two biased layers (``atom_latent_emb``,
        ``fc_atom``), which upstream leaves at nn.Linear's default."""
        for module in self.modules():
            if isinstance(module, nn.Linear) and module.bias is None:
                he_orthogonal_(module.weight)
            elif isinstance(module, TripletInteraction):
                he_orthogonal_(module.bilinear_weight)
        he_orthogonal_(self.triplet_cbf_down)
        nn.init.uniform_(self.atom_embedding.weight, -math.sqrt(3), math.sqrt(3))

    def build_graph(
        self, cart_coords: Tensor, lengths: Tensor, angles: Tensor, num_atoms: Tensor
    ) -> dict[str, Tensor]:
        """The symmetric periodic graph and its triplets (gemnet.py ``generate_interaction_graph``).

        Returns a dict: ``edge_index`` (2, E) (source, target); ``num_bonds`` (B,); ``distances``
        (E,) Å; ``unit_vectors`` (E, 3) from source to target; ``id_swap`` (E,); ``id3_ba``,
        ``id3_ca``, ``id3_ragged_idx`` (T,).
        """
        lattice = lattice_params_to_matrix(lengths, angles)
        edge_index, to_jimages, num_bonds = radius_graph_pbc(
            cart_coords, lattice, num_atoms, self.config.radius, self.config.max_neighbors
        )
        distances, center_to_neighbor = pbc_edge_vectors(cart_coords, edge_index, lattice, to_jimages, num_bonds)
        # radius_graph_pbc's vectors point from the centre (row 1, the target) to the neighbour
        # (row 0, the source); GemNet wants source -> target (gemnet.py l. 441)
        unit_vectors = -center_to_neighbor / distances[:, None]
        edge_index, num_bonds, distances, unit_vectors, id_swap = symmetrize_edges(
            edge_index, to_jimages, num_bonds, distances, unit_vectors
        )
        id3_ba, id3_ca, id3_ragged_idx = triplets_of_edges(edge_index, cart_coords.shape[0])
        return {
            "edge_index": edge_index, "num_bonds": num_bonds, "distances": distances,
            "unit_vectors": unit_vectors, "id_swap": id_swap, "id3_ba": id3_ba, "id3_ca": id3_ca,
            "id3_ragged_idx": id3_ragged_idx,
        }

    def forward(
        self,
        z: Tensor,
        frac_coords: Tensor,
        atom_types: Tensor,
        num_atoms: Tensor,
        lengths: Tensor,
        angles: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Decode: z (B, latent_dim); frac_coords (N, 3); atom_types (N,) atomic numbers Z in
        1..100 (long); num_atoms (B,); lengths (B, 3) Å; angles (B, 3) degrees.

        Returns ``pred_cart_coord_diff`` (N, 3) (sum of per-edge scalars times source->target unit
        vectors; CDVAE's wrapper divides it by sigma and regresses it on the minimum-image
        displacement noisy -> true divided by sigma^2, cdvae/pl_modules/model.py l. 490-508) and
        ``pred_atom_type_logits`` (N, num_atom_types), column k for Z = k + 1.
        """
        c = self.config
        if int(atom_types.min()) < 1 or int(atom_types.max()) > c.num_atom_types:
            raise ValueError(f"GemNetTDecoder: atom_types must be atomic numbers in 1..{c.num_atom_types}")
        num_atoms = num_atoms.long()
        cart_coords = frac_to_cart(frac_coords, lengths, angles, num_atoms)
        graph = self.build_graph(cart_coords, lengths, angles, num_atoms)
        edge_index, unit_vectors = graph["edge_index"], graph["unit_vectors"]
        id3_ba, id3_ca, id3_ragged_idx = graph["id3_ba"], graph["id3_ca"], graph["id3_ragged_idx"]
        num_edges = edge_index.shape[1]

        cosines = (unit_vectors[id3_ca] * unit_vectors[id3_ba]).sum(dim=-1).clamp(-1, 1)
        rbf = self.radial_basis(graph["distances"])  # (E, num_radial)
        angular = angular_basis(cosines, c.num_spherical)  # (T, S)

        # shared down-projections of the bases (efficient.py EfficientInteractionDownProjection)
        rbf3 = self.triplet_rbf_down(rbf)
        rbf_projected = torch.matmul(rbf[None], self.triplet_cbf_down).permute(1, 2, 0)  # (E, emb_size_cbf, S)
        max_triplets = int(id3_ragged_idx.max()) + 1 if id3_ragged_idx.numel() else 0
        angular_padded = angular.new_zeros(num_edges, max_triplets, c.num_spherical)
        angular_padded[id3_ca, id3_ragged_idx] = angular
        angular_padded = angular_padded.transpose(1, 2)  # (E, S, Kmax)
        rbf_h = self.atom_rbf_down(rbf)
        rbf_out = self.output_rbf_down(rbf)

        h = self.atom_embedding(atom_types - 1)
        h = self.latent_mixing(torch.cat([h, z.repeat_interleave(num_atoms, dim=0)], dim=1))
        source, target = edge_index
        m = self.activation(self.edge_embedding(torch.cat([h[source], h[target], rbf], dim=-1)))

        edge_force = self.output_blocks[0](m, rbf_out)  # (E, 1)
        for block, output in zip(self.interaction_blocks, self.output_blocks[1:]):
            h, m = block(
                h, m, rbf3, rbf_projected, angular_padded, id3_ba, id3_ca, id3_ragged_idx,
                graph["id_swap"], rbf_h, edge_index,
            )
            edge_force = edge_force + output(m, rbf_out)

        pred_cart_coord_diff = cart_coords.new_zeros(cart_coords.shape[0], 3).index_add_(
            0, target, edge_force * unit_vectors
        )
        return pred_cart_coord_diff, self.atom_type_head(h)
