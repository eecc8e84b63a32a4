"""Bayesian flows of CrysBFN: periodic (von Mises) for fractional coordinates, Gaussian for the
lattice, categorical for atom types, and the linear-entropy accuracy schedule.

Wu et al., "A Periodic Bayesian Flow for Material Generation", ICLR 2025 (arXiv 2502.02016), Sec. 3-4;
Graves et al., "Bayesian Flow Networks" (arXiv 2308.07037) for the Gaussian and categorical flows.
Read in GenSI-THUAIR/CrysBFN (``crysbfn/pl_modules/crysbfn.py``, ``bfn_base.py``,
``common/linear_acc_search.py``), not copied.

Circular variables live on [-pi, pi) ("circle units"); a fractional coordinate f maps to 2 pi f - pi.
A von Mises sender y ~ vM(x, alpha) updates the posterior vM(m, c) by adding resultant vectors:
c' e^{i m'} = c e^{i m} + alpha e^{i y}. Starting from the uniform prior (c = 0), the input
distribution at step i is the resultant of i-1 observations; its accuracy c is random, which is why
CrysBFN feeds log c to the network ("entropy conditioning").
"""

from __future__ import annotations

import functools
import math

import torch


def wrap_angle(x: torch.Tensor) -> torch.Tensor:
    """Map angles into [-pi, pi)."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


def von_mises_entropy(kappa: torch.Tensor) -> torch.Tensor:
    """Differential entropy (nats) of vM(mu, kappa): log(2 pi I0(k)) - k I1(k) / I0(k)."""
    k = kappa.to(torch.float64)
    i0e, i1e = torch.special.i0e(k), torch.special.i1e(k)
    return math.log(2 * math.pi) + torch.log(i0e) + k - k * i1e / i0e


def sample_von_mises(
    loc: torch.Tensor, concentration: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw vM(loc, concentration) by Best & Fisher's (1979) rejection sampler, in float64 so that
    large concentrations stay exact; every uniform comes from ``generator``. Returns [-pi, pi)."""
    shape = torch.broadcast_shapes(loc.shape, concentration.shape)
    kappa = concentration.to(torch.float64).expand(shape).reshape(-1)  # (M,)
    tau = 1 + torch.sqrt(1 + 4 * kappa**2)
    rho = (tau - torch.sqrt(2 * tau)) / (2 * kappa)
    r = torch.where(kappa < 1e-5, 1 / kappa + kappa, (1 + rho**2) / (2 * rho))  # (M,) proposal parameter
    angle = torch.empty_like(kappa)  # (M,)
    pending = torch.arange(kappa.shape[0], device=kappa.device)
    while pending.numel():
        u = torch.rand(3, pending.numel(), generator=generator, dtype=torch.float64, device=kappa.device)
        z = torch.cos(math.pi * u[0])
        f = ((1 + r * z) / (r + z)).clamp(-1.0, 1.0)
        c = kappa * (r - f)
        accept = (c * (2 - c) - u[1] > 0) | (torch.log(c / u[1]) + 1 - c >= 0)
        angle[pending[accept]] = torch.sign(u[2] - 0.5)[accept] * torch.acos(f[accept])
        pending, kappa, r = pending[~accept], kappa[~accept], r[~accept]
    return wrap_angle(loc.to(torch.float64).expand(shape) + angle.reshape(shape)).to(loc.dtype)


def _bisect(fn, lo: torch.Tensor, hi: torch.Tensor, iterations: int = 60) -> torch.Tensor:
    """Root of an increasing function, elementwise, given fn(lo) <= 0 <= fn(hi)."""
    for _ in range(iterations):
        mid = (lo + hi) / 2
        below = fn(mid) < 0
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


