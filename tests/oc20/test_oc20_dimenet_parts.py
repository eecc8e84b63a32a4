"""DimeNet++ pieces: periodic triplets against a brute-force loop, our spherical basis against PyG's."""

from __future__ import annotations

import torch
from oc20_model_graphs import random_batch
from torch_geometric.nn.models.dimenet import SphericalBasisLayer

from replibench.models.dimenet_pp import SphericalBasis, periodic_triplets, spherical_bessel

torch.set_num_threads(1)


def test_periodic_triplets_match_brute_force():
    graph = random_batch(3, cutoff=4.0)
    source, target = graph.edge_index
    expected = set()
    for ji in range(source.shape[0]):
        for kj in (target == source[ji]).nonzero().flatten().tolist():
            back_tracking = source[kj] == target[ji] and (graph.edge_shift[kj] + graph.edge_shift[ji]).norm() < 1e-6
            if not back_tracking:
                expected.add((kj, ji))
    idx_kj, idx_ji = periodic_triplets(graph.edge_index, graph.edge_shift, graph.pos.shape[0])
    found = list(zip(idx_kj.tolist(), idx_ji.tolist()))
    assert len(found) == len(set(found)) == len(expected)
    assert set(found) == expected


def test_periodic_triplets_keep_other_images_of_the_same_atom():
    # two atoms in a 1D chain with period 3 Å: j's neighbours are i's two images (left and right)
    edge_index = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]])  # edges 0,1: 1->0; edges 2,3: 0->1
    edge_shift = torch.tensor([[0.0, 0, 0], [-3.0, 0, 0], [0.0, 0, 0], [3.0, 0, 0]])
    idx_kj, idx_ji = periodic_triplets(edge_index, edge_shift, 2)
    pairs = set(zip(idx_kj.tolist(), idx_ji.tolist()))
    # edge 0 (1->0, shift 0) pairs with edge 3 (0->1 through +3), not with its reverse edge 2
    assert (3, 0) in pairs and (2, 0) not in pairs
    assert (2, 1) in pairs and (3, 1) not in pairs
    assert len(pairs) == 4


def test_spherical_bessel_known_values():
    x = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    values = spherical_bessel(2, x)
    torch.testing.assert_close(values[:, 0], torch.sin(x) / x)
    j2 = (3 / x**3 - 1 / x) * torch.sin(x) - 3 * torch.cos(x) / x**2  # hand-derived closed form
    torch.testing.assert_close(values[:, 2], j2)


def test_spherical_basis_matches_torch_geometric():
    ours = SphericalBasis(3, 2, cutoff=6.0, envelope_exponent=5)
    reference = SphericalBasisLayer(3, 2, cutoff=6.0, envelope_exponent=5)  # sympy-built, ~2 s
    generator = torch.Generator().manual_seed(0)
    distance = torch.rand(40, generator=generator, dtype=torch.float64) * 4.5 + 1.0
    angle = torch.rand(100, generator=generator, dtype=torch.float64) * torch.pi
    idx_kj = torch.randint(40, (100,), generator=generator)
    # PyG's Bessel zeros are float32, so agreement is to ~1e-7 relative
    torch.testing.assert_close(ours(distance, angle, idx_kj), reference(distance, angle, idx_kj), rtol=1e-6, atol=1e-6)
