"""The TimesNet/TSLib protocol as named, tested functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replibench.families.ett.datasets.ett import num_windows, split_borders_ett
from replibench.families.ett.family import paper_settings, smoke_settings, timesnet_paper_hparams
from replibench.families.ett.metrics.forecast import horizon_average, mae, mse
from replibench.families.ett.family import FAMILY as ETT_FAMILY
from replibench.families.ett.tasks.forecast import FORECAST, predictions_to_table, table_to_predictions
from replibench.families.ett.tasks.leakage import future_leakage_probe
from replibench.families.ett.tasks.timeseries import fit_standard_scaler, load_series, time_features_timef
from replibench.train import TrainConfig, lr_factor
from replibench.errors import DataError


def test_split_borders_match_tslib():
    assert split_borders_ett("etth1", 96) == {"train": (0, 8640), "val": (8544, 11520), "test": (11424, 14400)}
    assert split_borders_ett("ETTm2", 96) == {"train": (0, 34560), "val": (34464, 46080), "test": (45984, 57600)}


@pytest.mark.parametrize("dataset, split, expected", [
    ("etth1", "train", (8449, 8353, 8209, 7825)),
    ("etth2", "val", (2785, 2689, 2545, 2161)),
    ("etth1", "test", (2785, 2689, 2545, 2161)),
    ("ettm1", "train", (34369, 34273, 34129, 33745)),
    ("ettm2", "test", (11425, 11329, 11185, 10801)),
])
def test_window_counts_match_the_research_table(dataset, split, expected):
    start, end = split_borders_ett(dataset, 96)[split]
    assert tuple(num_windows(end - start, 96, h) for h in (96, 192, 336, 720)) == expected


def test_scaler_is_fitted_on_train_rows_only(etth1_dir):
    data = load_series(etth1_dir, dataset="etth1", seq_len=96, pred_len=96)
    import pyarrow.parquet as pq

    table = pq.read_table(etth1_dir / "series.parquet")
    raw = np.stack([table.column(c).to_numpy() for c in data.channels], axis=1)
    np.testing.assert_allclose(data.mean, raw[:8640].mean(axis=0))
    np.testing.assert_allclose(data.std, raw[:8640].std(axis=0, ddof=0))
    poisoned = raw.copy()
    poisoned[8640:] = 1e6  # whatever val/test hold, the scaler must not move
    mean, std = fit_standard_scaler(poisoned[:8640])
    np.testing.assert_array_equal(mean, data.mean)
    np.testing.assert_array_equal(std, data.std)
    assert torch.allclose(data.scaled[:8640].mean(dim=0), torch.zeros(7), atol=1e-5)


def test_constant_channel_gets_unit_scale():
    mean, std = fit_standard_scaler(np.array([[1.0, 2.0], [1.0, 4.0]]))
    assert std.tolist() == [1.0, 1.0]


def test_windows_gather_the_right_rows(etth1_dir):
    data = load_series(etth1_dir, dataset="etth1", seq_len=96, pred_len=192)
    x, x_mark, y = data.gather("test", torch.tensor([0, 5]))
    assert x.shape == (2, 96, 7) and x_mark.shape == (2, 96, 4) and y.shape == (2, 192, 7)
    assert torch.equal(x[0], data.scaled[11424:11520]) and torch.equal(y[0], data.scaled[11520:11712])
    assert torch.equal(y[1, -1], data.scaled[11520 + 5 + 191])
    with pytest.raises(IndexError):
        data.gather("test", torch.tensor([data.window_count("test")]))


@pytest.mark.parametrize("batch_size", [1, 7, 32, 5000])
def test_every_test_window_is_scored_whatever_the_batch_size(etth1_dir, batch_size):
    from replibench.families.ett.models.dlinear import DLinear, DLinearConfig

    torch.manual_seed(0)
    data = load_series(etth1_dir, dataset="etth1", seq_len=96, pred_len=336)
    forecasts = FORECAST.forecast(DLinear(DLinearConfig(pred_len=336)), data, "test", batch_size)
    assert forecasts.shape == (2545, 336, 7)  # len(test) - seq_len - pred_len + 1 = 2976 - 96 - 336 + 1


def test_batch_independent_model_gives_identical_forecasts_for_any_batch_size(etth1_dir):
    from replibench.families.ett.models.dlinear import DLinear, DLinearConfig

    torch.manual_seed(0)
    model = DLinear(DLinearConfig())
    data = load_series(etth1_dir, dataset="etth1", seq_len=96, pred_len=96)
    np.testing.assert_allclose(FORECAST.forecast(model, data, "test", 1), FORECAST.forecast(model, data, "test", 64),
                               rtol=0, atol=1e-6)


def test_time_features_timef():
    features = time_features_timef(np.array(["2016-07-01T23:00:00", "2017-01-01T00:00:00"], dtype="datetime64[s]"))
    # 2016-07-01 was a Friday (dayofweek 4), day-of-year 183
    np.testing.assert_allclose(features[0], [0.5, 4 / 6 - 0.5, -0.5, 182 / 365 - 0.5], rtol=1e-6)
    np.testing.assert_allclose(features[1], [-0.5, 6 / 6 - 0.5, -0.5, -0.5], rtol=1e-6)


def test_metrics_on_hand_checked_values():
    prediction = np.array([[[1.0, 2.0], [3.0, 4.0]]])  # (1, 2, 2)
    target = np.array([[[1.0, 0.0], [0.0, 8.0]]])
    assert mse(prediction=prediction, target=target) == pytest.approx((0 + 4 + 9 + 16) / 4)
    assert mae(prediction=prediction, target=target) == pytest.approx((0 + 2 + 3 + 4) / 4)
    mask = np.array([[[False, True], [False, True]]])
    assert mse(prediction=prediction, target=target, mask=mask) == pytest.approx((4 + 16) / 2)
    with pytest.raises(ValueError, match="shape"):
        mse(prediction=prediction, target=target[:, :1])
    assert horizon_average({96: 0.1, 192: 0.2, 336: 0.3, 720: 0.4}) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="missing \\[720\\]"):
        horizon_average({96: 0.1, 192: 0.2, 336: 0.3})


def test_lr_type1_halves_from_the_third_epoch():
    config = TrainConfig(lr_schedule="type1")
    assert [lr_factor(config, epoch=e, step=0, total_steps=1) for e in range(5)] == [1, 1, 0.5, 0.25, 0.125]
    cosine = TrainConfig(lr_schedule="cosine", warmup_steps=10)
    assert lr_factor(cosine, epoch=0, step=4, total_steps=110) == pytest.approx(0.5)
    assert lr_factor(cosine, epoch=0, step=60, total_steps=110) == pytest.approx(0.5)
    assert lr_factor(cosine, epoch=0, step=110, total_steps=110) == pytest.approx(0.0)


def test_timesnet_script_hyperparameters_and_presets():
    assert timesnet_paper_hparams("ettm1", "forecast", 336) == ({"d_model": 16, "d_ff": 32}, {"epochs": 3})
    assert timesnet_paper_hparams("ettm2", "forecast", 192) == ({"d_model": 32, "d_ff": 32}, {"epochs": 1})
    assert timesnet_paper_hparams("etth2", "impute", 0.25)[0] == {"d_model": 32, "d_ff": 32, "top_k": 3}
    run = ETT_FAMILY.make_run("etth1", "forecast", "timesnet", {"horizon": 96}, 2021, "paper")
    paper = paper_settings(run)
    assert paper["task"] == {"seq_len": 96, "pred_len": 96, "eval_batch_size": 1, "val_batch_size": 32}
    assert paper["train"]["lr"] == 1e-4 and paper["train"]["batch_size"] == 32 and paper["train"]["patience"] == 3
    smoke = smoke_settings(ETT_FAMILY.make_run("etth1", "forecast", "timesnet", {"horizon": 96}, 2021, "smoke"))
    # presets change sizes and steps, never the model or its code path
    assert smoke["model"] == paper["model"] and smoke["train"]["max_steps"] == 4
    assert smoke["task"]["eval_batch_size"] == 32  # smoke checks the pipeline: no batch-1 test


def test_predictions_table_round_trip_and_errors():
    forecasts = np.arange(3 * 4 * 7, dtype=np.float32).reshape(3, 4, 7)
    channels = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
    table = predictions_to_table(forecasts, channels)
    assert table.num_rows == 3 and table.column_names[0] == "window"
    np.testing.assert_array_equal(table_to_predictions(table, channels=channels, windows=3, horizon=4), forecasts)
    with pytest.raises(DataError, match="3 rows, expected one per test window \\(4\\)"):
        table_to_predictions(table, channels=channels, windows=4, horizon=4)
    with pytest.raises(DataError, match="row 0, column HUFL: 4 values, expected 5"):
        table_to_predictions(table, channels=channels, windows=3, horizon=5)
    with pytest.raises(DataError, match="missing column\\(s\\) \\['OT'\\]"):
        table_to_predictions(table.drop_columns(["OT"]), channels=channels, windows=3, horizon=4)


class _Cheater(torch.nn.Module):
    """Reads the future: returns the true targets of the window it is asked about."""

    def __init__(self, data):
        super().__init__()
        self.data = data

    def forward(self, x, x_mark=None, mask=None):
        # find each window by its inputs and answer with the rows that follow them
        rows = []
        for window in x:
            start = int(torch.nonzero((self.data.scaled.unfold(0, 96, 1).transpose(1, 2) == window).all(-1).all(-1))[0])
            rows.append(self.data.scaled[start + 96:start + 96 + self.data.pred_len])
        return torch.stack(rows)


def test_leakage_probe_catches_a_model_that_reads_the_future(etth1_dir):
    data = load_series(etth1_dir, dataset="etth1", seq_len=96, pred_len=96)
    report = future_leakage_probe(_Cheater(data), data, window=10, batch_size=1)
    assert report.leaks and report.max_change > 0.1


@pytest.mark.parametrize("model_name", ["naive", "naive-mean", "dlinear"])
def test_batch_independent_models_do_not_leak(etth1_dir, model_name):
    from replibench.families.task import build_registered_model

    torch.manual_seed(0)
    data = load_series(etth1_dir, dataset="etth1", seq_len=96, pred_len=96)
    model = build_registered_model(model_name, {}, task="forecast", seq_len=96, pred_len=96, enc_in=7)
    assert not future_leakage_probe(model, data, window=10, batch_size=32).leaks


def test_timesnet_leaks_through_batch_averaged_periods_unless_batch_size_is_one(etth1_dir):
    """The reason the paper-era test loader used batch size 1: with a larger batch, the FFT periods
    of a window are chosen together with later windows whose inputs lie in its future."""
    from replibench.families.ett.models.timesnet import TimesNet, TimesNetConfig

    torch.manual_seed(0)
    data = load_series(etth1_dir, dataset="etth1", seq_len=96, pred_len=96)
    model = TimesNet(TimesNetConfig())
    assert not future_leakage_probe(model, data, window=0, batch_size=1).leaks
    assert future_leakage_probe(model, data, window=0, batch_size=32).leaks


@pytest.mark.parametrize("horizon, published_mse, published_mae", [(96, 1.295, 0.713), (336, 1.323, 0.744),
                                                                    (720, 1.339, 0.756)])
def test_repeat_baseline_reproduces_the_dlinear_paper_only_under_its_drop_last(etth1_dir, horizon, published_mse,
                                                                                published_mae):
    """The DLinear paper's "Repeat" rows (Table 2) were scored by a loader that dropped the last
    partial test batch of 32. Our stored forecasts give its numbers under that rule, and differ
    from them when every window counts (visible at horizons 336 and 720)."""
    from replibench.families.ett.models.naive import NaiveConfig, NaiveLast
    from replibench.families.ett.tasks.forecast import forecast_metrics

    data = load_series(etth1_dir, dataset="etth1", seq_len=96, pred_len=horizon)
    forecasts = FORECAST.forecast(NaiveLast(NaiveConfig(pred_len=horizon)), data, "test", 512)
    metrics = forecast_metrics(forecasts, FORECAST.targets(data, "test"))
    assert round(metrics["mse_droplast32"], 3) == published_mse
    assert round(metrics["mae_droplast32"], 3) == published_mae
    if horizon != 96:
        assert round(metrics["mse"], 3) != published_mse


def test_batch_independent_forecasts_do_not_depend_on_the_test_batch_size(tmp_path, shared_data):
    """Why the paper preset tests DLinear at batch 256 (TimesNet stays at 1): same forecasts."""
    from replibench.families.ett.datasets.ett import preprocess
    from replibench.families.ett.family import BATCH_INDEPENDENT_FORECASTERS

    out = tmp_path / "etth1"
    preprocess(shared_data / "ett" / "ETTh1.csv", out, dataset="etth1")
    assert "timesnet" not in BATCH_INDEPENDENT_FORECASTERS
    run = ETT_FAMILY.make_run("etth1", "forecast", "dlinear", {"horizon": 96}, 2021, "paper")
    settings = paper_settings(run)
    assert settings["task"]["eval_batch_size"] == 256 and settings["task"]["val_batch_size"] == 32
    data = FORECAST.load(out, run, settings)
    torch.manual_seed(0)
    model = FORECAST.build_model(data, run, settings)
    one = FORECAST.forecast(model, data, "test", 1)
    many = FORECAST.forecast(model, data, "test", 256)
    assert one.shape == many.shape == (2785, 96, 7)
    np.testing.assert_allclose(one, many, rtol=1e-5, atol=1e-6)
