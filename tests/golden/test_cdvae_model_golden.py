"""The whole CDVAE model against the authors' released code (txie-93/cdvae ``cdvae/pl_modules/model.py``
class ``CDVAE``; fixture written by tools/golden/crystals_cdvae_model.py): same weights copied by the
recorded name map, same batch, the random draws upstream made fed to ours, float64.

Upstream ran with ``Tensor.float`` giving float64 (its ``StandardScalerTorch`` and the
``num_atoms.float() ** (1/3)`` lattice scaling otherwise round to float32); ours runs under the same
patch (``_float_is_double``), so both compute the whole pipeline in float64. Tolerance 1e-6 relative;
the absolute floor is relative to each array's largest entry (entries that are zero by symmetry, e.g.
the score on the 1-atom cubic crystal, are round-off upstream)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from golden.golden import load_fixture

RTOL = 1e-6
# the generator's sizes (tools/golden/crystals_cdvae_model.py HPARAMS, ENCODER, DECODER_HIDDEN, STEP_LR)
CONFIG = {"hidden_dim": 8, "latent_dim": 8, "fc_num_layers": 2, "max_atoms": 4, "cost_natom": 1.0, "cost_coord": 10.0,
          "cost_type": 1.0, "cost_lattice": 10.0, "cost_composition": 1.0, "cost_property": 1.0, "beta": 0.01,
          "teacher_forcing_lattice": True, "max_neighbors": 20, "radius": 7.0, "sigma_begin": 2.0, "sigma_end": 0.1,
          "type_sigma_begin": 1.5, "type_sigma_end": 0.05, "num_noise_level": 10, "predict_property": True,
          "decoder_hidden_dim": 16, "encoder_hidden_channels": 16, "encoder_num_blocks": 2,
          "encoder_int_emb_size": 8, "encoder_basis_emb_size": 4, "encoder_out_emb_channels": 24,
          "encoder_num_spherical": 7, "encoder_num_radial": 6, "encoder_cutoff": 7.0, "encoder_readout": "mean",
          "step_lr": 1e-3}
GEMNET_INNER_SIZES = {"num_radial": 16, "emb_size_trip": 8, "emb_size_bil_trip": 8, "emb_size_rbf": 4, "emb_size_cbf": 4}
LOSS_TERMS = ("num_atom_loss", "lattice_loss", "composition_loss", "coord_loss", "type_loss", "kld_loss",
              "property_loss")


def _t(array) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array))


def _close(actual: torch.Tensor, expected: np.ndarray, rtol: float = RTOL, err_msg: str = "") -> None:
    actual = actual.detach().numpy()
    scale = max(float(np.abs(expected).max()), 1e-300) if np.size(expected) else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-10 * scale, err_msg=err_msg)


@contextlib.contextmanager
def _float_is_double():
    """``Tensor.float`` gives float64 while ours runs, as it did while upstream ran."""
    original = torch.Tensor.float
    torch.Tensor.float = lambda self, *args, **kwargs: self.to(torch.float64)
    try:
        yield
    finally:
        torch.Tensor.float = original


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("cdvae_model")


@pytest.fixture(scope="module")
def model(fixture):
    from replibench.families.crystals.models.cdvae import CDVAE, CDVAEConfig
    from replibench.families.crystals.models.gemnet_t import GemNetTDecoder, GemNetTDecoderConfig

    net = CDVAE(CDVAEConfig(**CONFIG))
    # the generator reduced GemNetT's inner sizes (as crystals_cdvae_decoder.py): same decoder class
    net.decoder = GemNetTDecoder(GemNetTDecoderConfig(hidden_dim=16, latent_dim=8, max_neighbors=20, radius=7.0,
                                                      **GEMNET_INNER_SIZES))
    net = net.double()
    ours = net.state_dict()
    state = {}
    for upstream, name in fixture.meta["weight_map"].items():
        value = _t(fixture[upstream]).to(torch.float64)
        assert ours[name].shape == value.shape, (upstream, name)
        if name.endswith("_scale"):  # GemNet-dT scale factors: ours come from our JSON, checked equal
            assert float(ours[name]) == float(value), (name, float(ours[name]), float(value))
        else:
            state[name] = value
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    allowed = ("sigmas", "type_sigmas", "lattice_scaler.means", "lattice_scaler.stds", "property_scaler.means",
               "property_scaler.stds")
    assert all(name.endswith("_scale") or name in allowed for name in missing), missing
    net.lattice_scaler.set_statistics(_t(fixture["scaler/lattice/means"]), _t(fixture["scaler/lattice/stds"]))
    net.property_scaler.set_statistics(_t(fixture["scaler/prop/means"]), _t(fixture["scaler/prop/stds"]))
    net.eval()
    return net


@pytest.fixture(scope="module")
def batch(fixture):
    from replibench.families.crystals.models.cdvae import CDVAEBatch

    num_atoms = _t(fixture["batch/num_atoms"]).long()
    return CDVAEBatch(
        atomic_numbers=_t(fixture["batch/atom_types"]).long(), frac_coords=_t(fixture["batch/frac_coords"]).double(),
        lengths=_t(fixture["batch/lengths"]).double(), angles=_t(fixture["batch/angles"]).double(),
        num_atoms=num_atoms, batch=torch.repeat_interleave(torch.arange(num_atoms.shape[0]), num_atoms),
        edge_index=_t(fixture["batch/edge_index"]).long(), to_jimages=_t(fixture["batch/to_jimages"]).long(),
        num_bonds=_t(fixture["batch/num_bonds"]).long(), training_property=_t(fixture["batch/property"]).double())


def test_noise_levels_match(model, fixture):
    np.testing.assert_array_equal(model.sigmas.numpy(), fixture["sigmas"])
    np.testing.assert_array_equal(model.type_sigmas.numpy(), fixture["type_sigmas"])


def test_property_scaler_gives_upstreams_scaled_target(model, fixture):
    with _float_is_double():
        scaled = model.property_scaler.transform(_t(fixture["batch/property"]))
    _close(scaled, fixture["batch/y_scaled"])


def test_encode_matches(model, batch, fixture):
    with _float_is_double(), torch.no_grad():
        mu, log_var = model.posterior(batch)
        generator = torch.Generator().manual_seed(11)
        _, _, z = model.encode(batch, generator)
    _close(mu, fixture["encode/mu"])
    _close(log_var, fixture["encode/log_var"])
    # z = ε · exp(log_var / 2) + mu (CDVAE.reparameterize), ε the generator's next standard normals
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    expected = eps.numpy() * np.exp(0.5 * fixture["encode/log_var"]) + fixture["encode/mu"]
    _close(z, expected)


@pytest.mark.parametrize("tag,teacher_forcing", [("tf", True), ("notf", False)])
def test_decode_stats_training_form(model, batch, fixture, tag, teacher_forcing):
    z = _t(fixture["encode/z"])
    with _float_is_double(), torch.no_grad():
        stats = model.decode_stats(z, batch.num_atoms, batch.lengths, batch.angles, teacher_forcing=teacher_forcing)
    _close(stats.num_atoms, fixture[f"decode/{tag}/num_atoms"])
    _close(stats.scaled_lattice, fixture[f"decode/{tag}/scaled_lattice"])
    _close(stats.lengths, fixture[f"decode/{tag}/lengths"])
    _close(stats.angles, fixture[f"decode/{tag}/angles"])
    _close(stats.composition_logits, fixture[f"decode/{tag}/composition"])


def test_decode_stats_sampling_form(model, fixture):
    z = _t(fixture["encode/z"])
    with _float_is_double(), torch.no_grad():
        stats = model.decode_stats(z)
        prop = model.predict_property(z)
    np.testing.assert_array_equal(stats.num_atoms.numpy(), fixture["decode/sample/num_atoms"])
    _close(stats.scaled_lattice, fixture["decode/sample/scaled_lattice"])
    _close(stats.lengths, fixture["decode/sample/lengths"])
    _close(stats.angles, fixture["decode/sample/angles"])
    _close(stats.composition_logits, fixture["decode/sample/composition"])
    _close(prop, fixture["decode/property"])


@pytest.mark.parametrize("tag,teacher_forcing", [("train", True), ("val", False)])
def test_loss_terms_match_forward_and_compute_stats(model, batch, fixture, tag, teacher_forcing):
    draws = {key: _t(fixture[f"forward/{tag}/draw/{key}"])
             for key in ("eps_z", "noise_level", "type_noise_level", "rand_atom_types", "coord_noise")}
    with _float_is_double(), torch.no_grad():
        terms = model.loss_terms(batch, teacher_forcing=teacher_forcing, draws=draws)
    _close(terms["z"], fixture[f"forward/{tag}/z"])
    _close(terms["rand_frac_coords"], fixture[f"forward/{tag}/rand_frac_coords"])
    np.testing.assert_array_equal(terms["rand_atom_types"].numpy(), fixture[f"forward/{tag}/draw/rand_atom_types"])
    _close(terms["pred_cart_coord_diff"], fixture[f"forward/{tag}/pred_cart_coord_diff"])
    _close(terms["pred_atom_types"], fixture[f"forward/{tag}/pred_atom_types"])
    for key in LOSS_TERMS:
        _close(terms[key], fixture[f"forward/{tag}/{key}"], err_msg=key)
    # compute_stats: the training loss is the weighted sum, val's only cost_coord·coord + cost_type·type
    loss_key = "loss" if tag == "train" else "validation_loss"
    _close(terms[loss_key], fixture[f"forward/{tag}/loss"])


def test_the_type_sample_is_not_trivial(fixture):
    """Validation's recorded multinomial draw changed some types (else the type noise is untested)."""
    assert (fixture["forward/val/draw/rand_atom_types"] != fixture["batch/atom_types"]).any()


