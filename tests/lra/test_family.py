"""The lra family: the sweep, each run's settings, generated-data options, the release checksum,
and the derived rows (both LRA averages, best of seeds)."""

import copy
from pathlib import Path

import pandas as pd
import pytest

from replibench.config import load_config, plan_runs, validate_config
from replibench.errors import ConfigError
from replibench.families.lra.family import (AVERAGE_DATASET, FAMILY, LISTOPS_SMOKE, STATE_TRACKING_SIZES_PAPER,
                                     best_of_seeds_rows, lra_average_rows)
from replibench.results import RESULT_COLUMNS
from replibench.runs import RunSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config():
    return validate_config(load_config(ROOT / "config.yaml"))


def lra_runs(config, preset):
    config = copy.deepcopy(config)
    config["preset"] = preset
    return {p.run.run_id: p for p in plan_runs(validate_config(config)) if p.run.family == "lra"}


def test_smoke_plan_is_the_generated_subset_and_the_parity_pair(config):
    runs = lra_runs(config, "smoke")
    for dataset in ("listops-generated", "pathfinder-generated"):
        for model in ("s4d-legs", "s4-legs", "transformer"):
            assert f"lra/{dataset}/lra-classify/{model}/default/seed0" in runs
    assert {r for r in runs if "/state-tracking/" in r} == {
        "lra/parity/state-tracking/mamba/range-0-1/seed0", "lra/parity/state-tracking/mamba/range-neg1-1/seed0"}
    settings = runs["lra/parity/state-tracking/mamba/range-neg1-1/seed0"].settings
    assert settings["model"] == {"d_model": 16, "n_layers": 1, "negative_eigenvalues": True}
    assert runs["lra/parity/state-tracking/mamba/range-0-1/seed0"].settings["model"]["negative_eigenvalues"] is False


def test_paper_plan_has_all_six_tasks_and_the_state_tracking_table(config):
    runs = lra_runs(config, "paper")
    for dataset in ("listops", "text", "retrieval", "image", "pathfinder", "path-x"):
        for model in ("transformer", "s4-legs", "s4-fout", "s4d-legs", "s4d-inv", "s4d-lin", "s4-ptd", "s5", "s5-ptd"):
            assert f"lra/{dataset}/lra-classify/{model}/default/seed0" in runs
    for dataset in ("parity", "mod-arithmetic", "mod-arithmetic-brackets"):
        for model in ("mamba", "deltanet"):
            for variant in ("range-0-1", "range-neg1-1"):
                for seed in (0, 1, 2):  # best of 3 seeds
                    assert f"lra/{dataset}/state-tracking/{model}/{variant}/seed{seed}" in runs
    s4 = runs["lra/listops/lra-classify/s4-legs/default/seed0"].settings  # s4 v3 ListOps config
    assert s4["model"]["n_layers"] == 8 and s4["model"]["d_model"] == 128 and s4["train"]["lr"] == 0.01
    assert s4["train"]["param_group_options"] == {"ssm_lr": 0.001} and s4["model"]["s4"]["l_max"] == 2048
    text = runs["lra/text/lra-classify/transformer/default/seed0"].settings
    assert text["task"]["max_length"] == 1000 and text["train"]["lr_schedule"] == "rsqrt"
    parity = runs["lra/parity/state-tracking/deltanet/range-neg1-1/seed2"].settings
    assert parity["train"]["max_steps"] == 20_000 and parity["train"]["batch_size"] == 256
    assert parity["train"]["lr"] == 1e-3 and parity["train"]["warmup_steps"] == 2_000
    assert parity["model"]["negative_eigenvalues"] is True


def test_smoke_listops_window_reaches_the_s4_kernel_and_the_transformer(config):
    runs = lra_runs(config, "smoke")
    s4 = runs["lra/listops-generated/lra-classify/s4-legs/default/seed0"].settings
    assert s4["model"]["s4"]["l_max"] == LISTOPS_SMOKE["max_length"]
    transformer = runs["lra/listops-generated/lra-classify/transformer/default/seed0"].settings
    assert transformer["model"]["transformer"]["max_len"] == transformer["task"]["max_length"] == LISTOPS_SMOKE["max_length"]
    wider = {**config["lra"], "generated_data": {"listops-generated": {"generator": {"max_length": 301}}}}
    s4_run = runs["lra/listops-generated/lra-classify/s4-legs/default/seed0"].run
    assert FAMILY.run_settings(wider, s4_run)["model"]["s4"]["l_max"] == 302  # even, covers the user's window


