"""Gaunt-Selfmix (our reading of the Gaunt paper's OC20 block): equivariant, and at initialisation
exactly the per-degree linear map of the channel-wise Gaunt product of x with itself."""

from __future__ import annotations

import pytest
import torch

from replibench.families.oc20.models.gaunt import GauntTensorProduct
from replibench.families.oc20.models.gaunt_selfmix import GauntSelfmix


@pytest.fixture(autouse=True)
def float64_default():
    """e3nn builds Wigner matrices (and our Gaunt tables' spherical harmonics) in the default
    dtype: make that float64, so the checks below are at float64 round-off."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _wigner_blocks(lmax: int, angles: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Block-diagonal Wigner D from Euler angles (D_from_matrix loses ~1e-6 to gimbal lock)."""
    from e3nn import o3

    return o3.Irreps.spherical_harmonics(lmax).D_from_angles(*angles)  # (K, K)


@pytest.mark.parametrize("lmax", [1, 3])
def test_selfmix_is_rotation_equivariant(lmax):
    torch.manual_seed(0)
    block = GauntSelfmix(lmax, channels=3).double()
    with torch.no_grad():  # move every weight off its initial value
        for parameter in block.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    x = torch.randn(5, (lmax + 1) ** 2, 3, dtype=torch.float64)
    angles = (torch.rand(3, dtype=torch.float64) * 6.283185307179586).unbind()
    wigner = _wigner_blocks(lmax, angles)
    rotated_then_mixed = block(torch.einsum("jk,nkc->njc", wigner, x))
    mixed_then_rotated = torch.einsum("jk,nkc->njc", wigner, block(x))
    assert torch.allclose(rotated_then_mixed, mixed_then_rotated, atol=1e-12)


def test_selfmix_at_initialisation_is_the_linear_map_of_the_gaunt_square():
    torch.manual_seed(1)
    lmax, channels = 2, 4
    block = GauntSelfmix(lmax, channels).double()
    x = torch.randn(3, 9, channels, dtype=torch.float64)
    square = GauntTensorProduct(lmax, lmax, lmax).double()(x.transpose(1, 2), x.transpose(1, 2)).transpose(1, 2)
    expected = torch.empty_like(square)
    for l in range(lmax + 1):
        rows = slice(l * l, (l + 1) ** 2)
        expected[:, rows] = square[:, rows] @ block.weight_out[l]
    with torch.no_grad():
        block.bias_out.fill_(0.5)
    expected[:, 0] += 0.5  # the bias reaches degree 0 only
    assert torch.allclose(block(x), expected, atol=1e-12)


def test_selfmix_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"expects features of shape \(N, 9, 4\)"):
        GauntSelfmix(2, 4)(torch.zeros(2, 4, 4))
