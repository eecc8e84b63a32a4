"""SchNet, DimeNet++ and the equivariant model on small periodic slab batches.

Every model: shapes, force = -dE/dpos (finite differences), rotation of positions and cell
(energy invariant, forces rotate), translation and wrap-around invariance, permutation
equivariance, forces under ``torch.no_grad()``, and a few optimiser steps lowering an
energy + force loss. Models are built at the ``smoke`` sizes of the family (same code as paper).
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields, replace

import pytest
import torch
from e3nn import o3
from oc20_model_graphs import make_batch, random_slab, rotated

from replibench.errors import ConfigError
from replibench.families.oc20.family import EQUIFORMER_MODELS, SMOKE_MODEL
from replibench.families.oc20.models import dimenet_pp, equivariant, schnet
from replibench.families.task import build_registered_model

torch.set_num_threads(1)

MODELS = {
    "schnet": (schnet.SchNet, schnet.SchNetConfig, SMOKE_MODEL["schnet"]),
    "dimenet-pp": (dimenet_pp.DimeNetPP, dimenet_pp.DimeNetPPConfig, SMOKE_MODEL["dimenet-pp"]),
    "equivariant": (equivariant.EquivariantModel, equivariant.EquivariantConfig, SMOKE_MODEL["equivariant-cg"]),
}
VARIANTS = {
    "schnet": ("schnet", {}),
    "schnet-direct": ("schnet", {"direct_forces": True}),
    "dimenet-pp": ("dimenet-pp", {"detach_angles": False}),
    "dimenet-pp-fairchem-angles": ("dimenet-pp", {}),
    "dimenet-pp-direct": ("dimenet-pp", {"direct_forces": True}),
    "equivariant-cg": ("equivariant", {"tp": "cg"}),
    "equivariant-gaunt": ("equivariant", {"tp": "gaunt"}),
    "equivariant-cg-direct": ("equivariant", {"tp": "cg", "direct_forces": True}),
    "equivariant-gaunt-direct": ("equivariant", {"tp": "gaunt", "direct_forces": True}),
}
CONSERVATIVE = ["schnet", "dimenet-pp", "equivariant-cg", "equivariant-gaunt"]


def build(variant: str, seed: int = 0) -> torch.nn.Module:
    name, overrides = VARIANTS[variant]
    cls, config_cls, smoke = MODELS[name]
    torch.manual_seed(seed)
    model = cls(config_cls(**{**smoke, **overrides})).double()
    if name == "dimenet-pp":  # its output layers start at zero (fairchem/PyG): give them weights
        generator = torch.Generator().manual_seed(seed)
        for block in model.output_blocks:
            block.lin.weight.data = 0.3 * torch.randn(block.lin.weight.shape, generator=generator, dtype=torch.float64)
    return model


def structures(seed: int, count: int = 2):
    generator = torch.Generator().manual_seed(seed)
    return [random_slab(generator) for _ in range(count)]


@pytest.fixture(scope="module")
def slabs():
    return structures(0)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_forward_shapes_and_finite(variant, slabs):
    graph = make_batch(slabs)
    energy, forces = build(variant)(graph)
    assert energy.shape == (2,) and forces.shape == (graph.pos.shape[0], 3)
    assert energy.dtype == forces.dtype == torch.float64
    assert torch.isfinite(energy).all() and torch.isfinite(forces).all()
    assert forces.abs().max() > 0


@pytest.mark.parametrize("variant", CONSERVATIVE)
def test_forces_are_negative_energy_gradient(variant, slabs):
    graph = make_batch(slabs)
    model = build(variant).eval()
    forces = model(graph)[1].detach()
    step = 1e-5
    generator = torch.Generator().manual_seed(3)
    for atom in torch.randint(graph.pos.shape[0], (2,), generator=generator).tolist():
        for axis in range(3):
            energies = []
            for sign in (1, -1):
                moved = graph.pos.clone()
                moved[atom, axis] += sign * step
                with torch.no_grad():
                    energies.append(model(replace(graph, pos=moved))[0].sum())
            numeric = -(energies[0] - energies[1]) / (2 * step)
            assert float(forces[atom, axis]) == pytest.approx(float(numeric), abs=1e-6, rel=1e-5)


def test_fairchem_angle_detach_changes_forces_only(slabs):
    """fairchem's DimeNet++ takes angles from pos.detach(): same energy, forces miss the angle term."""
    graph = make_batch(slabs)
    exact_energy, exact_forces = build("dimenet-pp")(graph)
    fairchem_energy, fairchem_forces = build("dimenet-pp-fairchem-angles")(graph)
    torch.testing.assert_close(exact_energy, fairchem_energy)
    assert (exact_forces - fairchem_forces).abs().max() > 1e-6


