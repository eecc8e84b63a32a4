"""Data-parallel training on CPU (gloo, 2 processes under torchrun) against one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from replibench.config import plan_runs, validate_config
from replibench.train import PREEMPTED_EXIT_CODE, train

from .ddp_toy import RUN, SETTINGS, ToyTask

HERE = Path(__file__).resolve().parent


def torchrun(out: Path, *args: str, processes: int = 2) -> subprocess.CompletedProcess:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={processes}", str(HERE / "ddp_toy.py"), str(out), *args],
                          capture_output=True, text=True, timeout=240, env=env)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    task = ToyTask()
    model, summary = train(task, task.load(None, RUN, SETTINGS), RUN, SETTINGS,
                           last_checkpoint=tmp_path_factory.mktemp("one") / "last.pt", progress=False)
    return model.state_dict(), summary


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("two")
    result = torchrun(out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return torch.load(out / "weights.pt", weights_only=True), json.loads((out / "summary.json").read_text()), out


def test_two_processes_follow_the_one_process_loss_curve(one_process, two_processes):
    weights_1, summary_1 = one_process
    weights_2, summary_2, _ = two_processes
    assert summary_1["world_size"] == 1 and summary_2["world_size"] == 2
    assert summary_2["steps"] == summary_1["steps"] == 3 * 13  # ceil(193 / 16) global batches per epoch
    losses_1 = [loss for epoch in summary_1["history"] for loss in epoch["step_losses"]]
    losses_2 = [loss for epoch in summary_2["history"] for loss in epoch["step_losses"]]
    assert len(losses_2) == len(losses_1) == 39
    assert losses_2 == pytest.approx(losses_1, rel=1e-5, abs=1e-7)
    assert [e["val_loss"] for e in summary_2["history"]] == pytest.approx(
        [e["val_loss"] for e in summary_1["history"]], rel=1e-5)
    for key, value in weights_1.items():
        torch.testing.assert_close(weights_2[key], value, rtol=1e-5, atol=1e-6)


@pytest.mark.workflow  # two more torchrun launches: ~30 s on a loaded 2-core machine
def test_micro_batches_are_parts_of_the_global_batch_over_all_ranks(one_process, tmp_path):
    """A paper's global batch over k GPUs, run on w < k: each rank accumulates ceil(k / w) parts and
    the steps are those of one process holding the whole batch (OC20: 32 GPUs' config on 8)."""
    weights_1, summary_1 = one_process
    result = torchrun(tmp_path, "--micro-batches", "4")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary_4 = json.loads((tmp_path / "summary.json").read_text())
    assert summary_4["world_size"] == 2 and summary_4["steps"] == 39
    # 12 full global batches of 16 → 8 per rank → 2 parts each; the last batch (1 example) → 1 part
    # on rank 0 (rank 1's shard of it is empty)
    assert summary_4["loss_calls_rank0"] == 3 * (12 * 2 + 1)
    losses_1 = [loss for epoch in summary_1["history"] for loss in epoch["step_losses"]]
    losses_4 = [loss for epoch in summary_4["history"] for loss in epoch["step_losses"]]
    assert losses_4 == pytest.approx(losses_1, rel=1e-5, abs=1e-7)
    weights_4 = torch.load(tmp_path / "weights.pt", weights_only=True)
    for key, value in weights_1.items():
        torch.testing.assert_close(weights_4[key], value, rtol=1e-5, atol=1e-6)


def test_a_signal_on_one_rank_stops_all_and_the_rerun_resumes_to_the_same_weights(two_processes, tmp_path):
    weights_uninterrupted, summary_uninterrupted, _ = two_processes
    stopped = torchrun(tmp_path, "--signal-at-step", "17", "--signal-rank", "1")
    assert stopped.returncode != 0
    assert f"exitcode  : {PREEMPTED_EXIT_CODE}" in stopped.stderr or f"exitcode: {PREEMPTED_EXIT_CODE}" in stopped.stderr, \
        stopped.stderr[-3000:]
    assert (tmp_path / "last.pt").exists() and not (tmp_path / "summary.json").exists()
    checkpoint = torch.load(tmp_path / "last.pt", weights_only=True)
    # rank 1's 17th loss is at global step 17 (0-based: its shard of step 12, the epoch's last
    # one-example batch, is empty); both ranks stop before the next step, 18
    assert checkpoint["state"]["global_step"] == 18

    resumed = torchrun(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [a["start_step"] for a in summary["attempts"]] == [0, 18]
    assert [a["world_size"] for a in summary["attempts"]] == [2, 2]
    weights = torch.load(tmp_path / "weights.pt", weights_only=True)
    for key, value in weights_uninterrupted.items():
        assert torch.equal(weights[key], value), key
    assert summary["history"] == summary_uninterrupted["history"]


@pytest.mark.workflow  # two CLI runs on ETTh1, one under torchrun
def test_replibench_train_with_two_processes_relaunches_under_torchrun_and_matches_one(etth1_parquet, tmp_path):
    """What the train rule runs when a run asks for 2 GPUs: `replibench train --processes 2`."""
    config = {"preset": "smoke", "families": ["ett"], "data": {"mirror": None, "workers": 1},
              "ett": {"seeds": [2021],
                      "runs": [{"task": "forecast", "models": ["dlinear"], "datasets": ["etth1"], "horizons": [96]}],
                      "overrides": {"dlinear": {"train": {"epochs": 1, "max_steps": 40}}}}}
    (planned,) = plan_runs(validate_config(config, "test config"))
    summaries, weights = {}, {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        result = subprocess.run([sys.executable, "-m", "replibench.cli", "train", "--settings", planned.settings_json,
                                 "--data", str(etth1_parquet), "--model-out", str(out / "model.pt"),
                                 "--summary-out", str(out / "train.json"), "--checkpoint", str(out / "last.pt"),
                                 "--threads", "2",
                                 "--processes", str(processes), "--no-progress"],
                                capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        summaries[processes] = json.loads((out / "train.json").read_text())
        weights[processes] = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert summaries[1]["world_size"] == 1 and summaries[2]["world_size"] == 2
    assert summaries[2]["steps"] == summaries[1]["steps"] == 40
    assert summaries[2]["history"][0]["step_losses"] == pytest.approx(summaries[1]["history"][0]["step_losses"],
                                                                       rel=1e-5)
    for key, value in weights[1].items():
        torch.testing.assert_close(weights[2][key], value, rtol=1e-4, atol=1e-6)
