"""CDVAE's periodic geometry (models/cdvae_graph.py) and the graph helpers of its GemNet-T decoder
(models/gemnet_t.py) on hand-checked cases. Agreement with the authors' code is in
tests/golden/test_cdvae_decoder_golden.py."""

from __future__ import annotations

import math

import pytest
import torch

from replibench.families.crystals.models import cdvae_graph as g

F64 = torch.float64


def _cubic(a: float, count: int = 1):
    return torch.full((count, 3), a, dtype=F64), torch.full((count, 3), 90.0, dtype=F64)


def test_lattice_orientation_cubic_and_hexagonal():
    lengths, angles = _cubic(3.0)
    torch.testing.assert_close(g.lattice_params_to_matrix(lengths, angles)[0], 3.0 * torch.eye(3, dtype=F64),
                               rtol=0, atol=1e-12)
    # hexagonal a = b = 2, c = 5, gamma = 120: a along x, b = (-1, sqrt 3, 0), c along z
    hexagonal = g.lattice_params_to_matrix(torch.tensor([[2.0, 2.0, 5.0]], dtype=F64),
                                           torch.tensor([[90.0, 90.0, 120.0]], dtype=F64))[0]
    expected = torch.tensor([[2.0, 0.0, 0.0], [-1.0, math.sqrt(3), 0.0], [0.0, 0.0, 5.0]], dtype=F64)
    torch.testing.assert_close(hexagonal, expected, rtol=0, atol=1e-12)


def test_frac_cart_round_trip_wraps_into_unit_cell():
    lengths = torch.tensor([[4.0, 5.0, 6.0], [3.0, 3.0, 3.0]], dtype=F64)
    angles = torch.tensor([[80.0, 95.0, 100.0], [90.0, 90.0, 90.0]], dtype=F64)
    num_atoms = torch.tensor([2, 1])
    frac = torch.tensor([[0.1, 0.2, 0.3], [0.9, 0.5, 0.05], [0.25, 0.5, 0.75]], dtype=F64)
    cart = g.frac_to_cart(frac, lengths, angles, num_atoms)
    torch.testing.assert_close(cart[2], torch.tensor([0.75, 1.5, 2.25], dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(g.cart_to_frac(cart, lengths, angles, num_atoms), frac, rtol=0, atol=1e-12)
    shifted = g.cart_to_frac(cart + g.frac_to_cart(torch.ones_like(frac), lengths, angles, num_atoms),
                             lengths, angles, num_atoms)
    torch.testing.assert_close(shifted, frac, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="num_atoms sums to 4"):
        g.frac_to_cart(frac, lengths, angles, torch.tensor([2, 2]))


@pytest.mark.parametrize("cutoff,expected", [(3.1, 6), (4.3, 18), (5.3, 26), (7.0, 26)])
def test_simple_cubic_neighbour_shells(cutoff, expected):
    """One atom, a = 3 Å: shells of 6 (3 Å), 12 (4.24 Å), 8 (5.20 Å) images; only the 27 images in
    {-1,0,1}^3 are searched, so nothing beyond the 26 (the 6 Å shell is missed, as upstream)."""
    lengths, angles = _cubic(3.0)
    lattice = g.lattice_params_to_matrix(lengths, angles)
    edge_index, images, num_bonds = g.radius_graph_pbc(torch.zeros(1, 3, dtype=F64), lattice, torch.tensor([1]),
                                                       cutoff, max_neighbors=50)
    assert edge_index.shape == (2, expected) and num_bonds.tolist() == [expected]
    assert (edge_index == 0).all()  # the atom with its own images; the (0,0,0) self-pair is excluded
    assert not (images == 0).all(dim=1).any()
    assert len({tuple(row) for row in images.tolist()}) == expected


def test_max_neighbors_keeps_the_nearest():
    lengths, angles = _cubic(3.0)
    lattice = g.lattice_params_to_matrix(lengths, angles)
    edge_index, images, num_bonds = g.radius_graph_pbc(torch.zeros(1, 3, dtype=F64), lattice, torch.tensor([1]),
                                                       4.3, max_neighbors=8)
    assert num_bonds.tolist() == [8]
    norms = images.abs().sum(dim=1)
    assert (norms == 1).sum() == 6 and (norms == 2).sum() == 2  # all 6 at 3 Å, 2 of the 12 at 4.24 Å
    with pytest.raises(ValueError, match="max_neighbors must be >= 1"):
        g.radius_graph_pbc(torch.zeros(1, 3, dtype=F64), lattice, torch.tensor([1]), 4.3, max_neighbors=0)


def test_cut_is_per_atom_and_only_when_some_atom_exceeds():
    """Two crystals: a dense one cut to 4 per atom and a sparse one whose atoms keep all theirs."""
    lengths = torch.tensor([[3.0, 3.0, 3.0], [10.0, 10.0, 10.0]], dtype=F64)
    angles = torch.full((2, 3), 90.0, dtype=F64)
    num_atoms = torch.tensor([1, 2])
    frac = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.9, 0.0, 0.0]], dtype=F64)
    cart = g.frac_to_cart(frac, lengths, angles, num_atoms)
    lattice = g.lattice_params_to_matrix(lengths, angles)
    edge_index, images, num_bonds = g.radius_graph_pbc(cart, lattice, num_atoms, 3.5, max_neighbors=4)
    assert num_bonds.tolist() == [4, 2]
    # crystal 2: atoms 1 and 2 are 2 Å apart through the x face (and 8 Å directly, beyond the cutoff)
    second = edge_index[:, 4:]
    assert sorted(map(tuple, second.T.tolist())) == [(1, 2), (2, 1)]
    distances, vectors = g.pbc_edge_vectors(cart, edge_index, lattice, images, num_bonds)
    torch.testing.assert_close(distances[4:], torch.full((2,), 2.0, dtype=F64))
    # edge (j=2, i=1): from centre atom 1 (x = 1) to the image of atom 2 at x = 9 - 10 = -1
    where = ((edge_index[0] == 2) & (edge_index[1] == 1)).nonzero()[0, 0]
    assert images[where].tolist() == [-1, 0, 0]
    torch.testing.assert_close(vectors[where], torch.tensor([-2.0, 0.0, 0.0], dtype=F64), rtol=0, atol=1e-12)


