"""Our EquiformerV2 equals fairchem's (``tests/golden/oc20_equiformer_v2.npz``, written by
``tools/golden/oc20_equiformer_v2.py`` from FAIR-Chem/fairchem @ 31c0963).

The fixture stores no weights: both sides fill every parameter from the same seeded recipe
(:func:`recipe_value`, multiples of 1/64), checked here against the generator's per-parameter sums.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
import torch

from golden.golden import float64_default, load_fixture

# float64 on both sides; measured max |difference|: lmax 3 case energy 0, forces 8.6e-16 (|F| <= 0.085);
# lmax 6 case energy 2.3e-17, forces 6.5e-15 (|F| <= 0.51).
ATOL_ENERGY = 1e-12
ATOL_FORCES = 1e-12


def recipe_value(name: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Same recipe as the generator: N(0, scale^2) seeded by the name, rounded to 1/64."""
    generator = torch.Generator().manual_seed(seed ^ zlib.crc32(name.encode()))
    scale = 1.0 / np.sqrt(shape[-1]) if len(shape) > 1 else 0.3
    draw = torch.randn(shape, generator=generator, dtype=torch.float64) * scale
    return torch.round(draw * 64) / 64


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("oc20_equiformer_v2")


def _notes(fixture) -> dict:
    return json.loads(fixture.meta["notes"])


def _model(fixture, case: str = ""):
    """Our model at the fixture's config (``case`` "" or "l6"), weights from the recipe."""
    from replibench.families.oc20.models.equiformer_v2 import EquiformerV2, EquiformerV2Config

    suffix, prefix = (f"_{case}", f"{case}/") if case else ("", "")
    config = dict(_notes(fixture)[f"config{suffix}"])
    config["cutoff"] = config.pop("max_radius")  # fairchem's name -> ours (the OC20 tasks' cutoff)
    with float64_default():
        model = EquiformerV2(EquiformerV2Config(**config)).double()
    seed = int(fixture["recipe_seed"])
    params = dict(model.named_parameters())
    names = _notes(fixture)[f"param_names{suffix}"]
    assert list(params) == names
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(recipe_value(name, tuple(p.shape), seed))
    sums = np.array([float(params[n].detach().abs().sum()) for n in names])
    np.testing.assert_array_equal(sums, fixture[f"{prefix}recipe/sum_abs"])
    return model.eval()


def _graph(fixture):
    from replibench.families.oc20.types import AtomsGraph

    natoms = fixture["natoms"]
    batch = np.repeat(np.arange(len(natoms)), natoms)
    edges = fixture["edges"]
    source, target, offsets = edges[0], edges[1], edges[2:].T.astype(np.float64)
    shift = np.einsum("ek,ekc->ec", offsets, fixture["cell"][batch[source]])  # offsets @ cell, Å
    return AtomsGraph(
        atomic_numbers=torch.from_numpy(fixture["atomic_numbers"]),
        pos=torch.from_numpy(fixture["pos"]),
        cell=torch.from_numpy(fixture["cell"]),
        batch=torch.from_numpy(batch),
        natoms=torch.from_numpy(natoms),
        edge_index=torch.from_numpy(np.stack([source, target])),
        edge_shift=torch.from_numpy(shift),
        tags=torch.from_numpy(fixture["tags"]),
        fixed=torch.from_numpy(fixture["fixed"].astype(bool)),
    )


def test_state_dict_keys_are_fairchems(fixture):
    model = _model(fixture)
    assert list(model.state_dict().keys()) == _notes(fixture)["state_dict_keys"]
    assert set(fixture.meta["weight_map"].values()) == set(model.state_dict().keys())


def _fairchem_jd(fixture, lmax: int) -> list[torch.Tensor]:
    return [torch.from_numpy(fixture[f"jd/l{l}"]) for l in range(lmax + 1)]


def test_wigner_j_matrices_are_fairchems_jd_table(fixture):
    """Our computed J (no Jd.pt unpickled) equals fairchem's table for l <= 6 (measured 4.8e-15)."""
    from replibench.families.oc20.models.equiformer_v2 import wigner_j_matrices

    for l, ours in enumerate(wigner_j_matrices(6)):
        np.testing.assert_allclose(ours.numpy(), fixture[f"jd/l{l}"], rtol=0, atol=1e-13)
        np.testing.assert_allclose((ours @ ours).numpy(), np.eye(2 * l + 1), rtol=0, atol=1e-13)  # involution


def test_wigner_matrices_match_fairchem_and_e3nn(fixture):
    """Our Z J Z J Z construction equals e3nn's ``wigner_D`` and fairchem's ``wigner_D`` (Jd.pt)
    to round-off for l <= 6, whatever the caller's default dtype."""
    from replibench.families.oc20.models.equiformer_v2 import _block_wigner, wigner_from_angles, wigner_j_matrices

    angles = torch.from_numpy(fixture["wigner/angles"])
    a, b, g = angles[:, 0], angles[:, 1], angles[:, 2]
    ours = wigner_from_angles(a, b, g, wigner_j_matrices(6))
    np.testing.assert_allclose(ours.numpy(), _block_wigner(a, b, g, 6).numpy(), rtol=0, atol=1e-13)
    for l in range(7):
        block = slice(l * l, (l + 1) ** 2)
        np.testing.assert_allclose(ours[:, block, block].numpy(), fixture[f"wigner/l{l}"], rtol=0, atol=1e-13)


