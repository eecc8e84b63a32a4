"""CDVAE's DimeNet++ encoder, property model, CrystalNN graphs and released scalers against the
authors' code (txie-93/cdvae; fixture written by tools/golden/crystals_cdvae_encoder.py): same
weights copied by the recorded name map, same input, float64. Tolerance 1e-6 relative (the 2D
spherical basis is evaluated by recurrences, agreeing with PyG's closed forms to ~1e-7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golden.golden import load_fixture

RTOL = 1e-6
SMALL = {"hidden_channels": 16, "num_blocks": 2, "int_emb_size": 8, "basis_emb_size": 4, "out_emb_channels": 24,
         "num_spherical": 7, "num_radial": 6, "cutoff": 7.0, "envelope_exponent": 5, "num_before_skip": 1,
         "num_after_skip": 2, "num_output_layers": 3}


def _t(array) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array))


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("cdvae_dimenet")


def _batch(fixture) -> dict[str, torch.Tensor]:
    return {
        "atom_types": _t(fixture["batch/atom_types"]).long(),
        "frac_coords": _t(fixture["batch/frac_coords"]).double(),
        "lengths": _t(fixture["batch/lengths"]).double(),
        "angles": _t(fixture["batch/angles"]).double(),
        "num_atoms": _t(fixture["batch/num_atoms"]).long(),
        "edge_index": _t(fixture["batch/edge_index"]).long(),
        "to_jimages": _t(fixture["batch/to_jimages"]).long(),
        "num_bonds": _t(fixture["batch/num_bonds"]).long(),
    }


def _state(fixture, prefix: str) -> dict[str, torch.Tensor]:
    return {ours: _t(fixture[upstream]).double() for upstream, ours in fixture.meta["weight_map"].items()
            if upstream.startswith(prefix)}


def _encoder(fixture, readout: str):
    from replibench.families.crystals.models.cdvae_encoder import CdvaeDimeNetPP, CdvaeEncoderConfig

    model = CdvaeDimeNetPP(CdvaeEncoderConfig(num_targets=2, readout=readout, **SMALL)).double()
    model.load_state_dict(_state(fixture, "encoder/w/"), strict=True)
    return model.eval()


@pytest.mark.parametrize("readout", ["mean", "sum"])
def test_encoder_matches_upstream(fixture, readout):
    with torch.no_grad():
        out = _encoder(fixture, readout)(**_batch(fixture))
    expected = fixture[f"encoder/out_{readout}"]
    assert out.shape == expected.shape == (3, 2)
    np.testing.assert_allclose(out.numpy(), expected, rtol=RTOL, atol=1e-9)


def test_triplets_match_upstream(fixture):
    from replibench.families.crystals.models.cdvae_encoder import cdvae_triplets

    batch = _batch(fixture)
    idx_kj, idx_ji = cdvae_triplets(batch["edge_index"], int(batch["num_atoms"].sum()))
    ours = sorted(zip(idx_kj.tolist(), idx_ji.tolist()))
    theirs = sorted(zip(fixture["encoder/idx_kj"].tolist(), fixture["encoder/idx_ji"].tolist()))
    assert ours == theirs and len(ours) > 0


def test_property_model_matches_prop_model_eval(fixture):
    """Encoder output mapped back with the released mp20 prop scaler, as prop_model_eval does."""
    from replibench.families.crystals.models.cdvae_encoder import CdvaeEncoderConfig
    from replibench.families.crystals.models.cdvae_property import PropertyModel, ScalerStats

    scaler = ScalerStats(means=_t(fixture["scalers/mp20/prop/means"]), stds=_t(fixture["scalers/mp20/prop/stds"]))
    model = PropertyModel(CdvaeEncoderConfig(num_targets=1, **SMALL), scaler).double()
    model.load_state_dict(_state(fixture, "property/pw/"), strict=True)
    with torch.no_grad():
        raw = model.eval().standardised(**_batch(fixture))
        scaled = model(**_batch(fixture))
    np.testing.assert_allclose(raw.numpy(), fixture["property/raw"], rtol=RTOL, atol=1e-9)
    # upstream's inverse_transform computes in float32
    np.testing.assert_allclose(scaled.numpy(), fixture["property/inverse_transformed_mp20"], rtol=1e-6, atol=1e-5)


def test_released_size_parameter_count(fixture):
    from replibench.families.crystals.models.cdvae_encoder import CdvaeDimeNetPP, CdvaeEncoderConfig

    model = CdvaeDimeNetPP(CdvaeEncoderConfig())
    assert sum(p.numel() for p in model.parameters()) == int(fixture["full_size/num_params"])


def test_released_scalers_recorded(fixture):
    """The released prop scalers' numbers (hand-checked against the upstream files once)."""
    assert float(fixture["scalers/mp20/prop/means"]) == pytest.approx(-1.2198027, abs=1e-6)
    assert float(fixture["scalers/perovskite/prop/stds"]) == pytest.approx(0.6802187, abs=1e-6)
    assert fixture["scalers/carbon/lattice/means"].shape == (6,)


@pytest.mark.parametrize("k", range(5))
def test_crystalnn_graph_matches_upstream(fixture, k):
    from replibench.families.crystals.crystal_graph import crystalnn_graph, structure_from_arrays

    structure = structure_from_arrays(
        fixture[f"structures/{k}/lengths"], fixture[f"structures/{k}/angles"],
        fixture[f"structures/{k}/atom_types"], fixture[f"structures/{k}/frac_coords"],
    )
    edge_index, to_jimages = crystalnn_graph(structure)
    assert edge_index.dtype == np.int64 and to_jimages.dtype == np.int64
    np.testing.assert_array_equal(edge_index, fixture[f"structures/{k}/edge_index"])
    np.testing.assert_array_equal(to_jimages, fixture[f"structures/{k}/to_jimages"])
