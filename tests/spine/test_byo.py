"""`replibench metrics ett forecast` scores an external file exactly as our own evaluation does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from replibench.families.ett.byo import score_forecast_file
from replibench.errors import DataError
from replibench.families.ett.models.naive import NaiveConfig, NaiveLast
from replibench.families.ett.family import FAMILY as ETT_FAMILY
from replibench.families.ett.tasks.forecast import FORECAST
from replibench.families.ett.tasks.timeseries import load_series


@pytest.fixture
def data_root(etth1_dir, tmp_path):
    root = tmp_path / "parquet"
    shutil.copytree(etth1_dir, root / "ett" / "etth1")
    return root


def test_external_forecasts_score_like_our_evaluation(data_root, tmp_path):
    settings = {"task": {"seq_len": 96, "pred_len": 192, "eval_batch_size": 64}}
    data = load_series(data_root / "ett" / "etth1", dataset="etth1", seq_len=96, pred_len=192)
    run = ETT_FAMILY.make_run("etth1", "forecast", "naive", {"horizon": 192}, 0)
    table = FORECAST.predict(NaiveLast(NaiveConfig(pred_len=192)), data, run, settings)
    pq.write_table(table, tmp_path / "pred.parquet")
    ours = FORECAST.score(pq.read_table(tmp_path / "pred.parquet"), data, settings)
    record = score_forecast_file(dataset="ETTh1", horizon=192, pred=tmp_path / "pred.parquet",
                                 out=tmp_path / "metrics.json", data_root=data_root)
    assert record["metrics"] == ours
    assert json.loads((tmp_path / "metrics.json").read_text())["protocol"]["test_windows"] == 2689


def test_cli_reports_bad_files_without_a_traceback(data_root, tmp_path):
    data = load_series(data_root / "ett" / "etth1", dataset="etth1", seq_len=96, pred_len=96)
    table = FORECAST.predict(NaiveLast(NaiveConfig()), data, ETT_FAMILY.make_run("etth1", "forecast", "naive", {"horizon": 96}, 0),
                             {"task": {"eval_batch_size": 512, "val_batch_size": 512}})
    pq.write_table(table.slice(0, 100), tmp_path / "short.parquet")
    result = subprocess.run([sys.executable, "-m", "replibench.cli", "metrics", "ett", "forecast", "--dataset", "ETTh1",
                             "--horizon", "96", "--pred", str(tmp_path / "short.parquet"), "--out",
                             str(tmp_path / "m.json"), "--data-root", str(data_root)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "100 rows, expected one per test window (2785)" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(DataError, match="not found"):
        score_forecast_file(dataset="ETTh1", horizon=96, pred=tmp_path / "missing.parquet", out=tmp_path / "m.json",
                            data_root=data_root)
    with pytest.raises(DataError, match="run `snakemake"):
        score_forecast_file(dataset="ETTm1", horizon=96, pred=tmp_path / "short.parquet", out=tmp_path / "m.json",
                            data_root=data_root)
