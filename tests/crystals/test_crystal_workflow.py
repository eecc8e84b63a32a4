"""The Snakemake workflow end to end on a tiny crystals smoke subset, through a local HTTP mirror:
Perov-5 val/test, DiffCSP and CrysBFN for a few steps, both tasks, the full metric suite."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from spine.test_workflow import make_workdir  # noqa: E402  (the spine's helpers)
from spine.test_workflow import snakemake as run_snakemake  # noqa: E402

CONFIG = {
    "preset": "smoke",
    "families": ["crystals"],
    "data": {"mirror": None, "workers": 2},
    "crystals": {
        "seeds": [0],
        "runs": [
            {"task": "csp", "models": ["diffcsp", "crysbfn"], "datasets": ["perov-5"], "samples": [1, 2]},
            {"task": "gen", "models": ["crysbfn"], "datasets": ["perov-5"]},
        ],
        "conventions": {"diffcsp": ["crysbfn"]},
        # 3 steps leave CrysBFN's cells collapsed, whose CrystalNN fingerprints (COV) cost ~1-5 s each
        "overrides": {model: {"train": {"max_steps": 3}, "task": {"limit_test": 6, "num_generated": 6}}
                      for model in ("diffcsp", "crysbfn")},
    },
}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """The spine's runner on two cores, with a 10-minute limit."""
    return run_snakemake(workdir, "--cores", "2", *args, timeout=600)


@pytest.mark.workflow
def test_crystals_smoke_subset_through_the_mirror(tmp_path, mirror):
    workdir = make_workdir(tmp_path, CONFIG)
    first = snakemake(workdir, "--config", f"data={{mirror: {mirror.url}}}")
    assert first.returncode == 0, first.stderr[-5000:]
    assert sorted(r["path"] for r in mirror.behaviour.requests) == ["/perov_5/test.csv", "/perov_5/val.csv"]

    card = json.loads((workdir / "data/parquet/crystals/perov-5/card.json").read_text())
    assert card["rows"] == {"val": 3787, "test": 3785} and card["rejected_rows"] == 0
    results = workdir / "results" / "crystals" / "perov-5"
    diffcsp = json.loads((results / "csp/diffcsp/k2/seed0/metrics.json").read_text())
    assert diffcsp["protocol"]["convention"] == "diffcsp" and diffcsp["protocol"]["extra_conventions"] == ["crysbfn"]
    assert {"match_rate", "rmse", "match_rate_k1", "match_rate@crysbfn", "match_rate_k1@crysbfn",
            "sampling_s_per_1000", "nfe_per_crystal"} <= set(diffcsp["metrics"])
    assert diffcsp["metrics"]["nfe_per_crystal"] == 100  # smoke DiffCSP: 50 steps x predictor + corrector
    assert diffcsp["metric_info"]["match_rate_k1@crysbfn"]["direction"] == "max"
    assert diffcsp["protocol"]["by_convention"]["diffcsp"]["counts"]["samples_total"] == 12
    crysbfn = json.loads((results / "csp/crysbfn/k2/seed0/metrics.json").read_text())
    assert crysbfn["protocol"]["convention"] == "crysbfn" and crysbfn["metrics"]["nfe_per_crystal"] == 10
    gen = json.loads((results / "gen/crysbfn/default/seed0/metrics.json").read_text())
    assert gen["metrics"]["wdist_prop"] is None and "property model" in gen["protocol"]["unavailable"]["wdist_prop"]
    assert {"struct_validity", "comp_validity", "cov_recall", "cov_precision", "wdist_density",
            "wdist_num_elems"} <= set(gen["metrics"])
    assert gen["protocol"]["by_convention"]["crysbfn"]["counts"]["num_generated"] == 6

    leaderboard = (workdir / "results" / "leaderboard.md").read_text()
    # the k1 row is derived (marked *) from the 2-sample run's first samples
    assert re.search(r"\| perov-5 \| csp \| k1\* \| diffcsp \| match_rate \(max\) \| [0-9.]+ \|", leaderboard)
    assert "| perov-5 | csp | k2 | crysbfn | match_rate (max) |" in leaderboard
    assert re.search(r"\| perov-5 \| gen \| default \| crysbfn \| cov_recall \(max\) \| [0-9.]+ \| 1 \| 99\.52 \|"
                     r".* \| smoke run: not a reproduction \|", leaderboard)  # CrysBFN's Perov-5 number beside ours
    assert "| reproduced |" not in leaderboard
    assert "property_distributions_perov-5.png" in leaderboard
    assert (workdir / "results" / "plots" / "crystals" / "property_distributions_perov-5.png").is_file()

    second = snakemake(workdir, "--config", f"data={{mirror: {mirror.url}}}")
    assert second.returncode == 0 and "Nothing to be done" in second.stdout + second.stderr

    # the same evaluations predicted in shards (3 shards of CSP k2's 2 sample batches: one is empty;
    # gen's single batch: two are) and gathered + scored on the CPU give the same predictions and metrics
    import pyarrow.parquet as pq

    runs = ["csp/diffcsp/k2/seed0", "csp/crysbfn/k2/seed0", "gen/crysbfn/default/seed0"]
    before = {run: (pq.read_table(results / run / "predictions.parquet"),
                    json.loads((results / run / "metrics.json").read_text())) for run in runs}
    sharded = snakemake(workdir, "--config", f"data={{mirror: {mirror.url}}}", "evaluate_shards=3")
    assert sharded.returncode == 0, sharded.stderr[-5000:]
    assert "predict_shard" in sharded.stdout + sharded.stderr and "train " not in sharded.stdout
    for run in runs:
        table, record = pq.read_table(results / run / "predictions.parquet"), json.loads((results / run / "metrics.json").read_text())
        assert sorted(path.name for path in (results / run / "shards").iterdir()) == [f"{i}-of-3.parquet" for i in range(3)]
        assert table.replace_schema_metadata(None).equals(before[run][0].replace_schema_metadata(None)), run
        assert record["protocol"]["prediction_shards"]["shards"] == 3
        wall_clock = {"sampling_s_per_1000"}
        assert {k: v for k, v in record["metrics"].items() if k not in wall_clock} == \
            {k: v for k, v in before[run][1]["metrics"].items() if k not in wall_clock}, run
