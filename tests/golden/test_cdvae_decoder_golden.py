"""CDVAE's decoder and periodic-graph functions against the authors' released code
(txie-93/cdvae; fixture written by tools/golden/crystals_cdvae_decoder.py): same weights copied by
the recorded name map, same input, float64. Tolerance 1e-6 relative unless a reason is given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golden.golden import load_fixture

RTOL = 1e-6
# GemNetTDecoder(hidden_dim=16, latent_dim=8) with GemNetT's inner sizes reduced as in the generator
SMALL = {"hidden_dim": 16, "latent_dim": 8, "num_radial": 16, "emb_size_trip": 8, "emb_size_bil_trip": 8,
         "emb_size_rbf": 4, "emb_size_cbf": 4}


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array))


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("cdvae_gemnet")


def _batch(fixture):
    return {
        "frac_coords": _t(fixture["batch/frac_coords"]).double(),
        "atom_types": _t(fixture["batch/atom_types"]).long(),
        "num_atoms": _t(fixture["batch/num_atoms"]).long(),
        "lengths": _t(fixture["batch/lengths"]).double(),
        "angles": _t(fixture["batch/angles"]).double(),
    }


def _small_decoder(fixture):
    """Our decoder with the fixture's weights; scale factors stay those of our JSON file, after
    checking they equal upstream's."""
    from replibench.families.crystals.models.gemnet_t import GemNetTDecoderConfig, GemNetTDecoder

    model = GemNetTDecoder(GemNetTDecoderConfig(**SMALL)).double()
    ours = model.state_dict()
    state = {}
    for upstream, name in fixture.meta["weight_map"].items():
        value = _t(fixture[upstream]).to(torch.float64)
        if name.endswith("_scale"):
            assert float(ours[name]) == float(value), (name, float(ours[name]), float(value))
        else:
            state[name] = value
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert all(name.endswith("_scale") for name in missing), missing
    return model


