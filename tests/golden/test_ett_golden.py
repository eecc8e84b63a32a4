"""ETT models and data against Time-Series-Library's own outputs (fixtures by tools/golden/ett_tslib.py).

TimesNet (forecasting and imputation) and DLinear: the fixture's weights are copied into our model
by the recorded name map, the fixture's inputs are fed in float64, and the outputs — and, for
TimesNet, each layer's FFT-chosen periods and their softmax weights — must match TSLib's.

The data side: our ETTh1 and ETTm1 loaders (borders, train-only scaler, windows, timeF features)
against TSLib's ``Dataset_ETT_hour`` / ``Dataset_ETT_minute`` on the same CSVs.

The naive baselines have no upstream model (TSLib has none; the papers use them nowhere): they are
checked against values worked out by hand at the end of this file.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from golden.golden import load_fixture
from replibench.families.ett.models.dlinear import DLinear, DLinearConfig
from replibench.families.ett.models.naive import NaiveLast, NaiveMean
from replibench.families.ett.models.timesnet import TimesNet, TimesNetConfig, fft_periods

RTOL = 1e-6


def _load_weights(model: torch.nn.Module, fixture) -> None:
    """Copy every upstream weight into ``model`` by the fixture's name map; none may be left over."""
    state = model.state_dict()
    mapping = fixture.meta["weight_map"]
    assert sorted(mapping.values()) == sorted(name for name, _ in model.named_parameters())
    for upstream, ours in mapping.items():
        value = torch.from_numpy(fixture[f"weight/{upstream}"].astype(np.float64))
        assert state[ours].shape == value.shape, (upstream, ours)
        state[ours] = value
    model.load_state_dict(state)


def _timesnet(fixture) -> TimesNet:
    config = json.loads(fixture.meta["notes"])["our_config"]
    model = TimesNet(TimesNetConfig(**config)).double().eval()
    _load_weights(model, fixture)
    return model


def _record_periods(model: TimesNet) -> tuple[list, list]:
    """Forward pre-hooks recording each block's periods and softmax weights, as the generator did."""
    record: list = []

    def hook(_module, inputs):
        periods, amplitudes = fft_periods(inputs[0], model.config.top_k)
        record.append((np.asarray(periods), torch.softmax(amplitudes, dim=1).numpy()))

    return record, [block.register_forward_pre_hook(hook) for block in model.blocks]


@pytest.mark.parametrize("task", ["forecast", "impute"])
@pytest.mark.parametrize("batch", ["random", "etth1"])
def test_timesnet_matches_tslib(task: str, batch: str) -> None:
    fixture = load_fixture(f"ett_timesnet_{task}")
    assert fixture.meta["repo"] == "thuml/Time-Series-Library"
    model = _timesnet(fixture)
    x = torch.from_numpy(fixture[f"{batch}_x"])
    mark = torch.from_numpy(fixture[f"{batch}_mark"])
    record, hooks = _record_periods(model)
    with torch.no_grad():
        out = model(x, mark) if task == "forecast" else model(x, mark, torch.from_numpy(fixture[f"{batch}_mask"]))
    for hook in hooks:
        hook.remove()
    np.testing.assert_array_equal(np.stack([p for p, _ in record]), fixture[f"{batch}_periods"])
    np.testing.assert_allclose(np.stack([w for _, w in record]), fixture[f"{batch}_period_weights"], rtol=RTOL)
    expected = fixture[f"{batch}_out"]
    if task == "forecast":  # TSLib returns the last pred_len steps of its (L + H) output; so do we
        expected = expected[:, -model.config.pred_len:]
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=RTOL, atol=1e-12)


def test_timesnet_random_batch_folds_padded_periods() -> None:
    """The fixture exercises the padding branch (a period that does not divide L + H)."""
    fixture = load_fixture("ett_timesnet_forecast")
    periods = fixture["random_periods"]
    assert np.any(120 % periods != 0) and len(set(periods.ravel())) > 1