def test_langevin_step_matches_one_upstream_step(model, batch, fixture):
    z = _t(fixture["encode/z"])
    with _float_is_double(), torch.no_grad():
        stats = model.decode_stats(z, batch.num_atoms)
        sigma = model.sigmas[0]
        step_size = model.config.step_lr * (sigma / model.sigmas[-1]) ** 2
        frac, type_logits = model.langevin_step(
            z, _t(fixture["langevin/init_frac_coords"]), _t(fixture["langevin/init_atom_types"]).long(),
            batch.num_atoms, stats.lengths, stats.angles, sigma, step_size, _t(fixture["langevin/noise"]))
    assert float(sigma) == float(fixture["langevin/sigma"])
    _close(stats.lengths, fixture["langevin/lengths"])
    _close(stats.angles, fixture["langevin/angles"])
    _close(frac, fixture["langevin/new_frac_coords"])
    _close(type_logits, fixture["langevin/type_logits"])
    np.testing.assert_array_equal((type_logits.argmax(dim=1) + 1).numpy(), fixture["langevin/new_atom_types"])


def test_sample_composition_draws_as_upstream_on_predicted_probabilities(model, batch, fixture):
    """langevin_dynamics' composition sample: same global seed, same draws in the same order."""
    z = _t(fixture["encode/z"])
    with _float_is_double(), torch.no_grad():
        composition = model.decode_stats(z, batch.num_atoms).composition_logits
        torch.manual_seed(5)  # the generator's seed before langevin_dynamics
        types = model.sample_composition(torch.softmax(composition, dim=-1), batch.num_atoms)
    np.testing.assert_array_equal(types.numpy(), fixture["langevin/init_atom_types"])


