"""The Gaunt tensor product (2D Fourier route) against Clebsch-Gordan products and closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from e3nn import o3

from replibench.families.oc20.models.gaunt import (
    E3NN_MAX_SH_DEGREE,
    MAX_SH_DEGREE,
    GauntPowerSum,
    GauntTensorProduct,
    _legendre_spherical_harmonics,
    cg_tensor_product,
    gaunt_coefficients,
    gaunt_path_constant,
    gaunt_paths,
    sh_fourier_coefficients,
    spherical_harmonics_at_angles,
    spherical_harmonics_of_vector,
)

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def float64_default():
    """e3nn builds its CG buffers and Wigner matrices in the default dtype: make that float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def sh_irreps(lmax: int) -> o3.Irreps:
    return o3.Irreps.spherical_harmonics(lmax)


def wigner_3j_000(l1: int, l2: int, l3: int) -> float:
    """Closed form of (l1 l2 l3; 0 0 0) for even J = l1 + l2 + l3 (Racah), independent of e3nn."""
    J = l1 + l2 + l3
    if J % 2:
        return 0.0
    g = J // 2
    f = math.factorial
    delta = f(J - 2 * l1) * f(J - 2 * l2) * f(J - 2 * l3) / f(J + 1)
    return (-1) ** g * math.sqrt(delta) * f(g) / (f(g - l1) * f(g - l2) * f(g - l3))


def test_wigner_3j_000_known_values():
    # hand-checked: (1 1 0; 000) = -1/sqrt(3), (1 1 2; 000) = sqrt(2/15), (2 2 2; 000) = -sqrt(2/35)
    assert wigner_3j_000(1, 1, 0) == pytest.approx(-1 / math.sqrt(3))
    assert wigner_3j_000(1, 1, 2) == pytest.approx(math.sqrt(2 / 15))
    assert wigner_3j_000(2, 2, 2) == pytest.approx(-math.sqrt(2 / 35))


@pytest.mark.parametrize("lmax", [1, 3, 5])
def test_sh_fourier_coefficients_are_sparse_and_exact(lmax):
    y = sh_fourier_coefficients(lmax)  # (K, 2L+1 [u], 2L+1 [v])
    for k, (l, m) in enumerate((l, m) for l in range(lmax + 1) for m in range(-l, l + 1)):
        v = torch.arange(-lmax, lmax + 1)
        u = torch.arange(-lmax, lmax + 1)
        outside = (v.abs() != abs(m))[None, :] | (u.abs() > l)[:, None]  # (U, V)
        assert y[k][outside].abs().max() < 1e-12
    # evaluating the Fourier series off the sampling grid reproduces e3nn's SH
    generator = torch.Generator().manual_seed(lmax)
    beta = torch.rand(50, generator=generator, dtype=torch.float64) * math.pi
    alpha = torch.rand(50, generator=generator, dtype=torch.float64) * 2 * math.pi
    n = torch.arange(-lmax, lmax + 1, dtype=torch.float64)
    phase = torch.exp(1j * (beta[:, None, None] * n[None, :, None] + alpha[:, None, None] * n[None, None, :]))
    series = torch.einsum("kuv,puv->pk", y, phase).real  # (P, K)
    direct = o3.spherical_harmonics(
        list(range(lmax + 1)), o3.angles_to_xyz(alpha, beta), True, normalization="component"
    )
    torch.testing.assert_close(series, direct, atol=1e-12, rtol=0)


@pytest.mark.parametrize("l1,l2,l3", [(0, 0, 0), (1, 1, 0), (1, 1, 2), (2, 2, 2), (3, 2, 1), (4, 4, 4), (4, 3, 5)])
def test_gaunt_coefficients_are_scaled_clebsch_gordan(l1, l2, l3):
    gaunt = gaunt_coefficients(l1, l2, l3)  # (2l1+1, 2l2+1, 2l3+1)
    constant = gaunt_path_constant(l1, l2, l3)
    cg = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
    torch.testing.assert_close(gaunt, constant * cg, atol=1e-12, rtol=0)
    # |c| = sqrt((2l1+1)(2l2+1)(2l3+1)) |(l1 l2 l3; 0 0 0)| for component-normalized SH
    expected = math.sqrt((2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1)) * abs(wigner_3j_000(l1, l2, l3))
    assert abs(constant) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("l1,l2,l3", [(1, 1, 1), (2, 1, 2), (3, 2, 2), (2, 2, 3)])
