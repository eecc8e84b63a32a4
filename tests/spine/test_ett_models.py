"""ETT models on hand-checked inputs: naive fills, DLinear's decomposition, TimesNet's shapes."""

from __future__ import annotations

import pytest
import torch

from replibench.families.ett.models.dlinear import DLinear, DLinearConfig, moving_average_trend
from replibench.families.ett.models.naive import NaiveConfig, NaiveLast, NaiveMean, NaiveMeanConfig, last_observed_fill, observed_mean_fill
from replibench.families.ett.models.timesnet import TimesNet, TimesNetConfig, fft_periods


def test_naive_forecasts_repeat_last_value_or_mean():
    x = torch.tensor([[[1.0, 10.0], [2.0, 20.0], [4.0, 30.0]]])  # (1, 3, 2)
    last = NaiveLast(NaiveConfig(pred_len=2))(x)
    assert last.tolist() == [[[4.0, 30.0], [4.0, 30.0]]]
    mean = NaiveMean(NaiveMeanConfig(pred_len=2))(x)
    assert torch.allclose(mean, torch.tensor([[[7 / 3, 20.0], [7 / 3, 20.0]]]))


def test_imputation_fills_by_hand():
    x = torch.tensor([[[0.0], [2.0], [0.0], [0.0], [5.0], [0.0]]])  # masked entries already zeroed
    mask = torch.tensor([[[0.0], [1.0], [0.0], [0.0], [1.0], [0.0]]])
    assert last_observed_fill(x, mask).flatten().tolist() == [2.0, 2.0, 2.0, 2.0, 5.0, 5.0]
    assert observed_mean_fill(x, mask).flatten().tolist() == [3.5] * 6
    nothing = torch.zeros(1, 3, 1)
    assert last_observed_fill(nothing, nothing).flatten().tolist() == [0.0, 0.0, 0.0]
    out = NaiveLast(NaiveConfig(task="impute", pred_len=0))(x, None, mask)
    assert out.flatten().tolist() == [2.0, 2.0, 2.0, 2.0, 5.0, 5.0]  # observed values kept as they are


def test_dlinear_moving_average_replicates_the_ends():
    x = torch.arange(5.0).view(1, 5, 1)
    trend = moving_average_trend(x, 3)
    assert trend.flatten().tolist() == pytest.approx([1 / 3, 1.0, 2.0, 3.0, 11 / 3])
    model = DLinear(DLinearConfig(seq_len=5, pred_len=2, enc_in=1, moving_avg=3))
    assert model(x).shape == (1, 2, 1)
    # weights start at 1/seq_len (the window mean), biases at nn.Linear's default
    assert torch.allclose(model.seasonal[0].weight, torch.full((2, 5), 0.2))
    individual = DLinear(DLinearConfig(individual=True, enc_in=3))
    assert individual(torch.randn(4, 96, 3)).shape == (4, 96, 3)


def test_fft_periods_find_a_planted_period():
    t = torch.arange(96.0)
    x = torch.sin(2 * torch.pi * t / 24).view(1, 96, 1).repeat(2, 1, 4)
    periods, amplitudes = fft_periods(x, 1)
    assert periods == [24] and amplitudes.shape == (2, 1)


@pytest.mark.parametrize("pred_len", [96, 720])
def test_timesnet_forecast_shapes(pred_len):
    torch.manual_seed(0)
    model = TimesNet(TimesNetConfig(pred_len=pred_len, top_k=2, num_kernels=2))
    out = model(torch.randn(3, 96, 7), torch.rand(3, 96, 4) - 0.5)
    assert out.shape == (3, pred_len, 7) and torch.isfinite(out).all()


def test_timesnet_imputation_shapes_and_mask_use():
    torch.manual_seed(0)
    model = TimesNet(TimesNetConfig(task="impute", pred_len=0, top_k=3)).eval()
    x = torch.randn(2, 96, 7)
    mask = (torch.rand(2, 96, 7) > 0.25).float()
    out = model(x.masked_fill(mask == 0, 0), torch.zeros(2, 96, 4), mask)
    assert out.shape == (2, 96, 7)
    with pytest.raises(ValueError, match="pred_len must be 0"):
        TimesNet(TimesNetConfig(task="impute", pred_len=96))


def test_fft_periods_accepts_bfloat16_activations():
    """TimesNet under bf16 autocast: the period search's FFT runs in float32 (cuFFT and CPU FFT have
    no bfloat16; the H200 rehearsal failed on it) and finds the same periods as the float32 input."""
    t = torch.arange(96, dtype=torch.float32)
    x = (torch.sin(2 * torch.pi * t / 24) + 0.5 * torch.sin(2 * torch.pi * t / 8)).reshape(1, 96, 1).repeat(2, 1, 3)
    periods, weights = fft_periods(x.bfloat16(), 2)
    assert periods == fft_periods(x.bfloat16().float(), 2)[0] == [24, 8]
    assert weights.dtype == torch.float32