def linear_entropy_targets(num_steps: int, beta1: float) -> torch.Tensor:
    """Posterior accuracies kappa_1..kappa_N (float64, (N,)) whose von Mises entropies fall linearly:
    H(kappa_i) = H(0) + (H(beta1) - H(0)) i / N, from the uniform prior to vM(., beta1)."""
    steps = torch.arange(1, num_steps + 1, dtype=torch.float64)  # (N,)
    h0, h1 = von_mises_entropy(torch.tensor(0.0)), von_mises_entropy(torch.tensor(float(beta1)))
    target = h0 + (h1 - h0) * steps / num_steps  # (N,)
    log_kappa = _bisect(
        lambda lk: target - von_mises_entropy(lk.exp()),  # increasing in log kappa
        torch.full_like(target, math.log(1e-12)),
        torch.full_like(target, math.log(beta1)),
        iterations=100,
    )
    kappa = log_kappa.exp()
    kappa[-1] = beta1
    return kappa


#: sha256 of ``crysbfn_schedules.json`` (written by tools/crystals/convert_crysbfn_schedules.py from
#: wu-han-lin/CrysBFN@2db6a20 ``cache_files/linear_entropy_alphas_s{N}_{beta1}.pt``); the loader refuses
#: other bytes, so an edited or truncated file cannot silently change a paper run's schedule
RELEASED_SCHEDULES_SHA256 = "16413481a088cfc2a8a8e0bbfd15e0da29323d8dac5a4f76f9689e38a36a5311"
_RELEASED_SCHEDULES = "crysbfn_schedules.json"


@functools.lru_cache(maxsize=1)
def _released_schedules() -> dict[str, list[float]]:
    import hashlib
    import json
    from importlib import resources

    from replibench.errors import ChecksumError

    raw = resources.files("replibench.families.crystals.models").joinpath(_RELEASED_SCHEDULES).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != RELEASED_SCHEDULES_SHA256:
        raise ChecksumError(f"replibench/models/{_RELEASED_SCHEDULES}: expected sha256 {RELEASED_SCHEDULES_SHA256}, "
                            f"found {digest}; regenerate it with tools/crystals/convert_crysbfn_schedules.py")
    return json.loads(raw)["schedules"]


def released_linear_entropy_accuracies(num_steps: int, beta1: float) -> torch.Tensor | None:
    """The sender accuracies alpha_1..alpha_N the authors released for (N, beta1), as float64 (N,)
    holding their float32 values; ``None`` where they released none (13 pairs: N 10-2000, beta1
    100-10,000). The released code trains and samples with these (``alpha_wrt_index`` loads them);
    they differ from a fresh solution of the same equations (``linear_entropy_accuracies``) by up
    to 2.6 % at N = 1000, because upstream solved each step by 100,000-draw Monte Carlo."""
    values = _released_schedules().get(f"s{int(num_steps)}_{float(beta1)!r}")
    if values is None:
        return None
    return torch.tensor(values, dtype=torch.float32).to(torch.float64)


def coord_accuracy_schedule(num_steps: int, beta1: float, source: str = "released") -> torch.Tensor:
    """Sender accuracies (float64, (N,)) of the periodic flow. ``source="released"``: the authors'
    released values where they exist for (N, beta1), else the solver; ``"solved"``: always the solver."""
    if source not in ("released", "solved"):
        raise ValueError(f"accuracy schedule source must be 'released' or 'solved', found {source!r}")
    released = released_linear_entropy_accuracies(num_steps, beta1) if source == "released" else None
    return linear_entropy_accuracies(num_steps, beta1) if released is None else released