def test_edge_frames_match_fairchem(fixture):
    from replibench.families.oc20.models.equiformer_v2 import edge_rotation_matrices

    graph = _graph(fixture)
    vectors = graph.edge_vectors()
    reference = torch.from_numpy(fixture["edge_reference"])
    ours = edge_rotation_matrices(vectors, reference)[:16]
    np.testing.assert_allclose(ours.numpy(), fixture["edge_rot_mat_first16"], rtol=0, atol=1e-14)
    # our forward draws its references exactly as fairchem's does (same call, same RNG state)
    torch.manual_seed(int(fixture["frame_seed"]))
    np.testing.assert_array_equal((torch.rand_like(vectors) - 0.5).numpy(), fixture["edge_reference"])


def test_equiformer_v2_matches_fairchem(fixture):
    """Same weights, edges and edge-frame draws: energies and forces agree to float64 round-off
    (measured max |difference|: energy 0, forces 8.6e-16, on |F| <= 0.085)."""
    model = _model(fixture)
    graph = _graph(fixture)
    torch.manual_seed(int(fixture["frame_seed"]))  # the random edge-frame draws fairchem made
    with torch.no_grad():
        energy, forces = model(graph)
    assert energy.shape == (2,) and forces.shape == (graph.pos.shape[0], 3)
    np.testing.assert_allclose(energy.numpy(), fixture["energy"], rtol=0, atol=ATOL_ENERGY)
    np.testing.assert_allclose(forces.numpy(), fixture["forces"], rtol=0, atol=ATOL_FORCES)
    # the same through an explicit frame reference (what the equivariance test relies on)
    model.frame_reference = torch.from_numpy(fixture["edge_reference"])
    with torch.no_grad():
        energy2, forces2 = model(graph)
    np.testing.assert_allclose(energy2.numpy(), fixture["energy"], rtol=0, atol=ATOL_ENERGY)
    np.testing.assert_allclose(forces2.numpy(), fixture["forces"], rtol=0, atol=ATOL_FORCES)


def test_default_config_builds_fairchems_2m_model(fixture):
    """Our defaults give fairchem's S2EF-2M model (built by the generator from the yml itself):
    same parameter count (83,164,802: the paper's 83M) and the same state_dict (key, shape) list
    (11,515 entries, buffers of the shared helper modules included)."""
    import hashlib

    from replibench.families.oc20.models.equiformer_v2 import EquiformerV2

    full = _notes(fixture)["full_config"]
    model = EquiformerV2(EquiformerV2.Config())
    shapes = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert sum(p.numel() for p in model.parameters()) == full["num_params"]
    assert len(shapes) == full["num_state_dict_entries"]
    assert hashlib.sha256(json.dumps(shapes).encode()).hexdigest() == full["state_dict_shapes_sha256"]


def test_production_degrees_match_fairchem(fixture):
    """lmax 6, mmax 2, grid 18 (the 2M config's degrees; one tiny layer), same inputs and draws."""
    model = _model(fixture, "l6")
    model.frame_reference = torch.from_numpy(fixture["edge_reference"])
    with torch.no_grad():
        energy, forces = model(_graph(fixture))
    np.testing.assert_allclose(energy.numpy(), fixture["l6/energy"], rtol=0, atol=ATOL_ENERGY)
    np.testing.assert_allclose(forces.numpy(), fixture["l6/forces"], rtol=0, atol=ATOL_FORCES)


def test_gaunt_selfmix_variant_is_fairchems_equiformer_v2_plus_its_blocks(fixture):
    """EquiformerV2 + Gaunt-Selfmix (the Gaunt paper's model; its code was never released): with
    its Selfmix blocks' output maps at zero it is exactly fairchem's EquiformerV2 (same weights,
    edges and frame draws as the fixture); with them live the outputs move. The block itself is the
    Gaunt product checked against the authors' (tests/oc20/test_oc20_gaunt_selfmix.py, oc20_gaunt_tp)."""
    from replibench.families.oc20.models.equiformer_v2_gaunt import EquiformerV2GauntSelfmix

    plain = _model(fixture)
    with float64_default():
        variant = EquiformerV2GauntSelfmix(EquiformerV2GauntSelfmix.Config(**plain.config.__dict__
                                                                          | {"gaunt_selfmix": True})).double()
    missing, unexpected = variant.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".norm_selfmix." in k or ".selfmix." in k for k in missing)
    with torch.no_grad():
        for block in variant.blocks:
            block.selfmix.weight_out.zero_()
            block.selfmix.bias_out.zero_()
    variant.eval()
    graph = _graph(fixture)
    torch.manual_seed(int(fixture["frame_seed"]))
    with torch.no_grad():
        energy, forces = variant(graph)
    np.testing.assert_allclose(energy.numpy(), fixture["energy"], rtol=0, atol=ATOL_ENERGY)
    np.testing.assert_allclose(forces.numpy(), fixture["forces"], rtol=0, atol=ATOL_FORCES)
    with torch.no_grad():
        for block in variant.blocks:
            block.selfmix.weight_out.fill_(0.05)
    torch.manual_seed(int(fixture["frame_seed"]))
    with torch.no_grad():
        energy_live, _ = variant(graph)
    assert (energy_live - energy).abs().max() > 1e-6
