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
    from replibench.families.crystals.types import CrystalBatch

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
    from replibench.families.crystals.models.cspnet import CSPNet, CSPNetConfig

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
    from replibench.families.crystals.models.cspnet import sinusoidal_time_embedding

    fixture = load_fixture("cspnet")
    ours = sinusoidal_time_embedding(_t(fixture["time_steps"]), SMALL["time_dim"]).double().numpy()
    # both compute in float32 (upstream's default dtype); sin/cos of arguments up to 1000 carry float32
    # rounding of ~1e-7 absolute, so the comparison is absolute
    np.testing.assert_allclose(ours, fixture["time_embedding"], rtol=0, atol=2e-6)


# ---------------------------------------------------------------- DiffCSP schedules and losses
def test_diffcsp_noise_schedules_match():
    from replibench.families.crystals.models.diffcsp import DiffCSP, DiffCSPConfig, cosine_alpha_bars, wrapped_normal_score_norm

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
    from replibench.families.crystals.models.diffcsp import DiffCSP, DiffCSPConfig

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


# ---------------------------------------------------------------- CrysBFN (wu-han-lin/CrysBFN)
def _crysbfn(fixture, task: str):
    from replibench.families.crystals.models.crysbfn import CrysBFN, CrysBFNConfig

    model = CrysBFN(CrysBFNConfig(task=task, num_steps=10, beta1_coord=1e3, beta1_type=0.5, layer_norm=True,
                                  lattice_std=1.0, type_vocab=tuple(int(z) for z in fixture["vocab"]),
                                  **SMALL)).double().eval()
    prefix = f"{task}/w/"
    weights = {k: v for k, v in fixture.meta["weight_map"].items() if k.startswith(prefix)}
    if task == "csp":  # upstream's CSP decoder also builds a type head (pred_type) it never uses; ours has none
        weights = {k: v for k, v in weights.items() if "/type_out." not in k}
    missing, unexpected = model.load_state_dict({ours: _t(fixture[up]) for up, ours in weights.items()}, strict=False)
    assert not unexpected and all(not name.startswith("backbone.") for name in missing), (missing, unexpected)
    return model


def _accuracy_from_log(fixture, c):
    """Our network takes the posterior accuracy c and normalises log(c + eps) itself: invert
    upstream's normalised log-accuracy input."""
    log_acc = _t(fixture["in/log_acc"])
    return torch.exp(log_acc * (math.log(c.beta1_coord) - math.log(c.log_accuracy_epsilon))
                     + math.log(c.log_accuracy_epsilon)) - c.log_accuracy_epsilon


@pytest.mark.parametrize("task", ["gen", "csp"])
def test_crysbfn_network_matches_upstream(task):
    """interdependency_modeling: x_hat = wrap(m + output), lattice F L, type probabilities. Upstream's
    distance embedding casts to float32 (egnn/cspnet.py SinusoidsEmbedding), and the upstream time
    embedding runs in float64 there while ours is float32: outputs agree to ~3e-8 absolute, so
    1e-6 relative with a 1e-7 absolute floor."""
    fixture = load_fixture("crysbfn")
    model = _crysbfn(fixture, task)
    num_atoms = _t(fixture["num_atoms"]).long()
    batch = torch.repeat_interleave(torch.arange(2), num_atoms)
    step = _t(fixture["steps"]).long()
    c = model.config
    accuracy = _accuracy_from_log(fixture, c)
    types = 2 * _t(fixture["in/theta_type"]) - 1 if task == "gen" else _t(fixture["in/classes"]).long()
    with torch.no_grad():
        x_hat, lattice, logits = model._network(step, types, _t(fixture["in/mu_pos"]), accuracy,
                                                _t(fixture["in/mu_lattice"]), num_atoms, batch)
    np.testing.assert_allclose(x_hat.numpy(), fixture[f"{task}/out_x_hat"], rtol=RTOL, atol=1e-7)
    np.testing.assert_allclose(lattice.reshape(2, 9).numpy(), fixture[f"{task}/out_lattice"], rtol=RTOL, atol=1e-7)
    if task == "gen":
        np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), fixture["gen/out_type_probs"], rtol=RTOL,
                                   atol=1e-7)


def test_crysbfn_accuracy_schedule_is_the_released_one():
    fixture = load_fixture("crysbfn")
    model = _crysbfn(fixture, "gen")
    np.testing.assert_array_equal(model.coord_alphas.double().numpy(), fixture["alphas"])


