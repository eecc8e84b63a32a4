"""Gaunt tensor product: SH coefficients -> 2D Fourier basis -> convolution (on a grid) -> SH coefficients.

Luo, Chen, Krishnapriyan, "Enabling Efficient Equivariant Operations in the Fourier Basis via
Gaunt Tensor Products", ICLR 2024, arXiv:2401.10216 (section 3).

Why it works. A function on the sphere with real spherical-harmonic (SH) coefficients x_{l,m}
(l <= L) is f = sum x_{l,m} Y_{l,m}. Contracting two such coefficient vectors with the Gaunt
coefficients G = (1/4pi) * integral(Y_{l1,m1} Y_{l2,m2} Y_{l3,m3}) is the SH expansion of the
pointwise product f1 * f2. Gaunt coefficients are Clebsch-Gordan coefficients times one constant
per path (l1, l2, l3), and vanish unless l1 + l2 + l3 is even (paper, eq. 3-4). The product is
computed in a basis where multiplication is cheap:

1. Each Y_{l,m}(beta, alpha) (polar angle beta, azimuth alpha) is a trigonometric polynomial
   sum_{u,v=-l..l} y[l,m,u,v] exp(i(u beta + v alpha)), exactly, with y != 0 only for v = +-m,
   so the change of basis costs O(L^3) (paper's sparsity argument). We obtain y exactly (to
   float64 round-off) by sampling the SH (``spherical_harmonics_at_angles``: e3nn's up to degree
   12, a stable Legendre recursion in e3nn's convention above) on a (2L+1)^2 torus grid and taking
   a 2D FFT.
2. The product of two 2D Fourier series is the 2D convolution of their coefficients, computed
   by the convolution theorem: both functions' samples on a torus grid (inverse DFT), multiplied
   pointwise, and a forward DFT returns the product's coefficients (``samples`` /
   ``from_samples``; a caller can reuse one input's samples, or sum products before going back).
3. Back to SH by projection: z_{l,m} = (1/4pi) integral(f Y_{l,m}); with the alpha integral a
   Kronecker delta and integral_0^pi exp(i n beta) sin(beta) d beta in closed form, this is a
   precomputed table, again sparse in v (O(L^3)).

Implementation (for speed on CPU at the degrees used here, <= ``MAX_SH_DEGREE`` = 32). Steps 1 +
inverse DFT and DFT + step 3 are linear maps fixed by the degrees, so each is precomputed (float64) as one dense
real matrix: SH -> samples (K, P) and samples -> SH (P, K_out), over a half torus of P ~
2 (Ls + 1)(Ls + Lo + 1) points (``half_torus_shape``: the SH extended to beta in (pi, 2pi) repeat
the other half). A product is then three matmuls over all channels at once and one pointwise
multiply: O(L^4) multiply-adds per channel instead of FFTs' O(L^2 log L), but with no complex
tensors, copies, padding or per-call FFT plans, which dominated at these sizes (the FFT version
was 9-20x slower forward, 8-12x forward + backward at 128 channels, L = 2..7; e3nn's CG "uuu"
product costs O(L^6) per channel). The sparse complex tables of the paper's route stay available
(``to_fourier``, ``to_sh``, ``sh_to_fourier_table``, ``fourier_to_sh_table``); the dense matrices
are built from them and from the SH on the grid.

Conventions: e3nn real SH with ``normalization="component"`` (so (1/4pi) integral Y^2 = 1),
coefficients laid out as e3nn irreps ``0e + 1o + 2e + ...`` (index l*l + l + m). The CG
references below use e3nn's ``o3.TensorProduct`` so the two products can be compared and timed.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn

#: highest degree e3nn 0.6's ``spherical_harmonics`` (of a unit vector) implements; up to it our
#: tables are built from e3nn's values, above it from :func:`_legendre_spherical_harmonics`
E3NN_MAX_SH_DEGREE = 12

#: highest input or output degree a ``GauntTensorProduct`` / ``GauntPowerSum`` / ``gaunt_coefficients``
#: accepts. Why a bound at all: the dense tables grow as O(L^4) (at lmax 32 x 32 -> 32 each matrix is
#: 1089 coefficients x 65 * 98 samples, ~55 MB in float64; building the module takes ~3 s and ~0.7 GB
#: peak on one CPU thread) and the SH above degree 12 (our own recursion) are validated (orthonormality,
#: Gaunt = Racah x wigner_3j, e3nn's alpha-beta SH at 13..15) only up to this degree. 32 covers
#: the Gaunt paper's largest product setting (L = 14: inputs to degree 13, outputs to 26).
MAX_SH_DEGREE = 32


def _legendre_spherical_harmonics(l_low: int, lmax: int, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """(..., sum_{l=l_low..lmax} (2l+1)) e3nn-convention real SH (component normalization) at angles.

    Why: e3nn 0.6's ``spherical_harmonics`` (polynomials of the unit vector) stops at degree 12, and
    its ``spherical_harmonics_alpha_beta`` (any degree) expands associated Legendre functions into
    monomials of cos/sin beta, whose cancellation costs ~2.5x accuracy per degree (2.5e-12 at l = 12,
    6e-11 at l = 16 against the unit-vector SH in float64). Here the same functions come from the
    stable three-term recursion of normalized associated Legendre functions, accurate to float64
    round-off (3e-14 against e3nn's unit-vector SH for l <= 12).

    Convention (e3nn's, checked in the tests against both e3nn functions): the unit vector is
    ``o3.angles_to_xyz(alpha, beta)`` = (sin a sin b, cos b, cos a sin b), polar axis y;
    Y_{l,m} = S_m(alpha) Q_l^|m|(cos beta, sin beta) with S_m = sqrt2 sin(|m| a) (m < 0), 1 (m = 0),
    sqrt2 cos(m a) (m > 0), and Q_l^m = sqrt((2l+1)(l-m)!/(l+m)!) P_l^m without the Condon-Shortley
    phase, so that (1/4pi) integral Y^2 = 1. sin beta enters signed: for beta in (pi, 2pi) this is
    the polynomial extension the Fourier route needs (the same unit vector as beta' = 2pi - beta,
    alpha' = alpha + pi). alpha, beta: radians, same shape; output in their dtype, index m + l
    within each degree.
    """
    cos, sin = torch.cos(beta), torch.sin(beta)
    legendre: dict[tuple[int, int], torch.Tensor] = {}  # (l, m) -> Q_l^m, m >= 0
    diagonal = torch.ones_like(beta)  # Q_0^0
    for m in range(lmax + 1):
        if m > 0:  # Q_m^m = sqrt((2m+1)/(2m)) sin(beta) Q_{m-1}^{m-1}
            diagonal = math.sqrt((2 * m + 1) / (2 * m)) * sin * diagonal
        previous, current = torch.zeros_like(beta), diagonal  # Q_{m-1}^m (= 0), Q_m^m
        legendre[m, m] = current
        for l in range(m + 1, lmax + 1):  # Q_l^m = a z Q_{l-1}^m - b Q_{l-2}^m
            a = math.sqrt((4 * l * l - 1) / (l * l - m * m))
            b = math.sqrt((2 * l + 1) * ((l - 1) ** 2 - m * m) / ((2 * l - 3) * (l * l - m * m))) if l > m + 1 else 0.0
            previous, current = current, a * cos * current - b * previous
            legendre[l, m] = current
    columns = []
    for l in range(l_low, lmax + 1):
        for m in range(-l, l + 1):
            if m < 0:
                azimuthal = math.sqrt(2) * torch.sin(-m * alpha)
            elif m == 0:
                azimuthal = torch.ones_like(alpha)
            else:
                azimuthal = math.sqrt(2) * torch.cos(m * alpha)
            columns.append(azimuthal * legendre[l, abs(m)])
    if not columns:
        return alpha.new_zeros(*alpha.shape, 0)
    return torch.stack(columns, dim=-1)


def check_sh_degree(lmax: int, what: str = "degree") -> None:
    """Raise ValueError naming :data:`MAX_SH_DEGREE` and why if ``lmax`` exceeds it."""
    if lmax > MAX_SH_DEGREE:
        raise ValueError(
            f"{what} must be <= {MAX_SH_DEGREE} (MAX_SH_DEGREE: the dense SH <-> grid tables grow as "
            f"O(L^4) and the SH above e3nn's degree {E3NN_MAX_SH_DEGREE} are validated up to it), found {lmax}"
        )


def spherical_harmonics_at_angles(lmax: int, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """(..., (lmax+1)^2) float64 real SH, degrees 0..lmax, e3nn layout and component normalization.

    The single source of SH values for every table here. Degrees <= 12: e3nn's
    ``o3.spherical_harmonics`` of ``o3.angles_to_xyz(alpha, beta)`` (the values the exactness tests
    were written against, unchanged); degrees 13..lmax: :func:`_legendre_spherical_harmonics`, the
    same functions (same basis, signs, normalization, polar axis y). alpha, beta in radians; beta may
    run over the whole circle (the SH extended as polynomials of the unit vector).
    """
    from e3nn import o3

    check_sh_degree(lmax)
    alpha, beta = alpha.to(torch.float64), beta.to(torch.float64)
    low = min(lmax, E3NN_MAX_SH_DEGREE)
    xyz = o3.angles_to_xyz(alpha, beta)  # (..., 3), polar axis y as in e3nn
    parts = [o3.spherical_harmonics(list(range(low + 1)), xyz, normalize=True, normalization="component")]
    if lmax > E3NN_MAX_SH_DEGREE:
        parts.append(_legendre_spherical_harmonics(E3NN_MAX_SH_DEGREE + 1, lmax, alpha, beta))
    return torch.cat(parts, dim=-1)


def spherical_harmonics_of_vector(lmax: int, xyz: torch.Tensor) -> torch.Tensor:
    """(..., (lmax+1)^2) real SH of the direction of ``xyz`` (..., 3), any degree up to MAX_SH_DEGREE.

    Degrees <= 12 straight from e3nn (normalize=True, component normalization); above, the direction
    is turned into e3nn's angles (``o3.xyz_to_angles``) and :func:`_legendre_spherical_harmonics`
    evaluated there. Output in xyz's dtype.
    """
    from e3nn import o3

    check_sh_degree(lmax)
    low = min(lmax, E3NN_MAX_SH_DEGREE)
    parts = [o3.spherical_harmonics(list(range(low + 1)), xyz, normalize=True, normalization="component")]
    if lmax > E3NN_MAX_SH_DEGREE:
        alpha, beta = o3.xyz_to_angles(xyz)
        parts.append(_legendre_spherical_harmonics(E3NN_MAX_SH_DEGREE + 1, lmax, alpha, beta).to(xyz.dtype))
    return torch.cat(parts, dim=-1)


def num_coefficients(lmax: int) -> int:
    """(lmax + 1)^2 real SH coefficients for degrees 0..lmax."""
    return (lmax + 1) ** 2


def fft_grid_size(degree: int) -> int:
    """Smallest 5-smooth n >= 2*degree + 1: samples resolving a trigonometric polynomial of that
    degree without aliasing, at a length FFT libraries handle fast (2L+1 is often prime)."""
    n = 2 * degree + 1
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _dense_gather_index(lmax: int) -> torch.Tensor:
    """(L+1, 2L+1) index into [x, 0]: position (l, m + L) -> l*l + l + m, or the pad slot."""
    pad = num_coefficients(lmax)
    index = torch.full((lmax + 1, 2 * lmax + 1), pad, dtype=torch.long)  # (L+1, 2L+1)
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            index[l, m + lmax] = l * l + l + m
    return index


@lru_cache(maxsize=None)
def sh_fourier_coefficients(lmax: int) -> torch.Tensor:
    """(K, 2L+1 [u], 2L+1 [v]) complex128: Y_k(beta, alpha) = sum y[k,u,v] e^{i(u beta + v alpha)}.

    Exact for a trigonometric polynomial of degree <= L sampled on 2L+1 points per axis. beta
    runs over the whole circle: the SH are polynomials in the unit vector, which extends them.
    """
    n = 2 * lmax + 1
    angles = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)  # (n,)
    beta, alpha = torch.meshgrid(angles, angles, indexing="ij")  # (n, n) each
    sh = spherical_harmonics_at_angles(lmax, alpha, beta)  # (n, n, K), polar axis y as in e3nn
    coeffs = torch.fft.fft2(sh.permute(2, 0, 1)) / (n * n)  # (K, n [u mod n], n [v mod n])
    return torch.fft.fftshift(coeffs, dim=(-2, -1))  # (K, u + L, v + L)


def _sin_weighted_beta_integral(n: np.ndarray) -> np.ndarray:
    """integral_0^pi exp(i n beta) sin(beta) d beta for integer n (closed form), complex."""
    out = np.zeros(n.shape, dtype=np.complex128)
    even = n % 2 == 0
    out[even] = 2.0 / (1.0 - n[even].astype(np.float64) ** 2)
    out[n == 1] = 1j * math.pi / 2
    out[n == -1] = -1j * math.pi / 2
    return out


@lru_cache(maxsize=None)
def sh_to_fourier_table(lmax: int) -> torch.Tensor:
    """(L+1 [l], 2L+1 [m], 2L+1 [u], 2 [v=+m, v=-m]) complex128, zero where |m| > l.

    For m = 0 both columns would address v = 0; the value sits in the first only.
    """
    y = sh_fourier_coefficients(lmax)  # (K, 2L+1, 2L+1)
    table = torch.zeros(lmax + 1, 2 * lmax + 1, 2 * lmax + 1, 2, dtype=torch.complex128)
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            k = l * l + l + m
            table[l, m + lmax, :, 0] = y[k, :, m + lmax]  # (2L+1 [u],) coefficients at v = +m
            if m != 0:
                table[l, m + lmax, :, 1] = y[k, :, -m + lmax]  # at v = -m
    return table


@lru_cache(maxsize=None)
def fourier_to_sh_table(lmax_out: int, lmax_fourier: int) -> torch.Tensor:
    """(Lo+1 [l], 2Lo+1 [m], 2Lf+1 [u], 2 [v=+m, v=-m]) complex128 projection table.

    z_{l,m} = sum_u c[u, m] T[l,m,u,0] + c[u, -m] T[l,m,u,1] for a Fourier series c of degree
    <= Lf; T[l,m,u,v] = (1/4pi) * 2pi * sum_u' y[l,m,u',-v] * integral_0^pi e^{i(u+u')b} sin b db.
    """
    y = sh_fourier_coefficients(lmax_out)  # (K, 2Lo+1 [u'], 2Lo+1 [v])
    u = np.arange(-lmax_fourier, lmax_fourier + 1)  # (2Lf+1,)
    u_prime = np.arange(-lmax_out, lmax_out + 1)  # (2Lo+1,)
    beta_integral = torch.from_numpy(_sin_weighted_beta_integral(u[:, None] + u_prime[None, :]))  # (Uf, Uo)
    table = torch.zeros(lmax_out + 1, 2 * lmax_out + 1, 2 * lmax_fourier + 1, 2, dtype=torch.complex128)
    for l in range(lmax_out + 1):
        for m in range(-l, l + 1):
            k = l * l + l + m
            table[l, m + lmax_out, :, 0] = 0.5 * beta_integral @ y[k, :, -m + lmax_out]  # v = +m
            if m != 0:
                table[l, m + lmax_out, :, 1] = 0.5 * beta_integral @ y[k, :, m + lmax_out]  # v = -m
    return table


def _as_real_pair(table: torch.Tensor) -> torch.Tensor:
    """Complex128 table -> float64 (..., 2 [re, im]); kept in float64, cast to the input's dtype."""
    return torch.view_as_real(table.contiguous())


def _complex_like(table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(..., 2) real-pair table -> complex table matching x's precision (tables are O(L^3) small)."""
    return torch.view_as_complex(table.to(dtype=x.real.dtype if x.is_complex() else x.dtype).contiguous())


#: the changes of basis (:meth:`GauntTensorProduct.samples`, ``from_samples``, ``forward``) run in
#: float32 with autocast off and return float32: the precomputed matrices are float32 / float64 and
#: the Fourier tables complex (no bfloat16), so a mixed-precision run keeps this island at full
#: precision (a no-op for float32 input). What runs between the two (the pointwise products and
#: radial weighting of the models) follows the caller's precision.
FULL_PRECISION = torch.float32


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 → float32; float32 and float64 (the exactness tests) unchanged."""
    return x.to(FULL_PRECISION) if x.dtype in (torch.float16, torch.bfloat16) else x


def half_torus_shape(lmax_product: int, lmax_out: int) -> tuple[int, int, int]:
    """(rows kept, S_u, S_v) of the torus grid on which products are sampled.

    A product of degree <= Ls (Ls = lmax1 + lmax2, or nu * lmax for a nu-fold power) has Fourier
    degrees |u|, |v| <= Ls. Its coefficients for every |u| <= Ls (all are read by the projection
    to SH) are exact from S_u >= 2 Ls + 1 samples in beta; only |v| <= Lo are read, and those are
    alias-free from S_v >= Ls + Lo + 1 samples in alpha (an alias v +- S_v has |.| > Ls). The
    extended SH satisfy f(2pi - beta, alpha) = f(beta, alpha + pi) (the unit vector is the same),
    so with S_v even the rows beta in (pi, 2pi) repeat rows in [0, pi]: only the S_u // 2 + 1 rows
    beta_a = 2 pi a / S_u, a = 0..S_u // 2, are kept (about half the torus). No FFT runs on this
    grid, so S_u, S_v need not be FFT-friendly sizes.
    """
    s_u = 2 * lmax_product + 1
    s_v = lmax_product + lmax_out + 1
    s_v += s_v % 2
    return s_u // 2 + 1, s_u, s_v


def _half_torus_angles(lmax_product: int, lmax_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, S_v) beta and alpha (radians, float64) of the kept half-torus samples."""
    rows, s_u, s_v = half_torus_shape(lmax_product, lmax_out)
    beta = torch.arange(rows, dtype=torch.float64) * (2 * math.pi / s_u)  # (rows,)
    alpha = torch.arange(s_v, dtype=torch.float64) * (2 * math.pi / s_v)  # (S_v,)
    return torch.meshgrid(beta, alpha, indexing="ij")  # (rows, S_v) each


@lru_cache(maxsize=None)
def sh_to_grid_matrix(lmax: int, lmax_product: int, lmax_out: int) -> torch.Tensor:
    """(K, rows * S_v) float64: row k holds Y_k at the half-torus samples (see ``half_torus_shape``).

    This is the paper's change of basis SH -> 2D Fourier coefficients (``sh_to_fourier_table``)
    composed with the inverse DFT onto the sampling grid, precomputed as one dense real matrix:
    a (C, K) @ (K, P) matmul over all channels at once, instead of a sparse complex contraction,
    complex views and an inverse FFT per call. Evaluating the extended SH on the grid is that
    composition exactly (the SH are trigonometric polynomials of degree <= lmax in beta, alpha).
    """
    beta, alpha = _half_torus_angles(lmax_product, lmax_out)
    sh = spherical_harmonics_at_angles(lmax, alpha, beta)  # (rows, S_v, K), polar axis y as in e3nn
    return sh.reshape(-1, num_coefficients(lmax)).T.contiguous()  # (K, rows * S_v)


@lru_cache(maxsize=None)
def grid_to_sh_matrix(lmax_product: int, lmax_out: int) -> torch.Tensor:
    """(rows * S_v, K_out) float64: half-torus samples of a product (degree <= Ls) -> SH coefficients.

    The paper's route back, DFT of the samples to 2D Fourier coefficients c[u, v] followed by the
    projection table ``fourier_to_sh_table`` (z_lm = sum_u c[u, m] T[l,m,u,0] + c[u, -m] T[l,m,u,1]),
    folded into one real matrix. The samples dropped by the half-torus symmetry are added onto the
    rows they repeat, so the matrix acts on the kept rows only.
    """
    rows, s_u, s_v = half_torus_shape(lmax_product, lmax_out)
    lo = lmax_out
    table = fourier_to_sh_table(lo, lmax_product)  # (Lo+1, 2Lo+1 [m], 2Ls+1 [u], 2) complex128
    u = torch.arange(-lmax_product, lmax_product + 1, dtype=torch.float64)  # (2Ls+1,)
    m = torch.arange(-lo, lo + 1, dtype=torch.float64)  # (2Lo+1,)
    beta = torch.arange(s_u, dtype=torch.float64) * (2 * math.pi / s_u)  # (S_u,) full circle
    alpha = torch.arange(s_v, dtype=torch.float64) * (2 * math.pi / s_v)  # (S_v,)
    phase_u = torch.exp(-1j * beta[:, None] * u[None, :])  # (S_u, 2Ls+1): DFT in beta
    by_m = torch.einsum("au,lmus->alms", phase_u, table)  # (S_u, Lo+1, 2Lo+1, 2 [v=+m, v=-m])
    out_l, out_m = (list(t) for t in zip(*[(l, mm + lo) for l in range(lo + 1) for mm in range(-l, l + 1)]))
    by_k = by_m[:, out_l, out_m]  # (S_u, K_out, 2): only the valid (l, m), before the outer product
    m_k = m[list(out_m)]  # (K_out,) order m of each output coefficient
    cos_k, sin_k = torch.cos(alpha[:, None] * m_k), torch.sin(alpha[:, None] * m_k)  # (S_v, K_out)
    # Re(plus e^{-i m alpha} + minus e^{+i m alpha}) in real arithmetic: no complex (S_u, S_v, K_out)
    plus, minus = by_k[..., 0], by_k[..., 1]  # (S_u, K_out) each
    full = (plus.real + minus.real)[:, None] * cos_k + (plus.imag - minus.imag)[:, None] * sin_k
    full = full / (s_u * s_v)  # (S_u, S_v, K_out): real since the samples are real
    half = full[:rows].clone()  # (rows, S_v, K_out)
    shift = torch.arange(s_v).add(s_v // 2).remainder(s_v)  # b -> b + S_v / 2: alpha + pi
    for a in range(rows, s_u):  # beta_a in (pi, 2pi) repeats row S_u - a at alpha + pi
        half[s_u - a].index_add_(0, shift, full[a])
    return half.reshape(rows * s_v, -1).contiguous()  # (P, K_out)


def _register_matrix(module: nn.Module, name: str, matrix: torch.Tensor) -> None:
    """Buffers ``name`` (float64, exact) and ``name + '_f32'`` (its float32 rounding).

    The float64 copy keeps a module built under a float32 default exact after ``.double()`` (the
    equivariance tests run in float64); the float32 copy spares a float32 call a cast per call.
    """
    module.register_buffer(name, matrix.to(torch.float64).clone(), persistent=False)
    module.register_buffer(name + "_f32", matrix.to(torch.float32), persistent=False)


def _matrix(module: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """The buffer ``name`` in x's dtype: a stored copy when one matches, else a cast of the exact one."""
    exact = getattr(module, name)
    if exact.dtype == x.dtype:
        return exact
    single = getattr(module, name + "_f32")
    return single if single.dtype == x.dtype else exact.to(x.dtype)


class GauntTensorProduct(nn.Module):
    """Channel-wise Gaunt product: (..., K1) x (..., K2) -> (..., K_out), K = (L+1)^2.

    Equals sum_{paths} G(l1 m1, l2 m2, l m) x1 x2 with G the Gaunt coefficients of e3nn's
    component-normalized real SH; leading dimensions broadcast. Learnable weights live in the
    model that uses it (per-degree scalings, as the paper parameterizes Gaunt products).

    Computation (the convolution theorem of the paper, section 3, with its two changes of basis
    precomputed): ``samples`` maps each input's SH coefficients to its values on a half torus grid
    (SH -> Fourier -> inverse DFT as one dense real (K, P) matrix: all channels in one matmul),
    the values are multiplied pointwise (= 2D convolution of the Fourier coefficients), and
    ``from_samples`` maps the product back (DFT -> SH projection as one (P, K_out) matrix). For
    the degrees used here (<= ``MAX_SH_DEGREE``) the dense matrices beat FFTs: P ~ 2 (Ls + 1)(Ls + Lo + 1)
    samples, O(L^4) multiply-adds per channel, with no complex tensors, copies or padding. The
    matrices are buffers kept in float64 and float32 (``_register_matrix``).
    """

    def __init__(self, lmax1: int, lmax2: int, lmax_out: int | None = None) -> None:
        super().__init__()
        self.lmax1, self.lmax2 = lmax1, lmax2
        self.lmax_sum = lmax1 + lmax2
        self.lmax_out = self.lmax_sum if lmax_out is None else lmax_out
        if not 0 <= self.lmax_out <= self.lmax_sum:
            raise ValueError(f"lmax_out must be in [0, {self.lmax_sum}], found {self.lmax_out}")
        check_sh_degree(max(lmax1, lmax2, self.lmax_out),
                        f"input and output degrees (lmax1={lmax1}, lmax2={lmax2}, lmax_out={self.lmax_out})")
        rows, _, s_v = half_torus_shape(self.lmax_sum, self.lmax_out)
        self.grid_shape = (rows, s_v)
        _register_matrix(self, "to_grid1", sh_to_grid_matrix(lmax1, self.lmax_sum, self.lmax_out))  # (K1, P)
        _register_matrix(self, "to_grid2", sh_to_grid_matrix(lmax2, self.lmax_sum, self.lmax_out))  # (K2, P)
        _register_matrix(self, "from_grid", grid_to_sh_matrix(self.lmax_sum, self.lmax_out))  # (P, K_out)
        # the sparse complex tables of the paper's changes of basis: ``to_fourier`` / ``to_sh``
        self.register_buffer("index1", _dense_gather_index(lmax1), persistent=False)
        self.register_buffer("index2", _dense_gather_index(lmax2), persistent=False)
        out_l, out_m = zip(*[(l, m + self.lmax_out) for l in range(self.lmax_out + 1) for m in range(-l, l + 1)])
        self.register_buffer("out_l", torch.tensor(out_l), persistent=False)
        self.register_buffer("out_m", torch.tensor(out_m), persistent=False)
        self.register_buffer("table_in1", _as_real_pair(sh_to_fourier_table(lmax1)), persistent=False)
        self.register_buffer("table_in2", _as_real_pair(sh_to_fourier_table(lmax2)), persistent=False)
        self.register_buffer(
            "table_out", _as_real_pair(fourier_to_sh_table(self.lmax_out, self.lmax_sum)), persistent=False
        )

    @staticmethod
    def _to_fourier(x: torch.Tensor, index: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """(..., K) real SH coefficients -> (..., 2L+1 [u], 2L+1 [v]) complex Fourier coefficients.

        Real input times a complex table is done as one real contraction over (re, im) pairs.
        """
        padded = torch.cat([x, x.new_zeros(*x.shape[:-1], 1)], dim=-1)  # (..., K+1)
        dense = padded[..., index]  # (..., L+1, 2L+1 [m])
        table = table.to(x.dtype)  # (L+1, 2L+1 [m], 2L+1 [u], 2 [v=+m, v=-m], 2 [re, im])
        by_m = torch.view_as_complex(torch.einsum("...lm,lmusc->...musc", dense, table).contiguous())  # (..., m, u, 2)
        by_v = by_m[..., 0] + by_m[..., 1].flip(-2)  # (..., v, u): column v=-m reversed onto v
        return by_v.transpose(-1, -2)  # (..., u, v)

    def to_fourier(self, x: torch.Tensor, which: int = 1) -> torch.Tensor:
        """Public change of basis for input 1 or 2: (..., K) -> (..., 2L+1, 2L+1) complex."""
        if which == 1:
            return self._to_fourier(x, self.index1, self.table_in1)
        return self._to_fourier(x, self.index2, self.table_in2)

    def samples(self, x: torch.Tensor, which: int = 1) -> torch.Tensor:
        """(..., K) real SH coefficients of input 1 or 2 -> (..., rows, S_v) values on the half torus.

        One dense matmul over all leading dimensions (``sh_to_grid_matrix``). Sums and pointwise
        products of such samples (degree <= lmax1 + lmax2 in all) go back with ``from_samples``.
        """
        with torch.autocast(device_type=x.device.type, enabled=False):  # see FULL_PRECISION
            x = _at_least_float32(x)
            matrix = _matrix(self, "to_grid1" if which == 1 else "to_grid2", x)  # (K, P)
            return (x @ matrix).unflatten(-1, self.grid_shape)  # (..., rows, S_v)

    def from_samples(self, values: torch.Tensor) -> torch.Tensor:
        """(..., rows, S_v) samples of a product (degree <= Ls) -> (..., K_out) SH coefficients.

        Exact for any function of degree <= lmax1 + lmax2 sampled by ``samples`` (products of
        samples, their sums): DFT and projection onto degrees <= Lo as one matmul.
        """
        with torch.autocast(device_type=values.device.type, enabled=False):  # see FULL_PRECISION
            values = _at_least_float32(values)
            return values.flatten(-2) @ _matrix(self, "from_grid", values)  # (..., K_out)

    def to_sh(self, f: torch.Tensor) -> torch.Tensor:
        """(..., 2Ls+1 [u], 2Lo+1 [v]) product coefficients -> (..., K_out) real SH coefficients."""
        table = _complex_like(self.table_out, f)  # (Lo+1, 2Lo+1 [m], 2Ls+1 [u], 2)
        dense = torch.einsum("...um,lmu->...lm", f, table[..., 0])  # (..., Lo+1, 2Lo+1): v=+m
        dense = dense + torch.einsum("...um,lmu->...lm", f.flip(-1), table[..., 1])  # v=-m
        return dense.real[..., self.out_l, self.out_m]  # (..., K_out)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x1.device.type, enabled=False):  # see FULL_PRECISION
            x1, x2 = _at_least_float32(x1), _at_least_float32(x2)
            product = (x1 @ _matrix(self, "to_grid1", x1)) * (x2 @ _matrix(self, "to_grid2", x2))  # (..., P)
            return product @ _matrix(self, "from_grid", product)  # (..., K_out)


class GauntPowerSum(nn.Module):
    """x -> x + sum_{nu=2..correlation} (x^nu truncated to degrees <= lmax): (..., K) -> (..., K).

    The Gaunt paper's many-body setting (its ``test_equi_many-body`` notebook): the nu-fold Gaunt
    self products of one SH feature, each truncated to the input degrees, summed. The function
    f = sum x_lm Y_lm is sampled once on a grid that resolves degree correlation * lmax, its
    powers are pointwise powers of the samples (Horner: f (1 + f (1 + ...))), and the projection
    back to SH is linear, so the sum of truncated powers is one projection of the summed samples.
    """

    def __init__(self, lmax: int, correlation: int) -> None:
        super().__init__()
        if correlation < 1:
            raise ValueError(f"correlation must be >= 1, found {correlation}")
        check_sh_degree(lmax, "lmax")
        self.lmax, self.correlation = lmax, correlation
        top = max(correlation, 2) * lmax
        _register_matrix(self, "to_grid", sh_to_grid_matrix(lmax, top, lmax))  # (K, P)
        _register_matrix(self, "from_grid", grid_to_sh_matrix(top, lmax))  # (P, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.correlation == 1:
            return x
        f = x @ _matrix(self, "to_grid", x)  # (..., P): f on the grid
        total = f
        for _ in range(self.correlation - 2):  # Horner: f + f^2 + ... + f^(nu-1), one fused op a step
            total = torch.addcmul(f, f, total)
        powers = f * total  # f^2 + ... + f^correlation
        flat = torch.addmm(x.reshape(-1, x.shape[-1]), powers.reshape(-1, powers.shape[-1]), _matrix(self, "from_grid", x))
        return flat.reshape(x.shape)  # (..., K): x + the projection of the summed powers


def gaunt_paths(lmax1: int, lmax2: int, lmax_out: int) -> list[tuple[int, int, int]]:
    """Paths (l1, l2, l3) with non-zero Gaunt coefficients: triangle rule and l1+l2+l3 even."""
    return [
        (l1, l2, l3)
        for l1 in range(lmax1 + 1)
        for l2 in range(lmax2 + 1)
        for l3 in range(abs(l1 - l2), min(l1 + l2, lmax_out) + 1)
        if (l1 + l2 + l3) % 2 == 0
    ]


@lru_cache(maxsize=None)
def gaunt_coefficients(l1: int, l2: int, l3: int) -> torch.Tensor:
    """(2l1+1, 2l2+1, 2l3+1) float64: (1/4pi) integral Y_{l1} Y_{l2} Y_{l3} dOmega by quadrature.

    Reference, independent of the Fourier route: Gauss-Legendre in cos(beta) times a uniform
    alpha grid integrates these polynomials exactly.
    """
    check_sh_degree(max(l1, l2, l3))
    degree = l1 + l2 + l3
    nodes, weights = np.polynomial.legendre.leggauss(degree // 2 + 2)  # exact to degree 2n-1
    n_alpha = degree + 2
    beta = torch.from_numpy(np.arccos(nodes))  # (Nb,)
    alpha = torch.arange(n_alpha, dtype=torch.float64) * (2 * math.pi / n_alpha)  # (Na,)
    b, a = torch.meshgrid(beta, alpha, indexing="ij")  # (Nb, Na)
    w = torch.from_numpy(weights)[:, None] * (2 * math.pi / n_alpha) / (4 * math.pi)  # (Nb, 1)
    sh = spherical_harmonics_at_angles(max(l1, l2, l3), a, b)  # (Nb, Na, K): degrees 0..max
    y1, y2, y3 = (sh[..., l * l:(l + 1) ** 2] for l in (l1, l2, l3))  # (Nb, Na, 2l+1) each
    return torch.einsum("ba,bai,baj,bak->ijk", w.expand_as(b), y1, y2, y3)  # (2l1+1, 2l2+1, 2l3+1)


def gaunt_path_constant(l1: int, l2: int, l3: int) -> float:
    """c with G_{l1 l2 l3} = c * wigner_3j(l1, l2, l3) (e3nn's unit-norm CG tensor)."""
    from e3nn import o3

    return float((gaunt_coefficients(l1, l2, l3) * o3.wigner_3j(l1, l2, l3, dtype=torch.float64)).sum())


def _sh_irreps(lmax: int, parity_of_sh: bool) -> str:
    """e3nn irreps of one SH coefficient vector; all-even parity admits every SO(3) path."""
    return "+".join(f"1x{l}{'eo'[l % 2] if parity_of_sh else 'e'}" for l in range(lmax + 1))


def cg_tensor_product(lmax1: int, lmax2: int, lmax_out: int, *, gaunt_paths_only: bool):
    """e3nn Clebsch-Gordan product on (..., K1) x (..., K2) -> (..., K_out), and its path weights.

    ``gaunt_paths_only=False``: every SO(3) path (l1, l2, l3) allowed by the triangle rule, each
    with weight 1 - the full CG tensor product whose O(L^6) cost the paper compares against.
    ``gaunt_paths_only=True``: only l1+l2+l3 even, each weighted by its Gaunt constant, so the
    result must equal ``GauntTensorProduct``. Returns (module, weights); call ``module(x1, x2,
    weights)``.
    """
    from e3nn import o3

    irreps1 = o3.Irreps(_sh_irreps(lmax1, gaunt_paths_only))
    irreps2 = o3.Irreps(_sh_irreps(lmax2, gaunt_paths_only))
    irreps_out = o3.Irreps(_sh_irreps(lmax_out, gaunt_paths_only))
    instructions, weights = [], []
    for l1 in range(lmax1 + 1):
        for l2 in range(lmax2 + 1):
            for l3 in range(abs(l1 - l2), min(l1 + l2, lmax_out) + 1):
                if gaunt_paths_only and (l1 + l2 + l3) % 2:
                    continue
                instructions.append((l1, l2, l3, "uuu", True))
                weights.append(gaunt_path_constant(l1, l2, l3) if gaunt_paths_only else 1.0)
    module = o3.TensorProduct(
        irreps1,
        irreps2,
        irreps_out,
        instructions,
        irrep_normalization="none",
        path_normalization="none",
        internal_weights=False,
        shared_weights=True,
    )
    return module, torch.tensor(weights, dtype=torch.get_default_dtype())  # (num_paths,)