def test_generated_dataset_options_per_preset_and_overrides():
    smoke = FAMILY.dataset_options({}, "listops-generated", "smoke")
    assert smoke["generator"]["min_length"] == 60 and smoke["generator"]["max_length"] == 200  # recorded window
    assert FAMILY.dataset_options({}, "listops-generated", "paper")["generator"]["max_length"] == 2000
    assert FAMILY.dataset_options({}, "parity", "paper")["sizes"] == STATE_TRACKING_SIZES_PAPER
    assert FAMILY.dataset_options({}, "parity", "smoke")["sizes"]["train_size_power"] == 2.0
    override = {"generated_data": {"pathfinder-generated": {"count": 50}}}
    assert FAMILY.dataset_options(override, "pathfinder-generated", "smoke")["count"] == 50
    assert FAMILY.dataset_options({}, "text", "paper") == {}


def test_the_release_archive_checksum_is_pinned_under_data_checksums(config):
    from replibench.registry import remote_file

    remote = remote_file("lra", "lra_release.gz")
    assert remote.checksum is None and remote.mirror_path == "lra/lra_release.gz"  # none published, none invented
    config["data"]["checksums"] = {remote.mirror_path: "md5:" + "a" * 32}
    assert validate_config(config)["data"]["checksums"] == {"lra/lra_release.gz": "md5:" + "a" * 32}
    config["data"]["checksums"] = {remote.mirror_path: "deadbeef"}
    with pytest.raises(ConfigError, match="checksums"):
        validate_config(config)


def test_datasets_of_the_other_task_are_refused():
    with pytest.raises(ConfigError, match="belongs to another task"):
        FAMILY.check_run(RunSpec("lra", "parity", "lra-classify", "s4d-legs", "default", 0))


def result(dataset, value, model="s4d-legs", seed=0, origin="official", task="lra-classify", variant="default",
           metric="accuracy"):
    row = {column: None for column in RESULT_COLUMNS}
    row.update(family="lra", dataset=dataset, task=task, model=model, variant=variant, preset="paper", seed=seed,
               split="test", metric=metric, value=value, direction="max", unit="%", data_origin=origin, steps=10,
               epochs=1, train_wall_s=1.0, gpu_hours=0.0, run_id=f"lra/{dataset}/{task}/{model}/{variant}/seed{seed}",
               metrics_path=f"results/{dataset}/{seed}/metrics.json")
    return row


def test_both_averages_and_a_missing_path_x_counted_as_fifty():
    five = {"listops": 60.0, "text": 86.0, "retrieval": 90.0, "image": 88.0, "pathfinder": 94.0}
    table = pd.DataFrame([result(d, v) for d, v in five.items()], columns=list(RESULT_COLUMNS))
    rows = lra_average_rows(table).set_index("variant")
    assert rows.loc["avg-lra-5", "value"] == pytest.approx(83.6)
    assert rows.loc["avg-s4-6", "value"] == pytest.approx((418.0 + 50.0) / 6)  # Path-X ✗ = 50 %
    assert set(rows["dataset"]) == {AVERAGE_DATASET} and set(rows["data_origin"]) == {"official"}
    with_path_x = pd.concat([table, pd.DataFrame([result("path-x", 96.0)])], ignore_index=True)
    rows = lra_average_rows(with_path_x).set_index("variant")
    assert rows.loc["avg-s4-6", "value"] == pytest.approx((418.0 + 96.0) / 6)
    assert rows.loc["avg-lra-5", "value"] == pytest.approx(83.6) and "path-x" not in rows.loc["avg-lra-5", "run_id"]


def test_no_average_without_the_five_tasks_and_generated_stand_ins_are_labelled():
    partial = pd.DataFrame([result("listops", 60.0), result("pathfinder", 90.0)], columns=list(RESULT_COLUMNS))
    assert len(lra_average_rows(partial)) == 0
    stand_ins = [result("listops-generated", 20.0, origin="generated"), result("text", 86.0),
                 result("retrieval", 90.0), result("image", 88.0),
                 result("pathfinder-generated", 55.0, origin="generated")]
    rows = lra_average_rows(pd.DataFrame(stand_ins, columns=list(RESULT_COLUMNS)))
    assert len(rows) == 2 and set(rows["data_origin"]) == {"generated"}


def test_best_of_seeds_rows():
    runs = [result("parity", v, model="mamba", seed=s, task="state-tracking", variant="range-neg1-1",
                   metric="scaled_accuracy") for s, v in ((0, 0.4), (1, 1.0), (2, 0.7))]
    rows = best_of_seeds_rows(pd.DataFrame(runs, columns=list(RESULT_COLUMNS)))
    assert len(rows) == 1 and rows.iloc[0]["variant"] == "range-neg1-1-best"
    assert rows.iloc[0]["value"] == 1.0 and rows.iloc[0]["seed"] == 1 and rows.iloc[0]["run_id"].count(";") == 2