def test_lattice_and_coordinate_changes_match(fixture):
    from replibench.families.crystals.models import cdvae_graph

    b = _batch(fixture)
    lattice = cdvae_graph.lattice_params_to_matrix(b["lengths"], b["angles"])
    np.testing.assert_allclose(lattice.numpy(), fixture["graph/lattice"], rtol=RTOL, atol=1e-12)
    cart = cdvae_graph.frac_to_cart(b["frac_coords"], b["lengths"], b["angles"], b["num_atoms"])
    np.testing.assert_allclose(cart.numpy(), fixture["graph/cart_coords"], rtol=RTOL, atol=1e-12)
    frac = cdvae_graph.cart_to_frac(cart + 0.37, b["lengths"], b["angles"], b["num_atoms"])
    np.testing.assert_allclose(frac.numpy(), fixture["graph/cart_to_frac"], rtol=RTOL, atol=1e-12)
    displaced = cart + torch.tensor([[2.9, -0.4, 0.3]], dtype=torch.float64)
    min_sqr, min_vec = cdvae_graph.min_distance_sqr_pbc(cart, displaced, lattice, b["num_atoms"])
    np.testing.assert_allclose(min_sqr.numpy(), fixture["graph/min_distance_sqr"], rtol=RTOL)
    np.testing.assert_allclose(min_vec.numpy(), fixture["graph/min_distance_vec"], rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("tag,cutoff,max_neighbors", [("r7_n20", 7.0, 20), ("r4.5_n5", 4.5, 5)])
def test_radius_graph_matches_upstream_edge_for_edge(fixture, tag, cutoff, max_neighbors):
    """Same edges in the same order (including which of the equally distant 3rd-shell neighbours of
    the simple-cubic crystal survive the 20-neighbour cut), same image offsets and counts."""
    from replibench.families.crystals.models import cdvae_graph

    b = _batch(fixture)
    lattice = cdvae_graph.lattice_params_to_matrix(b["lengths"], b["angles"])
    cart = _t(fixture["graph/cart_coords"])
    edge_index, to_jimages, num_bonds = cdvae_graph.radius_graph_pbc(cart, lattice, b["num_atoms"], cutoff, max_neighbors)
    np.testing.assert_array_equal(edge_index.numpy(), fixture[f"graph/{tag}/edge_index"])
    np.testing.assert_array_equal(to_jimages.numpy(), fixture[f"graph/{tag}/to_jimages"])
    np.testing.assert_array_equal(num_bonds.numpy(), fixture[f"graph/{tag}/num_bonds"])
    distances, vectors = cdvae_graph.pbc_edge_vectors(cart, edge_index, lattice, to_jimages, num_bonds)
    np.testing.assert_allclose(distances.numpy(), fixture[f"graph/{tag}/distances"], rtol=RTOL)
    np.testing.assert_allclose(vectors.numpy(), fixture[f"graph/{tag}/distance_vec"], rtol=RTOL, atol=1e-12)


def test_the_cut_is_exercised(fixture):
    """The fixture really covers the max-neighbours cut (else the edge test proves less)."""
    counts = np.bincount(fixture["graph/r7_n20/edge_index"][1])
    assert counts.max() == 20 and counts[-1] == 20  # the 1-atom cubic cell had 26 candidates


def test_angular_basis_matches_sympy_closed_forms(fixture):
    from replibench.families.crystals.models.gemnet_t import angular_basis

    values = angular_basis(_t(fixture["cbf/cosines"]), 7)
    np.testing.assert_allclose(values.numpy(), fixture["cbf/values"], rtol=1e-12, atol=1e-14)


def test_symmetric_graph_and_triplets_match(fixture):
    from replibench.families.crystals.models.gemnet_t import GemNetTDecoderConfig, GemNetTDecoder

    b = _batch(fixture)
    model = GemNetTDecoder(GemNetTDecoderConfig(**SMALL)).double()
    graph = model.build_graph(_t(fixture["graph/cart_coords"]), b["lengths"], b["angles"], b["num_atoms"])
    for key in ("edge_index", "num_bonds", "id_swap", "id3_ba", "id3_ca", "id3_ragged_idx"):
        np.testing.assert_array_equal(graph[key].numpy(), fixture[f"decoder/graph/{key}"], err_msg=key)
    np.testing.assert_allclose(graph["distances"].numpy(), fixture["decoder/graph/distances"], rtol=RTOL)
    np.testing.assert_allclose(graph["unit_vectors"].numpy(), fixture["decoder/graph/unit_vectors"], rtol=RTOL, atol=1e-12)


def test_decoder_outputs_match(fixture):
    b = _batch(fixture)
    model = _small_decoder(fixture)
    with torch.no_grad():
        coord_diff, type_logits = model(_t(fixture["decoder/z"]), **b)
    scale = np.abs(fixture["decoder/out_coord_diff"]).max()
    # the 1-atom cubic crystal's score is 0 by symmetry (upstream: ~1e-15 round-off): absolute
    # tolerance relative to the largest entry
    np.testing.assert_allclose(coord_diff.numpy(), fixture["decoder/out_coord_diff"], rtol=RTOL, atol=1e-10 * scale)
    np.testing.assert_allclose(type_logits.numpy(), fixture["decoder/out_type_logits"], rtol=RTOL, atol=1e-12)


def test_released_size_parameter_count(fixture):
    """At the released sizes (hidden 128, latent 256, GemNetT defaults) our decoder has exactly
    upstream's parameters less the unused energy branch of the output blocks."""
    from replibench.families.crystals.models.gemnet_t import GemNetTDecoder

    ours = sum(p.numel() for p in GemNetTDecoder().parameters())
    assert ours == int(fixture["full_size/num_params_without_energy_branch"])
    assert ours < int(fixture["full_size/num_params"])


@pytest.mark.parametrize("shape", [(6, 10), (3, 5, 4)])
def test_he_orthogonal_init_matches(fixture, shape):
    """Same RNG draws and the same standardisation as upstream's he_orthogonal_init (float32)."""
    from replibench.families.crystals.models.gemnet_t import he_orthogonal_

    torch.manual_seed(1)
    ours = he_orthogonal_(torch.empty(shape))
    expected = fixture["init/he_orthogonal_" + "x".join(map(str, shape))]
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-5, atol=1e-6)
