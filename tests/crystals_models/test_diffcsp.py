"""DiffCSP: wrapped-normal score and its normaliser, schedules, training signal, sampling."""

from __future__ import annotations

import math

import pytest
import torch

from replibench.families.task import build_registered_model
from replibench.families.crystals.presets import DIFFCSP_PAPER as PAPER_HPARAMS
from replibench.families.crystals.presets import DIFFCSP_SMOKE as SMOKE_HPARAMS
from replibench.families.crystals.models.diffcsp import (
    DiffCSP,
    DiffCSPConfig,
    cosine_alpha_bars,
    wrapped_normal_score,
    wrapped_normal_score_norm,
)


def _log_wrapped_normal(x: torch.Tensor, sigma: float, images: int = 30) -> torch.Tensor:
    k = torch.arange(-images, images + 1, dtype=x.dtype)
    return torch.logsumexp(-((x[:, None] + k) ** 2) / (2 * sigma**2), dim=-1)


@pytest.mark.parametrize("sigma", [0.005, 0.05, 0.2, 0.5, 1.0])
def test_wrapped_normal_score_equals_autograd_of_log_density(sigma):
    x = torch.linspace(-1.7, 2.3, 41, dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(_log_wrapped_normal(x, sigma).sum(), x)
    score = wrapped_normal_score(x.detach(), torch.tensor(sigma, dtype=torch.float64))
    assert torch.allclose(score, grad, rtol=1e-9, atol=1e-9)


def test_wrapped_normal_score_is_periodic_and_odd():
    x = torch.tensor([0.1, 0.37, 0.49], dtype=torch.float64)
    sigma = torch.tensor(0.3, dtype=torch.float64)
    assert torch.allclose(wrapped_normal_score(x + 1, sigma), wrapped_normal_score(x, sigma))
    assert torch.allclose(wrapped_normal_score(-x, sigma), -wrapped_normal_score(x, sigma))
    assert torch.allclose(
        wrapped_normal_score(torch.tensor([0.5], dtype=torch.float64), sigma), torch.zeros(1, dtype=torch.float64)
    )


def test_score_norm_matches_gaussian_limit_and_monte_carlo():
    norms = wrapped_normal_score_norm(torch.tensor([0.005, 0.01, 0.3, 0.5], dtype=torch.float64))
    assert torch.allclose(norms[:2], 1 / torch.tensor([0.005, 0.01], dtype=torch.float64) ** 2, rtol=1e-6)
    g = torch.Generator().manual_seed(0)
    for sigma, value in zip((0.3, 0.5), norms[2:], strict=True):  # DiffCSP's own estimator: E over wrapped draws
        draws = torch.remainder(sigma * torch.randn(400_000, generator=g, dtype=torch.float64), 1.0)
        mc = (wrapped_normal_score(draws, torch.tensor(sigma, dtype=torch.float64)) ** 2).mean()
        assert abs(float(mc) - float(value)) < 0.01 * float(value)


def test_cosine_schedule_decreases_to_pure_noise():
    abar = cosine_alpha_bars(1000, 0.008)
    assert abar[0] == 1 and (abar[1:] < abar[:-1]).all()
    assert abar[-1] < 1e-4
    betas = 1 - abar[1:] / abar[:-1]
    assert betas.min() >= 1e-4 - 1e-12 and betas.max() <= 0.9999 + 1e-12


def _model(tiny, task="csp", timesteps=20) -> DiffCSP:
    return DiffCSP(DiffCSPConfig(task=task, timesteps=timesteps, **tiny))


@pytest.mark.parametrize("task", ["csp", "gen"])
def test_a_few_adam_steps_reduce_the_loss(tiny, toy_batch, task):
    model = _model(tiny, task)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(model.loss(toy_batch, torch.Generator().manual_seed(123)))

    before = held_out_loss()
    for _ in range(60):
        optimiser.zero_grad()
        model.loss(toy_batch).backward()
        optimiser.step()
    assert held_out_loss() < 0.8 * before


def test_loss_terms_follow_the_configured_weights(tiny, toy_batch):
    terms = _model(tiny, "gen").loss_terms(toy_batch, torch.Generator().manual_seed(0))
    assert torch.allclose(terms["loss"], terms["lattice"] + terms["coord"] + 20 * terms["type"])


@pytest.mark.parametrize("task", ["csp", "gen"])
def test_sampling_shapes_range_determinism_and_network_evaluations(tiny, toy_batch, task):
    model = _model(tiny, task).eval()
    types = toy_batch.atomic_numbers if task == "csp" else None
    first = model.sample(toy_batch.num_atoms, types, generator=torch.Generator().manual_seed(7))
    again = model.sample(toy_batch.num_atoms, types, generator=torch.Generator().manual_seed(7))
    other = model.sample(toy_batch.num_atoms, types, generator=torch.Generator().manual_seed(8))
    c = first.crystals
    assert c.frac_coords.shape == (7, 3) and c.lattice.shape == (2, 3, 3) and c.atomic_numbers.shape == (7,)
    assert (c.frac_coords >= 0).all() and (c.frac_coords < 1).all()
    assert torch.equal(c.num_atoms, toy_batch.num_atoms) and torch.equal(c.batch, toy_batch.batch)
    if task == "csp":
        assert torch.equal(c.atomic_numbers, toy_batch.atomic_numbers)
    else:
        assert ((c.atomic_numbers >= 1) & (c.atomic_numbers <= 100)).all()
    assert torch.equal(c.frac_coords, again.crystals.frac_coords) and torch.equal(c.lattice, again.crystals.lattice)
    assert not torch.equal(c.frac_coords, other.crystals.frac_coords)
    assert first.network_evaluations == 2 * 20 == model.expected_network_evaluations()


def test_sampling_requires_composition_exactly_for_csp(tiny, toy_batch):
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="atomic_numbers"):
        _model(tiny, "csp").sample(toy_batch.num_atoms, None, generator=g)
    with pytest.raises(ValueError, match="atomic_numbers"):
        _model(tiny, "gen").sample(toy_batch.num_atoms, toy_batch.atomic_numbers, generator=g)


def test_presets_name_the_papers_settings_and_build(tiny):
    assert PAPER_HPARAMS["mp-20"]["csp"]["model"]["step_lr"] == 1e-5
    assert PAPER_HPARAMS["mp-20"]["gen"]["model"]["step_lr"] == 5e-6
    assert PAPER_HPARAMS["perov-5"]["csp"]["train"]["batch_size"] == 1024
    assert PAPER_HPARAMS["carbon-24"]["gen"]["train"]["epochs"] == 4000
    config = DiffCSPConfig()
    assert (config.timesteps, config.hidden_dim, config.num_layers, config.num_freqs) == (1000, 512, 6, 128)
    for dataset in SMOKE_HPARAMS:
        for task, preset in SMOKE_HPARAMS[dataset].items():
            model = build_registered_model("diffcsp", preset["model"], task=task)  # as the CSP/gen task builds it
            assert model.expected_network_evaluations() == 100
    assert math.isclose(DiffCSP(DiffCSPConfig(**tiny)).sigmas[-1].item(), 0.5, rel_tol=1e-6)
