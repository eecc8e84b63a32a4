"""The Snakemake workflow end to end on ETTh1, downloading through a local HTTP mirror."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

CONFIG = {
    "preset": "smoke",
    "families": ["ett"],
    "data": {"mirror": None, "workers": 1},
    "ett": {
        "seeds": [2021],
        "runs": [
            {"task": "forecast", "models": ["naive", "dlinear"], "datasets": ["etth1"], "horizons": [96, 192]},
            {"task": "forecast", "models": ["timesnet"], "datasets": ["etth1"], "horizons": [96]},
            {"task": "impute", "models": ["naive"], "datasets": ["etth1"], "mask_ratios": [0.25]},
        ],
        "overrides": {"timesnet": {"train": {"max_steps": 2}, "task": {"eval_batch_size": 32}}},
    },
}


def snakemake(workdir: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def make_workdir(tmp_path: Path, config: dict) -> Path:
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.copytree(ROOT / "references", workdir / "references")
    shutil.copy(ROOT / "requirements.lock", workdir / "requirements.lock")
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


def planned_jobs(output: str) -> dict[str, int]:
    """Job counts from the 'Job stats' table of a dry run."""
    counts = {}
    for line in output.split("Job stats:")[1].splitlines()[3:]:
        match = re.match(r"(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    return counts


@pytest.mark.workflow
def test_dry_run_plans_the_paper_preset_without_importing_torch(tmp_path):
    workdir = make_workdir(tmp_path, yaml.safe_load((ROOT / "config.yaml").read_text()))
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    result = subprocess.run([*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "-n",
                             "--config", "preset=paper"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"torch", "pymatgen", "ase", "e3nn", "torch_geometric", "lmdb"}
    jobs = planned_jobs(result.stdout)
    from replibench.config import load_config, plan_runs, validate_config

    paper = {**load_config(ROOT / "config.yaml"), "preset": "paper"}
    runs = [p.run for p in plan_runs(validate_config(paper))]
    # forecast: DLinear 3 seeds, naive 1, TimesNet 1 (4 datasets x 4 horizons); impute: 3 models x 4 x 4,
    # plus seeds 2022/2023 of the pinned naive/naive-mean ETTh1 imputation
    # + Moirai-MoE: PF zero-shot, 2 sizes × 4 files; LSF, the small model at horizon 96 on 4 files
    assert sum(run.family == "ett" for run in runs) == 16 * (3 + 1 + 1) + 16 * 3 + 2 * 4 * 2 + 2 * 4 + 4
    # S2EF-2M: 4 models + Table 1's EquiformerV2 with and without Gaunt-Selfmix at L = 4 and 6; IS2RE-All: 2
    assert sum(run.family == "oc20" for run in runs) == 4 + 2 * 2 + 2
    # crystals: csp DiffCSP k20 and CrysBFN k1 on 3 datasets (+ CrysBFN k1-steps10 on MP-20, + DiffCSP's own
    # Carbon-24 k1 run: its Langevin step differs; + MPTS-52: DiffCSP k20, CrysBFN k1-steps200); gen 3 models
    # (+ steps10); CDVAE recon and opt on 3 datasets
    assert sum(run.family == "crystals" for run in runs) == 3 + 3 + 1 + 1 + 2 + 3 * 3 + 1 + 2 * 3
    assert jobs["train"] == jobs["evaluate"] == len(runs)  # every family's runs, each planned once
    # each job asks for what its run needs: no GPU for the naive baselines, other limits per family
    needs = {}
    for block in result.stdout.split("rule train:")[1:]:
        wildcards = dict(re.findall(r"(\w+)=([\w.-]+)", block.split("wildcards:")[1].split("\n")[0]))
        resources = dict(re.findall(r"(\w+)=([\w./]+)", block.split("resources:")[1].split("\n")[0]))
        needs.setdefault((wildcards["family"], wildcards["model"]), set()).add((resources["gpu"], resources["runtime"]))
    assert needs[("ett", "naive")] == needs[("ett", "naive-mean")] == {("0", "30")}
    assert needs[("ett", "dlinear")] == {("0", "30")} and needs[("ett", "timesnet")] == {("1", "120")}
    assert needs[("crystals", "diffcsp")] == {("1", "240")}
    assert needs[("oc20", "schnet")] == {("8", "240"), ("4", "240")}  # fairchem's 8 (S2EF) and 4 (IS2RE) GPUs


@pytest.mark.workflow
def test_smoke_pipeline_through_the_mirror_then_nothing_then_only_the_changed_model(tmp_path, mirror):
    workdir = make_workdir(tmp_path, CONFIG)
    mirror_config = f"data={{mirror: {mirror.url}}}"
    first = snakemake(workdir, "--config", mirror_config)
    assert first.returncode == 0, first.stderr[-5000:]
    assert [r["path"] for r in mirror.behaviour.requests] == ["/ett/ETTh1.csv"]

    leaderboard = (workdir / "results" / "leaderboard.md").read_text()
    assert "| etth1 | forecast | h96 | dlinear | mse (min) |" in leaderboard
    assert re.search(r"\| etth1 \| forecast \| h96 \| timesnet \| mse \(min\) \| [0-9.]+ \| 1 \| 0\.384 \|", leaderboard)
    assert "smoke run: not a reproduction" in leaderboard and "reproduced |" not in leaderboard
    metrics = json.loads((workdir / "results/ett/etth1/forecast/dlinear/h96/seed2021/metrics.json").read_text())
    assert metrics["protocol"]["test_windows"] == 2785 and metrics["protocol"]["test_drop_last"] is False
    assert metrics["provenance"]["data_sha256"]["ETTh1.csv"].startswith("f18de3ad")
    assert metrics["training"]["epochs"] >= 3 and metrics["metrics"]["mse"] < 0.45
    timesnet = json.loads((workdir / "results/ett/etth1/forecast/timesnet/h96/seed2021/metrics.json").read_text())
    assert timesnet["training"]["steps"] == 2 and timesnet["protocol"]["test_batch_size"] == 32
    assert timesnet["protocol"]["batch_dependent_model"] is True
    assert list((workdir / "results" / "plots" / "ett").glob("*.png"))

    second = snakemake(workdir, "--config", mirror_config)
    assert second.returncode == 0 and "Nothing to be done" in second.stdout + second.stderr

    # --config merges into the config file: only the override changes
    changed = snakemake(workdir, "-n", "--config", mirror_config, "ett={overrides: {dlinear: {train: {lr: 0.001}}}}")
    assert changed.returncode == 0, changed.stderr[-3000:]
    jobs = planned_jobs(changed.stdout)
    assert jobs == {"train": 2, "evaluate": 2, "report": 1, "summary": 1, "all": 1, "total": 7}
    assert "dlinear" in changed.stdout and "/naive/" not in changed.stdout.split("Job stats:")[0]
