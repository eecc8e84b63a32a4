"""The documented DVC round trip, in a throw-away git repository holding this project:

run (`dvc repro`), commit, `dvc push` to a local-directory remote; change a setting, run again
(only that model retrains), commit, push; then a fresh clone of the *older* commit, `dvc pull`,
and the pipeline recomputes that commit's metrics from the pulled data and checkpoints — bit for
bit, without a single download, preprocessing or training job.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, job_counts, tool_env

pytestmark = pytest.mark.workflow

PROJECT = ("Snakefile", "rules", "src", "references", "recorded", "profiles", "envs", "requirements.lock",
           "dvc.yaml", ".dvcignore", ".gitignore")
DLINEAR = "ett/etth1/forecast/dlinear/h96/seed2021"


def config(mirror: str, lr: float | None) -> dict:
    train = {"epochs": 2} if lr is None else {"epochs": 2, "lr": lr}
    return {"preset": "smoke", "families": ["ett"], "data": {"mirror": mirror, "workers": 1},
            "ett": {"seeds": [2021],
                    "runs": [{"task": "forecast", "models": ["naive", "dlinear"], "datasets": ["etth1"],
                              "horizons": [96]}],
                    "overrides": {"dlinear": {"train": train}}}}


def run(*command: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(["timeout", "-k", "10", str(timeout), *command], cwd=cwd, env=tool_env(),
                            capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def git(*args: str, cwd: Path) -> str:
    return run("git", "-c", "user.name=replibench-test", "-c", "user.email=test@replibench.invalid", *args,
               cwd=cwd).stdout.strip()


def copy_project(repo: Path) -> None:
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in PROJECT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(source, repo / name)
    (repo / ".dvc").mkdir()
    for name in ("config", ".gitignore"):  # not .dvc/cache, .dvc/tmp
        shutil.copy2(ROOT / ".dvc" / name, repo / ".dvc" / name)


def test_push_then_a_fresh_clone_of_an_older_commit_pulls_and_reproduces_its_metrics(mirror, tmp_path):
    repo, remote = tmp_path / "repo", tmp_path / "remote"
    copy_project(repo)
    (repo / "config.yaml").write_text(yaml.safe_dump(config(mirror.url, lr=None)))
    git("init", "-q", cwd=repo)
    run("dvc", "remote", "add", "-d", "store", str(remote), cwd=repo)
    assert run("dvc", "config", "core.analytics", cwd=repo).stdout.strip() == "false"

    first = run("dvc", "repro", cwd=repo)
    assert job_counts(first.stdout + first.stderr)["train"] == 2
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "A: DLinear with the preset's learning rate", cwd=repo)
    commit_a = git("rev-parse", "HEAD", cwd=repo)
    run("dvc", "push", cwd=repo)
    metrics_a = (repo / "summary" / "metrics.json").read_bytes()
    assert (repo / "summary" / "curves" / "ett__etth1__forecast__dlinear__h96__seed2021.csv").exists()

    (repo / "config.yaml").write_text(yaml.safe_dump(config(mirror.url, lr=0.001)))
    second = run("dvc", "repro", cwd=repo)
    counts = job_counts(second.stdout + second.stderr)
    assert counts["train"] == 1 and "download" not in counts and "preprocess" not in counts  # only DLinear
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "B: DLinear with lr 0.001", cwd=repo)
    run("dvc", "push", cwd=repo)
    diff = json.loads(run("dvc", "metrics", "diff", commit_a, "--json", cwd=repo).stdout)
    changed = diff["summary/metrics.json"]
    assert changed and all(".dlinear." in key for key in changed), changed  # naive's numbers did not move

    clone = tmp_path / "clone"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    git("checkout", "-q", commit_a, cwd=clone)
    run("dvc", "pull", cwd=clone)
    assert "up to date" in run("dvc", "status", cwd=clone).stdout
    assert (clone / "checkpoints" / DLINEAR / "model.pt").exists()
    assert (clone / "summary" / "metrics.json").read_bytes() == metrics_a

    # recompute every result from the pulled data and checkpoints; nothing is fetched or retrained
    shutil.rmtree(clone / "results", ignore_errors=True)
    (clone / "summary" / "metrics.json").unlink()
    third = run("dvc", "repro", cwd=clone)
    counts = job_counts(third.stdout + third.stderr)
    assert counts.get("evaluate") == 2 and not {"download", "preprocess", "train"} & set(counts), counts
    assert (clone / "summary" / "metrics.json").read_bytes() == metrics_a
    assert json.loads((clone / "results" / DLINEAR / "metrics.json").read_text())["settings"]["train"]["lr"] == 1e-4

    plots = run("dvc", "plots", "show", "--json", cwd=clone).stdout
    assert "summary/curves/ett__etth1__forecast__dlinear__h96__seed2021.csv" in plots