def test_coincident_atoms_are_not_neighbours():
    """Pairs closer than 0.01 Å are dropped like the atom-itself pair (upstream's 1e-4 Å² test)."""
    lengths, angles = _cubic(10.0)
    lattice = g.lattice_params_to_matrix(lengths, angles)
    cart = torch.tensor([[1.0, 1.0, 1.0], [1.005, 1.0, 1.0], [3.0, 1.0, 1.0]], dtype=F64)
    edge_index, _, num_bonds = g.radius_graph_pbc(cart, lattice, torch.tensor([3]), 2.5, max_neighbors=20)
    pairs = set(map(tuple, edge_index.T.tolist()))
    assert (0, 1) not in pairs and (1, 0) not in pairs
    assert pairs == {(2, 0), (0, 2), (2, 1), (1, 2)} and num_bonds.tolist() == [4]


def test_min_distance_vector_points_from_nearest_image_of_second_to_first():
    lengths, angles = _cubic(10.0)
    lattice = g.lattice_params_to_matrix(lengths, angles)
    first = torch.tensor([[0.5, 0.0, 0.0]], dtype=F64)
    second = torch.tensor([[9.5, 0.0, 0.0]], dtype=F64)
    distance_sqr, vector = g.min_distance_sqr_pbc(first, second, lattice, torch.tensor([1]))
    torch.testing.assert_close(distance_sqr, torch.tensor([1.0], dtype=F64))
    torch.testing.assert_close(vector, torch.tensor([[1.0, 0.0, 0.0]], dtype=F64), rtol=0, atol=1e-12)


