"""The Snakemake workflow on a tiny OC20 smoke subset: generate + read the synthetic S2EF set, train
SchNet and both equivariant models a few steps, evaluate on the four val splits, report."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from replibench.families.oc20.metrics.energy_forces import S2EF_METRICS  # noqa: E402
from spine.test_workflow import make_workdir, planned_jobs, snakemake  # noqa: E402  (the spine's helpers)

MODELS = ["schnet", "equivariant-cg", "equivariant-gaunt"]
TINY_TRAIN = {"max_steps": 2, "epochs": 1, "batch_size": 4, "checkpoint_every": 1}
CONFIG = {
    "preset": "smoke",
    "families": ["oc20"],
    "data": {"mirror": None, "workers": 1},
    "oc20": {
        "seeds": [0],
        "runs": [{"task": "s2ef", "datasets": ["s2ef-synthetic-emt"], "models": MODELS}],
        "overrides": {model: {"train": TINY_TRAIN, "task": {"eval_batch_size": 8}} for model in MODELS},
        "synthetic_data": {"seed": 3, "train_systems": 4, "train_frames_per_system": 2, "train_frames_per_file": 4,
                           "val_systems": 1, "val_frames_per_system": 2, "val_frames_per_file": 2},
    },
}
RUN = "results/oc20/s2ef-synthetic-emt/s2ef/{model}/default/seed0"


@pytest.mark.workflow
def test_oc20_smoke_subset_end_to_end(tmp_path):
    workdir = make_workdir(tmp_path, CONFIG)
    first = snakemake(workdir, timeout=1200)
    assert first.returncode == 0, first.stderr[-5000:]

    data = workdir / "data/parquet/oc20/s2ef-synthetic-emt"
    card = json.loads((data / "card.json").read_text())
    assert card["notes"]["synthetic"] is True and card["rows"]["train"] == 8 and card["rejected_rows"] == 0
    assert sorted(p.name for p in (data / "archives").iterdir())[0] == "s2ef_synthetic_emt_train.tar"
    for model in MODELS:
        record = json.loads((workdir / RUN.format(model=model) / "metrics.json").read_text())
        assert record["protocol"]["data_origin"] == "synthetic" and record["training"]["steps"] == 2
        assert len(record["metrics"]) == 5 * len(S2EF_METRICS) and record["metrics"]["val_avg_forces_mae"] > 0
        assert record["provenance"]["data_sha256"]["s2ef_synthetic_emt_train.tar"] == card["sources"][0]["sha256"]
        assert record["settings"]["model"]["lmax" if model != "schnet" else "hidden_channels"] in (2, 32)

    leaderboard = (workdir / "results" / "leaderboard.md").read_text()
    row = r"\| s2ef-synthetic-emt \| s2ef \| default \| {model} \| val_avg_forces_mae \(min\) \| [0-9.]+ \| 1 \| – \|"
    for model in MODELS:
        assert re.search(row.format(model=model), leaderboard), leaderboard[:3000]
    assert "no published number (our NequIP-style e3nn model, not the paper's EquiformerV2" in leaderboard
    assert "reproduced |" not in leaderboard

    # a changed synthetic size rebuilds the data and reruns every run; nothing else is planned
    changed = snakemake(workdir, "-n", "--config", "oc20={synthetic_data: {train_systems: 5}}")
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert planned_jobs(changed.stdout) == {"preprocess": 1, "train": 3, "evaluate": 3, "report": 1, "summary": 1,
                                            "all": 1, "total": 10}
