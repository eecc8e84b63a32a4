"""HiPPO matrices and the diagonal / DPLR initialisations built from them.

Sources (facts, not code):
* HiPPO-LegS: Gu et al., "HiPPO: Recurrent Memory with Optimal Polynomial Projections", NeurIPS 2020.
* NPLR/DPLR form and S4: Gu et al., "Efficiently Modeling Long Sequences with Structured State
  Spaces", ICLR 2022 (A = V (Lambda - P P^*) V^*, with A + P P^T normal).
* FouT measure: Gu et al., "How to Train Your HiPPO", ICLR 2023 (arXiv 2206.12037).
* S4D-LegS / -Inv / -Lin: Gu et al., "On the Parameterization and Initialization of Diagonal State
  Space Models", NeurIPS 2022 (arXiv 2206.11893). Theory pairs the LegS diagonal with B/2; the
  s4 code base (state-spaces/s4, ``dplr``) drops the 1/2, and its LRA numbers were produced that
  way, so ``legs_b_scale`` defaults to 1.0 and the tests use 0.5 where the theory is checked.
* PTD: Yu et al., "Robustifying State-space Models for Long Sequences via Approximate
  Diagonalization", ICLR 2024 (arXiv 2310.01698): perturb the non-normal HiPPO-LegS matrix by a
  small E chosen to minimise kappa(V) + gamma ||E||, then diagonalise A + E exactly.
* kappa bound used in tests: Banks, Kulkarni, Mukherjee, Srivastava (2021), "Gaussian
  regularization of the pseudospectrum and Davies' conjecture": a delta||A||-sized Gaussian
  perturbation gives eigenvector condition number at most c_n / delta with c_n polynomial in n.

Everything here is float64 numpy/torch at construction time; layers cast to their own dtype.
Conjugate-pair convention: a real N-state system is stored as the M modes with Im(lambda) >= 0
(M = N/2 for HiPPO-derived inits) and the layer output is 2 Re(sum over modes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from replibench.errors import ConfigError


def legs_matrices(N: int) -> tuple[np.ndarray, np.ndarray]:
    """HiPPO-LegS: A_nk = -sqrt(2n+1)sqrt(2k+1) (n>k), -(n+1) (n=k), 0 (n<k); B_n = sqrt(2n+1)."""
    r = np.sqrt(2.0 * np.arange(N) + 1.0)  # (N,)
    A = -(np.tril(np.outer(r, r)) - np.diag(np.arange(N, dtype=np.float64)))  # (N, N)
    return A, r.copy()


def fout_matrices(N: int) -> tuple[np.ndarray, np.ndarray]:
    """HiPPO-FouT (HTTYH §4): skew-symmetric Fourier frequencies minus the rank-1 term B B^T.

    State pairs (2k, 2k+1) hold cos/sin of frequency k; states 0 and 1 are the frequency-0 pair
    (state 1, the zero sine, is dead). B = (1, 0, sqrt2, 0, sqrt2, 0, ...).
    """
    if N % 2:
        raise ConfigError(f"hippo.fout_matrices: N must be even, found {N}")
    freqs = np.arange(N // 2, dtype=np.float64)
    d = np.stack([np.zeros(N // 2), freqs], axis=-1).reshape(-1)[1:]  # (N-1,) superdiagonal
    A = math.pi * (-np.diag(d, 1) + np.diag(d, -1))  # (N, N) skew-symmetric
    B = np.zeros(N)
    B[0::2] = math.sqrt(2.0)
    B[0] = 1.0
    return A - np.outer(B, B), B


def hippo_matrices(measure: str, N: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) for ``measure`` in {"legs", "fout"}."""
    if measure == "legs":
        return legs_matrices(N)
    if measure == "fout":
        return fout_matrices(N)
    raise ConfigError(f"hippo: measure must be 'legs' or 'fout', found {measure!r}")


def low_rank_correction(measure: str, N: int) -> np.ndarray:
    """P (N,) such that A + P P^T is normal (LegS: sqrt(n + 1/2); FouT: B)."""
    if measure == "legs":
        return np.sqrt(np.arange(N) + 0.5)
    if measure == "fout":
        return fout_matrices(N)[1]
    raise ConfigError(f"hippo: measure must be 'legs' or 'fout', found {measure!r}")


