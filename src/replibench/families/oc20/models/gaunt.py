"""Gaunt tensor product: SH coefficients -> 2D Fourier basis -> FFT convolution -> SH coefficients.

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
   float64 round-off) by sampling e3nn's SH on a (2L+1)^2 torus grid and taking a 2D FFT.
2. The product of two 2D Fourier series is the 2D convolution of their coefficients, computed
   by the convolution theorem in O(L^2 log L): inverse real FFTs give both functions' samples on
   a torus grid, they are multiplied pointwise, and a forward real FFT returns the product's
   coefficients (``samples`` / ``from_samples``; a caller can reuse one input's samples).
3. Back to SH by projection: z_{l,m} = (1/4pi) integral(f Y_{l,m}); with the alpha integral a
   Kronecker delta and integral_0^pi exp(i n beta) sin(beta) d beta in closed form, this is a
   precomputed table, again sparse in v (O(L^3)).

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

#: highest degree e3nn 0.6's ``spherical_harmonics`` implements (our tables are built from them)
E3NN_MAX_SH_DEGREE = 12


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
    from e3nn import o3

    n = 2 * lmax + 1
    angles = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)  # (n,)
    beta, alpha = torch.meshgrid(angles, angles, indexing="ij")  # (n, n) each
    xyz = o3.angles_to_xyz(alpha, beta)  # (n, n, 3), polar axis y as in e3nn
    sh = o3.spherical_harmonics(list(range(lmax + 1)), xyz, normalize=True, normalization="component")
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


#: the changes of basis and FFTs (:meth:`GauntTensorProduct.samples`, ``from_samples``) run in
#: float32 with autocast off and return float32: complex tensors and cuFFT have no bfloat16, so a
#: mixed-precision run keeps this island at full precision (a no-op for float32 input). What runs
#: between the two (the pointwise products and radial weighting) follows the caller's precision.
FULL_PRECISION = torch.float32


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 → float32; float32 and float64 (the exactness tests) unchanged."""
    return x.to(FULL_PRECISION) if x.dtype in (torch.float16, torch.bfloat16) else x