def test_crysbfn_lattice_and_type_flows_match(monkeypatch):
    from replibench.families.crystals.models.bayesian_flow import categorical_flow, gaussian_flow

    fixture = load_fixture("crysbfn")
    draws = [_t(fixture["flow/lattice_eps"]), _t(fixture["flow/type_eps"])]
    monkeypatch.setattr(torch, "randn", lambda *shape, **kwargs: draws.pop(0).clone())
    mu = gaussian_flow(_t(fixture["flow/lattice_x"]), _t(fixture["flow/t_mol"]), 0.03162277660168379)
    onehot = torch.nn.functional.one_hot(_t(fixture["in/classes"]).long(), 3).double()
    theta = categorical_flow(onehot, _t(fixture["flow/type_t"]), 0.5)
    monkeypatch.undo()
    np.testing.assert_allclose(mu.numpy(), fixture["flow/lattice_mu"], rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(theta.numpy(), fixture["flow/type_theta"], rtol=RTOL, atol=1e-12)


def test_crysbfn_circular_flow_matches(monkeypatch):
    """The posterior of the periodic flow from the same uniform prior and von Mises sender draws.
    Upstream sums float32 senders times float32 accuracies in float32 and returns float32
    log-accuracies: agreement to float32 rounding (1e-6)."""
    from replibench.families.crystals.models import bayesian_flow

    fixture = load_fixture("crysbfn")
    model = _crysbfn(fixture, "gen")
    prior = _t(fixture["flow/circ_prior"])  # the uniform draw u; both take 2 pi u - pi as the prior mean
    senders = _t(fixture["flow/circ_senders"])  # (N, atoms, 3)
    monkeypatch.setattr(torch, "rand", lambda *shape, **kwargs: prior.clone())
    monkeypatch.setattr(bayesian_flow, "sample_von_mises",
                        lambda loc, concentration, generator=None: senders[: loc.shape[0]].clone())
    observations = _t(fixture["flow/circ_index"]).long() - 1
    mean, accuracy = bayesian_flow.circular_flow(_t(fixture["flow/circ_x"]), observations, model.coord_alphas.double())
    monkeypatch.undo()
    np.testing.assert_allclose(mean.numpy(), fixture["flow/circ_mean"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(model._log_accuracy(accuracy).numpy(), fixture["flow/circ_log_acc"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("task", ["gen", "csp"])
def test_crysbfn_loss_terms_match(task, monkeypatch):
    """loss_one_step with the step fixed and the flows returning fixed parameters (both sides): the
    network call and every loss weight (lattice N(1 - s1^(2/N)) / (2 s1^(2i/N)), coordinates
    N alpha_i I1/I0 with the periodic distance, types K beta1 t |e_x - p|^2). Same float32 embedding
    caveat as the network test: 1e-6 relative."""
    from replibench.families.crystals.models import crysbfn as crysbfn_module
    from replibench.families.crystals.types import CrystalBatch

    fixture = load_fixture("crysbfn")
    model = _crysbfn(fixture, task)
    num_atoms = _t(fixture["num_atoms"]).long()
    vocab = _t(fixture["vocab"]).long()
    batch = CrystalBatch(atomic_numbers=vocab[_t(fixture["in/classes"]).long()],
                         frac_coords=_t(fixture["loss/frac_coords"]), lattice=_t(fixture["loss/lattice"]),
                         num_atoms=num_atoms, batch=torch.repeat_interleave(torch.arange(2), num_atoms))
    accuracy = _accuracy_from_log(fixture, model.config)
    monkeypatch.setattr(torch, "randint", lambda *args, **kwargs: _t(fixture["loss/steps"]).long())
    monkeypatch.setattr(crysbfn_module, "circular_flow", lambda *args: (_t(fixture["in/mu_pos"]), accuracy))
    monkeypatch.setattr(crysbfn_module, "gaussian_flow", lambda *args: _t(fixture["in/mu_lattice"]))
    monkeypatch.setattr(crysbfn_module, "categorical_flow", lambda *args: _t(fixture["in/theta_type"]))
    with torch.no_grad():
        terms = model.loss_terms(batch)
    monkeypatch.undo()
    names = {"lattice": "loss_lattice", "coord": "loss_coord"} | ({"type": "loss_type"} if task == "gen" else {})
    for ours, upstream in names.items():
        assert math.isclose(float(terms[ours]), float(fixture[f"{task}/{upstream}"]), rel_tol=RTOL), \
            (ours, float(terms[ours]), float(fixture[f"{task}/{upstream}"]))
