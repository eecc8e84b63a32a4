"""CSPNet symmetries: permutation equivariance, periodic translation invariance, O(3) equivariance
of the lattice output (invariance of the other heads), and independence between crystals."""

from __future__ import annotations

import pytest
import torch

from replibench.families.crystals.models.cspnet import (
    CSPNet,
    CSPNetConfig,
    fully_connected_edges,
    sinusoidal_time_embedding,
    structure_index,
    wrap_fractional,
)

ATOL = 2e-4


def _net(tiny, dense: bool = False, extra: int = 0) -> CSPNet:
    config = CSPNetConfig(**tiny, num_type_classes=30, dense_type_input=dense, predict_types=True, extra_node_dim=extra)
    return CSPNet(config).eval()


def _run(net, batch, types, extra=None):
    t_emb = sinusoidal_time_embedding(torch.tensor([7, 300]), net.config.time_dim)
    return net(t_emb, types, batch.frac_coords, batch.lattice, batch.num_atoms, batch.batch, extra)


def _random_orthogonal(seed: int, reflect: bool) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed)))
    if (torch.det(q) < 0) != reflect:
        q = q * torch.tensor([-1.0, 1.0, 1.0])  # flip one column to get the wanted determinant
    return q


def test_fully_connected_edges_are_all_pairs_within_each_structure():
    src, dst = fully_connected_edges(torch.tensor([3, 1, 2]))
    expected = [(i, j) for lo, hi in ((0, 3), (3, 4), (4, 6)) for i in range(lo, hi) for j in range(lo, hi)]
    assert list(zip(src.tolist(), dst.tolist(), strict=True)) == expected


def test_wrap_fractional_never_returns_one():
    x = torch.tensor([-1e-9, -1.0, 0.999999999, 2.5, -0.25])
    wrapped = wrap_fractional(x)
    assert (wrapped >= 0).all() and (wrapped < 1).all()
    assert torch.allclose(wrapped[3:], torch.tensor([0.5, 0.75]))


@pytest.mark.parametrize("dense", [False, True])
def test_permuting_atoms_permutes_atom_outputs_and_keeps_lattice_output(tiny, toy_batch, dense):
    net = _net(tiny, dense=dense, extra=3)
    g = torch.Generator().manual_seed(1)
    types = torch.rand(7, 30, generator=g) if dense else toy_batch.atomic_numbers
    extra = torch.rand(7, 3, generator=g)
    perm = torch.tensor([3, 0, 4, 1, 2, 6, 5])  # shuffles atoms inside each structure
    permuted = type(toy_batch)(
        toy_batch.atomic_numbers[perm],
        toy_batch.frac_coords[perm],
        toy_batch.lattice,
        toy_batch.num_atoms,
        toy_batch.batch,
    )
    ref, out = _run(net, toy_batch, types, extra), _run(net, permuted, types[perm], extra[perm])
    assert torch.allclose(out.coords, ref.coords[perm], atol=ATOL)
    assert torch.allclose(out.type_logits, ref.type_logits[perm], atol=ATOL)
    assert torch.allclose(out.lattice, ref.lattice, atol=ATOL)


def test_periodic_translation_and_integer_shifts_leave_outputs_unchanged(tiny, toy_batch):
    net = _net(tiny)
    ref = _run(net, toy_batch, toy_batch.atomic_numbers)
    shift = torch.tensor([[0.31, -0.72, 0.55], [0.9, 0.1, -0.4]])[toy_batch.batch]  # one shift per structure
    images = torch.randint(-2, 3, (7, 3), generator=torch.Generator().manual_seed(5)).float()  # per-atom cells
    moved = type(toy_batch)(
        toy_batch.atomic_numbers,
        wrap_fractional(toy_batch.frac_coords + shift) + images,
        toy_batch.lattice,
        toy_batch.num_atoms,
        toy_batch.batch,
    )
    out = _run(net, moved, toy_batch.atomic_numbers)
    assert torch.allclose(out.coords, ref.coords, atol=ATOL)
    assert torch.allclose(out.lattice, ref.lattice, atol=ATOL)
    assert torch.allclose(out.type_logits, ref.type_logits, atol=ATOL)


@pytest.mark.parametrize("reflect", [False, True])
def test_orthogonal_transform_of_lattice_rotates_lattice_output_only(tiny, toy_batch, reflect):
    net = _net(tiny)
    q = _random_orthogonal(11, reflect)
    ref = _run(net, toy_batch, toy_batch.atomic_numbers)
    rotated = type(toy_batch)(
        toy_batch.atomic_numbers, toy_batch.frac_coords, toy_batch.lattice @ q.T, toy_batch.num_atoms, toy_batch.batch
    )  # rows a, b, c -> Q a, Q b, Q c
    out = _run(net, rotated, toy_batch.atomic_numbers)
    assert torch.allclose(out.lattice, ref.lattice @ q.T, atol=ATOL)
    assert torch.allclose(out.coords, ref.coords, atol=ATOL)
    assert torch.allclose(out.type_logits, ref.type_logits, atol=ATOL)


def test_outputs_of_a_crystal_do_not_depend_on_the_rest_of_the_batch(tiny, toy_batch):
    net = _net(tiny)
    ref = _run(net, toy_batch, toy_batch.atomic_numbers)
    alone_counts = toy_batch.num_atoms[1:]
    out = net(
        sinusoidal_time_embedding(torch.tensor([300]), net.config.time_dim),
        toy_batch.atomic_numbers[5:],
        toy_batch.frac_coords[5:],
        toy_batch.lattice[1:],
        alone_counts,
        structure_index(alone_counts),
    )
    assert torch.allclose(out.coords, ref.coords[5:], atol=ATOL)
    assert torch.allclose(out.lattice, ref.lattice[1:], atol=ATOL)


def test_forward_calls_are_counted(tiny, toy_batch):
    net = _net(tiny)
    for _ in range(3):
        _run(net, toy_batch, toy_batch.atomic_numbers)
    assert net.evaluations == 3