def random_rotation(seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    angles = (torch.rand(3, generator=generator, dtype=torch.float64) * 2 * math.pi).unbind()
    return o3.angles_to_matrix(*angles)  # (3, 3)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rotation_energy_invariant_forces_rotate(variant, slabs):
    model = build(variant)
    energy, forces = model(make_batch(slabs))
    for seed in (1, 2):
        rotation = random_rotation(seed)
        graph = make_batch(rotated(slabs, rotation))  # positions and cells rotated, graph rebuilt
        rotated_energy, rotated_forces = model(graph)
        torch.testing.assert_close(rotated_energy, energy, atol=1e-10, rtol=1e-10)
        torch.testing.assert_close(rotated_forces, forces @ rotation.T, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_translation_and_wrapping_invariance(variant, slabs):
    model = build(variant)
    energy, forces = model(make_batch(slabs))
    moved = []
    for z, pos, cell, tags in slabs:
        shifted = pos + torch.tensor([0.7, -1.3, 0.4], dtype=torch.float64)
        shifted[0] = shifted[0] + cell[0] - 2 * cell[1]  # same crystal, atom 0 in another cell
        moved.append((z, shifted, cell, tags))
    moved_energy, moved_forces = model(make_batch(moved))
    torch.testing.assert_close(moved_energy, energy, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(moved_forces, forces, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_permutation_equivariance(variant, slabs):
    model = build(variant)
    energy, forces = model(make_batch(slabs))
    generator = torch.Generator().manual_seed(5)
    permutations = [torch.randperm(z.shape[0], generator=generator) for z, *_ in slabs]
    permuted = [(z[p], pos[p], cell, tags[p]) for (z, pos, cell, tags), p in zip(slabs, permutations)]
    permuted_energy, permuted_forces = model(make_batch(permuted))
    offsets = [0, slabs[0][0].shape[0]]
    order = torch.cat([p + o for p, o in zip(permutations, offsets)])
    torch.testing.assert_close(permuted_energy, energy, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(permuted_forces, forces[order], atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("variant", CONSERVATIVE)
def test_autograd_forces_under_no_grad(variant, slabs):
    graph = make_batch(slabs)
    model = build(variant).eval()
    expected = model(graph)[1]
    with torch.no_grad():
        energy, forces = model(graph)
    torch.testing.assert_close(forces, expected)
    assert not forces.requires_grad and not energy.requires_grad  # nothing kept alive


@pytest.mark.parametrize("variant", CONSERVATIVE)
def test_training_keeps_graph_for_force_loss(variant, slabs):
    model = build(variant).train()
    energy, forces = model(make_batch(slabs))
    assert energy.requires_grad and forces.requires_grad
    forces.square().sum().backward()  # second-order: force loss reaches the parameters
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def pair_potential_labels(graph):
    """Synthetic targets: a Morse-like pair energy on the same periodic graph, forces by autograd."""
    pos = graph.pos.detach().requires_grad_(True)
    source, target = graph.edge_index
    distance = (pos[source] + graph.edge_shift - pos[target]).norm(dim=-1)  # (E,)
    pair = (1 - torch.exp(-1.5 * (distance - 2.6))) ** 2 - 1  # (E,)
    energy = torch.zeros(graph.num_structures, dtype=pos.dtype).index_add(0, graph.batch[target], 0.5 * pair)
    (grad,) = torch.autograd.grad(energy.sum(), pos)
    return energy.detach(), -grad


# the three slowest (~5 s each on a quiet CPU) run with the workflow tests; training of every model
# is also exercised end to end by the OC20 smoke workflow test
_SLOW = pytest.mark.workflow


@pytest.mark.parametrize("variant", [
    "schnet", "equivariant-gaunt-direct", pytest.param("dimenet-pp", marks=_SLOW),
    pytest.param("equivariant-cg", marks=_SLOW), pytest.param("equivariant-gaunt", marks=_SLOW),
])
def test_optimisation_lowers_energy_and_force_loss(variant):
    graph = make_batch(structures(7, count=3))
    energy_target, force_target = pair_potential_labels(graph)
    model = build(variant).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss_fn():
        energy, forces = model(graph)
        free = ~graph.fixed
        force_l2mae = (forces[free] - force_target[free]).norm(dim=-1).mean()  # fairchem's "l2mae"
        return (energy - energy_target).abs().mean() + 10 * force_l2mae

    initial = float(loss_fn().detach())
    for _ in range(15):
        optimiser.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimiser.step()
    assert float(loss_fn().detach()) < 0.8 * initial


@pytest.mark.parametrize("name", sorted(SMOKE_MODEL))
def test_smoke_sizes_are_config_fields_and_small(name):
    from replibench.registry import resolve

    cls = resolve("model", name)
    assert set(SMOKE_MODEL[name]) <= {f.name for f in fields(cls.Config)}
    model = build_registered_model(name, SMOKE_MODEL[name], cutoff=6.0, regress_forces=True)
    assert sum(p.numel() for p in model.parameters()) < 200_000
    assert asdict(model.config) == asdict(cls.Config(**SMOKE_MODEL[name], cutoff=6.0))  # paper = defaults + sizes


def test_paper_schnet_matches_fairchem_size():
    # research notes §7: fairchem's S2EF-2M SchNet has 9.09 M parameters
    model = schnet.SchNet(schnet.SchNetConfig())
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(9.09e6, rel=0.01)


def test_equivariant_rejects_unknown_tensor_product():
    with pytest.raises(ValueError, match="tp must be one of"):
        equivariant.EquivariantModel(equivariant.EquivariantConfig(tp="fft"))


@pytest.mark.parametrize("name", sorted(set(SMOKE_MODEL) - set(EQUIFORMER_MODELS)))
def test_registry_build_overrides_and_energy_only(name, slabs):
    model = build_registered_model(name, {**SMOKE_MODEL[name], "direct_forces": True}, cutoff=6.0, regress_forces=True)
    assert model.config.direct_forces and model.config.cutoff == 6.0
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        build_registered_model(name, {"hidden_size": 3}, cutoff=6.0, regress_forces=True)
    energy_only = build_registered_model(name, SMOKE_MODEL[name], cutoff=6.0, regress_forces=False).double()
    energy, forces = energy_only(make_batch(slabs))
    assert forces is None and energy.shape == (2,)


def test_equivariant_registry_names_fix_the_tensor_product():
    cg = build_registered_model("equivariant-cg", SMOKE_MODEL["equivariant-cg"], cutoff=6.0, regress_forces=True)
    gaunt = build_registered_model("equivariant-gaunt", SMOKE_MODEL["equivariant-gaunt"], cutoff=6.0,
                                   regress_forces=True)
    assert (cg.config.tp, gaunt.config.tp) == ("cg", "gaunt")
    assert cg.layers[0].tp.kind == "cg" and gaunt.layers[0].tp.kind == "gaunt"
    with pytest.raises(ValueError, match="use the registry model 'equivariant-gaunt'"):
        build_registered_model("equivariant-cg", {"tp": "gaunt"}, cutoff=6.0, regress_forces=True)


@pytest.mark.parametrize("name", EQUIFORMER_MODELS)
def test_equiformer_models_are_s2ef_only_with_their_direct_force_head(name, slabs):
    """EquiformerV2 (± Gaunt-Selfmix) regresses forces with its own head (fairchem's S2EF model):
    built through the registry at smoke sizes it predicts both; asked for energy only it refuses."""
    sizes = {**SMOKE_MODEL[name], "lmax_list": [2], "grid_resolution": 6}
    model = build_registered_model(name, sizes, cutoff=6.0, regress_forces=True).double().eval()
    energy, forces = model(make_batch(slabs))
    assert energy.shape == (2,) and forces.shape == (make_batch(slabs).pos.shape[0], 3)
    assert model.config.gaunt_selfmix == (name == "equiformer-v2-gaunt-selfmix")
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        build_registered_model(name, {"hidden_size": 3}, cutoff=6.0, regress_forces=True)
    with pytest.raises(ValueError, match="only S2EF with the direct force head"):
        build_registered_model(name, sizes, cutoff=6.0, regress_forces=False)
