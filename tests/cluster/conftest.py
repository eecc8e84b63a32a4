"""Fixtures and helpers of the cluster/versioning tests: workdirs, Snakemake runs, the cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def tool_env() -> dict[str, str]:
    """Environment for snakemake/dvc subprocesses: this venv first, no analytics, unbuffered."""
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}


def make_workdir(path: Path, config: dict) -> Path:
    path.mkdir(parents=True)
    shutil.copytree(ROOT / "references", path / "references")
    shutil.copy(ROOT / "requirements.lock", path / "requirements.lock")
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    return path


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Snakemake under `timeout -k` (a stuck SLURM status loop never returns on its own)."""
    command = ["timeout", "-k", "10", str(timeout), sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
               "-d", str(workdir), *args]
    return subprocess.run(command, capture_output=True, text=True, env=tool_env(), timeout=timeout + 30)


def job_counts(output: str) -> dict[str, int]:
    """Job counts from the first 'Job stats' table Snakemake printed."""
    counts: dict[str, int] = {}
    if "Job stats:" not in output:
        return counts
    for line in output.split("Job stats:")[1].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def slurm_cluster_state() -> str | None:
    """The node state sinfo reports, or None when no SLURM cluster answers."""
    try:
        result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    states = result.stdout.split()
    return states[0] if result.returncode == 0 and states else None


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """A SLURM cluster that accepts jobs; skips without one, fails in CI (REPLIBENCH_REQUIRE_SLURM=1)."""
    state = slurm_cluster_state()
    if state is None or not state.startswith(("idle", "mix", "alloc")):
        reason = (f"no usable SLURM cluster (sinfo: {state or 'not answering'}); "
                  "start one as root with `bash .ci/slurm-up.sh` (.ci/run does)")
        if os.environ.get("REPLIBENCH_REQUIRE_SLURM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return state


@pytest.fixture(scope="session")
def etth1_parquet(shared_data, tmp_path_factory) -> Path:
    """ETTh1 preprocessed once for these tests from the real CSV in ../shared/data."""
    from replibench.families.ett.datasets.ett import preprocess

    out = tmp_path_factory.mktemp("etth1") / "etth1"
    preprocess(shared_data / "ett" / "ETTh1.csv", out, dataset="etth1")
    return out