@dataclass(frozen=True)
class NPLR:
    """Half (one per conjugate pair) of the unitary NPLR form A = V (diag(Lambda) - p p^*) V^*.

    Lambda, P, B: (M,) complex128 with M = N/2; V: (N, M). The full N-state system is the pair
    (Lambda, conj Lambda) with columns (V, conj V); P and B are V^* applied to the real P, B.
    """

    Lambda: np.ndarray
    P: np.ndarray
    B: np.ndarray
    V: np.ndarray


def nplr(measure: str, N: int, b_clip: float | None = None) -> NPLR:
    """Diagonalise the normal part of HiPPO ``measure`` unitarily and keep one of each pair.

    ``b_clip`` clamps Im(V^* B) as the s4 code does since v4 (``B_clip=2.0``, March 2023; the
    paper-era v3.0.0 does not) for numerical stability;
    ``None`` keeps the exact transform (used by tests that compare against the dense system).
    """
    A, B = hippo_matrices(measure, N)
    P = low_rank_correction(measure, N)
    normal = A + np.outer(P, P)  # (N, N) = re * I + skew
    re = float(np.mean(np.diag(normal)))
    skew = normal - re * np.eye(N)
    if np.abs(skew + skew.T).max() > 1e-8:
        raise ConfigError(f"hippo.nplr: normal part of {measure} is not scalar + skew-symmetric")
    w, U = np.linalg.eigh(-1j * skew)  # skew u = i w u; w real ascending, U unitary (N, N)
    pos = np.where(w > 1e-9)[0]
    cols = [U[:, i] for i in pos[::-1]]
    lams = [re + 1j * w[i] for i in pos[::-1]]
    zero = np.where(np.abs(w) <= 1e-9)[0]
    if len(zero) == 2:  # FouT frequency-0 pair: a real basis (z1, z2) -> (z1 + i z2)/sqrt2 and conj
        z = np.linalg.svd(skew)[2][-2:].T  # (N, 2) real orthonormal null space
        cols.append((z[:, 0] + 1j * z[:, 1]) / math.sqrt(2.0))
        lams.append(complex(re, 0.0))
    elif len(zero) != 0:
        raise ConfigError(f"hippo.nplr: {measure} has {len(zero)} zero eigenvalues, expected 0 or 2")
    V = np.stack(cols, axis=1)  # (N, M)
    Vh = V.conj().T  # (M, N)
    Bt, Pt = Vh @ B, Vh @ P  # (M,), (M,)
    if b_clip is not None:
        Bt = Bt.real + 1j * np.clip(Bt.imag, -b_clip, b_clip)
    return NPLR(Lambda=np.asarray(lams), P=Pt, B=Bt, V=V)


