"""Causal layers do not look ahead; bidirectional layers do, through a strictly anti-causal part."""

import pytest
import torch

from replibench.families.lra.models.s4 import S4Config, S4Layer
from replibench.families.lra.models.s4d import S4DConfig, S4DLayer, fft_conv
from replibench.families.lra.models.s5 import S5Config, S5Layer


def _layer(kind: str, bidirectional: bool, gen: torch.Generator) -> torch.nn.Module:
    if kind == "s4d":
        return S4DLayer(S4DConfig(d_model=4, d_state=8, bidirectional=bidirectional), generator=gen)
    if kind == "s4":
        return S4Layer(S4Config(d_model=4, d_state=8, l_max=32, bidirectional=bidirectional), generator=gen)
    return S5Layer(S5Config(d_model=4, ssm_size=8, blocks=2, bidirectional=bidirectional), generator=gen)


@pytest.mark.parametrize("kind", ["s4d", "s4", "s5"])
def test_causal_layer_does_not_look_ahead(kind, gen):
    layer = _layer(kind, False, gen).double().eval()
    x = torch.randn(2, 32, 4, dtype=torch.float64, generator=gen)
    x2 = x.clone()
    x2[:, 20:] = torch.randn(2, 12, 4, dtype=torch.float64, generator=gen)
    y, y2 = layer(x), layer(x2)
    torch.testing.assert_close(y[:, :20], y2[:, :20], rtol=0, atol=1e-12)
    assert (y[:, 20:] - y2[:, 20:]).abs().max() > 1e-6


@pytest.mark.parametrize("kind", ["s4d", "s4", "s5"])
def test_bidirectional_layer_sees_the_future(kind, gen):
    layer = _layer(kind, True, gen).double().eval()
    x = torch.randn(2, 32, 4, dtype=torch.float64, generator=gen)
    x2 = x.clone()
    x2[:, 20:] = 0.0
    assert (layer(x)[:, :20] - layer(x2)[:, :20]).abs().max() > 1e-6


def test_bidirectional_fft_conv_is_the_two_sided_sum(gen):
    L = 12
    u = torch.randn(2, 3, L, dtype=torch.float64, generator=gen)
    k = torch.randn(2, 3, L, dtype=torch.float64, generator=gen)  # causal, anti-causal
    y = fft_conv(u, k, bidirectional=True)
    ref = torch.zeros_like(u)
    for t in range(L):
        for s in range(L):
            ref[..., t] += u[..., s] * (k[0, :, t - s] if s <= t else k[1, :, s - t - 1])
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-12)
    causal = fft_conv(u, k[:1], bidirectional=False)
    ref_c = torch.stack([sum(u[..., s] * k[0, :, t - s] for s in range(t + 1)) for t in range(L)], -1)
    torch.testing.assert_close(causal, ref_c, rtol=0, atol=1e-12)


def test_fft_conv_runs_half_precision_input_in_float32():
    """Under bf16 autocast a layer hands fft_conv bfloat16 activations; the FFT has no bfloat16,
    so the convolution runs in float32 (the H200 rehearsal's `Unsupported dtype BFloat16` on
    Pathfinder). Float32 input gives the same numbers as before, float64 stays float64."""
    torch.manual_seed(0)
    u, k = torch.randn(2, 3, 16), torch.randn(1, 3, 16)
    half = fft_conv(u.bfloat16(), k.bfloat16(), bidirectional=False)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, fft_conv(u.bfloat16().float(), k.bfloat16().float(), False))
    assert fft_conv(u.double(), k.double(), False).dtype == torch.float64
