"""PTD (Yu et al., ICLR 2024): the perturbed HiPPO-LegS is diagonalisable with a bounded
eigenvector condition number, stays stable, and its system is backward-stably close to HiPPO's."""

import numpy as np
import pytest
import torch

from replibench.families.lra.models import hippo


def test_direct_diagonalisation_of_legs_is_ill_conditioned():
    A, _ = hippo.legs_matrices(32)
    _, V = np.linalg.eig(A)
    assert hippo.eigenvector_condition(V) > 1e12  # exponential in N: why S4D/S5 drop the low-rank part


@pytest.mark.parametrize("N", [16, 32, 64])
@pytest.mark.parametrize("rel", [1e-4, 1e-3])
def test_ptd_condition_number_is_bounded(N, rel):
    """Davies-type bound (Banks et al. 2021): kappa(V) <= c_n / delta with c_n polynomial; we check
    the n^2 / delta form, delta = ||E|| / ||A||, and that the spectrum stays in Re < 0."""
    A, B = hippo.legs_matrices(N)
    init = hippo.ptd_init(A, B, relative_size=rel, generator=torch.Generator().manual_seed(0))
    assert init.relative_perturbation == pytest.approx(rel, rel=1e-6)
    assert init.kappa <= N**2 / init.relative_perturbation
    assert init.Lambda.real.max() < 0
    recon = init.V @ np.diag(init.Lambda) @ init.V_inv
    assert np.abs(recon.real - A).max() <= 2 * rel * np.linalg.norm(A, 2)  # A + E, ||E|| = rel ||A||


@pytest.mark.parametrize("N", [16, 32])
def test_ptd_system_is_close_to_hippo_and_error_scales_with_perturbation(N):
    A, B = hippo.legs_matrices(N)
    C = np.random.default_rng(0).standard_normal(N)
    ts = np.linspace(0.0, 3.0, 31)
    At = torch.as_tensor(A)
    exact = np.array([C @ torch.linalg.matrix_exp(t * At).numpy() @ B for t in ts])
    errs = []
    for rel in (1e-4, 1e-3):
        init = hippo.ptd_init(A, B, relative_size=rel, generator=torch.Generator().manual_seed(0))
        lam, b, V = hippo.conjugate_half(init.Lambda, init.B, init.V)
        approx = np.array([2 * ((C @ V * np.exp(lam * t)) @ b).real for t in ts])  # layer convention
        errs.append(np.abs(approx - exact).max() / np.abs(exact).max())
    assert errs[1] < 20 * 1e-3  # backward stable: error of the order of the relative perturbation
    assert errs[0] < errs[1] / 3  # and shrinking with it


def test_ptd_optimisation_lowers_condition_number():
    A, B = hippo.legs_matrices(12)
    g = lambda: torch.Generator().manual_seed(0)
    start = hippo.ptd_init(A, B, relative_size=1e-3, steps=0, generator=g())
    tuned = hippo.ptd_init(A, B, relative_size=1e-3, gamma=1.0, steps=8, generator=g())
    assert tuned.kappa < start.kappa