def s4d_init(
    kind: str, N: int, legs_b_scale: float = 1.0, legs_b_clip: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """S4D diagonal inits (Lambda (N/2,), B (N/2,)) complex128, S4D paper §4.

    lin: -1/2 + i pi n; inv: -1/2 + i (N/pi)(N/(2n+1) - 1); both with B = 1.
    legs: the diagonal of the DPLR LegS form, B = V^* B_legs * legs_b_scale (theory: 0.5), with
    Im(B) clipped to +-legs_b_clip if given. Default None = the exact transform, as the paper-era
    s4 code (v3.0.0) ran it: the clip arrived with s4 commits 1eb1007 / aec83ea (March 2023, v4).
    """
    n = np.arange(N // 2, dtype=np.float64)
    if kind == "lin":
        return -0.5 + 1j * math.pi * n, np.ones(N // 2, dtype=np.complex128)
    if kind == "inv":
        return -0.5 + 1j * (N / math.pi) * (N / (2 * n + 1) - 1), np.ones(N // 2, dtype=np.complex128)
    if kind == "legs":
        form = nplr("legs", N, b_clip=legs_b_clip)
        return form.Lambda, form.B * legs_b_scale
    raise ConfigError(f"hippo.s4d_init: kind must be lin, inv or legs, found {kind!r}")


def eigenvector_condition(V: np.ndarray) -> float:
    """kappa(V) = sigma_max / sigma_min after normalising each eigenvector column to unit norm."""
    Vn = V / np.linalg.norm(V, axis=0, keepdims=True)
    s = np.linalg.svd(Vn, compute_uv=False)
    return float(s[0] / s[-1])


@dataclass(frozen=True)
class PTDInit:
    """A + E = V diag(Lambda) V^{-1}; B_tilde = V^{-1} B. All N modes (not halved), complex128."""

    Lambda: np.ndarray
    B: np.ndarray
    V: np.ndarray
    V_inv: np.ndarray
    relative_perturbation: float  # ||E||_2 / ||A||_2
    kappa: float  # condition number of the unit-column eigenvector matrix


def _kappa_torch(M: torch.Tensor) -> torch.Tensor:
    _, V = torch.linalg.eig(M)  # (N, N) complex
    V = V / torch.linalg.vector_norm(V, dim=0, keepdim=True)
    s = torch.linalg.svdvals(V)  # (N,)
    return s[0] / s[-1]


def ptd_init(
    A: np.ndarray,
    B: np.ndarray,
    *,
    relative_size: float = 1e-3,
    gamma: float = 1.0,
    steps: int = 0,
    step_size: float = 1e-2,
    generator: torch.Generator | None = None,
) -> PTDInit:
    """Perturb-then-diagonalise (Yu et al. 2024, §4.2).

    E starts as a real Gaussian matrix scaled to ||E||_2 = relative_size * ||A||_2 (real, so the
    spectrum stays closed under conjugation); ``steps`` Adam steps then decrease the paper's
    objective Phi(E) = kappa(V(A + E)) + gamma * ||E||_2 (float64, gradients through eig).
    The paper's own per-task perturbations were precomputed and are not public here; gamma,
    relative_size and steps are our defaults (documented in the preset file).
    """
    At = torch.as_tensor(A, dtype=torch.float64)  # (N, N)
    N = At.shape[0]
    norm_a = torch.linalg.matrix_norm(At, ord=2)
    G = torch.randn(N, N, dtype=torch.float64, generator=generator)  # (N, N)
    E = (relative_size * norm_a / torch.linalg.matrix_norm(G, ord=2)) * G
    if steps > 0:
        E = E.clone().requires_grad_(True)
        opt = torch.optim.Adam([E], lr=step_size)
        best, best_phi = E.detach().clone(), float("inf")
        for _ in range(steps):
            phi = _kappa_torch(At + E) + gamma * torch.linalg.matrix_norm(E, ord=2)
            if float(phi.detach()) < best_phi:
                best, best_phi = E.detach().clone(), float(phi.detach())
            opt.zero_grad()
            phi.backward()
            opt.step()
        E = best
    M = (At + E.detach()).numpy()
    lam, V = np.linalg.eig(M)  # (N,), (N, N)
    V = V / np.linalg.norm(V, axis=0, keepdims=True)
    V_inv = np.linalg.inv(V)
    return PTDInit(
        Lambda=lam,
        B=V_inv @ B,
        V=V,
        V_inv=V_inv,
        relative_perturbation=float(np.linalg.norm(E.detach().numpy(), 2) / np.linalg.norm(A, 2)),
        kappa=eigenvector_condition(V),
    )


def conjugate_half(
    Lambda: np.ndarray, B: np.ndarray, V: np.ndarray, tol: float = 1e-9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Modes for the 2 Re(sum) convention from the full spectrum of a real matrix.

    Keeps one mode per conjugate pair (Im > 0) and every real eigenvalue with B halved, so that
    2 Re(sum over kept modes) equals the full real sum exactly (for real C in the original basis).
    Returns (Lambda (M,), B (M,), V (N, M)) with the kept eigenvector columns.
    """
    keep_pair = Lambda.imag > tol
    real = np.abs(Lambda.imag) <= tol
    lam = np.concatenate([Lambda[keep_pair], Lambda[real].real.astype(np.complex128)])
    b = np.concatenate([B[keep_pair], B[real] / 2.0])
    return lam, b, np.concatenate([V[:, keep_pair], V[:, real]], axis=1)


def s4_ptd_init(
    N: int, *, relative_size: float, gamma: float, steps: int, generator: torch.Generator | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S4-PTD modes (Lambda (M,), B (M,), V (N, M)) for a diagonal layer: PTD of HiPPO-LegS,
    halved; the layer draws C in the original basis and uses C~ = C V (unit-norm columns)."""
    A, B = legs_matrices(N)
    init = ptd_init(A, B, relative_size=relative_size, gamma=gamma, steps=steps, generator=generator)
    return conjugate_half(init.Lambda, init.B, init.V)