@pytest.mark.parametrize("batch", ["random", "etth1"])
def test_dlinear_matches_tslib(batch: str) -> None:
    fixture = load_fixture("ett_dlinear")
    config = json.loads(fixture.meta["notes"])["our_config"]
    model = DLinear(DLinearConfig(**config)).double().eval()
    _load_weights(model, fixture)
    with torch.no_grad():
        out = model(torch.from_numpy(fixture[f"{batch}_x"]))
    np.testing.assert_allclose(out.numpy(), fixture[f"{batch}_out"], rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("name", ["ETTh1", "ETTm1"])
def test_ett_windows_and_scaler_match_tslib(name: str, shared_data, tmp_path) -> None:
    """Borders, train-only scaler, window counts and contents, timeF features (freq 'h' for ETTm1
    too, as the TimesNet scripts run it) against Dataset_ETT_hour / Dataset_ETT_minute."""
    from replibench.families.ett.datasets.ett import num_windows, preprocess, split_borders_ett
    from replibench.families.ett.tasks.timeseries import load_series

    dataset = name.lower()
    fixture = load_fixture(f"ett_data_{dataset}")
    preprocess(shared_data / "ett" / f"{name}.csv", tmp_path, dataset=dataset)
    data = load_series(tmp_path, dataset=dataset, seq_len=96, pred_len=96)
    np.testing.assert_allclose(data.mean, fixture["scaler_mean"], rtol=1e-12)
    np.testing.assert_allclose(data.std, fixture["scaler_scale"], rtol=1e-12)
    counts = np.array([[num_windows(end - start, 96, horizon)
                        for horizon in (96, 192, 336, 720)
                        for start, end in [split_borders_ett(dataset, 96)[split]]]
                       for split in ("train", "val", "test")])
    np.testing.assert_array_equal(counts, fixture["window_counts"])
    last = data.window_count("test") - 1
    x, mark, y = data.gather("test", torch.tensor([0, last]))
    # Our scaled series is stored in float32 (TSLib keeps float64): |scaled| < 10 here, so float32
    # rounding is below 10 × 2^-24 ≈ 6e-7 absolute.
    for row, name in ((0, "first"), (1, "last")):
        np.testing.assert_allclose(x[row].numpy(), fixture[f"test_{name}_x"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(y[row].numpy(), fixture[f"test_{name}_y"], rtol=0, atol=1e-6)
        # timeF features: ours float32 from the same formula (values in [-0.5, 0.5])
        np.testing.assert_allclose(mark[row].numpy(), fixture[f"test_{name}_mark"], rtol=0, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Naive baselines: no upstream model exists; expected values are worked out by hand.
# ---------------------------------------------------------------------------------------------

def _window() -> torch.Tensor:
    # one window, L = 4, two channels: channel 0 = 1, 2, 3, 6; channel 1 = -1, 0, 5, 4
    return torch.tensor([[[1.0, -1.0], [2.0, 0.0], [3.0, 5.0], [6.0, 4.0]]], dtype=torch.float64)


def test_naive_forecast_hand_values() -> None:
    x = _window()
    last = NaiveLast(NaiveLast.Config(seq_len=4, pred_len=3, enc_in=2))(x)
    mean = NaiveMean(NaiveMean.Config(seq_len=4, pred_len=3, enc_in=2))(x)
    assert last.tolist() == [[[6.0, 4.0]] * 3]  # the last row repeated over H = 3
    assert mean.tolist() == [[[3.0, 2.0]] * 3]  # (1+2+3+6)/4 = 3, (-1+0+5+4)/4 = 2


def test_naive_impute_hand_values() -> None:
    x = _window()
    # channel 0: steps 0 and 2 missing; channel 1: steps 1 and 3 missing (entries zeroed, as TSLib does)
    mask = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]], dtype=torch.float64)
    masked = x * mask
    last = NaiveLast(NaiveLast.Config(task="impute", seq_len=4, pred_len=0, enc_in=2))(masked, None, mask)
    mean = NaiveMean(NaiveMean.Config(task="impute", seq_len=4, pred_len=0, enc_in=2))(masked, None, mask)
    # last observed: ch0 step 0 has none before it → first observed (2); step 2 ← step 1 (2)
    #                ch1 step 1 ← step 0 (-1); step 3 ← step 2 (5)
    assert last.tolist() == [[[2.0, -1.0], [2.0, -1.0], [2.0, 5.0], [6.0, 5.0]]]
    # observed means: ch0 (2+6)/2 = 4, ch1 (-1+5)/2 = 2; observed entries kept
    assert mean.tolist() == [[[4.0, -1.0], [2.0, 2.0], [4.0, 5.0], [6.0, 2.0]]]
