"""DiffCSP: joint equivariant diffusion of lattice and fractional coordinates (and atom types).

Jiao et al., "Crystal Structure Prediction by Joint Equivariant Diffusion", NeurIPS 2023
(arXiv 2309.04475). Method as in the paper and jiaor17/DiffCSP@7121d15 (read, not copied):
- lattice L: DDPM with the cosine schedule (Nichol & Dhariwal), eps-prediction, MSE (Eq. 3-5);
- fractional coordinates F: score matching with the wrapped normal N_w(F_t | F, sigma_t^2), sigma_t
  geometric from sigma_begin to sigma_end; the target is -grad log N_w / sqrt(lambda_t) with
  lambda_t = E[|grad log N_w|^2] (Eq. 10-12; computed here by quadrature instead of Monte Carlo);
- sampling: predictor-corrector (Algorithm 2): a Langevin corrector step on F, then the
  predictor (ancestral DDPM step for L, reverse wrapped-normal step for F): 2 network calls per step;
- ab initio generation ("DiffCSP w/ type", ``conf/model/diffusion_w_type.yaml``): one-hot atom types
  (100 classes, index Z-1) are diffused with the lattice's DDPM and decoded by argmax; atom counts
  come from the caller (drawn from the training histogram by the task).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replibench.families.crystals.models.cspnet import (
    CSPNet,
    CSPNetConfig,
    SampleResult,
    sinusoidal_time_embedding,
    wrap_fractional,
)
from replibench.families.crystals.types import CrystalBatch, structure_index

MAX_ATOMIC_NUMBER = 100  # DiffCSP MAX_ATOMIC_NUM: type classes are Z-1 in 0..99


@dataclass
class DiffCSPConfig:
    task: str = "csp"  # "csp" (composition given) or "gen" (types diffused too)
    timesteps: int = 1000  # conf/model/diffusion.yaml timesteps
    cosine_s: float = 0.008  # diff_utils.cosine_beta_schedule s
    sigma_begin: float = 0.005  # conf/model/sigma_scheduler/wrapped.yaml
    sigma_end: float = 0.5  # wrapped.yaml
    wrapped_images: int = 10  # periodic images summed each side (diff_utils N=10)
    cost_lattice: float = 1.0  # diffusion.yaml cost_lattice
    cost_coord: float = 1.0  # diffusion.yaml cost_coord
    cost_type: float = 20.0  # diffusion_w_type.yaml cost_type (gen only)
    step_lr: float = 1e-5  # Langevin step; scripts/evaluate.py (CSP) / generation.py (gen) per dataset
    hidden_dim: int = 512  # conf/model/decoder/cspnet.yaml
    num_layers: int = 6  # cspnet.yaml
    num_freqs: int = 128  # cspnet.yaml
    time_dim: int = 256  # diffusion.yaml time_dim
    layer_norm: bool = True  # cspnet.yaml ln


def cosine_alpha_bars(timesteps: int, s: float) -> torch.Tensor:
    """(T+1,) cumulative alphas of the cosine schedule, betas clipped to [1e-4, 0.9999] (float64)."""
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)  # (T+1,)
    f = torch.cos((x / timesteps + s) / (1 + s) * math.pi / 2) ** 2  # (T+1,)
    betas = (1 - f[1:] / f[:-1]).clamp(1e-4, 0.9999)  # (T,)
    return torch.cumprod(torch.cat([torch.ones(1, dtype=torch.float64), 1 - betas]), 0)  # (T+1,) index 0 = clean


def wrapped_normal_score(x: torch.Tensor, sigma: torch.Tensor, images: int = 10) -> torch.Tensor:
    """d/dx log sum_k exp(-(x + k)^2 / (2 sigma^2)): the score of the period-1 wrapped normal.

    ``sigma`` broadcasts against ``x``. Computed with softmax weights over images (stable for tiny
    sigma, where the raw exponentials of DiffCSP's formula would underflow to 0/0)."""
    k = torch.arange(-images, images + 1, device=x.device, dtype=x.dtype)  # (2M+1,)
    shifted = x[..., None] + k  # (..., 2M+1)
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    weights = torch.softmax(-(shifted**2) / (2 * sigma[..., None] ** 2), dim=-1)  # (..., 2M+1)
    return -(weights * shifted).sum(-1) / sigma**2  # (...)


def wrapped_normal_score_norm(sigmas: torch.Tensor, images: int = 10, points: int = 401) -> torch.Tensor:
    """lambda(sigma) = E_{x ~ N_w(0, sigma^2)} [score(x)^2] by trapezoid quadrature on [-h, h],
    h = min(1/2, 12 sigma) (mass outside is < 1e-31); 401 points agree with 2,001 to 1e-15.
    Deterministic; DiffCSP estimates the same expectation with 10,000 Monte-Carlo draws
    (diff_utils.sigma_norm)."""
    s = sigmas.to(torch.float64)[:, None]  # (S, 1)
    half_width = torch.clamp(12 * s, max=0.5)  # (S, 1)
    x = half_width * torch.linspace(-1, 1, points, dtype=torch.float64)  # (S, G)
    density = torch.zeros_like(x)
    slope = torch.zeros_like(x)
    for k in range(-images, images + 1):
        g = torch.exp(-((x + k) ** 2) / (2 * s**2))  # (S, G)
        density += g
        slope += -(x + k) / s**2 * g
    score = slope / density  # (S, G)
    pdf = density / (math.sqrt(2 * math.pi) * s)  # (S, G) normalised wrapped-normal density
    return torch.trapezoid(pdf * score**2, x, dim=-1)  # (S,)


class DiffCSP(nn.Module):
    #: the tasks this model implements: its family and the sweeps that may name it come from here
    TASKS = ("csp", "gen")

    Config = DiffCSPConfig

    def __init__(self, config: DiffCSPConfig) -> None:
        super().__init__()
        if config.task not in ("csp", "gen"):
            raise ValueError(f"DiffCSPConfig.task must be 'csp' or 'gen', found {config.task!r}")
        self.config = c = config
        gen = c.task == "gen"
        self.backbone = CSPNet(
            CSPNetConfig(c.hidden_dim, c.num_layers, c.num_freqs, c.time_dim, c.layer_norm, MAX_ATOMIC_NUMBER, gen, gen)
        )
        abar = cosine_alpha_bars(c.timesteps, c.cosine_s)  # (T+1,)
        alphas = torch.cat([torch.ones(1, dtype=torch.float64), abar[1:] / abar[:-1]])  # (T+1,)
        post_var = torch.zeros_like(abar)
        post_var[1:] = (1 - alphas[1:]) * (1 - abar[:-1]) / (1 - abar[1:])  # DDPM posterior variance
        sigmas = torch.exp(
            torch.linspace(math.log(c.sigma_begin), math.log(c.sigma_end), c.timesteps, dtype=torch.float64)
        )
        norms = wrapped_normal_score_norm(sigmas, c.wrapped_images)  # (T,)
        for name, value in {
            "alpha_bars": abar,
            "alphas": alphas,
            "posterior_std": post_var.sqrt(),
            "sigmas": torch.cat([torch.zeros(1, dtype=torch.float64), sigmas]),
            "score_norms": torch.cat([torch.ones(1, dtype=torch.float64), norms]),
        }.items():
            self.register_buffer(name, value.float())  # (T+1,) indexed by t = 0..T

    def expected_network_evaluations(self) -> int:
        """Forward calls per sampled batch: predictor + corrector at each of T steps."""
        return 2 * self.config.timesteps

    def _type_input(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        if atomic_numbers.numel() and (atomic_numbers.min() < 1 or atomic_numbers.max() > MAX_ATOMIC_NUMBER):
            raise ValueError(
                f"DiffCSP handles Z in 1..{MAX_ATOMIC_NUMBER}; found {atomic_numbers.min()}..{atomic_numbers.max()}"
            )
        return atomic_numbers.long() - 1  # (N,) class index

    def loss_terms(self, batch: CrystalBatch, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-term training objective; randomness from ``generator`` (torch's global RNG if None)."""
        c, dev = self.config, batch.frac_coords.device
        num_structures, num_atoms_total = batch.num_structures, batch.frac_coords.shape[0]
        t = torch.randint(1, c.timesteps + 1, (num_structures,), generator=generator, device=dev)  # (B,)
        abar = self.alpha_bars[t]  # (B,)
        eps_l = torch.randn(num_structures, 3, 3, generator=generator, device=dev)  # (B, 3, 3)
        eps_x = torch.randn(num_atoms_total, 3, generator=generator, device=dev)  # (N, 3)
        lattice_t = abar.sqrt()[:, None, None] * batch.lattice + (1 - abar).sqrt()[:, None, None] * eps_l  # (B, 3, 3)
        sigma = self.sigmas[t][batch.batch][:, None]  # (N, 1)
        frac_t = wrap_fractional(batch.frac_coords + sigma * eps_x)  # (N, 3)
        types = self._type_input(batch.atomic_numbers)  # (N,)
        if c.task == "gen":
            onehot = F.one_hot(types, MAX_ATOMIC_NUMBER).float()  # (N, 100)
            eps_a = torch.randn(num_atoms_total, MAX_ATOMIC_NUMBER, generator=generator, device=dev)  # (N, 100)
            a = abar[batch.batch][:, None]  # (N, 1)
            types = a.sqrt() * onehot + (1 - a).sqrt() * eps_a  # (N, 100) noisy one-hot
        out = self.backbone(
            sinusoidal_time_embedding(t, c.time_dim), types, frac_t, lattice_t, batch.num_atoms, batch.batch
        )
        norm = self.score_norms[t][batch.batch][:, None]  # (N, 1)
        target_x = -wrapped_normal_score(sigma * eps_x, sigma, c.wrapped_images) / norm.sqrt()  # (N, 3)
        terms = {"lattice": F.mse_loss(out.lattice, eps_l), "coord": F.mse_loss(out.coords, target_x)}
        total = c.cost_lattice * terms["lattice"] + c.cost_coord * terms["coord"]
        if c.task == "gen":
            terms["type"] = F.mse_loss(out.type_logits, eps_a)
            total = total + c.cost_type * terms["type"]
        terms["loss"] = total
        return terms

    def loss(self, batch: CrystalBatch, generator: torch.Generator | None = None) -> torch.Tensor:
        """The paper's objective: cost_L * L_lattice + cost_F * L_coord (+ cost_A * L_type)."""
        return self.loss_terms(batch, generator)["loss"]

    @torch.no_grad()
    def sample(
        self,
        num_atoms: torch.Tensor,  # (B,) atoms per crystal
        atomic_numbers: torch.Tensor | None = None,  # (N,) composition for CSP; None for generation
        *,
        generator: torch.Generator,
        step_lr: float | None = None,
    ) -> SampleResult:
        """Predictor-corrector sampling from t = T to 1; ``generator`` drives every random draw."""
        c, dev = self.config, num_atoms.device
        if (atomic_numbers is None) != (c.task == "gen"):
            raise ValueError("DiffCSP.sample: give atomic_numbers for task 'csp' and only for it")
        step_lr = c.step_lr if step_lr is None else step_lr
        batch = structure_index(num_atoms)  # (N,)
        n_struct, n_atoms = num_atoms.shape[0], batch.shape[0]
        lattice = torch.randn(n_struct, 3, 3, generator=generator, device=dev)  # (B, 3, 3) L_T
        frac = torch.rand(n_atoms, 3, generator=generator, device=dev)  # (N, 3) F_T ~ U[0, 1)
        if c.task == "gen":
            types = torch.randn(n_atoms, MAX_ATOMIC_NUMBER, generator=generator, device=dev)  # (N, 100)
        else:
            types = self._type_input(atomic_numbers)  # (N,)
        start = self.backbone.evaluations
        for t in range(c.timesteps, 0, -1):
            t_emb = sinusoidal_time_embedding(torch.full((n_struct,), t, device=dev), c.time_dim)  # (B, T)
            sigma, sigma_prev, norm = self.sigmas[t], self.sigmas[t - 1], self.score_norms[t]
            noise = (
                (lambda *shape: torch.randn(*shape, generator=generator, device=dev))
                if t > 1
                else (lambda *shape: torch.zeros(*shape, device=dev))
            )
            # corrector: one Langevin step on F with step size step_lr * (sigma_t / sigma_1)^2
            step = step_lr * (sigma / c.sigma_begin) ** 2
            out = self.backbone(t_emb, types, frac, lattice, num_atoms, batch)
            frac = frac - step * out.coords * norm.sqrt() + (2 * step).sqrt() * noise(n_atoms, 3)  # (N, 3)
            # predictor: reverse wrapped-normal step on F, ancestral DDPM step on L (and types)
            out = self.backbone(t_emb, types, frac, lattice, num_atoms, batch)
            step = sigma**2 - sigma_prev**2
            std = (sigma_prev**2 * step / sigma**2).sqrt()
            frac = wrap_fractional(frac - step * out.coords * norm.sqrt() + std * noise(n_atoms, 3))  # (N, 3)
            inv_sqrt_alpha = 1 / self.alphas[t].sqrt()
            eps_coef = (1 - self.alphas[t]) / (1 - self.alpha_bars[t]).sqrt()
            lattice = inv_sqrt_alpha * (lattice - eps_coef * out.lattice) + self.posterior_std[t] * noise(
                n_struct, 3, 3
            )
            if c.task == "gen":
                types = inv_sqrt_alpha * (types - eps_coef * out.type_logits) + self.posterior_std[t] * noise(
                    n_atoms, MAX_ATOMIC_NUMBER
                )  # (N, 100)
        final_types = types.argmax(-1) + 1 if c.task == "gen" else atomic_numbers.long()  # (N,) Z
        crystals = CrystalBatch(final_types, frac.float(), lattice.float(), num_atoms, batch)
        return SampleResult(crystals, self.backbone.evaluations - start)
