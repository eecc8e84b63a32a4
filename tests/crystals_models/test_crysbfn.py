"""CrysBFN: von Mises sampler, periodic Bayesian flow and its schedule, type loss, training, sampling."""

from __future__ import annotations

import math

import pytest

from replibench.errors import ConfigError
from replibench.families.task import build_registered_model
import torch

from replibench.families.crystals.models.bayesian_flow import (
    categorical_flow,
    circular_flow,
    linear_entropy_accuracies,
    linear_entropy_targets,
    sample_von_mises,
    von_mises_entropy,
    wrap_angle,
)
from replibench.families.crystals.presets import CRYSBFN_PAPER as PAPER_HPARAMS
from replibench.families.crystals.presets import CRYSBFN_SMOKE as SMOKE_HPARAMS
from replibench.families.crystals.models.crysbfn import CrysBFN, CrysBFNConfig

VOCAB = (8, 12, 26)


@pytest.mark.parametrize("kappa", [0.3, 4.0, 250.0])
def test_von_mises_sampler_matches_mean_direction_and_circular_variance(kappa):
    g = torch.Generator().manual_seed(0)
    loc = torch.full((200_000,), 3.0)  # near the +-pi seam: draws must wrap
    y = sample_von_mises(loc, torch.tensor(kappa), g)
    assert (y >= -math.pi).all() and (y < math.pi).all()
    resultant = torch.complex(y.cos().mean(), y.sin().mean())
    expected_length = float(torch.special.i1e(torch.tensor(kappa)) / torch.special.i0e(torch.tensor(kappa)))
    assert abs(float(resultant.abs()) - expected_length) < 5e-3
    assert abs(float(wrap_angle(resultant.angle() - 3.0))) < 0.02
    again = sample_von_mises(loc, torch.tensor(kappa), torch.Generator().manual_seed(0))
    assert torch.equal(again, y)


def test_von_mises_entropy_limits():
    assert math.isclose(float(von_mises_entropy(torch.tensor(0.0))), math.log(2 * math.pi))
    big = 1e4  # Gaussian limit 0.5 log(2 pi e / kappa)
    assert math.isclose(
        float(von_mises_entropy(torch.tensor(big))), 0.5 * math.log(2 * math.pi * math.e / big), rel_tol=1e-3
    )


@pytest.mark.parametrize("steps", [1, 10, 100])
def test_linear_entropy_schedule_reaches_beta1_with_positive_senders(steps):
    alphas = linear_entropy_accuracies(steps, 1000.0)
    assert alphas.shape == (steps,) and (alphas > 0).all()
    if steps == 1:
        assert math.isclose(float(alphas[0]), 1000.0)


def test_schedule_solves_its_defining_equations():
    kappa, alphas = linear_entropy_targets(10, 1000.0), linear_entropy_accuracies(10, 1000.0)
    entropy = von_mises_entropy(kappa)
    assert torch.allclose(
        entropy[1:] - entropy[:-1], (entropy[-1] - math.log(2 * math.pi)) / 10 * torch.ones(9, dtype=torch.float64)
    )
    assert math.isclose(float(alphas[0]), float(kappa[0]))
    g = torch.Generator().manual_seed(5)
    for i in (1, 4, 8):  # E|kappa_{i-1} + alpha_i e^{i phi}| = kappa_i, phi ~ vM(0, alpha_i), by Monte Carlo
        phi = sample_von_mises(torch.zeros(200_000, dtype=torch.float64), alphas[i], g)
        resultant = torch.sqrt(kappa[i - 1] ** 2 + alphas[i] ** 2 + 2 * kappa[i - 1] * alphas[i] * phi.cos()).mean()
        assert math.isclose(float(resultant), float(kappa[i]), rel_tol=2e-3)


