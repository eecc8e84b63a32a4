"""Moirai-MoE zero-shot on ETT (issue 17): the PF protocol's items on the real ETTh1 file, the released
weight format (config.json + safetensors) and its checks, and a whole smoke evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from replibench.errors import DataError
from replibench.families.ett.family import FAMILY, smoke_settings
from replibench.families.ett.models.moirai_moe import (MoiraiMoE, MoiraiMoEConfig, hub_config, load_released_weights,
                                                       write_checkpoint)
from replibench.families.ett.tasks.zeroshot import ZEROSHOT, load_zero_shot, past_window
from replibench.runs import RunSpec


@pytest.fixture(scope="module")
def etth1_dir(shared_data, tmp_path_factory) -> Path:
    from replibench.families.ett.datasets.ett import preprocess

    out = tmp_path_factory.mktemp("etth1") / "etth1"
    preprocess(shared_data / "ett" / "ETTh1.csv", out, dataset="etth1")
    return out


def _run(preset: str = "smoke", model: str = "moirai-moe-small") -> RunSpec:
    return RunSpec(family="ett", dataset="etth1", task="zeroshot", model=model, variant="h24", seed=2021,
                   preset=preset, variant_values={"horizon": 24})


def test_items_follow_uni2ts_pf_dataset_order_and_borders(etth1_dir):
    data = load_zero_shot(etth1_dir, "etth1", prediction_length=24, windows=7)
    assert data.freq == "h" and data.item_count() == 49 and len(data.values) == 17420
    # generate_pf_dataset: for window in 6..0, for each column, the series up to len - 24 * window;
    # the test split (offset -24) forecasts its last 24 values: item 0 = column HUFL, earliest window
    assert data.item(0) == (0, 0, 17420 - 7 * 24)
    assert data.item(8) == (1, 1, 17420 - 6 * 24)
    assert data.item(48) == (6, 6, 17420 - 24)
    np.testing.assert_array_equal(data.target(48), data.values[-24:, 6])
    assert len(data.history(0)) == 17420 - 168
    with pytest.raises(DataError, match="rows, the protocol needs at least"):
        load_zero_shot(etth1_dir, "etth1", prediction_length=24, windows=1000)


def test_short_histories_are_left_padded_and_flagged():
    values, is_pad = past_window(np.array([1.0, 2.0, 3.0]), 5)
    np.testing.assert_array_equal(values, [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(is_pad, [True, True, False, False, False])
    values, is_pad = past_window(np.arange(10.0), 4)
    np.testing.assert_array_equal(values, [6, 7, 8, 9]) and not is_pad.any()


def _tiny(**overrides) -> MoiraiMoE:
    torch.manual_seed(0)
    return MoiraiMoE(MoiraiMoEConfig(d_model=64, d_ff=16, num_layers=1, context_length=32, prediction_length=16,
                                     num_samples=3, **overrides))


def test_checkpoint_round_trip_in_the_released_format(tmp_path):
    model = _tiny()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()
        model.encoder.centroid.normal_()
    write_checkpoint(model, tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written == hub_config(model.config) and written["patch_sizes"] == [16]
    other = _tiny()
    load_released_weights(other, tmp_path / "config.json", tmp_path / "model.safetensors")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, other.state_dict()[name]), name


def test_a_config_of_another_architecture_is_refused(tmp_path):
    model = _tiny()
    write_checkpoint(model, tmp_path)
    bigger = MoiraiMoE(MoiraiMoEConfig(d_model=128, d_ff=16, num_layers=1))
    with pytest.raises(DataError, match=r"config.json: d_model = 64, but the run's model has 128"):
        load_released_weights(bigger, tmp_path / "config.json", tmp_path / "model.safetensors")
    config = json.loads((tmp_path / "config.json").read_text())
    config["distr_output"]["components"] = config["distr_output"]["components"][:2]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="is not the released 4-component mixture"):
        load_released_weights(model, tmp_path / "config.json", tmp_path / "model.safetensors")


def test_weights_must_be_safetensors_never_a_pickle(tmp_path):
    model = _tiny()
    write_checkpoint(model, tmp_path)
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"x": Payload()}, tmp_path / "model.pt")  # a pickle that would run code if loaded
    with pytest.raises(Exception) as error:
        load_released_weights(model, tmp_path / "config.json", tmp_path / "model.pt")
    assert not marker.exists(), f"the pickle was executed ({error.value})"


def test_a_missing_tensor_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    model = _tiny()
    write_checkpoint(model, tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["encoder.centroid"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(DataError, match=r"missing tensors \['encoder.centroid'\]"):
        load_released_weights(model, tmp_path / "config.json", tmp_path / "model.safetensors")


def test_paper_settings_point_at_the_downloaded_released_files():
    run = _run("paper", "moirai-moe-base")
    settings = FAMILY.run_settings({}, run)
    assert settings["task"]["weights"] == {
        "source": "released", "size": "base", "config": "data/raw/ett/moirai-moe-1.0-R-base.config.json",
        "weights": "data/raw/ett/moirai-moe-1.0-R-base.model.safetensors"}
    assert FAMILY.training_files(run, settings) == {"released_config": settings["task"]["weights"]["config"],
                                                     "released_weights": settings["task"]["weights"]["weights"]}
    assert settings["task"]["prediction_length"] == 24 and settings["task"]["num_samples"] == 100
    assert FAMILY.training_files(_run(), smoke_settings(_run())) == {}  # smoke: the tiny checkpoint


def test_smoke_evaluation_end_to_end_is_seeded(etth1_dir):
    run = _run()
    settings = smoke_settings(run)
    data = ZEROSHOT.load(etth1_dir, run, settings)
    model = ZEROSHOT.build_model(data, run, settings)
    assert not any(p.requires_grad for p in model.parameters())
    table = ZEROSHOT.predict(model, data, run, settings)
    assert table.num_rows == 49 and table.column("channel").to_pylist()[:2] == ["HUFL", "HULL"]
    assert len(table.column("samples")[0]) == settings["task"]["num_samples"] * 24
    again = ZEROSHOT.predict(ZEROSHOT.build_model(data, run, settings), data, run, settings)
    assert again.equals(table)  # same seed, same weights, same draws
    metrics = ZEROSHOT.score(table, data, settings)
    assert set(metrics) == {"crps", "mase"} and all(np.isfinite(v) and v > 0 for v in metrics.values())
    protocol = ZEROSHOT.protocol(data, settings)
    assert "tiny random checkpoint" in protocol["weights"] and protocol["test_items"] == 49
    with pytest.raises(DataError, match=r"row 0 is \(window, channel\) \(0, 'HULL'\), expected \(0, 'HUFL'\)"):
        import pyarrow as pa

        swapped = table.set_column(1, "channel", pa.array(["HULL", "HUFL"] + table.column("channel").to_pylist()[2:]))
        ZEROSHOT.score(swapped, data, settings)


def _lsf_run(preset: str = "smoke") -> RunSpec:
    return RunSpec(family="ett", dataset="etth1", task="zeroshot-lsf", model="moirai-moe-small", variant="h96",
                   seed=2021, preset=preset, variant_values={"horizon": 96})


def test_lsf_data_is_scaled_and_cut_as_uni2ts_lsf_dataset(etth1_dir):
    import pandas as pd

    from replibench.families.ett.tasks.zeroshot import load_lsf

    data = load_lsf(etth1_dir, "etth1", prediction_length=96, max_windows=None)
    frame = pd.read_parquet(etth1_dir / "series.parquet")[list(data.channels)]
    train = frame.iloc[:8640]
    expected = ((frame - train.mean()) / train.std()).to_numpy()[:14400]  # pandas std: ddof 1
    np.testing.assert_allclose(data.scaled, expected, rtol=1e-12, atol=1e-12)
    assert (data.mode, data.test_start, data.window_count()) == ("M", 11520, 2880 - 96 + 1)
    assert data.items()[:2] == [(0, None), (1, None)]
    np.testing.assert_allclose(data.target(2784), expected[14304:14400], rtol=1e-12, atol=1e-12)
    data.mode = "S"  # ETTm1's mode: per column, every window of the column before the next column
    assert data.items()[2784:2786] == [(2784, 0), (0, 1)]


@pytest.mark.parametrize("task_name", ["zeroshot", "zeroshot-lsf"])
def test_prediction_shards_draw_exactly_what_one_job_draws(etth1_dir, task_name):
    from replibench.registry import resolve

    task = resolve("task", task_name)
    run = _run() if task_name == "zeroshot" else _lsf_run()
    settings = smoke_settings(run)
    settings["task"]["batch_size"] = 4
    data = task.load(etth1_dir, run, settings)
    model = task.build_model(data, run, settings)
    units = task.prediction_units(data, settings)
    whole = task.predict(model, data, run, settings)
    parts = [task.predict_units(model, data, run, settings, range(a, b)) for a, b in ((0, 1), (1, units))]
    assert task.merge_predictions(parts, data, settings).equals(whole)


def test_lsf_smoke_scores_mse_of_the_mean_and_mae_of_the_median(etth1_dir):
    from replibench.families.ett.tasks.zeroshot import ZEROSHOT_LSF

    run = _lsf_run()
    settings = smoke_settings(run)
    assert settings["task"]["max_windows"] == 8 and settings["task"]["context_length"] == 128
    data = ZEROSHOT_LSF.load(etth1_dir, run, settings)
    table = ZEROSHOT_LSF.predict(ZEROSHOT_LSF.build_model(data, run, settings), data, run, settings)
    assert table.num_rows == 8 * 7 and set(table.column_names) == {"window", "channel", "mean", "median"}
    metrics = ZEROSHOT_LSF.score(table, data, settings)
    truth = np.stack([data.target(w)[:, data.channels.index(c)] for w, c in
                      zip(table.column("window").to_pylist(), table.column("channel").to_pylist())])
    mean = np.array(table.column("mean").to_pylist())
    assert metrics["mse"] == pytest.approx(float(np.mean((truth - mean) ** 2)), rel=1e-12)
    import pyarrow as pa

    duplicated = pa.concat_tables([table.slice(0, 55), table.slice(0, 1)])  # last row replaced by the first
    with pytest.raises(DataError, match="not each test window × channel once"):
        ZEROSHOT_LSF.score(duplicated, data, settings)
