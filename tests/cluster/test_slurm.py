"""The ETT smoke pipeline through the real SLURM profile on a real (single-node) SLURM cluster.

Jobs go through sbatch (SLURM job ids in the Snakemake log, the SLURM logs and every result's
provenance); one training job is preempted mid-run the way SLURM warns before a time limit
(SIGTERM to every process of the job step, as `--signal=TERM@300` in profiles/slurm does), exits
75 with its checkpoint written, is resubmitted by Snakemake's retry and resumes; and every number
equals a local run's bit for bit. CI starts the cluster (.ci/slurm-up.sh); elsewhere these tests
skip unless `sinfo` answers.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from .conftest import ROOT, job_counts, make_workdir, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

DLINEAR = "ett/etth1/forecast/dlinear/h96/seed2021"
NAIVE = "ett/etth1/forecast/naive/h96/seed2021"
CONFIG = {
    "preset": "smoke", "families": ["ett"], "data": {"mirror": None, "workers": 1},
    # sized for the CI node (2 CPUs, 2 fake GPUs): one CPU per job, so local and SLURM runs both
    # compute with one thread and must agree bit for bit
    "resources": {"train": {"gpus": 1, "cpus": 1, "mem_mb": 1000, "runtime_min": 10},
                  "evaluate": {"gpus": 1, "cpus": 1, "mem_mb": 1000, "runtime_min": 10},
                  "preprocess": {"cpus": 1, "mem_mb": 1000, "runtime_min": 10}},
    "ett": {"seeds": [2021],
            "runs": [{"task": "forecast", "models": ["naive", "dlinear"], "datasets": ["etth1"], "horizons": [96]}],
            # no early stop, a checkpoint every 50 steps: the DLinear job runs long enough to be preempted
            "overrides": {"dlinear": {"train": {"epochs": 3, "patience": None, "checkpoint_every": 50}}}},
}
#: the CI cluster answers fast: poll every second instead of the profile's 20 s
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
                "--latency-wait", "5", "--slurm-keep-successful-logs")


def read_attempts(last: Path) -> tuple[list[dict], int] | None:
    """(attempts, global step) of a checkpoint, or None while it is missing or being replaced."""
    try:
        state = torch.load(last, weights_only=True)["state"]
    except Exception:  # noqa: BLE001 — not written yet, or renamed over while we read it
        return None
    return state["attempts"], state["global_step"]


def preempt_training_twice(workdir: Path, found: dict, stop: threading.Event) -> None:
    """Stop DLinear's training twice, the two ways SLURM stops a job.

    1. At its first checkpoint: SIGTERM to the processes of the job step, what `--signal=TERM@300`
       sends before the time limit. The trainer exits 75; the Snakemake inside the job retries it
       in the same allocation (a new srun step), which resumes from last.pt.
    2. At the resumed attempt's first checkpoint: `scancel` — the allocation is taken away
       (preemption, cancellation). The submitting Snakemake sees the job fail and resubmits it
       with sbatch; the new job resumes.
    """
    last = workdir / "checkpoints" / DLINEAR / "last.pt"
    while not stop.is_set():
        seen = read_attempts(last) if last.exists() else None
        if seen is not None:
            attempts, step = seen
            if len(attempts) == 1 and "warned" not in found:
                found["job"] = attempts[0]["slurm_job_id"]
                found["warned"] = subprocess.run(["scancel", "--signal=TERM", found["job"]], capture_output=True,
                                                 text=True, timeout=30)
            elif len(attempts) == 2 and step > attempts[1]["start_step"] and "cancelled" not in found:
                found["cancelled"] = subprocess.run(["scancel", found["job"]], capture_output=True, text=True,
                                                    timeout=30)
                return
        time.sleep(0.05)


def test_smoke_pipeline_on_slurm_resumes_a_preempted_job_and_equals_the_local_run(slurm_cluster, mirror, tmp_path):
    mirror_config = f"data={{mirror: {mirror.url}}}"
    local = make_workdir(tmp_path / "local", CONFIG)
    local_run = snakemake(local, "--config", mirror_config)
    assert local_run.returncode == 0, local_run.stderr[-5000:]

    cluster = make_workdir(tmp_path / "slurm", CONFIG)
    found: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=preempt_training_twice, args=(cluster, found, stop), daemon=True)
    watcher.start()
    try:
        slurm_run = snakemake(cluster, "--workflow-profile", str(ROOT / "profiles" / "slurm"), *FAST_POLLING,
                              "--config", mirror_config, timeout=900)
    finally:
        stop.set()
        watcher.join(timeout=10)
    log = slurm_run.stdout + slurm_run.stderr
    assert slurm_run.returncode == 0, log[-6000:]

    # every non-local job went through sbatch: preprocess, 2 × train (+ the resubmitted one), 2 × evaluate
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) == 6 and len(set(submitted)) == 6, submitted
    assert job_counts(log) == {"download": 1, "preprocess": 1, "train": 2, "evaluate": 2, "report": 1,
                               "summary": 1, "all": 1, "total": 9}
    kept_logs = {path.stem for path in (cluster / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert set(submitted) <= kept_logs

    # the preempted training: three attempts, each resuming where the last one stopped
    assert found["warned"].returncode == 0 and found["cancelled"].returncode == 0, found
    assert "Trying to restart job" in log  # the submitting Snakemake's retry after the cancellation
    summary = json.loads((cluster / "checkpoints" / DLINEAR / "train.json").read_text())
    jobs = [attempt["slurm_job_id"] for attempt in summary["attempts"]]
    assert jobs[0] == jobs[1] == found["job"] and jobs[2] in submitted and jobs[2] != jobs[0], summary["attempts"]
    starts = [attempt["start_step"] for attempt in summary["attempts"]]
    assert starts[0] == 0 < starts[1] < starts[2] < summary["steps"], starts
    job_log = (cluster / ".snakemake" / "slurm_logs" / "rule_train" / "ett_etth1_forecast_dlinear_h96_2021"
               / f"{found['job']}.log").read_text()
    assert "Trying to restart job" in job_log  # the retry inside the allocation after the warning signal
    assert "resumed from" in (cluster / "logs" / "train" / f"{DLINEAR}.log").read_text()

    for run in (NAIVE, DLINEAR):
        on_slurm = json.loads((cluster / "results" / run / "metrics.json").read_text())
        on_local = json.loads((local / "results" / run / "metrics.json").read_text())
        assert on_slurm["provenance"]["slurm_job_id"] in submitted  # evaluated inside a SLURM job
        assert on_local["provenance"]["slurm_job_id"] is None
        assert on_slurm["metrics"] == on_local["metrics"]  # bit-identical floats
        assert on_slurm["training"]["curve"] == on_local["training"]["curve"]
        assert pq.read_table(cluster / "results" / run / "predictions.parquet").equals(
            pq.read_table(local / "results" / run / "predictions.parquet"))
    assert (cluster / "summary" / "metrics.json").read_bytes() == (local / "summary" / "metrics.json").read_bytes()


def test_cluster_run_started_with_profile_instead_of_workflow_profile_is_refused(slurm_cluster, tmp_path):
    """`--profile profiles/slurm` would also apply profiles/default's one-thread-per-job setting."""
    workdir = make_workdir(tmp_path / "work", CONFIG)
    result = snakemake(workdir, "--profile", str(ROOT / "profiles" / "slurm"), *FAST_POLLING, timeout=120)
    assert result.returncode != 0
    assert "--workflow-profile profiles/slurm" in result.stdout + result.stderr
    assert "has been submitted" not in result.stdout + result.stderr