@functools.lru_cache(maxsize=8)
def linear_entropy_accuracies(num_steps: int, beta1: float, grid: int = 4096) -> torch.Tensor:
    """Sender accuracies alpha_1..alpha_N (float64, (N,)) of CrysBFN's linear-entropy schedule.

    With kappa_i from ``linear_entropy_targets``: alpha_1 = kappa_1 and, for i >= 2, alpha_i solves
    E|kappa_{i-1} + alpha e^{i phi}| = kappa_i with phi ~ vM(0, alpha), i.e. the expected resultant
    after one more observation drawn around the current mean (as the released code assumes; the
    realised accuracies fall somewhat short early on because the mean is not yet on the data).
    The released code solves this by 100,000-draw Monte Carlo and scipy root finding
    (``linear_acc_search.find_linear``); here the expectation is a periodic trapezoid quadrature on
    ``grid`` points and the root is found by bisection, so the schedule is deterministic.
    """
    kappa = linear_entropy_targets(num_steps, beta1)  # (N,)
    phi = torch.arange(grid, dtype=torch.float64) * (2 * math.pi / grid) - math.pi  # (G,)
    prev, goal = kappa[:-1, None], kappa[1:, None]  # (N-1, 1)

    def excess(alpha: torch.Tensor) -> torch.Tensor:  # (N-1, 1) -> (N-1, 1)
        weight = torch.exp(alpha * (torch.cos(phi) - 1))  # (N-1, G) unnormalised vM(0, alpha)
        length = torch.sqrt(prev**2 + alpha**2 + 2 * prev * alpha * torch.cos(phi))  # (N-1, G)
        return (weight * length).sum(-1, keepdim=True) / weight.sum(-1, keepdim=True) - goal

    alphas = _bisect(excess, goal - prev, torch.full_like(goal, float(beta1)))  # (N-1, 1)
    return torch.cat([kappa[:1], alphas[:, 0]])  # (N,)


def circular_flow(
    x: torch.Tensor,  # (A, 3) data angles in [-pi, pi)
    num_observations: torch.Tensor,  # (A,) senders already received (step index i minus 1)
    alphas: torch.Tensor,  # (N,) sender accuracies
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample the input distribution p_F(m, c | x; i) of the periodic flow: m, c of the resultant of
    ``num_observations`` von Mises senders around x. Returns mean (A, 3) in [-pi, pi) and accuracy c
    (A, 3); with zero observations the mean is uniform and c = 0 (the prior)."""
    most = int(num_observations.max()) if num_observations.numel() else 0
    prior = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 * math.pi - math.pi
    if most == 0:
        return prior, torch.zeros_like(x)
    a = alphas[:most].to(x.dtype)[:, None, None]  # (M, 1, 1)
    y = sample_von_mises(x[None].expand(most, *x.shape), a.expand(most, *x.shape), generator)  # (M, A, 3)
    cos_sum, sin_sum = torch.cumsum(a * y.cos(), 0), torch.cumsum(a * y.sin(), 0)  # (M, A, 3)
    pick = (num_observations.clamp(min=1) - 1)[None, :, None].expand(1, *x.shape)  # (1, A, 3)
    cos_i, sin_i = cos_sum.gather(0, pick)[0], sin_sum.gather(0, pick)[0]  # (A, 3)
    has_obs = (num_observations > 0)[:, None]  # (A, 1)
    mean = torch.where(has_obs, torch.atan2(sin_i, cos_i), prior)  # (A, 3)
    accuracy = torch.where(has_obs, torch.sqrt(cos_i**2 + sin_i**2), torch.zeros_like(x))  # (A, 3)
    return mean, accuracy


def gaussian_flow(
    x: torch.Tensor, t: torch.Tensor, sigma1: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """BFN continuous flow: mu = gamma x + sqrt(gamma (1 - gamma)) eps, gamma = 1 - sigma1^(2t).
    ``t`` broadcasts against ``x``."""
    gamma = 1 - sigma1 ** (2 * t)
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return gamma * x + torch.sqrt(gamma * (1 - gamma)) * eps


def categorical_flow(
    probs: torch.Tensor, t: torch.Tensor, beta1: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """BFN discrete flow: theta = softmax(beta (K e - 1) + sqrt(beta K) eps), beta = beta1 t^2.
    ``probs`` (A, K) is a one-hot target (training) or the network's distribution (sampling);
    ``t`` (A, 1)."""
    k = probs.shape[-1]
    beta = beta1 * t**2  # (A, 1)
    eps = torch.randn(probs.shape, generator=generator, device=probs.device, dtype=probs.dtype)
    return torch.softmax(beta * (k * probs - 1) + torch.sqrt(beta * k) * eps, dim=-1)  # (A, K)
