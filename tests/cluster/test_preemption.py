"""A real `replibench train` process (DLinear on ETTh1, CPU) stopped by SIGTERM and then SIGUSR1
mid-run — what SLURM sends before a time limit or a preemption — and restarted: it exits with 75
after writing last.pt each time, resumes, and ends with the weights, curve and test metrics of an
uninterrupted run, bit for bit. Also checks the provenance that lets a result be rebuilt."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from replibench.config import plan_runs, validate_config
from replibench.data.checksum import sha256_file
from replibench.stages import evaluate_stage
from replibench.train import PREEMPTED_EXIT_CODE

from .conftest import ROOT

CONFIG = {
    "preset": "smoke", "families": ["ett"], "data": {"mirror": None, "workers": 1},
    "ett": {"seeds": [2021],
            "runs": [{"task": "forecast", "models": ["dlinear"], "datasets": ["etth1"], "horizons": [96]}],
            # 3 epochs × 264 steps, a checkpoint every 50 steps: long enough to be stopped twice mid-run
            "overrides": {"dlinear": {"train": {"epochs": 3, "patience": None, "checkpoint_every": 50}}}},
}


@pytest.fixture(scope="module")
def settings_json() -> str:
    (planned,) = plan_runs(validate_config(CONFIG, "test config"))
    return planned.settings_json


def start_training(settings_json: str, data: Path, out: Path) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "replibench.cli", "train", "--settings", settings_json,
                             "--data", str(data), "--model-out", str(out / "model.pt"),
                             "--summary-out", str(out / "train.json"), "--checkpoint", str(out / "last.pt"),
                             "--threads", "1", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_after_next_checkpoint(process: subprocess.Popen, last: Path, signal_number: int) -> int:
    """Wait until ``last`` is (re)written by this process, send ``signal_number``, return the exit status."""
    before = last.stat().st_mtime_ns if last.exists() else None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if last.exists() and last.stat().st_mtime_ns != before:
            process.send_signal(signal_number)
            break
        time.sleep(0.02)
    process.wait(timeout=120)
    return process.returncode


def global_step(last: Path) -> int:
    return torch.load(last, weights_only=True)["state"]["global_step"]


@pytest.mark.workflow
def test_stopped_twice_then_resumed_equals_an_uninterrupted_run(settings_json, etth1_parquet, tmp_path):
    reference = start_training(settings_json, etth1_parquet, tmp_path / "reference")
    output, _ = reference.communicate(timeout=300)
    assert reference.returncode == 0, output[-3000:]

    run = tmp_path / "preempted"
    last = run / "last.pt"
    first = start_training(settings_json, etth1_parquet, run)
    assert stop_after_next_checkpoint(first, last, signal.SIGTERM) == PREEMPTED_EXIT_CODE, first.stdout.read()[-3000:]
    assert not (run / "model.pt").exists()
    stopped_at = [global_step(last)]
    second = start_training(settings_json, etth1_parquet, run)
    assert stop_after_next_checkpoint(second, last, signal.SIGUSR1) == PREEMPTED_EXIT_CODE
    assert "resumed from" in second.stdout.read()
    stopped_at.append(global_step(last))
    third = start_training(settings_json, etth1_parquet, run)
    output, _ = third.communicate(timeout=300)
    assert third.returncode == 0, output[-3000:]
    total = 3 * ((8640 - 96 - 96 + 1) // 32)
    assert 0 < stopped_at[0] < stopped_at[1] < total, stopped_at

    reference_weights = torch.load(tmp_path / "reference" / "model.pt", weights_only=True)["state_dict"]
    resumed_weights = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    for key, value in reference_weights.items():
        assert torch.equal(resumed_weights[key], value), key
    reference_summary = json.loads((tmp_path / "reference" / "train.json").read_text())
    summary = json.loads((run / "train.json").read_text())
    assert summary["history"] == reference_summary["history"]  # every step loss, the stopped epochs' too
    assert summary["steps"] == reference_summary["steps"] == total
    assert [attempt["start_step"] for attempt in summary["attempts"]] == [0, *stopped_at]

    records = {}
    for name in ("reference", "preempted"):
        records[name] = evaluate_stage(
            settings_json=settings_json, data_dir=etth1_parquet, model_path=tmp_path / name / "model.pt",
            train_summary=tmp_path / name / "train.json", out_metrics=tmp_path / name / "metrics.json",
            out_predictions=tmp_path / name / "predictions.parquet", lock_file=ROOT / "requirements.lock")
    assert records["preempted"]["metrics"] == records["reference"]["metrics"]  # bit-identical floats
    assert pq.read_table(tmp_path / "preempted" / "predictions.parquet").equals(
        pq.read_table(tmp_path / "reference" / "predictions.parquet"))
    assert records["preempted"]["training"]["curve"] == records["reference"]["training"]["curve"]

    # what rebuilds the environment and identifies the inputs, recorded with every result
    provenance = records["preempted"]["provenance"]
    assert provenance["lock_sha256"] == sha256_file(ROOT / "requirements.lock")
    assert provenance["packages"]["torch"].startswith("2.13.0")
    assert provenance["data_sha256"]["ETTh1.csv"] == records["reference"]["provenance"]["data_sha256"]["ETTh1.csv"]
    assert provenance["config_sha256"] == records["reference"]["provenance"]["config_sha256"]
    assert provenance["commit"] is None or len(provenance["commit"]) == 40
    assert records["preempted"]["protocol"]["world_size"] == 1
    assert len(records["preempted"]["training"]["attempts"]) == 3