class GauntTensorProduct(nn.Module):
    """Channel-wise Gaunt product: (..., K1) x (..., K2) -> (..., K_out), K = (L+1)^2.

    Equals sum_{paths} G(l1 m1, l2 m2, l m) x1 x2 with G the Gaunt coefficients of e3nn's
    component-normalized real SH; leading dimensions broadcast. Learnable weights live in the
    model that uses it (per-degree scalings, as the paper parameterizes Gaunt products).
    """

    def __init__(self, lmax1: int, lmax2: int, lmax_out: int | None = None) -> None:
        super().__init__()
        self.lmax1, self.lmax2 = lmax1, lmax2
        self.lmax_sum = lmax1 + lmax2
        self.lmax_out = self.lmax_sum if lmax_out is None else lmax_out
        if not 0 <= self.lmax_out <= self.lmax_sum:
            raise ValueError(f"lmax_out must be in [0, {self.lmax_sum}], found {self.lmax_out}")
        if max(lmax1, lmax2, self.lmax_out) > E3NN_MAX_SH_DEGREE:
            raise ValueError(
                f"input and output degrees must be <= {E3NN_MAX_SH_DEGREE} (e3nn's spherical harmonics), "
                f"found lmax1={lmax1}, lmax2={lmax2}, lmax_out={self.lmax_out}"
            )
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

    @property
    def grid_size(self) -> int:
        """S: samples per torus axis; S >= 2Ls + 1 resolves the product's degree Ls without aliasing."""
        return fft_grid_size(self.lmax_sum)

    def samples(self, x: torch.Tensor, which: int = 1) -> torch.Tensor:
        """(..., K) real SH coefficients of input 1 or 2 -> (..., S, S) samples of the function.

        Fourier coefficients (sparse table, O(L^3)), then an inverse real FFT of their v >= 0 half
        (the other half is its complex conjugate, the function being real).
        """
        with torch.autocast(device_type=x.device.type, enabled=False):  # see FULL_PRECISION
            return self._samples(_at_least_float32(x), which)

    def _samples(self, x: torch.Tensor, which: int) -> torch.Tensor:
        f = self.to_fourier(x, which)  # (..., 2L+1 [u], 2L+1 [v])
        lmax, size = (f.shape[-1] - 1) // 2, self.grid_size
        gap = f.new_zeros(*f.shape[:-2], size - 2 * lmax - 1, lmax + 1)  # (..., S-2L-1, L+1)
        # FFT slot of u is u mod S: u = 0..L first, u = -L..-1 last; v = 0..L, irfft2 pads v to S//2+1
        half = torch.cat([f[..., lmax:, lmax:], gap, f[..., :lmax, lmax:]], dim=-2)  # (..., S, L+1)
        return torch.fft.irfft2(half, s=(size, size), norm="forward")  # (..., S, S) = f(2pi a/S, 2pi b/S)

    def from_samples(self, values: torch.Tensor) -> torch.Tensor:
        """(..., S, S) samples of a product (degree <= Ls) -> (..., K_out) SH coefficients.

        A forward real FFT gives its Fourier coefficients exactly: pointwise multiplication of
        samples followed by this FFT is the 2D convolution of the two coefficient arrays (the
        convolution theorem). Only |v| <= Lo is kept: projecting onto degrees <= Lo reads no more.
        """
        with torch.autocast(device_type=values.device.type, enabled=False):  # see FULL_PRECISION
            return self._from_samples(_at_least_float32(values))

    def _from_samples(self, values: torch.Tensor) -> torch.Tensor:
        size, ls, lo = self.grid_size, self.lmax_sum, self.lmax_out
        half = torch.fft.rfft2(values, norm="forward")[..., : lo + 1]  # (..., S, Lo+1): c[u mod S, v >= 0]
        positive = torch.cat([half[..., size - ls :, :], half[..., : ls + 1, :]], dim=-2)  # (..., u in [-Ls, Ls], v)
        negative = positive.flip(-2).conj()[..., 1:].flip(-1)  # c[u, -v] = conj(c[-u, v]), v in [-Lo, -1]
        return self.to_sh(torch.cat([negative, positive], dim=-1))  # (..., K_out)

    def to_sh(self, f: torch.Tensor) -> torch.Tensor:
        """(..., 2Ls+1 [u], 2Lo+1 [v]) product coefficients -> (..., K_out) real SH coefficients."""
        table = _complex_like(self.table_out, f)  # (Lo+1, 2Lo+1 [m], 2Ls+1 [u], 2)
        dense = torch.einsum("...um,lmu->...lm", f, table[..., 0])  # (..., Lo+1, 2Lo+1): v=+m
        dense = dense + torch.einsum("...um,lmu->...lm", f.flip(-1), table[..., 1])  # v=-m
        return dense.real[..., self.out_l, self.out_m]  # (..., K_out)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        product = self.samples(x1, 1) * self.samples(x2, 2)  # (..., S, S): f1 * f2 on the grid
        return self.from_samples(product)  # (..., K_out)


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
    from e3nn import o3

    degree = l1 + l2 + l3
    nodes, weights = np.polynomial.legendre.leggauss(degree // 2 + 2)  # exact to degree 2n-1
    n_alpha = degree + 2
    beta = torch.from_numpy(np.arccos(nodes))  # (Nb,)
    alpha = torch.arange(n_alpha, dtype=torch.float64) * (2 * math.pi / n_alpha)  # (Na,)
    b, a = torch.meshgrid(beta, alpha, indexing="ij")  # (Nb, Na)
    xyz = o3.angles_to_xyz(a, b)  # (Nb, Na, 3)
    w = torch.from_numpy(weights)[:, None] * (2 * math.pi / n_alpha) / (4 * math.pi)  # (Nb, 1)
    y1, y2, y3 = (o3.spherical_harmonics(l, xyz, True, normalization="component") for l in (l1, l2, l3))
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