def test_sample_composition_draws_as_upstream_on_fixed_probabilities(model, fixture):
    probs = _t(fixture["composition/probs"])
    num_atoms = _t(fixture["composition/num_atoms"]).long()
    with _float_is_double():
        torch.manual_seed(int(fixture["composition/seed"]))
        types = model.sample_composition(probs, num_atoms)
    np.testing.assert_array_equal(types.numpy(), fixture["composition/types"])


def test_sample_composition_invariant(fixture):
    """Each crystal gets round(p·n) atoms of every element, plus (here: crystal 0) the remainder drawn
    from the leftover probabilities: hand-checked counts on the fixture's probabilities."""
    types = fixture["composition/types"]
    first, second = types[:5], types[5:]
    # crystal 0: p = (0.28, 0.26, 0.24, 0.22) on Z = 8, 12, 26, 29; 5·p rounds to 1 each, one more drawn
    assert sorted(set(first.tolist()) - {8, 12, 26, 29}) == []
    assert all((first == z).sum() >= 1 for z in (8, 12, 26, 29))
    # crystal 1: p = (2/3, 1/3) on Z = 6, 14; 3·p = (2, 1) exactly
    assert sorted(second.tolist()) == [6, 6, 14]


def test_langevin_dynamics_reproduces_upstream_run_with_the_same_global_seed(model, batch, fixture):
    """The generator ran ``langevin_dynamics(z, n_step_each=1, min_sigma=σ_1, gt_num_atoms)`` after
    ``torch.manual_seed(5)``; ours draws from the global RNG (generator None) in the same order --
    composition sample, uniform coordinates, then the step's noise -- so the whole run repeats."""
    from dataclasses import replace

    z = _t(fixture["encode/z"])
    saved = model.config
    model.config = replace(saved, n_step_each=1, min_sigma=float(model.sigmas[0]))
    try:
        with _float_is_double():
            torch.manual_seed(5)
            out = model.langevin_dynamics(z, None, gt_num_atoms=batch.num_atoms)
    finally:
        model.config = saved
    _close(out["frac_coords"], fixture["langevin/new_frac_coords"])
    np.testing.assert_array_equal(out["atom_types"].numpy(), fixture["langevin/new_atom_types"])
    _close(out["lengths"], fixture["langevin/lengths"])
