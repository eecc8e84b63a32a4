"""The LRA family through Snakemake: the smoke subset (generated ListOps and Pathfinder, S4D-LegS,
S4-LegS, Transformer) end to end, and the state-tracking paper's parity claim with the shipped
smoke settings. Both are ``workflow`` tests (minutes)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from spine.test_workflow import make_workdir  # noqa: E402  (the spine's helpers)
from spine.test_workflow import snakemake as run_snakemake  # noqa: E402
MODELS = ["s4d-legs", "s4-legs", "transformer"]

SUBSET = {
    "preset": "smoke",
    "families": ["lra"],
    "data": {"mirror": None, "workers": 1},
    "lra": {
        "seeds": [0],
        "runs": [{"task": "lra-classify", "datasets": ["listops-generated", "pathfinder-generated"], "models": MODELS}],
        # smaller than the shipped smoke so the test takes about a minute; same code paths
        "generated_data": {"listops-generated": {"generator": {"num_train": 48, "num_val": 16, "num_test": 32}},
                           "pathfinder-generated": {"count": 80}},
        "overrides": {model: {"train": {"max_steps": 3}} for model in MODELS},
    },
}


def snakemake(workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    """The spine's runner on two cores."""
    return run_snakemake(workdir, "--cores", "2", *args, timeout=timeout)


@pytest.mark.workflow
def test_lra_smoke_subset_end_to_end_labelled_generated(tmp_path):
    workdir = make_workdir(tmp_path, SUBSET)
    first = snakemake(workdir)
    assert first.returncode == 0, first.stderr[-5000:]
    for dataset in ("listops-generated", "pathfinder-generated"):
        for model in MODELS:
            record = json.loads((workdir / f"results/lra/{dataset}/lra-classify/{model}/default/seed0/metrics.json").read_text())
            assert record["protocol"]["data_origin"] == "generated" and record["training"]["steps"] == 3
            assert 0.0 <= record["metrics"]["accuracy"] <= 100.0
    listops = json.loads((workdir / "results/lra/listops-generated/lra-classify/s4-legs/default/seed0/metrics.json").read_text())
    assert listops["protocol"]["generator"]["min_length"] == 60 and listops["protocol"]["generator"]["max_length"] == 200
    assert listops["settings"]["model"]["s4"]["l_max"] == 200
    card = json.loads((workdir / "data/parquet/lra/listops-generated/card.json").read_text())
    assert card["notes"]["generated"] is True and card["rows"] == {"train": 48, "val": 16, "test": 32}
    board = pd.read_parquet(workdir / "results" / "leaderboard.parquet")
    assert set(board["data_origin"]) == {"generated"} and board["paper_value"].isna().all()
    assert set(board["status"]) == {"no published number"}  # generated data is never beside a paper number

    second = snakemake(workdir)
    assert second.returncode == 0 and "Nothing to be done" in second.stdout + second.stderr
    # a generator option is a param of that dataset only: it rebuilds Pathfinder and its 3 runs
    changed = copy.deepcopy(SUBSET)
    changed["lra"]["generated_data"]["pathfinder-generated"]["count"] = 90
    (workdir / "config.yaml").write_text(yaml.safe_dump(changed))
    dry = snakemake(workdir, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    plan = dry.stdout.split("Job stats:")[1]
    assert "preprocess        1" in plan and "train             3" in plan and "evaluate          3" in plan


@pytest.mark.workflow
def test_parity_claim_with_the_shipped_smoke_settings(tmp_path):
    """Grazzi et al.: parity, train sizes 3–40, test 40–256, scaled accuracy. The [0,1] Mamba fails
    (paper 0.000) and the [-1,1] Mamba solves it (paper 1.000), through trainer and Snakemake."""
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text())
    config = {**shipped, "preset": "smoke", "families": ["lra"]}
    config["lra"] = {**shipped["lra"],
                     "runs": [entry for entry in shipped["lra"]["runs"]
                              if entry["task"] == "state-tracking" and "smoke" in entry.get("presets", [])]}
    workdir = make_workdir(tmp_path, config)
    result = snakemake(workdir, timeout=1800)
    assert result.returncode == 0, result.stderr[-5000:]
    scores = {}
    for variant in ("range-0-1", "range-neg1-1"):
        record = json.loads((workdir / f"results/lra/parity/state-tracking/mamba/{variant}/seed0/metrics.json").read_text())
        assert record["protocol"]["train_sizes"] == [3, 40] and record["protocol"]["test_sizes"] == [40, 256]
        assert record["protocol"]["test_input_tokens"][1] >= 200  # tested far beyond the 39 training bits
        scores[variant] = record["metrics"]["scaled_accuracy"]
    assert scores["range-0-1"] < 0.1, scores  # fails: chance level
    assert scores["range-neg1-1"] > 0.95, scores  # solves parity with length generalisation
    board = pd.read_parquet(workdir / "results" / "leaderboard.parquet")
    best = board[(board["variant"] == "range-neg1-1-best") & (board["metric"] == "scaled_accuracy")]
    assert len(best) == 1 and best.iloc[0]["paper_value"] == 1.0