def test_gaunt_coefficients_vanish_on_odd_paths(l1, l2, l3):
    assert gaunt_coefficients(l1, l2, l3).abs().max() < 1e-13
    assert (l1, l2, l3) not in gaunt_paths(l1, l2, l1 + l2)


@pytest.mark.parametrize("lmax", [1, 2, 3, 4])
@pytest.mark.parametrize("full_output", [True, False])
def test_gaunt_equals_cg_on_gaunt_paths(lmax, full_output):
    lmax_out = 2 * lmax if full_output else lmax
    generator = torch.Generator().manual_seed(lmax)
    x1 = torch.randn(7, (lmax + 1) ** 2, generator=generator, dtype=torch.float64)
    x2 = torch.randn(7, (lmax + 1) ** 2, generator=generator, dtype=torch.float64)
    gaunt = GauntTensorProduct(lmax, lmax, lmax_out).double()
    cg, weights = cg_tensor_product(lmax, lmax, lmax_out, gaunt_paths_only=True)
    expected = cg.double()(x1, x2, weights.double())  # (7, K_out)
    torch.testing.assert_close(gaunt(x1, x2), expected, atol=1e-11, rtol=1e-11)
    # float32 end to end stays within float tolerance
    result32 = GauntTensorProduct(lmax, lmax, lmax_out).float()(x1.float(), x2.float())
    torch.testing.assert_close(result32, expected.float(), atol=1e-4, rtol=1e-4)