def test_posterior_concentration_grows_and_entropy_falls():
    alphas = linear_entropy_accuracies(10, 1000.0)
    g = torch.Generator().manual_seed(1)
    x = wrap_angle(torch.linspace(-3.1, 3.1, 4000)[:, None].repeat(1, 3))  # data angles incl. near the seam
    mean_accuracy, errors = [], []
    for observations in range(0, 11):
        mean, accuracy = circular_flow(x, torch.full((4000,), observations), alphas, g)
        mean_accuracy.append(float(accuracy.mean()))
        errors.append(float(wrap_angle(mean - x).abs().mean()))
    assert mean_accuracy[0] == 0.0
    assert all(b > a for a, b in zip(mean_accuracy[:-1], mean_accuracy[1:], strict=True))  # concentration increases
    assert errors[-1] < 0.05 < errors[1]  # the posterior mean closes in on the data (periodically)
    assert abs(mean_accuracy[-1] - 1000.0) < 10  # the schedule's final accuracy is beta1
    entropy = von_mises_entropy(torch.tensor(mean_accuracy[1:]))
    target = von_mises_entropy(linear_entropy_targets(10, 1000.0))
    assert torch.allclose(entropy, target, atol=0.1)  # close to linear (exactly so in expectation only)


def test_circular_flow_is_periodic_in_the_data():
    alphas = linear_entropy_accuracies(10, 1000.0)
    x = torch.tensor([[0.1, -3.0, 3.1]])
    obs = torch.tensor([4])
    a = circular_flow(x, obs, alphas, torch.Generator().manual_seed(2))
    b = circular_flow(x + 2 * math.pi, obs, alphas, torch.Generator().manual_seed(2))
    assert torch.allclose(wrap_angle(a[0] - b[0]), torch.zeros(1, 3), atol=1e-5)
    assert torch.allclose(a[1], b[1], rtol=1e-5)


def test_categorical_flow_concentrates_on_the_true_class():
    onehot = torch.nn.functional.one_hot(torch.tensor([2] * 2000), 5).float()
    g = torch.Generator().manual_seed(0)
    early = categorical_flow(onehot, torch.full((2000, 1), 0.1), 3.0, g)[:, 2].mean()
    late = categorical_flow(onehot, torch.full((2000, 1), 1.0), 3.0, g)[:, 2].mean()
    assert 0.2 < early < late and torch.allclose(
        categorical_flow(onehot[:1], torch.zeros(1, 1), 3.0, g), torch.full((1, 5), 0.2)
    )


def test_discrete_time_type_loss_equals_the_explicit_gaussian_kl_estimate(tiny):
    """Our closed form y_x - logsumexp(log p + y) vs log N(y; sender) - log sum_k p_k N(y; e_k)."""
    model = CrysBFN(CrysBFNConfig(task="gen", type_vocab=VOCAB, type_loss="discrete_time", **tiny))
    classes, step = torch.tensor([0, 2, 1]), torch.tensor([3, 7, 10])
    logits = torch.randn(3, 3, generator=torch.Generator().manual_seed(4))
    ours = model._type_loss(classes, logits, step, torch.Generator().manual_seed(9))
    n, k, beta1 = 10, 3, 0.5
    alpha = beta1 * (2 * step.double() - 1) / n**2  # (3,)
    onehot = torch.nn.functional.one_hot(classes, k).double()
    noise = torch.randn(200, 3, k, generator=torch.Generator().manual_seed(9)).double()
    y = alpha[None, :, None] * (k * onehot - 1) + torch.sqrt(alpha * k)[None, :, None] * noise  # (S, 3, K)
    std = torch.sqrt(alpha * k)[:, None]
    sender = torch.distributions.Normal(alpha[:, None] * (k * onehot - 1), std).log_prob(y).sum(-1)  # (S, 3)
    components = torch.stack(
        [
            torch.distributions.Normal(alpha[:, None] * (k * torch.eye(k)[j].double() - 1), std).log_prob(y).sum(-1)
            for j in range(k)
        ],
        -1,
    )  # (S, 3, K)
    receiver = torch.logsumexp(torch.log_softmax(logits.double(), -1)[None] + components, -1)
    assert torch.allclose(ours.double(), n * (sender - receiver).mean(), rtol=1e-4, atol=1e-5)


def _model(tiny, task: str, steps: int = 10) -> CrysBFN:
    return CrysBFN(CrysBFNConfig(task=task, num_steps=steps, type_vocab=VOCAB, lattice_std=4.0, **tiny))


@pytest.mark.parametrize("task", ["csp", "gen"])
def test_a_few_adam_steps_reduce_the_loss(tiny, toy_batch, task):
    model = _model(tiny, task)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    def held_out_loss() -> float:
        with torch.no_grad():
            return sum(float(model.loss(toy_batch, torch.Generator().manual_seed(s))) for s in range(8)) / 8

    before = held_out_loss()
    for _ in range(80):
        optimiser.zero_grad()
        model.loss(toy_batch).backward()
        optimiser.step()
    assert held_out_loss() < 0.8 * before


