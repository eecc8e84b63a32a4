"""Convolution kernels equal the recurrence unrolled step by step (small sizes, float64)."""

import numpy as np
import pytest
import torch

from replibench.families.lra.models.s4 import S4Config, S4Layer, unrolled_kernel
from replibench.families.lra.models.s4d import S4DConfig, S4DLayer
from replibench.families.lra.models.s5 import S5Config, S5SSM, linear_scan


def _diag_unrolled(kernel, L):
    log_dA, dB, C = kernel.discrete()  # (H, M), (H, M), (C, H, M)
    x, out = dB.clone(), []
    for _ in range(L):
        out.append(2 * torch.einsum("chm,hm->ch", C, x).real)
        x = torch.exp(log_dA) * x
    return torch.stack(out, -1).detach().numpy()


@pytest.mark.parametrize("init", ["legs", "inv", "lin", "ptd"])
@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_s4d_kernel_is_the_unrolled_recurrence(init, disc, gen):
    layer = S4DLayer(S4DConfig(d_model=3, d_state=8, init=init, disc=disc), generator=gen).double()
    K = layer.kernel(40).detach().numpy()  # (2, 3, 40): causal and anti-causal channels
    ref = _diag_unrolled(layer.kernel, 40)
    np.testing.assert_allclose(K, ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize("measure", ["legs", "fout"])
@pytest.mark.parametrize("L", [64, 40])  # full kernel length and a truncated one
def test_s4_dplr_kernel_is_the_unrolled_recurrence(measure, L, gen):
    cfg = S4Config(d_model=3, d_state=8, measure=measure, l_max=64, b_clip=None, dt_min=0.01, dt_max=0.1)
    layer = S4Layer(cfg, generator=gen).double()
    K = layer.kernel(L).detach().numpy()  # Cauchy + Woodbury + iFFT
    dA, dB, C = layer.kernel.dense_system()  # C recovered from C~ = C (I - dA^L)
    ref = unrolled_kernel(dA, dB, C, L)
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(K, ref, rtol=0, atol=1e-10)


def test_s4_rejects_sequences_longer_than_the_kernel(gen):
    layer = S4Layer(S4Config(d_model=2, d_state=4, l_max=16), generator=gen)
    with pytest.raises(Exception, match="l_max"):
        layer(torch.randn(1, 32, 2))


@pytest.mark.parametrize("init", ["hippo", "ptd"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("conj_sym", [True, False])
def test_s5_scan_is_the_unrolled_recurrence(init, bidirectional, conj_sym, gen):
    cfg = S5Config(d_model=3, ssm_size=8, blocks=2, init=init, bidirectional=bidirectional, conj_sym=conj_sym)
    ssm = S5SSM(cfg, generator=gen).double()
    u = torch.randn(2, 37, 3, dtype=torch.float64, generator=gen)
    log_a, B_bar = ssm.discrete()
    a, C = torch.exp(log_a), torch.view_as_complex(ssm.C)
    fwd, bwd = [], [None] * 37
    x = torch.zeros(2, a.shape[0], dtype=torch.complex128)
    for k in range(37):
        x = a * x + u[:, k].to(B_bar.dtype) @ B_bar.T
        fwd.append(x)
    y = torch.einsum("hp,blp->blh", C[0], torch.stack(fwd, 1)).real
    if bidirectional:
        x = torch.zeros_like(x)
        for k in reversed(range(37)):
            x = a * x + u[:, k].to(B_bar.dtype) @ B_bar.T
            bwd[k] = x
        y = y + torch.einsum("hp,blp->blh", C[1], torch.stack(bwd, 1)).real
    ref = ssm.factor * y + ssm.D * u
    torch.testing.assert_close(ssm(u), ref, rtol=0, atol=1e-12)


def test_linear_scan_matches_loop_for_non_power_of_two_length(gen):
    log_a = torch.complex(-torch.rand(5, dtype=torch.float64, generator=gen), torch.randn(5, dtype=torch.float64, generator=gen))
    b = torch.randn(3, 13, 5, dtype=torch.complex128, generator=gen)
    x, ref = torch.zeros(3, 5, dtype=torch.complex128), []
    for k in range(13):
        x = torch.exp(log_a) * x + b[:, k]
        ref.append(x)
    torch.testing.assert_close(linear_scan(log_a, b), torch.stack(ref, 1), rtol=0, atol=1e-12)
