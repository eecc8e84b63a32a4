"""The paper preset's rehearsal: which runs are rehearsed on what, how its figures become plan costs,
and one run per family rehearsed end to end through Snakemake (paper sizes, a few steps, a
checkpoint and a resume that reproduces the weights)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from replibench.config import load_config, plan_runs, validate_config
from replibench.plan import plan_rows
from replibench.rehearsal import group_key, rehearsal_costs, rehearsal_plan

from .test_workflow import make_workdir, snakemake

ROOT = Path(__file__).resolve().parents[2]

#: one paper run per family, plus one that has no data at hand (IS2RE-All)
CONFIG = {
    "preset": "paper",
    "rehearsal": True,
    "families": ["ett", "crystals", "lra", "oc20"],
    "data": {"mirror": None, "workers": 1},
    "ett": {"seeds": [2021, 2022], "runs": [{"task": "forecast", "models": ["dlinear"], "datasets": ["etth1"],
                                             "horizons": [96]}]},
    "crystals": {"seeds": [0], "runs": [{"task": "gen", "models": ["crysbfn"], "datasets": ["perov-5"]}]},
    "lra": {"seeds": [0], "runs": [{"task": "state-tracking", "models": ["deltanet"], "datasets": ["parity"],
                      "eigenvalue_ranges": ["[-1,1]"], "seeds": [0]}]},
    "oc20": {"seeds": [0], "runs": [{"task": "s2ef", "models": ["schnet"], "datasets": ["s2ef-2m"]},
                      {"task": "is2re", "models": ["schnet"], "datasets": ["is2re-all"]}]},
}


def test_one_seed_per_run_on_official_data_or_a_stand_in_and_the_rest_said():
    config = validate_config(CONFIG)
    rehearsed, not_rehearsed = rehearsal_plan(plan_runs(config), config)
    assert {run_id: (data, bool(options)) for run_id, (_, data, options, _) in rehearsed.items()} == {
        "ett/etth1/forecast/dlinear/h96/seed2021": ("etth1", False),  # official; seed 2022 has the same sizes
        "crystals/perov-5/gen/crysbfn/default/seed0": ("perov-5", True),  # official val/test files
        "lra/parity/state-tracking/deltanet/range-neg1-1/seed0": ("parity", True),  # generated, paper lengths
        "oc20/s2ef-2m/s2ef/schnet/default/seed0": ("s2ef-synthetic-emt", True),
        "oc20/is2re-all/is2re/schnet/default/seed0": ("is2re-synthetic-emt", True),
    }
    assert not_rehearsed == {}
    _, _, parity, _ = rehearsed["lra/parity/state-tracking/deltanet/range-neg1-1/seed0"]
    crysbfn = json.loads(rehearsed["crystals/perov-5/gen/crysbfn/default/seed0"][3])
    assert crysbfn["task"]["splits"]["train"] == "val"  # the rehearsal trains on the mirrored val.csv
    assert parity["sizes"]["test_sizes"] == [40, 256] and parity["sizes"]["num_train"] == 512
    full = {**load_config(ROOT / "config.yaml"), "preset": "paper"}
    rehearsed, not_rehearsed = rehearsal_plan(plan_runs(validate_config(full)), validate_config(full))
    assert not_rehearsed == {}  # every paper run has its data or a stand-in
    stand_ins = {run_id.split("/")[1]: data for run_id, (_, data, _, _) in rehearsed.items()}
    assert {dataset: stand_ins[dataset] for dataset in ("mp-20", "text", "retrieval", "image", "path-x")} == {
        "mp-20": "mp-20-fork-subset", "text": "text-generated", "retrieval": "retrieval-generated",
        "image": "image-generated", "path-x": "path-x-generated"}
    mp20 = next(json.loads(settings) for run_id, (_, _, _, settings) in rehearsed.items() if "/mp-20/" in run_id)
    assert "splits" not in mp20["task"]  # the default splits: the fork subset has a train.csv (847 rows)


def test_rehearsal_figures_scale_to_the_official_schedule(tmp_path):
    config = validate_config(CONFIG)
    planned = [p for p in plan_runs(config) if p.run.preset == "paper"]
    record = {"stand_in": "", "steps": 3, "seconds_per_step": 2.0, "device": "cpu", "run_id": "x",
              "steps_of_the_schedule_here": 100, "train_examples_here": 1_000, "micro_batches": 1,
              "batch_per_step_here": 32}
    table = {"records": [
        {**record, "run_id": "ett/etth1/forecast/dlinear/h96/seed2021", "train_examples_here": 8_449},
        {**record, "run_id": "crystals/perov-5/gen/crysbfn/default/seed0", "train_examples_here": 3_785,
         "predict_seconds_per_row": 0.01, "predicted_rows": 1_000},
        {**record, "run_id": "oc20/s2ef-2m/s2ef/schnet/default/seed0", "stand_in": "s2ef-synthetic-emt",
         "micro_batches": 16, "batch_per_step_here": 12},
    ], "not_rehearsed": {}}
    path = tmp_path / "rehearsal.json"
    path.write_text(json.dumps(table))
    costs = rehearsal_costs(planned, path)
    # ETT trains on its official data: 2 s × 100 steps, both seeds (same sizes)
    assert costs["ett/etth1/forecast/dlinear/h96/seed2022"].train_hours == pytest.approx(200 / 3600)
    # Perov-5: the rehearsal trained on val (3,785), the paper on train (11,356 crystals)
    assert costs["crystals/perov-5/gen/crysbfn/default/seed0"].train_hours == pytest.approx(
        2.0 * 100 * 11_356 / 3_785 / 3600)
    # S2EF-2M: 2,000,000 frames; a global step of 16 one-GPU shares on the run's 8 GPUs = 2 shares each
    assert costs["oc20/s2ef-2m/s2ef/schnet/default/seed0"].train_hours == pytest.approx(
        2.0 * 2 * 100 * 2_000_000 / 1_000 / 3600)
    # a prediction slice: seconds per predicted row × the official rows (10,000 generated crystals)
    assert costs["crystals/perov-5/gen/crysbfn/default/seed0"].evaluate_hours == pytest.approx(0.01 * 10_000 / 3600)
    assert costs["ett/etth1/forecast/dlinear/h96/seed2022"].evaluate_hours is None  # no slice: no figure
    assert all(cost.source.startswith("rehearsal") for cost in costs.values())
    rows = {(row.run_id, row.stage): row for row in plan_rows(planned, {}, costs)}
    # the committed H200 rehearsal comes before a local (CPU) one
    schnet = rows["oc20/s2ef-2m/s2ef/schnet/default/seed0", "train"]
    assert schnet.source.startswith("rehearsal (rehearsal-h200.json") and schnet.device == "NVIDIA H200"
    assert schnet.gpu_hours == pytest.approx(schnet.wall_hours * 8)
    assert "per predicted row" in rows["oc20/s2ef-2m/s2ef/schnet/default/seed0", "evaluate"].source
    assert group_key("ett/etth1/forecast/dlinear/h96/seed2022") == "ett/etth1/forecast/dlinear/h96"


def test_without_a_prediction_slice_a_forward_pass_or_a_proxy_prices_the_evaluation(tmp_path):
    """A forecast is one forward pass per test window: the timed forward pass × TSLib's test
    windows (a test batch above the rehearsed one is priced per example). IS2RE SchNet, not
    rehearsed in this table, takes S2EF SchNet's seconds per structure for training and
    prediction, and says it is an estimate."""
    config = validate_config(CONFIG)
    planned = [p for p in plan_runs(config) if p.run.preset == "paper"]
    record = {"stand_in": "", "steps": 3, "seconds_per_step": 2.0, "device": "cpu", "micro_batches": 1,
              "steps_of_the_schedule_here": 100, "train_examples_here": 8_449, "batch_per_step_here": 32,
              "forward_seconds_per_example": 0.001}
    table = {"records": [
        {**record, "run_id": "ett/etth1/forecast/dlinear/h96/seed2021"},
        {**record, "run_id": "oc20/s2ef-2m/s2ef/schnet/default/seed0", "stand_in": "s2ef-synthetic-emt",
         "train_examples_here": 768, "micro_batches": 8, "batch_per_step_here": 24, "seconds_per_step": 0.048,
         "predict_seconds_per_row": 0.002, "predicted_rows": 24_000},
    ]}
    path = tmp_path / "rehearsal.json"
    path.write_text(json.dumps(table))
    costs = rehearsal_costs(planned, path)
    ett = next(p for p in planned if p.run.run_id == "ett/etth1/forecast/dlinear/h96/seed2021")
    assert ett.settings["task"]["eval_batch_size"] > 32
    windows = (2880 + 96) - 96 - 96 + 1  # the test split starts seq_len early; n - L - H + 1 windows
    assert costs[ett.run.run_id].evaluate_hours == pytest.approx(0.001 * windows / 3600)
    assert f"× {windows:,} official rows" in costs[ett.run.run_id].source
    is2re = costs["oc20/is2re-all/is2re/schnet/default/seed0"]
    assert is2re.estimate and is2re.source.startswith("estimate from the rehearsal (rehearsal.json, amp off) of "
                                                      "oc20/s2ef-2m/s2ef/schnet/default/seed0")
    assert is2re.train_hours == pytest.approx(0.048 / 24 * 460_328 * 30 / 4 / 3600)  # 30 epochs on 4 GPUs
    assert is2re.evaluate_hours == pytest.approx(0.002 * 25_000 / 3600)


def test_a_run_that_cannot_rehearse_is_recorded_and_reported_not_fatal(tmp_path):
    from replibench.rehearsal import write_rehearsal_report
    from replibench.stages import rehearsal_failure_stage

    config = validate_config(CONFIG)
    rehearsed, not_rehearsed = rehearsal_plan(plan_runs(config), config)
    settings = rehearsed["ett/etth1/forecast/dlinear/h96/seed2021"][3]
    (tmp_path / "job.log").write_text("loading\nKilled\n")
    rehearsal_failure_stage(settings_json=settings, out=tmp_path / "r.json", log=tmp_path / "job.log", exit_code=137)
    write_rehearsal_report([tmp_path / "r.json"], not_rehearsed, out_md=tmp_path / "r.md", out_json=tmp_path / "t.json")
    report = (tmp_path / "r.md").read_text()
    assert "- ett/etth1/forecast/dlinear/h96/seed2021: exit 137, killed (SIGKILL; out of memory" in report
    assert "0 runs rehearsed, 0 resume failures, 1 failed, 0 not rehearsed." in report
    table = json.loads((tmp_path / "t.json").read_text())
    assert table["records"] == [] and table["failed"][0]["log_tail"] == ["loading", "Killed"]
    assert rehearsal_costs(plan_runs(config), tmp_path / "t.json") == {}


def test_a_cpu_rehearsal_too_large_for_its_memory_fails_at_once_with_the_reason(tmp_path):
    """Under the cap of limit_cpu_memory, an allocation beyond it raises PyTorch's "can't allocate
    memory" at once (instead of the machine swapping until the OOM killer ends the job), and the
    failure record says out of memory."""
    import subprocess
    import sys

    from replibench.stages import OUT_OF_HOST_MEMORY, available_memory_mb, rehearsal_failure_stage

    program = ("import torch; from replibench.stages import limit_cpu_memory; cap = limit_cpu_memory(2048); "
               "print('cap', cap, flush=True); x = torch.empty(3 * 2**30, dtype=torch.uint8); x.fill_(1)")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and OUT_OF_HOST_MEMORY in result.stderr
    assert result.stdout.split() == ["cap", str(min(2048, (available_memory_mb() or 4096) * 9 // 10))]
    (tmp_path / "job.log").write_text(result.stdout + result.stderr)
    config = validate_config(CONFIG)
    settings = rehearsal_plan(plan_runs(config), config)[0]["ett/etth1/forecast/dlinear/h96/seed2021"][3]
    record = rehearsal_failure_stage(settings_json=settings, out=tmp_path / "r.json", log=tmp_path / "job.log",
                                     exit_code=result.returncode)
    assert record["reason"].startswith("out of memory: an allocation did not fit under the job's memory")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   20480000 kB\n")
    assert available_memory_mb(meminfo) == 20000 and available_memory_mb(tmp_path / "none") is None


@pytest.mark.workflow
def test_rehearsal_of_one_run_per_family_end_to_end(tmp_path, mirror, capsys):
    workdir = make_workdir(tmp_path, {**CONFIG, "data": {"mirror": mirror.url, "workers": 1}})
    result = snakemake(workdir, "-c2")
    assert result.returncode == 0, result.stderr[-4000:]
    table = json.loads((workdir / "rehearsal" / "rehearsal.json").read_text())
    records = {record["run_id"]: record for record in table["records"]}
    assert set(records) == {"ett/etth1/forecast/dlinear/h96/seed2021", "crystals/perov-5/gen/crysbfn/default/seed0",
                            "lra/parity/state-tracking/deltanet/range-neg1-1/seed0",
                            "oc20/s2ef-2m/s2ef/schnet/default/seed0", "oc20/is2re-all/is2re/schnet/default/seed0"}
    for record in records.values():
        assert record["resume_reproduces_weights"] and record["steps"] == 2 and record["seconds_per_step"] > 0
        assert record["parameters"] > 0 and record["peak_resident_memory_mb"] > 0
    schnet = records["oc20/s2ef-2m/s2ef/schnet/default/seed0"]
    assert (schnet["batch_size"], schnet["micro_batches"], schnet["batch_per_step_here"]) == (192, 8, 24)
    assert records["ett/etth1/forecast/dlinear/h96/seed2021"]["steps_of_the_schedule_here"] == 2640
    report = (workdir / "rehearsal" / "rehearsal.md").read_text()
    assert "Not results" in report and "| oc20/is2re-all/is2re/schnet/default/seed0 | is2re-synthetic-emt |" in report
    assert records["oc20/is2re-all/is2re/schnet/default/seed0"]["memory_limit_mb"] > 0  # capped: no CUDA here
    assert not (workdir / "results" / "leaderboard.md").exists()  # a rehearsal never makes results
    # the plan now has a figure for SchNet from the rehearsal
    from replibench.cli import main

    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config.pop("rehearsal")
    (workdir / "plan.yaml").write_text(yaml.safe_dump(config))
    cwd = os.getcwd()
    try:
        os.chdir(workdir)
        assert main(["plan", "--configfile", "plan.yaml"]) == 0
    finally:
        os.chdir(cwd)
    lines = {tuple(line.split("\t")[:2]): line for line in capsys.readouterr().out.splitlines()}
    # the committed H200 rehearsal is the plan's figure; this CPU rehearsal's is there behind it
    assert "\trehearsal (rehearsal-h200.json, amp off): " in lines["oc20/s2ef-2m/s2ef/schnet/default/seed0", "train"]
    local = rehearsal_costs(plan_runs(validate_config(config)), workdir / "rehearsal" / "rehearsal.json")
    assert local["oc20/s2ef-2m/s2ef/schnet/default/seed0"].source.startswith("rehearsal (rehearsal.json, amp off): ")


def test_tables_of_several_gpu_passes_combine_per_run_and_precision():
    """How src/replibench/recorded/rehearsal-h200.json was made from three passes: a later pass's
    record replaces an earlier one's, a shorter one (a prediction slice) only adds its prediction,
    and a failure is dropped once a pass rehearsed that run at that precision."""
    from replibench.rehearsal import combine_rehearsal_tables

    def rec(run, amp, steps, **extra):
        return {"run_id": run, "amp_asked": amp, "steps": steps, "seconds_per_step": float(steps), **extra}

    first = {"records": [rec("a", "off", 6), rec("b", "off", 6)],
             "failed": [{"run_id": "a", "amp": "bf16", "reason": "error"}, {"run_id": "b", "amp": "bf16"}]}
    second = {"records": [rec("a", "bf16", 6)], "failed": []}
    third = {"records": [rec("a", "off", 3, predict_seconds_per_row=0.5, predicted_rows=10)], "failed": []}
    table = combine_rehearsal_tables([first, second, third], {"device_name": "H200"})
    records = {(r["run_id"], r["amp_asked"]): r for r in table["records"]}
    assert sorted(records) == [("a", "bf16"), ("a", "off"), ("b", "off")] and table["device_name"] == "H200"
    assert records["a", "off"]["steps"] == 6 and records["a", "off"]["predict_seconds_per_row"] == 0.5
    assert [(f["run_id"], f["amp"]) for f in table["failed"]] == [("b", "bf16")]


def test_every_rehearsal_dataset_has_one_option_set_checked_when_planned():
    from replibench.rehearsal import rehearsal_dataset_options

    config = validate_config(CONFIG)
    rehearsed, _ = rehearsal_plan(plan_runs(config), config)
    options = rehearsal_dataset_options(rehearsed)
    assert set(options) == {data for _, data, _, _ in rehearsed.values()}
    planned, data, dataset_options, settings = rehearsed["crystals/perov-5/gen/crysbfn/default/seed0"]
    clash = {**rehearsed, "other/run": (planned, data, {**dataset_options, "files": []}, settings)}
    with pytest.raises(ValueError, match="rehearsal dataset perov-5: other/run asks for options"):
        rehearsal_dataset_options(clash)