def test_gaunt_gradients_match_cg():
    lmax = 3
    generator = torch.Generator().manual_seed(1)
    x1 = torch.randn(4, 16, generator=generator, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(4, 16, generator=generator, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(4, 16, generator=generator, dtype=torch.float64)
    gaunt_grads = torch.autograd.grad((GauntTensorProduct(lmax, lmax, lmax).double()(x1, x2) * probe).sum(), (x1, x2))
    cg, weights = cg_tensor_product(lmax, lmax, lmax, gaunt_paths_only=True)
    cg_grads = torch.autograd.grad((cg.double()(x1, x2, weights.double()) * probe).sum(), (x1, x2))
    for a, b in zip(gaunt_grads, cg_grads):
        torch.testing.assert_close(a, b, atol=1e-11, rtol=1e-11)


def test_unequal_degrees_and_channel_broadcast():
    generator = torch.Generator().manual_seed(2)
    x1 = torch.randn(3, 5, 9, generator=generator, dtype=torch.float64)  # (B, C, K1), L1 = 2
    x2 = torch.randn(3, 5, 16, generator=generator, dtype=torch.float64)  # (B, C, K2), L2 = 3
    out = GauntTensorProduct(2, 3, 4).double()(x1, x2)  # (B, C, 25)
    cg, weights = cg_tensor_product(2, 3, 4, gaunt_paths_only=True)
    expected = cg.double()(x1.reshape(15, 9), x2.reshape(15, 16), weights.double()).reshape(3, 5, 25)
    torch.testing.assert_close(out, expected, atol=1e-11, rtol=1e-11)


@pytest.mark.parametrize("lmax", [1, 2, 3, 4])
def test_gaunt_product_is_rotation_equivariant(lmax):
    generator = torch.Generator().manual_seed(10 + lmax)
    x1 = torch.randn(6, (lmax + 1) ** 2, generator=generator, dtype=torch.float64)
    x2 = torch.randn(6, (lmax + 1) ** 2, generator=generator, dtype=torch.float64)
    gaunt = GauntTensorProduct(lmax, lmax, lmax).double()
    for _ in range(3):
        angles = (torch.rand(3, generator=generator, dtype=torch.float64) * 2 * math.pi).unbind()
        # Wigner D from the angles: D_from_matrix loses ~1e-9 near beta = 0 (gimbal lock)
        d_in = sh_irreps(lmax).D_from_angles(*angles)  # (K, K) block diagonal
        torch.testing.assert_close(gaunt(x1 @ d_in.T, x2 @ d_in.T), gaunt(x1, x2) @ d_in.T, atol=1e-11, rtol=1e-11)


def test_full_cg_product_has_paths_gaunt_lacks():
    # 1 (x) 1 -> 1 is the cross product: a CG path with odd l1 + l2 + l3, absent from Gaunt
    full, weights = cg_tensor_product(1, 1, 1, gaunt_paths_only=False)
    a = torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)  # l = 1 part (x, y, z) = e_x
    b = torch.tensor([[0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)  # e_y
    out_full = full.double()(a, b, weights.double())
    assert out_full[0, 1:].abs().max() > 0.1  # parallel to e_x x e_y
    assert GauntTensorProduct(1, 1, 1).double()(a, b)[0, 1:].abs().max() < 1e-14
    paths_full = sum(1 for l1 in range(5) for l2 in range(5) for l3 in range(abs(l1 - l2), min(l1 + l2, 4) + 1))
    assert len(cg_tensor_product(4, 4, 4, gaunt_paths_only=False)[1]) == paths_full
    assert len(cg_tensor_product(4, 4, 4, gaunt_paths_only=True)[1]) == len(gaunt_paths(4, 4, 4))


def test_invalid_degrees_are_rejected():
    with pytest.raises(ValueError, match="lmax_out"):
        GauntTensorProduct(1, 1, 3)
    # degrees above e3nn's 12 are accepted up to MAX_SH_DEGREE (was: (8, 8, 16) raised)
    assert MAX_SH_DEGREE == 32
    GauntTensorProduct(8, 8, 16)
    GauntTensorProduct(8, 8, 12)  # product degree 16 on the Fourier grid is fine
    with pytest.raises(ValueError, match="MAX_SH_DEGREE"):
        GauntTensorProduct(17, 17, 33)
    with pytest.raises(ValueError, match="MAX_SH_DEGREE"):
        GauntTensorProduct(33, 0, 0)
    with pytest.raises(ValueError, match="MAX_SH_DEGREE"):
        GauntPowerSum(33, 2)
    with pytest.raises(ValueError, match="MAX_SH_DEGREE"):
        gaunt_coefficients(33, 1, 32)


def test_edge_gaunt_messages_equal_per_edge_gaunt_products():
    """The model's grid-summed Gaunt messages are sum over edges of Gaunt(h_source, weighted SH)."""
    from replibench.families.oc20.models.equivariant import EdgeTensorProduct, EquivariantConfig, degree_of_coefficient
    from replibench.families.oc20.types import AtomsGraph

    config = EquivariantConfig(tp="gaunt", lmax=3, channels=4)
    edge_tp = EdgeTensorProduct(config)
    generator = torch.Generator().manual_seed(4)
    h = torch.randn(5, 4, 16, generator=generator)  # (N, C, K)
    edge_index = torch.tensor([[0, 3, 3, 1, 4, 2], [1, 1, 0, 4, 4, 4]])  # (2, E) source, target
    directions = torch.randn(6, 3, generator=generator)
    sh = o3.spherical_harmonics(list(range(4)), directions, True, normalization="component")  # (E, K)
    weights = torch.randn(6, edge_tp.num_weights, generator=generator)
    graph = AtomsGraph(
        atomic_numbers=torch.ones(5, dtype=torch.long),
        pos=torch.zeros(5, 3),
        cell=torch.eye(3)[None],
        batch=torch.zeros(5, dtype=torch.long),
        natoms=torch.tensor([5]),
        edge_index=edge_index,
        edge_shift=torch.zeros(6, 3),
        tags=torch.zeros(5, dtype=torch.long),
        fixed=torch.zeros(5, dtype=torch.bool),
    )
    degree = degree_of_coefficient(3)
    filters = weights.reshape(6, 4, 4)[:, :, degree] * sh[:, None, :]  # (E, C, K)
    per_edge = GauntTensorProduct(3, 3, 3)(h[edge_index[0]], filters)  # (E, C, K)
    expected = torch.zeros(5, 4, 16).index_add(0, edge_index[1], per_edge)
    torch.testing.assert_close(edge_tp(h, sh, weights, graph), expected, atol=1e-10, rtol=1e-8)


def test_gaunt_product_runs_under_bfloat16_autocast():
    """Mixed precision (train.amp: bf16) must not break the Fourier path: complex tensors and
    the FFT have no bfloat16, so samples/from_samples run in float32 with autocast off. The H200
    rehearsal found `view_as_complex ... BFloat16` before this; CPU autocast reproduces it."""
    torch.manual_seed(0)
    gaunt = GauntTensorProduct(2, 2, 2)
    x1, x2 = torch.randn(5, 3, 9).bfloat16(), torch.randn(5, 3, 9).bfloat16()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        mixed = gaunt(x1, x2)
    assert mixed.dtype == torch.float32
    exact = gaunt(x1.float(), x2.float())  # the same (bf16-rounded) inputs at full precision
    torch.testing.assert_close(mixed, exact, rtol=1e-5, atol=1e-5)


def test_a_module_built_under_float32_is_exact_after_double():
    """The dense SH <-> grid matrices keep a float64 copy: ``.double()`` after a float32 build is exact."""
    torch.set_default_dtype(torch.float32)  # the autouse fixture restores float64 after the test
    gaunt = GauntTensorProduct(3, 3, 3).double()
    torch.set_default_dtype(torch.float64)
    generator = torch.Generator().manual_seed(8)
    x1, x2 = torch.randn(2, 4, 16, generator=generator), torch.randn(2, 4, 16, generator=generator)
    cg, weights = cg_tensor_product(3, 3, 3, gaunt_paths_only=True)
    expected = cg(x1.reshape(8, 16), x2.reshape(8, 16), weights).reshape(2, 4, 16)
    torch.testing.assert_close(gaunt(x1, x2), expected, atol=1e-11, rtol=1e-11)
    assert gaunt.float()(x1.float(), x2.float()).dtype == torch.float32


@pytest.mark.parametrize("lmax1,lmax2,lmax_out", [(1, 1, 2), (2, 3, 3), (3, 3, 6)])
def test_sums_of_sampled_products_go_back_exactly(lmax1, lmax2, lmax_out):
    """samples / from_samples: the projection is linear, so summed grid products (the model's messages)
    equal summed Gaunt products."""
    gaunt = GauntTensorProduct(lmax1, lmax2, lmax_out)
    generator = torch.Generator().manual_seed(9)
    a1, b1 = (torch.randn(3, (lmax1 + 1) ** 2, generator=generator) for _ in range(2))
    a2, b2 = (torch.randn(3, (lmax2 + 1) ** 2, generator=generator) for _ in range(2))
    grid = gaunt.samples(a1, 1) * gaunt.samples(a2, 2) + gaunt.samples(b1, 1) * gaunt.samples(b2, 2)
    assert grid.shape[-2:] == gaunt.grid_shape
    torch.testing.assert_close(gaunt.from_samples(grid), gaunt(a1, a2) + gaunt(b1, b2), atol=1e-11, rtol=1e-11)


# ---- degrees above e3nn's spherical_harmonics (12): Legendre recursion in e3nn's convention ----


def random_angles(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha in [0, 2pi), beta over the whole circle [0, 2pi) (the Fourier route's extension)."""
    generator = torch.Generator().manual_seed(seed)
    alpha = torch.rand(n, generator=generator, dtype=torch.float64) * 2 * math.pi
    beta = torch.rand(n, generator=generator, dtype=torch.float64) * 2 * math.pi
    return alpha, beta


def test_recursion_equals_e3nn_unit_vector_sh_up_to_12():
    """Same basis, signs, normalization and polar axis y as e3nn's ``spherical_harmonics`` of
    ``angles_to_xyz`` (its values, max ~5, to float64 round-off), beta over the whole circle."""
    alpha, beta = random_angles(300, 0)
    direct = o3.spherical_harmonics(list(range(13)), o3.angles_to_xyz(alpha, beta), True, normalization="component")
    torch.testing.assert_close(_legendre_spherical_harmonics(0, 12, alpha, beta), direct, atol=1e-13, rtol=0)
    # below 13 the tables use e3nn's values themselves, bit for bit
    assert torch.equal(spherical_harmonics_at_angles(12, alpha, beta), direct)


def test_recursion_equals_e3nn_alpha_beta_sh_above_12():
    """Above 12 e3nn's ``spherical_harmonics_alpha_beta`` is the only e3nn source: same functions,
    but its monomial Legendre expansion loses ~2.5x per degree (6e-11 at l = 16), so compare at 1e-9."""
    alpha, beta = random_angles(200, 1)
    lmax = 15
    ours = spherical_harmonics_at_angles(lmax, alpha, beta)  # (P, (lmax+1)^2)
    high_ls = list(range(E3NN_MAX_SH_DEGREE + 1, lmax + 1))  # 13..15 (e3nn builds each symbolically: slow)
    theirs = o3.spherical_harmonics_alpha_beta(high_ls, alpha, beta, normalization="component")
    high = slice((E3NN_MAX_SH_DEGREE + 1) ** 2, None)
    torch.testing.assert_close(ours[:, high], theirs, atol=1e-9 * theirs.abs().max().item(), rtol=0)
    # the direction form: o3.xyz_to_angles then the same functions
    xyz = o3.angles_to_xyz(alpha, beta) * 2.5  # not unit: normalized inside
    torch.testing.assert_close(spherical_harmonics_of_vector(lmax, xyz), ours, atol=1e-12, rtol=0)


def test_high_degree_sh_are_orthonormal():
    """(1/4pi) integral Y_k Y_k' = delta (component normalization) for every degree up to MAX_SH_DEGREE,
    by Gauss-Legendre x uniform quadrature (exact for these polynomials)."""
    lmax = MAX_SH_DEGREE
    import numpy as np

    nodes, weights = np.polynomial.legendre.leggauss(lmax + 2)
    n_alpha = 2 * lmax + 2
    beta = torch.from_numpy(np.arccos(nodes))
    alpha = torch.arange(n_alpha, dtype=torch.float64) * (2 * math.pi / n_alpha)
    b, a = torch.meshgrid(beta, alpha, indexing="ij")
    sh = spherical_harmonics_at_angles(lmax, a, b).reshape(-1, (lmax + 1) ** 2)  # (P, K)
    w = (torch.from_numpy(weights)[:, None] / (2 * n_alpha)).expand_as(b).reshape(-1)  # (P,): sums to 1
    gram = sh.T @ (w[:, None] * sh)
    torch.testing.assert_close(gram, torch.eye(gram.shape[0]), atol=1e-12, rtol=0)


@pytest.mark.parametrize("l1,l2,l3", [(7, 7, 14), (13, 2, 15), (6, 8, 14), (16, 16, 32)])
def test_high_degree_gaunt_coefficients_equal_racah_times_wigner_3j(l1, l2, l3):
    """Quadrature of the recursion's SH = closed-form Gaunt constant (Racah) x e3nn's wigner_3j."""
    from replibench.families.oc20.efficiency import gaunt_constant

    gaunt = gaunt_coefficients(l1, l2, l3)
    expected = gaunt_constant(l1, l2, l3) * o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
    torch.testing.assert_close(gaunt, expected, atol=1e-12, rtol=0)
    assert gaunt.abs().max() > 1e-3


def dense_gaunt_contraction(x1: torch.Tensor, x2: torch.Tensor, lmax1: int, lmax2: int, lmax_out: int) -> torch.Tensor:
    """sum over paths of G(l1 m1, l2 m2, l3 m3) x1 x2 with G by quadrature (no Fourier route)."""
    out = x1.new_zeros(*x1.shape[:-1], (lmax_out + 1) ** 2)
    for l1, l2, l3 in gaunt_paths(lmax1, lmax2, lmax_out):
        g = gaunt_coefficients(l1, l2, l3)
        out[..., l3 * l3:(l3 + 1) ** 2] += torch.einsum(
            "...i,...j,ijk->...k", x1[..., l1 * l1:(l1 + 1) ** 2], x2[..., l2 * l2:(l2 + 1) ** 2], g)
    return out


@pytest.mark.parametrize("lmax1,lmax2,lmax_out", [(7, 7, 14), (13, 2, 15), (7, 7, 10)])
def test_gaunt_above_degree_12_equals_dense_contraction(lmax1, lmax2, lmax_out):
    generator = torch.Generator().manual_seed(lmax1 + lmax_out)
    x1 = torch.randn(5, (lmax1 + 1) ** 2, generator=generator, dtype=torch.float64)
    x2 = torch.randn(5, (lmax2 + 1) ** 2, generator=generator, dtype=torch.float64)
    expected = dense_gaunt_contraction(x1, x2, lmax1, lmax2, lmax_out)
    result = GauntTensorProduct(lmax1, lmax2, lmax_out).double()(x1, x2)
    scale = expected.abs().max().item()
    torch.testing.assert_close(result, expected, atol=1e-10 * scale, rtol=0)
    # float32 end to end stays within float tolerance
    result32 = GauntTensorProduct(lmax1, lmax2, lmax_out)(x1.float(), x2.float())
    torch.testing.assert_close(result32, expected.float(), atol=1e-4 * scale, rtol=0)


@pytest.mark.parametrize("lmax1,lmax2,lmax_out", [(7, 7, 14), (13, 2, 15)])
def test_gaunt_above_degree_12_is_rotation_equivariant(lmax1, lmax2, lmax_out):
    generator = torch.Generator().manual_seed(30 + lmax1)
    x1 = torch.randn(4, (lmax1 + 1) ** 2, generator=generator, dtype=torch.float64)
    x2 = torch.randn(4, (lmax2 + 1) ** 2, generator=generator, dtype=torch.float64)
    gaunt = GauntTensorProduct(lmax1, lmax2, lmax_out).double()
    out = gaunt(x1, x2)
    scale = out.abs().max().item()
    for _ in range(2):
        angles = (torch.rand(3, generator=generator, dtype=torch.float64) * 2 * math.pi).unbind()
        d1, d2, d_out = (sh_irreps(l).D_from_angles(*angles) for l in (lmax1, lmax2, lmax_out))
        torch.testing.assert_close(gaunt(x1 @ d1.T, x2 @ d2.T), out @ d_out.T, atol=1e-10 * scale, rtol=0)


def test_power_sum_above_degree_12():
    """GauntPowerSum at lmax 13 (grid resolving degree 39) = x + truncated repeated Gaunt products
    (GauntTensorProduct, itself checked against the dense contraction above 12)."""
    lmax, correlation = 13, 3
    generator = torch.Generator().manual_seed(12)
    x = torch.randn(3, (lmax + 1) ** 2, generator=generator, dtype=torch.float64)
    square = GauntTensorProduct(lmax, lmax, 2 * lmax).double()(x, x)  # degrees 0..26
    cube = GauntTensorProduct(lmax, 2 * lmax, lmax).double()(x, square)
    expected = x + square[:, : (lmax + 1) ** 2] + cube
    torch.testing.assert_close(GauntPowerSum(lmax, correlation).double()(x), expected,
                               atol=1e-10 * expected.abs().max().item(), rtol=0)