# ------------------------------------------------------------------ GemNet-T graph helpers
def test_symmetrize_edges_pairs_each_edge_with_its_reverse():
    from replibench.families.crystals.models.gemnet_t import symmetrize_edges

    # crystal 0: edges (source, target) 0->1, 1->0 (duplicate direction, dropped then re-added),
    # 1->1 with image (-1,0,0) and 1->1 with (1,0,0); crystal 1: a lone 3->2 (source > target, dropped)
    edge_index = torch.tensor([[0, 1, 1, 1, 3], [1, 0, 1, 1, 2]])
    images = torch.tensor([[0, 0, 0], [0, 0, 0], [-1, 0, 0], [1, 0, 0], [0, 0, 0]])
    num_bonds = torch.tensor([4, 1])
    distances = torch.tensor([1.0, 1.0, 3.0, 3.0, 2.0], dtype=F64)
    vectors = torch.eye(3, dtype=F64)[[0, 0, 1, 1, 2]]
    new_index, new_bonds, new_distances, new_vectors, id_swap = symmetrize_edges(
        edge_index, images, num_bonds, distances, vectors)
    assert new_bonds.tolist() == [4, 0]
    assert new_index.tolist() == [[0, 1, 1, 1], [1, 1, 0, 1]]
    assert id_swap.tolist() == [2, 3, 0, 1]
    torch.testing.assert_close(new_vectors[id_swap], -new_vectors)
    torch.testing.assert_close(new_distances[id_swap], new_distances)


def test_triplets_exclude_the_edge_itself():
    from replibench.families.crystals.models.gemnet_t import triplets_of_edges

    # three edges into atom 0 (from 1, 2, and 1 again through another image), one into atom 1
    edge_index = torch.tensor([[1, 2, 1, 0], [0, 0, 0, 1]])
    id3_ba, id3_ca, ragged = triplets_of_edges(edge_index, num_nodes=3)
    triplets = sorted(zip(id3_ca.tolist(), id3_ba.tolist()))
    assert triplets == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    assert ragged.tolist() == [0, 1, 0, 1, 0, 1]


def test_decoder_is_periodic_and_shapes():
    """Translating every atom (mod 1) leaves both outputs unchanged. Cutoff 3 Å in cells wider than
    that and no max-neighbours cut: the 27-image search and the cut are not translation invariant
    in general (upstream neither), so they are kept out of this check."""
    from replibench.families.crystals.models.gemnet_t import GemNetTDecoderConfig, GemNetTDecoder

    torch.manual_seed(0)
    config = GemNetTDecoderConfig(hidden_dim=8, latent_dim=4, num_radial=8, emb_size_trip=4, emb_size_bil_trip=4,
                           emb_size_rbf=4, emb_size_cbf=4, radius=3.0)
    model = GemNetTDecoder(config).double()
    z = torch.randn(2, 4, dtype=F64)
    frac = torch.tensor([[0.1, 0.2, 0.3], [0.6, 0.7, 0.2], [0.0, 0.5, 0.5]], dtype=F64)
    args = dict(atom_types=torch.tensor([8, 14, 26]), num_atoms=torch.tensor([2, 1]),
                lengths=torch.tensor([[4.0, 4.5, 5.0], [2.8, 2.8, 2.8]], dtype=F64),
                angles=torch.tensor([[85.0, 95.0, 100.0], [90.0, 90.0, 90.0]], dtype=F64))
    coord_diff, logits = model(z, frac, **args)
    assert coord_diff.shape == (3, 3) and logits.shape == (3, 100)
    assert coord_diff[:2].abs().min() > 1e-6  # the 2-atom crystal has edges: the check is not vacuous
    moved_diff, moved_logits = model(z, (frac + torch.tensor([0.3, -0.2, 0.45], dtype=F64)) % 1.0, **args)
    torch.testing.assert_close(moved_diff, coord_diff, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(moved_logits, logits, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(coord_diff[2], torch.zeros(3, dtype=F64), rtol=0, atol=1e-9)  # 1-atom cubic: symmetric
    with pytest.raises(ValueError, match="atomic numbers"):
        model(z, frac, **{**args, "atom_types": torch.tensor([0, 14, 26])})