@pytest.mark.parametrize("task", ["csp", "gen"])
@pytest.mark.parametrize("steps", [1, 10])
def test_sampling_shapes_range_determinism_and_network_evaluations(tiny, toy_batch, task, steps):
    model = _model(tiny, task, steps).eval()
    types = toy_batch.atomic_numbers if task == "csp" else None
    first = model.sample(toy_batch.num_atoms, types, generator=torch.Generator().manual_seed(7))
    again = model.sample(toy_batch.num_atoms, types, generator=torch.Generator().manual_seed(7))
    c = first.crystals
    assert c.frac_coords.shape == (7, 3) and c.lattice.shape == (2, 3, 3)
    assert (c.frac_coords >= 0).all() and (c.frac_coords < 1).all()
    assert set(c.atomic_numbers.tolist()) <= set(VOCAB)
    if task == "csp":
        assert torch.equal(c.atomic_numbers, toy_batch.atomic_numbers)
    assert torch.equal(c.frac_coords, again.crystals.frac_coords) and torch.equal(c.lattice, again.crystals.lattice)
    assert torch.equal(c.atomic_numbers, again.crystals.atomic_numbers)
    assert first.network_evaluations == steps == model.expected_network_evaluations()


def test_unknown_element_is_reported(tiny, toy_batch):
    model = CrysBFN(CrysBFNConfig(type_vocab=(8, 26), **tiny))
    with pytest.raises(ValueError, match=r"\[12\]"):
        model.loss(toy_batch)


def test_presets(tiny):
    assert PAPER_HPARAMS["mp-20"]["csp"]["model"]["num_steps"] == 1000
    assert PAPER_HPARAMS["perov-5"]["gen"]["model"]["lattice_std"] == pytest.approx(1.9612357847506667)
    assert PAPER_HPARAMS["carbon-24"]["csp"]["train"]["batch_size"] == 512
    assert CrysBFNConfig().num_steps == 10
    for dataset in SMOKE_HPARAMS:
        for task, preset in SMOKE_HPARAMS[dataset].items():
            model = build_registered_model("crysbfn", preset["model"], task=task, type_vocab=VOCAB)
            assert model.expected_network_evaluations() == 10
            assert model.config.lattice_std == preset["model"]["lattice_std"]  # a setting (released configs), not a fact
            assert model.config.type_vocab == VOCAB  # the data's elements: a fact
    with pytest.raises(ConfigError, match="contradicts the data"):  # one rule: a setting never overrides a fact
        build_registered_model("crysbfn", {"type_vocab": [8]}, task="csp", type_vocab=VOCAB)


def test_paper_size_model_has_the_reported_parameter_count():
    """CrysBFN reports 12.3M parameters on MP-20 (89 element types, generation)."""
    mp20_vocab = tuple(list(range(1, 84)) + list(range(89, 95)))
    model = CrysBFN(CrysBFNConfig(task="gen", type_vocab=mp20_vocab))
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 12.3


def test_first_call_sees_the_zero_lattice_prior_and_predicts_zero_like_the_released_model(tiny, toy_batch):
    """Released CrysBFN: lattice_mean 0 (conf/data/mp_20.yaml), prior mean 0, head F·L (ip=True), so
    step 1 predicts L_hat = 0 and the cell only grows from the flow noise of step 2 on. A smoke run's
    collapsed cells come from an untrained F, not from a different lattice path."""
    model = _model(tiny, "csp", steps=10).eval()
    seen = []
    model.backbone.register_forward_hook(lambda module, args, out: seen.append((args[3].clone(), out.lattice)))
    model.sample(toy_batch.num_atoms, toy_batch.atomic_numbers, generator=torch.Generator().manual_seed(0))
    assert len(seen) == 10
    first_input, first_output = seen[0]
    assert torch.equal(first_input, torch.zeros(2, 3, 3)) and torch.equal(first_output, torch.zeros(2, 3, 3))
    second_input = seen[1][0]
    gamma = 1 - model.config.sigma1_lattice ** (2 * 0.1)  # t = 1/N: mu = gamma*0 + sqrt(gamma(1-gamma)) eps
    assert 0.2 * math.sqrt(gamma * (1 - gamma)) < float(second_input.std()) < 3 * math.sqrt(gamma * (1 - gamma))


