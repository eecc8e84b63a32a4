"""Crystal models against the authors' released code (golden fixtures written by
tools/golden/crystals_diffcsp.py and tools/golden/crystals_crysbfn.py): the same weights copied by
the recorded name map, the same input, float64. Tolerance 1e-6 relative unless a reason is given."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golden.golden import load_fixture

RTOL = 1e-6
SMALL = {"hidden_dim": 8, "num_layers": 2, "num_freqs": 2, "time_dim": 8}


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array))


def _load_weights(module: torch.nn.Module, fixture, prefix: str) -> None:
    """Copy ``prefix``-ed upstream weights into ``module`` by the fixture's weight map; every
    parameter and buffer of ``module`` must receive one."""
    state = {}
    for upstream, ours in fixture.meta["weight_map"].items():
        if upstream.startswith(prefix):
            state[ours] = _t(fixture[upstream]).to(torch.float64)
    missing, unexpected = module.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert not [name for name in missing if not name.startswith(("alpha", "posterior", "sigmas", "score_norms",
                                                                   "coord_alphas", "z_to_class", "class_to_z"))], missing


def _batch(fixture):
    from replibench.tasks.crystal_batch import CrystalBatch

    num_atoms = _t(fixture["batch_num_atoms"]).long()
    return CrystalBatch(
        atomic_numbers=_t(fixture["batch_atomic_numbers"]).long(),
        frac_coords=_t(fixture["batch_frac_coords"]).double(),
        lattice=_t(fixture["batch_lattice"]).double(),
        num_atoms=num_atoms,
        batch=torch.repeat_interleave(torch.arange(num_atoms.shape[0]), num_atoms),
    )


# ---------------------------------------------------------------- CSPNet (jiaor17/DiffCSP cspnet.py)
@pytest.mark.parametrize("form", ["csp", "gen"])
def test_cspnet_matches_diffcsp(form):
    from replibench.models.cspnet import CSPNet, CSPNetConfig

    fixture = load_fixture("cspnet")
    gen = form == "gen"
    net = CSPNet(CSPNetConfig(num_type_classes=100, dense_type_input=gen, predict_types=gen, layer_norm=True,
                              **SMALL)).double().eval()
    _load_weights(net, fixture, f"{form}/w/")
    batch = _batch(fixture)
    # upstream embeds Z - 1 (csp); generation feeds a dense 100-class vector
    types = _t(fixture["gen/type_input"]) if gen else batch.atomic_numbers - 1
    with torch.no_grad():
        out = net(_t(fixture["time_input"]), types, batch.frac_coords, batch.lattice, batch.num_atoms, batch.batch)
    np.testing.assert_allclose(out.lattice.numpy(), fixture[f"{form}/out_lattice"], rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(out.coords.numpy(), fixture[f"{form}/out_coords"], rtol=RTOL, atol=1e-12)
    if gen:
        np.testing.assert_allclose(out.type_logits.numpy(), fixture["gen/out_types"], rtol=RTOL, atol=1e-12)
    else:
        assert out.type_logits is None


def test_time_embedding_matches_diffcsp():
    from replibench.models.cspnet import sinusoidal_time_embedding

    fixture = load_fixture("cspnet")
    ours = sinusoidal_time_embedding(_t(fixture["time_steps"]), SMALL["time_dim"]).double().numpy()
    # both compute in float32 (upstream's default dtype); sin/cos of arguments up to 1000 carry float32
    # rounding of ~1e-7 absolute, so the comparison is absolute
    np.testing.assert_allclose(ours, fixture["time_embedding"], rtol=0, atol=2e-6)


# ---------------------------------------------------------------- DiffCSP schedules and losses
def test_diffcsp_noise_schedules_match():
    from replibench.models.diffcsp import DiffCSP, DiffCSPConfig, cosine_alpha_bars, wrapped_normal_score_norm

    fixture = load_fixture("diffcsp")
    index = _t(fixture["schedule_index"]).long()
    abar = cosine_alpha_bars(1000, 0.008)  # float64
    np.testing.assert_allclose(abar[index].numpy(), fixture["beta_scheduler/alphas_cumprod"], rtol=RTOL)
    model = DiffCSP(DiffCSPConfig(timesteps=1000, **SMALL))
    # the model keeps its schedules as float32 buffers: float32 rounding (6e-8) is inside 1e-6
    np.testing.assert_allclose(model.alpha_bars[index].double().numpy(), fixture["beta_scheduler/alphas_cumprod"],
                               rtol=RTOL)
    np.testing.assert_allclose(model.alphas[index].double().numpy(), fixture["beta_scheduler/alphas"], rtol=RTOL)
    np.testing.assert_allclose(model.posterior_std[index].double().numpy(), fixture["beta_scheduler/sigmas"],
                               rtol=RTOL, atol=1e-12)
    sigma_index = _t(fixture["csp/sigma_scheduler/index"]).long()
    np.testing.assert_allclose(model.sigmas[sigma_index].double().numpy(), fixture["csp/sigma_scheduler/sigmas"],
                               rtol=RTOL)
    # lambda(sigma): upstream estimates it by a 10,000-draw Monte Carlo (relative standard error
    # sqrt(2)/100 = 1.4 %), ours by quadrature, so they agree to the Monte Carlo's error only (4.5 sd)
    sigmas = _t(fixture["csp/sigma_scheduler/sigmas"])[1:]
    quadrature = wrapped_normal_score_norm(sigmas).numpy()
    for form in ("csp", "gen"):  # two independent Monte Carlo draws
        np.testing.assert_allclose(quadrature, fixture[f"{form}/sigma_scheduler/sigmas_norm"][1:], rtol=0.065)


@pytest.mark.parametrize("form", ["csp", "gen"])
def test_diffcsp_loss_terms_match(form, monkeypatch):
    from replibench.models.diffcsp import DiffCSP, DiffCSPConfig

    fixture = load_fixture("diffcsp")
    model = DiffCSP(DiffCSPConfig(task=form, timesteps=1000, cost_type=20.0, **SMALL)).double().eval()
    _load_weights(model, fixture, f"{form}/w/")
    # upstream's lambda(sigma) is a Monte Carlo estimate (see the schedule test): use its values here
    index = _t(fixture[f"{form}/sigma_scheduler/index"]).long()
    model.score_norms[index] = _t(fixture[f"{form}/sigma_scheduler/sigmas_norm"])
    draws = [_t(fixture[f"{form}/{name}"]) for name in ("rand_l", "rand_x", "rand_t") if f"{form}/{name}" in fixture.arrays]
    times = _t(fixture[f"{form}/times"]).long()

    def fixed_randn(*shape, **kwargs):
        value = draws.pop(0)
        assert tuple(value.shape) == tuple(shape), (value.shape, shape)
        return value.clone()

    monkeypatch.setattr(torch, "randint", lambda *args, **kwargs: times.clone())
    monkeypatch.setattr(torch, "randn", fixed_randn)
    with torch.no_grad():
        terms = model.loss_terms(_batch(fixture))
    monkeypatch.undo()
    assert not draws  # every upstream draw was consumed, in upstream's order
    names = {"lattice": "loss_lattice", "coord": "loss_coord", "loss": "loss"}
    if form == "gen":
        names["type"] = "loss_type"
    for ours, upstream in names.items():
        assert math.isclose(float(terms[ours]), float(fixture[f"{form}/{upstream}"]), rel_tol=RTOL), ours
