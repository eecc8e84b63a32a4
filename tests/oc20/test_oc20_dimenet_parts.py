"""DimeNet++ pieces: periodic triplets against a brute-force loop, our spherical basis against PyG's."""

from __future__ import annotations

import torch
from oc20_model_graphs import random_batch
from torch_geometric.nn.models.dimenet import SphericalBasisLayer

from replibench.families.oc20.models.dimenet_pp import SphericalBasis, periodic_triplets, spherical_bessel

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


def test_parameter_count_of_fairchems_oc20_config():
    """fairchem configs/oc20/s2ef/2M/dimenet_plus_plus/dpp.yml (hidden 192, out_emb 192, 3 blocks,
    int_emb 64, basis_emb 8, 7 spherical, 6 radial): 1,810,182 parameters in fairchem@31c0963's
    DimeNetPlusPlusWrap (counted there). By hand: Bessel frequencies 6; embedding 95*192 +
    (6*192 + 192) + (3*192*192 + 192) = 130,368; 4 output blocks of 6*192 + (192*192 + 192) +
    3*(192*192 + 192) + 192 = 149,568; 3 interaction blocks of 360,512. PyG's output block (no
    ``lin_up`` bias) gives 768 fewer."""
    from replibench.families.oc20.models.dimenet_pp import DimeNetPP, DimeNetPPConfig

    model = DimeNetPP(DimeNetPPConfig())
    assert sum(p.numel() for p in model.parameters()) == 6 + 130_368 + 4 * 149_568 + 3 * 360_512 == 1_810_182
    for block in model.output_blocks:
        assert block.lin_up.bias is not None and block.lin_up.bias.shape == (192,)


def test_output_block_adds_the_up_projection_bias():
    """One atom with one incoming edge: out = lin(act(lins(lin_up(rbf-gated message)))), by hand."""
    from replibench.families.oc20.models.dimenet_pp import OutputBlock

    torch.manual_seed(0)
    block = OutputBlock(num_radial=2, hidden_channels=3, out_emb_channels=4, out_channels=1, num_layers=1,
                        act=torch.nn.functional.silu).double()
    torch.nn.init.normal_(block.lin.weight)
    torch.nn.init.normal_(block.lin_up.bias)
    x, rbf = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)
    target = torch.tensor([0, 0])
    summed = (rbf @ block.lin_rbf.weight.T * x).sum(0)  # (3,) both edges arrive at atom 0
    up = block.lin_up.weight @ summed + block.lin_up.bias  # (4,): the bias PyG's block lacks
    expected = block.lin.weight @ torch.nn.functional.silu(block.lins[0].weight @ up + block.lins[0].bias)
    out = block(x, rbf, target, num_nodes=1)
    assert out.shape == (1, 1)
    torch.testing.assert_close(out[0], expected, rtol=1e-12, atol=0)
