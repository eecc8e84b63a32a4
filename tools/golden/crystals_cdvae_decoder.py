"""Golden outputs of CDVAE's decoder (txie-93/cdvae) for our GemNet-T and periodic-graph code.

Usage (in a throw-away venv with torch, torch_geometric, sympy, numpy, scipy, pandas, networkx,
scikit-learn, python-dotenv; see tools/golden/crystals_shims.py for the stubs):

    python tools/golden/crystals_cdvae_decoder.py /path/to/cdvae-checkout   # at f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea

Writes ``tests/golden/cdvae_gemnet.npz`` with, on a fixed 3-crystal batch (a triclinic 3-atom cell,
an orthorhombic 2-atom cell, a 1-atom simple-cubic cell whose 26 neighbours within 7 Å are cut to
20 through a shell of equal distances):

* ``graph/*``: upstream ``cdvae.common.data_utils`` -- ``lattice_params_to_matrix_torch``,
  ``frac_to_cart_coords``, ``cart_to_frac_coords``, ``radius_graph_pbc`` (edge_index, to_jimages,
  num_bonds) at the released cutoff 7 Å / 20 neighbours and at 4.5 Å / 5 neighbours,
  ``get_pbc_distances`` (distances, distance vectors) and ``min_distance_sqr_pbc`` (with vectors);
* ``decoder/*``: upstream ``cdvae.pl_modules.decoder.GemNetTDecoder`` (hidden_dim 16, latent_dim 8,
  max_neighbors 20, radius 7, scale_file gemnet-dT.json; GemNetT's fixed inner sizes reduced --
  num_radial 16, emb_size_trip / emb_size_bil_trip 8, emb_size_rbf / emb_size_cbf 4 -- to keep the
  fixture small), seeded weights (upstream init, float64): its weights (``w/...``), the outputs
  (coordinate score, type logits), and the symmetric graph / triplets of
  ``GemNetT.generate_interaction_graph``;
* ``cbf/*``: the angular basis ``CircularBasisLayer.cosφ_basis`` (sympy Y_l^0, num_spherical 7) on
  a grid of cosines;
* ``init/*``: ``initializers.he_orthogonal_init`` of seeded float32 tensors (our init must match);
* ``full_size/*``: trainable-parameter counts of the released-size decoder (hidden 128, latent 256).

Two things are done to run the authors' code in float64 (numbers, not code, are affected):
``np.math`` (removed in NumPy 2) is set to ``math`` for ``basis_utils.sph_harm_prefactor``, and
while upstream runs ``torch.Tensor.float`` casts to float64 and the default dtype is float64:
``radius_graph_pbc`` and ``get_pbc_distances`` cast their integer image offsets with ``.float()``
and allocate work buffers with ``torch.zeros`` of the default dtype, which would otherwise mix
float32 into float64 products and raise. The offsets are small integers, exact in both. The
decoders are built (initialised) before that, in float32 as upstream, then cast with ``.double()``.

Only numbers are kept; no upstream code is copied.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import sys
import types
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from crystals_shims import _Unused, install  # noqa: E402
from fixture import upstream_commit, write_fixture  # noqa: E402

REPO = "txie-93/cdvae"
DECODER_SIZES = {"hidden_dim": 16, "latent_dim": 8, "max_neighbors": 20, "radius": 7.0}
GEMNET_INNER_SIZES = {"num_radial": 16, "emb_size_trip": 8, "emb_size_bil_trip": 8, "emb_size_rbf": 4, "emb_size_cbf": 4}
BATCH = {
    "atom_types": np.array([8, 26, 8, 12, 8, 29]),
    "num_atoms": np.array([3, 2, 1]),
    "frac_coords": np.array([[0.1, 0.2, 0.3], [0.55, 0.95, 0.05], [0.8, 0.4, 0.65],
                             [0.0, 0.0, 0.0], [0.5, 0.45, 0.55], [0.25, 0.25, 0.25]]),
    "lengths": np.array([[4.1, 5.0, 6.2], [3.0, 3.1, 3.2], [3.0, 3.0, 3.0]]),
    "angles": np.array([[80.0, 95.0, 100.0], [90.0, 90.0, 90.0], [90.0, 90.0, 90.0]]),
}
GRAPH_SETTINGS = {"r7_n20": (7.0, 20), "r4.5_n5": (4.5, 5)}
PYMATGEN_STUBS = ("pymatgen", "pymatgen.core", "pymatgen.core.structure", "pymatgen.core.lattice",
                  "pymatgen.analysis", "pymatgen.analysis.graphs", "p_tqdm")

# upstream GemNetTDecoder state-dict name -> ours (replibench...gemnet_t.GemNetTDecoder); None: not mapped
_RULES: list[tuple[str, str | None]] = [
    (r"gemnet\.cbf_basis3\.radial_basis\.rbf\.offset", None),  # identical copy of radial_basis.rbf.offset
    (r"gemnet\.radial_basis\.rbf\.offset", "radial_basis.gaussians.offset"),
    (r"gemnet\.mlp_rbf3\.linear\.weight", "triplet_rbf_down.weight"),
    (r"gemnet\.mlp_cbf3\.weight", "triplet_cbf_down"),
    (r"gemnet\.mlp_rbf_h\.linear\.weight", "atom_rbf_down.weight"),
    (r"gemnet\.mlp_rbf_out\.linear\.weight", "output_rbf_down.weight"),
    (r"gemnet\.atom_emb\.embeddings\.weight", "atom_embedding.weight"),
    (r"gemnet\.atom_latent_emb\.(weight|bias)", r"latent_mixing.\1"),
    (r"gemnet\.edge_emb\.dense\.linear\.weight", "edge_embedding.weight"),
    (r"gemnet\.int_blocks\.(\d+)\.dense_ca\.linear\.weight", r"interaction_blocks.\1.skip_dense.weight"),
    (r"gemnet\.int_blocks\.(\d+)\.trip_interaction\.dense_ba\.linear\.weight",
     r"interaction_blocks.\1.triplet_interaction.edge_dense.weight"),
    (r"gemnet\.int_blocks\.(\d+)\.trip_interaction\.mlp_rbf\.linear\.weight",
     r"interaction_blocks.\1.triplet_interaction.rbf_up.weight"),
    (r"gemnet\.int_blocks\.(\d+)\.trip_interaction\.mlp_cbf\.weight",
     r"interaction_blocks.\1.triplet_interaction.bilinear_weight"),
    (r"gemnet\.int_blocks\.(\d+)\.trip_interaction\.(down_projection|up_projection_ca|up_projection_ac)\.linear\.weight",
     r"interaction_blocks.\1.triplet_interaction.\2.weight"),
    (r"gemnet\.int_blocks\.(\d+)\.trip_interaction\.scale_rbf\.scale_factor",
     r"interaction_blocks.\1.triplet_interaction.rbf_scale"),
    (r"gemnet\.int_blocks\.(\d+)\.trip_interaction\.scale_cbf_sum\.scale_factor",
     r"interaction_blocks.\1.triplet_interaction.cbf_sum_scale"),
    (r"gemnet\.int_blocks\.(\d+)\.layers_(before|after)_skip\.(\d+)\.dense_mlp\.(\d)\.linear\.weight",
     r"interaction_blocks.\1.residuals_\2_skip.\3.layers.\4.weight"),
    (r"gemnet\.int_blocks\.(\d+)\.atom_update\.dense_rbf\.linear\.weight", r"interaction_blocks.\1.atom_update.rbf_up.weight"),
    (r"gemnet\.int_blocks\.(\d+)\.atom_update\.scale_sum\.scale_factor", r"interaction_blocks.\1.atom_update.sum_scale"),
    (r"gemnet\.int_blocks\.(\d+)\.atom_update\.layers\.0\.linear\.weight",
     r"interaction_blocks.\1.atom_update.mlp.input_dense.weight"),
    (r"gemnet\.int_blocks\.(\d+)\.atom_update\.layers\.(\d+)\.dense_mlp\.(\d)\.linear\.weight",
     lambda m: f"interaction_blocks.{m[1]}.atom_update.mlp.residuals.{int(m[2]) - 1}.layers.{m[3]}.weight"),
    (r"gemnet\.int_blocks\.(\d+)\.concat_layer\.dense\.linear\.weight", r"interaction_blocks.\1.edge_from_atoms.weight"),
    (r"gemnet\.int_blocks\.(\d+)\.residual_m\.(\d+)\.dense_mlp\.(\d)\.linear\.weight",
     r"interaction_blocks.\1.edge_residuals.\2.layers.\3.weight"),
    # output blocks: force branch only; the energy branch (dense_rbf, scale_sum, layers/seq_energy,
    # out_energy) feeds the discarded energy E_t
    (r"gemnet\.out_blocks\.\d+\.(dense_rbf|scale_sum|layers|seq_energy|out_energy)\..*", None),
    (r"gemnet\.out_blocks\.(\d+)\.seq_forces\.0\.linear\.weight", r"output_blocks.\1.mlp.input_dense.weight"),
    (r"gemnet\.out_blocks\.(\d+)\.seq_forces\.(\d+)\.dense_mlp\.(\d)\.linear\.weight",
     lambda m: f"output_blocks.{m[1]}.mlp.residuals.{int(m[2]) - 1}.layers.{m[3]}.weight"),
    (r"gemnet\.out_blocks\.(\d+)\.dense_rbf_F\.linear\.weight", r"output_blocks.\1.rbf_up.weight"),
    (r"gemnet\.out_blocks\.(\d+)\.out_forces\.linear\.weight", r"output_blocks.\1.force_out.weight"),
    (r"gemnet\.out_blocks\.(\d+)\.scale_rbf_F\.scale_factor", r"output_blocks.\1.rbf_scale"),
    (r"fc_atom\.(weight|bias)", r"atom_type_head.\1"),
]


def decoder_weight_map(upstream_names: list[str]) -> dict[str, str]:
    """Upstream name -> ours for every mapped entry; raises on a name no rule covers."""
    out = {}
    for name in upstream_names:
        for pattern, target in _RULES:
            match = re.fullmatch(pattern, name)
            if match:
                if target is not None:
                    out[name] = target(match) if callable(target) else match.expand(target)
                break
        else:
            raise KeyError(f"no weight-map rule for upstream parameter {name!r}")
    return out


@contextlib.contextmanager
def upstream_in_float64():
    """While upstream runs, ``Tensor.float()`` gives float64 and the default dtype is float64
    (see the module docstring)."""
    import torch

    original = torch.Tensor.float
    torch.Tensor.float = lambda self, *args, **kwargs: self.to(torch.float64)
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.Tensor.float = original
        torch.set_default_dtype(torch.float32)


def main(checkout: Path) -> None:
    np.math = math  # basis_utils.sph_harm_prefactor uses np.math.factorial (NumPy < 2)
    install(str(checkout), unexercised=PYMATGEN_STUBS)
    # data_utils builds a CrystalNN at import (preprocessing only): a stub constructor
    local_env = types.ModuleType("pymatgen.analysis.local_env")
    local_env.CrystalNN = lambda *args, **kwargs: _Unused("pymatgen CrystalNN instance")
    sys.modules["pymatgen.analysis.local_env"] = local_env
    sys.modules["pymatgen.analysis"].local_env = local_env

    import torch
    from cdvae.common import data_utils
    from cdvae.pl_modules import decoder as decoder_module

    commit = upstream_commit(checkout)
    scale_file = str(checkout / "cdvae" / "pl_modules" / "gemnet" / "gemnet-dT.json")
    arrays: dict[str, np.ndarray] = {f"batch/{k}": v for k, v in BATCH.items()}
    frac = torch.tensor(BATCH["frac_coords"], dtype=torch.float64)
    lengths = torch.tensor(BATCH["lengths"], dtype=torch.float64)
    angles = torch.tensor(BATCH["angles"], dtype=torch.float64)
    num_atoms = torch.tensor(BATCH["num_atoms"])
    atom_types = torch.tensor(BATCH["atom_types"])

    # the decoder, small inner sizes (built in float32 like upstream, then cast)
    gemnet_class = decoder_module.GemNetT
    decoder_module.GemNetT = functools.partial(gemnet_class, **GEMNET_INNER_SIZES)
    torch.manual_seed(0)
    decoder = decoder_module.GemNetTDecoder(scale_file=scale_file, **DECODER_SIZES).double()
    decoder_module.GemNetT = gemnet_class
    full = decoder_module.GemNetTDecoder(hidden_dim=128, latent_dim=256, max_neighbors=20, radius=7.0,
                                         scale_file=scale_file)

    # GemNet's He-orthogonal initialisation on seeded float32 tensors (a matrix and a 3-D tensor)
    from cdvae.pl_modules.gemnet.initializers import he_orthogonal_init

    for shape in ((6, 10), (3, 5, 4)):
        torch.manual_seed(1)
        tag = "x".join(map(str, shape))
        arrays[f"init/he_orthogonal_{tag}"] = he_orthogonal_init(torch.empty(shape)).detach().numpy()

    with upstream_in_float64(), torch.no_grad():
        # ---- periodic graph functions (data_utils.py)
        lattice = data_utils.lattice_params_to_matrix_torch(lengths, angles)
        cart = data_utils.frac_to_cart_coords(frac, lengths, angles, num_atoms)
        arrays["graph/lattice"] = lattice.numpy()
        arrays["graph/cart_coords"] = cart.numpy()
        arrays["graph/cart_to_frac"] = data_utils.cart_to_frac_coords(cart + 0.37, lengths, angles, num_atoms).numpy()
        for tag, (cutoff, max_neighbors) in GRAPH_SETTINGS.items():
            edge_index, to_jimages, num_bonds = data_utils.radius_graph_pbc(
                cart, lengths, angles, num_atoms, cutoff, max_neighbors, device=torch.device("cpu"))
            out = data_utils.get_pbc_distances(cart, edge_index, lengths, angles, to_jimages, num_atoms, num_bonds,
                                               coord_is_cart=True, return_distance_vec=True)
            arrays[f"graph/{tag}/edge_index"] = edge_index.numpy()
            arrays[f"graph/{tag}/to_jimages"] = to_jimages.numpy().astype(np.int64)
            arrays[f"graph/{tag}/num_bonds"] = num_bonds.numpy()
            arrays[f"graph/{tag}/distances"] = out["distances"].numpy()
            arrays[f"graph/{tag}/distance_vec"] = out["distance_vec"].numpy()
        displaced = cart + torch.tensor([[2.9, -0.4, 0.3]], dtype=torch.float64)
        min_sqr, min_vec = data_utils.min_distance_sqr_pbc(cart, displaced, lengths, angles, num_atoms,
                                                           torch.device("cpu"), return_vector=True)
        arrays["graph/min_distance_sqr"], arrays["graph/min_distance_vec"] = min_sqr.numpy(), min_vec.numpy()

        # ---- the decoder, small inner sizes
        state = decoder.state_dict()
        weight_map = {f"decoder/w/{k}": v for k, v in decoder_weight_map(list(state)).items()}
        for name, value in state.items():
            if f"decoder/w/{name}" in weight_map:
                arrays[f"decoder/w/{name}"] = value.numpy()
        z = torch.randn(len(BATCH["num_atoms"]), DECODER_SIZES["latent_dim"], dtype=torch.float64)
        arrays["decoder/z"] = z.numpy()
        coord_diff, type_logits = decoder(z, frac, atom_types, num_atoms, lengths, angles)
        arrays["decoder/out_coord_diff"], arrays["decoder/out_type_logits"] = coord_diff.numpy(), type_logits.numpy()
        graph = decoder.gemnet.generate_interaction_graph(cart, lengths, angles, num_atoms, None, None, None)
        for key, value in zip(("edge_index", "num_bonds", "distances", "unit_vectors", "id_swap", "id3_ba", "id3_ca",
                               "id3_ragged_idx"), graph):
            arrays[f"decoder/graph/{key}"] = value.numpy()

        # ---- angular basis (sympy) on a grid, released num_spherical 7
        grid = torch.linspace(-1, 1, 41, dtype=torch.float64)
        arrays["cbf/cosines"] = grid.numpy()
        arrays["cbf/values"] = decoder.gemnet.cbf_basis3.cosφ_basis(grid).numpy()

        # ---- released sizes: parameter counts
        energy_branch = {id(p) for block in full.gemnet.out_blocks
                         for part in (block.dense_rbf, block.layers, block.out_energy) for p in part.parameters()}
        # trainable parameters (the 17 scale factors are requires_grad=False parameters upstream)
        trainable = [p for p in full.parameters() if p.requires_grad]
        arrays["full_size/num_params"] = np.array(sum(p.numel() for p in trainable))
        arrays["full_size/num_params_without_energy_branch"] = np.array(
            sum(p.numel() for p in trainable if id(p) not in energy_branch))

    write_fixture(ROOT / "tests" / "golden" / "cdvae_gemnet.npz", arrays, repo=REPO, commit=commit,
                  weight_map=weight_map, generator="tools/golden/crystals_cdvae_decoder.py",
                  notes=("float64; upstream GemNetTDecoder(hidden_dim=16, latent_dim=8, max_neighbors=20, radius=7.0, "
                         "scale_file=gemnet-dT.json) with GemNetT inner sizes " + repr(GEMNET_INNER_SIZES) +
                         "; torch.manual_seed(0) upstream init; weight-map entries ending in _scale are the "
                         "gemnet-dT.json scale factors (checked against our JSON, not copied); energy-branch "
                         "weights of the output blocks are not mapped (their output is discarded upstream)"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]).resolve())