def test_paper_preset_trains_types_with_the_continuous_time_loss_the_released_code_ran(tiny):
    """The released code's ``disc_prob_loss`` flag never reached its test (it sat under ``model.BFN``
    while the code read the top level), so the published models used ``ctime4discrete_loss``."""
    for dataset in PAPER_HPARAMS:
        settings = {**PAPER_HPARAMS[dataset]["gen"]["model"], "task": "gen", "type_vocab": VOCAB}
        assert CrysBFNConfig(**settings).type_loss == "continuous_time"
    model = CrysBFN(CrysBFNConfig(task="gen", type_vocab=VOCAB, **tiny))
    classes, step = torch.tensor([0, 2]), torch.tensor([1, 6])  # t = (i - 1) / N = 0 and 0.5
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]))
    # K beta1 t |e_x - p|^2 by hand: atom 1 has t = 0 -> 0; atom 2: 3 * 0.5 * 0.5 * (0.04 + 0.04 + 0.16) = 0.18
    loss = model._type_loss(classes, logits, step, torch.Generator().manual_seed(0))
    assert math.isclose(float(loss), (0.0 + 0.18) / 2, rel_tol=1e-6)
    discrete = CrysBFN(CrysBFNConfig(task="gen", type_vocab=VOCAB, type_loss="discrete_time", **tiny))
    assert not math.isclose(float(discrete._type_loss(classes, logits, step, torch.Generator().manual_seed(0))), 0.09)


def test_paper_presets_use_the_released_accuracy_schedule_and_the_solver_covers_other_step_counts(tiny):
    """Values read from wu-han-lin/CrysBFN@2db6a20 cache_files/linear_entropy_alphas_s10_1000.0.pt
    (float32) and s1000_1000.0.pt; the solver differs from them by up to ~2.6 % at N = 1000."""
    from replibench.families.crystals.models.bayesian_flow import coord_accuracy_schedule, released_linear_entropy_accuracies

    s10 = released_linear_entropy_accuracies(10, 1000.0)
    assert s10.dtype == torch.float64 and float(s10[0]) == float(torch.tensor(1.4780328273773193, dtype=torch.float32))
    assert float(s10[-1]) == float(torch.tensor(539.0326538085938, dtype=torch.float32))
    s1000 = released_linear_entropy_accuracies(1000, 1000.0)
    assert s1000.shape == (1000,) and math.isclose(float(s1000[-1]), 8.223639488220215, rel_tol=1e-7)
    solved = linear_entropy_accuracies(1000, 1000.0)
    gap = float(((solved - s1000).abs() / s1000).max())
    assert 0.01 < gap < 0.03  # the departure the released values remove
    for dataset in PAPER_HPARAMS:
        for task in ("csp", "gen"):
            model = CrysBFN(CrysBFNConfig(**{**PAPER_HPARAMS[dataset][task]["model"], **tiny}, task=task,
                                          type_vocab=VOCAB))
            assert torch.equal(model.coord_alphas, s1000.float())
    ten = CrysBFN(CrysBFNConfig(num_steps=10, type_vocab=VOCAB, **tiny))
    assert torch.equal(ten.coord_alphas, s10.float())
    assert released_linear_entropy_accuracies(7, 1000.0) is None  # not released: the solver
    assert torch.equal(coord_accuracy_schedule(7, 1000.0), linear_entropy_accuracies(7, 1000.0))
    assert torch.equal(coord_accuracy_schedule(10, 1000.0, "solved"), linear_entropy_accuracies(10, 1000.0))


def test_released_schedule_file_is_checked_before_use(monkeypatch):
    from replibench.errors import ChecksumError
    from replibench.families.crystals.models import bayesian_flow

    bayesian_flow._released_schedules.cache_clear()
    monkeypatch.setattr(bayesian_flow, "RELEASED_SCHEDULES_SHA256", "0" * 64)
    try:
        with pytest.raises(ChecksumError, match="crysbfn_schedules.json"):
            bayesian_flow.released_linear_entropy_accuracies(10, 1000.0)
    finally:
        bayesian_flow._released_schedules.cache_clear()
