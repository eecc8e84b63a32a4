"""`replibench plan`: the paper preset's cost before launch — every job with its GPUs, attempts and
GPU-hours and the source of each figure; jobs sized from the same figures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from replibench.cli import main
from replibench.config import load_config, plan_runs, validate_config
from replibench.plan import (EVALUATE_SAFETY, MAX_JOB_HOURS, SHARD_HOURS, SIGNAL_MARGIN_MIN, evaluation_minutes,
                             measured_runs, plan_for_config, plan_totals, train_retries, training_attempts)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def paper_config():
    config = load_config(ROOT / "config.yaml")
    config["preset"] = "paper"
    return validate_config(config)


@pytest.fixture(scope="module")
def rows(paper_config, tmp_path_factory):
    no_rehearsal = tmp_path_factory.mktemp("plan") / "rehearsal.json"  # a local rehearsal would fill gaps
    return {(row.run_id, row.stage): row for row in plan_for_config(paper_config, ROOT, no_rehearsal)}


def test_attempts_and_evaluation_minutes_by_hand():
    assert training_attempts(1.0, 240) == 1
    assert training_attempts(4.0, 240) == 2  # 240 min of work, 235 usable per attempt (5 min to checkpoint)
    assert training_attempts(235 / 60, 240) == 1
    assert training_attempts(47.0, 240) == math.ceil(47 * 60 / (240 - SIGNAL_MARGIN_MIN)) == 12
    assert evaluation_minutes(1.0) == 90 and evaluation_minutes(0.01) == 10  # × 1.5, up to 10 min


def test_every_paper_job_is_listed_with_a_source_or_says_it_has_none(paper_config, rows):
    planned = [p for p in plan_runs(paper_config) if p.run.preset == "paper"]
    assert set(rows) == {(p.run.run_id, stage) for p in planned
                         for stage in (("train", "predict", "score") if p.shards else ("train", "evaluate"))}
    for row in rows.values():
        if row.wall_hours is None:
            assert row.source.startswith("none:") and row.attempts is None
        else:
            assert row.source and row.device != "—" and row.attempts >= 1
            assert row.gpu_hours == pytest.approx(row.wall_hours * row.gpus)
    # measured runs win: the recorded H200 TimesNet run, the default run's DLinear runs
    timesnet = rows["ett/etth1/forecast/timesnet/h96/seed2021", "train"]
    assert timesnet.source.startswith("measured: recorded/") and timesnet.device == "cuda (NVIDIA H200)"
    assert timesnet.wall_hours == pytest.approx(115.848566534 / 3600)
    assert rows["ett/ettm1/forecast/dlinear/h720/seed2023", "train"].source.startswith(
        "measured: leaderboard/results.parquet")
    # the GPU rehearsal (this code at the run's sizes on an H200) beats an estimate from a model
    timesnet_192 = rows["ett/ettm1/forecast/timesnet/h192/seed2021", "train"]
    assert timesnet_192.source.startswith("rehearsal (rehearsal-h200.json, amp off)") and timesnet_192.device == "NVIDIA H200"
    # the papers' logs, scaled to the run's schedule
    path_x = rows["lra/path-x/lra-classify/s4-legs/default/seed0", "train"]
    assert "56 min/epoch" in path_x.source and path_x.device == "A100" and path_x.attempts > 1
    assert rows["crystals/mp-20/csp/diffcsp/k20/seed0", "train"].wall_hours == pytest.approx(13.5)
    # nothing published for SchNet's throughput: the H200 rehearsal's, scaled from the stand-in
    schnet = rows["oc20/s2ef-2m/s2ef/schnet/default/seed0", "train"]
    assert schnet.source.startswith("rehearsal (rehearsal-h200.json") and "2,000,000 training examples" in schnet.source
    # the state-tracking paper trains in bf16: its figure is the bf16 rehearsal's
    assert "amp bf16" in rows["lra/parity/state-tracking/mamba/range-neg1-1/seed0", "train"].source


def test_evaluations_without_a_prediction_slice_are_priced_from_above(rows):
    """The GPU rehearsal made no prediction slice for these: a one-forward-pass prediction takes the
    timed forward pass; a sampler takes a rehearsed run that samples bigger crystals; IS2RE SchNet
    takes S2EF SchNet (forces, larger model); S2EF scoring the measured metric rate."""
    impute = rows["ett/etth1/impute/timesnet/mask0.125/seed2021", "evaluate"]
    assert "2,881 forward passes of 1 of the 2,881 official rows" in impute.source  # TSLib's ETTh test windows
    assert "(an upper bound)" in impute.source and impute.device == "NVIDIA H200"
    mp20 = rows["crystals/mp-20/csp/diffcsp/k20/seed0", "predict"]
    assert mp20.source.startswith("estimate from the rehearsal (rehearsal-h200.json, amp off) of "
                                  "crystals/carbon-24/csp/diffcsp/k20/seed0")
    assert "× 180,920 official rows" in mp20.source  # 20 samples × 9,046 MP-20 test crystals
    ten_steps = rows["crystals/mp-20/gen/crysbfn/steps10/seed0", "predict"]
    thousand = rows["crystals/mp-20/gen/crysbfn/default/seed0", "predict"]
    assert ten_steps.wall_hours == pytest.approx(thousand.wall_hours / 100)  # 10 of 1,000 sampling steps
    schnet = rows["oc20/is2re-all/is2re/schnet/default/seed0", "train"]
    assert "of oc20/s2ef-2m/s2ef/schnet/default/seed0" in schnet.source and "× 460,328 × 30 epochs on 4 GPUs" in schnet.source
    score = rows["oc20/s2ef-2m/s2ef/equivariant-gaunt/default/seed0", "score"]
    assert score.source == "scoring: 4,000,000 frames × 66 µs (benchmarks/oc20_score.py)" and score.gpus == 0


def test_totals_and_the_cli(rows, capsys):
    totals = plan_totals(list(rows.values()))
    known = [row for row in rows.values() if row.gpu_hours is not None]
    assert totals.gpu_hours == pytest.approx(sum(row.gpu_hours for row in known))
    # every paper job has a figure, except CDVAE's: no published training time, and its GPU rehearsal
    # (src/replibench/recorded/rehearsal-h200.json) predates the model — the plan says "no figure yet"
    unknown = {(row.run_id, row.stage) for row in rows.values() if row.gpu_hours is None}
    assert totals.unknown_jobs == len(rows) - len(known) == len(unknown)
    assert unknown and all(run_id.split("/")[3] == "cdvae" for run_id, _ in unknown)
    assert main(["plan", "--configfile", str(ROOT / "config.yaml"), "--config", "preset=paper"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split("\t")[:3] == ["run", "stage", "gpus"] and out[0].endswith("source")
    assert len(out) == len(rows) + 2 and out[-1].startswith(f"total: {totals.runs} runs, {totals.jobs} jobs;")
    assert "GPU-hours" in out[-1] and "jobs have no figure yet" in out[-1]
    assert main(["plan", "--configfile", str(ROOT / "config.yaml")]) == 0  # the default run: its paper runs
    assert capsys.readouterr().out.splitlines()[-1].startswith("total: 88 runs")


def test_jobs_are_sized_by_the_same_figures(paper_config, rows):
    planned = {p.run.run_id: p for p in plan_runs(paper_config)}
    # an evaluation cannot resume: a long one is split into shards of ~SHARD_HOURS, each job sized to
    # 1.5 × its share (DimeNet++ on the four S2EF val splits: 242 V100-hours → 91 shards)
    dimenet = planned["oc20/s2ef-2m/s2ef/dimenet-pp/default/seed0"]
    hours = dimenet.cost.evaluate_hours
    assert dimenet.shards == math.ceil(hours * EVALUATE_SAFETY / SHARD_HOURS) == 91
    assert dimenet.resources["evaluate"].runtime_min >= evaluation_minutes(hours / 91)
    assert dimenet.resources["evaluate"].runtime_min <= 6 * 60
    predict = rows["oc20/s2ef-2m/s2ef/dimenet-pp/default/seed0", "predict"]
    assert predict.attempts == 91 and predict.gpu_hours == pytest.approx(hours)
    assert dimenet.resources["score"].gpus == 0
    assert not any(row.runtime_min > MAX_JOB_HOURS * 60 for row in rows.values())  # none can hit a cluster's limit
    # crystals score on a CPU job, sized from the scoring figures; their GPU job only samples
    mp20 = planned["crystals/mp-20/csp/diffcsp/k20/seed0"]
    assert mp20.shards >= 1 and mp20.resources["score"].gpus == 0 and mp20.resources["evaluate"].gpus == 1
    assert rows["crystals/mp-20/csp/diffcsp/k20/seed0", "score"].cpu_hours == pytest.approx(mp20.cost.score_core_hours)
    # runs whose task cannot shard, or that are short, keep one evaluate job
    assert planned["ett/etth1/forecast/timesnet/h96/seed2021"].shards == 0
    assert planned["lra/listops/lra-classify/s4-legs/default/seed0"].shards == 0
    # a short one keeps the family's limit
    naive = planned["ett/etth1/forecast/naive/h96/seed2021"]
    assert naive.resources["evaluate"].runtime_min == 30
    # the paper's GPUs, up to one node, with the global batch kept by micro-batches per rank
    train = dimenet.resources["train"]
    assert (train.gpus, dimenet.settings["train"]["micro_batches"]) == (8, 32) and "32 GPUs" in train.reason
    assert planned["oc20/is2re-all/is2re/schnet/default/seed0"].resources["train"].gpus == 4
    # training chains attempts until done: the rule's retries cover the longest planned training
    longest = max(row.attempts for row in rows.values() if row.stage == "train" and row.attempts)
    assert train_retries(list(planned.values())) == longest - 1 + 2


def test_measured_runs_come_from_recorded_before_the_leaderboard(tmp_path):
    assert measured_runs(tmp_path) == {}
    measured = measured_runs(ROOT)
    assert measured["ett/etth1/forecast/timesnet/h96/seed2021"].source.startswith("measured: recorded/")
    assert all(not run_id.startswith("crystals") for run_id in measured)  # smoke runs never count


@pytest.mark.workflow
def test_snakemake_writes_the_paper_plan_when_it_starts(tmp_path, mirror):
    """Any paper-preset run (here: just one download) starts by writing the plan and logging its total."""
    from .test_workflow import make_workdir, snakemake

    config = {"preset": "paper", "families": ["ett"], "data": {"mirror": mirror.url, "workers": 1},
              "ett": {"seeds": [2021], "runs": [{"task": "forecast", "models": ["timesnet"], "datasets": ["etth1"],
                                                 "horizons": [96]}]}}
    workdir = make_workdir(tmp_path, config)
    result = snakemake(workdir, "-c1", "data/raw/ett/ETTh1.csv")
    assert result.returncode == 0, result.stderr[-3000:]
    plan = (workdir / "logs" / "plan.tsv").read_text().splitlines()
    assert plan[1].startswith("ett/etth1/forecast/timesnet/h96/seed2021\ttrain\t1\t") and len(plan) == 4
    assert "paper preset plan (logs/plan.tsv): total: 1 runs, 2 jobs;" in result.stderr


def test_evaluate_shards_setting_forces_shards_on_tasks_that_can_split(paper_config):
    """``evaluate_shards: N`` splits every shardable run's prediction in N (smoke too: how the
    workflow test checks that shards give the same numbers); other tasks keep one job."""
    config = load_config(ROOT / "config.yaml")
    config["evaluate_shards"] = 3
    planned = {p.run.run_id: p for p in plan_runs(validate_config(config))}
    crystals = [p for p in planned.values() if p.run.family == "crystals" and p.run.task != "opt"]
    assert crystals and all(p.shards == 3 and p.resources["score"].gpus == 0 for p in crystals)
    # CDVAE's property optimisation moves 100 latents together: one job
    assert all(p.shards == 0 for p in planned.values() if p.run.task == "opt")
    assert all(p.shards == 0 and "score" not in p.resources for p in planned.values()
               if p.run.family == "lra" or p.run.task in ("forecast", "impute"))
    # Moirai-MoE's zero-shot predictions split into batches of items, each seeded on its own
    zero_shot = [p for p in planned.values() if p.run.task in ("zeroshot", "zeroshot-lsf")]
    assert zero_shot and all(p.shards == 3 for p in zero_shot)
    config["evaluate_shards"] = 0
    from replibench.errors import ConfigError

    with pytest.raises(ConfigError, match="evaluate_shards"):
        validate_config(config)
