"""The crystal family: runs and variants, the papers' settings per run, files per preset, k1 rows
derived from a 20-sample run, and the leaderboard join with each paper's number."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from replibench.config import load_config, plan_runs, validate_config
from replibench.errors import ConfigError, DataError
from replibench.families.crystals.family import FAMILY, variant_name, variant_values
from replibench.runs import RunSpec
from replibench.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def _plan(preset: str, **changes) -> dict:
    config = load_config(ROOT / "config.yaml")
    config["preset"] = preset
    config["crystals"].update(changes)
    return {p.run.run_id: p for p in plan_runs(validate_config(config)) if p.run.family == "crystals"}


def test_variants_are_typed_values_with_names_spelled_once():
    for task, samples, steps, values, name in (("csp", 20, None, {"samples": 20}, "k20"),
                                               ("csp", 1, 10, {"samples": 1, "steps": 10}, "k1-steps10"),
                                               ("gen", 1, None, {}, "default"), ("gen", 1, 10, {"steps": 10}, "steps10")):
        assert variant_values(task, samples=samples, steps=steps) == values
        assert variant_name(task, values) == name
        run = FAMILY.make_run("mp-20", task, "crysbfn", values, 0, "paper")
        assert (run.variant, run.values) == (name, values)
    for task, bad in (("csp", {}), ("gen", {"samples": 1}), ("csp", {"samples": 1, "k": 2})):
        with pytest.raises(ValueError, match="variant"):
            variant_name(task, bad)


def test_smoke_plan_is_perov_and_carbon_all_models_and_tasks_on_val_and_test():
    plan = _plan("smoke")
    assert set(plan) == ({f"crystals/{d}/{t}/{m}/{v}/seed0" for d in ("perov-5", "carbon-24")
                          for t, v in (("csp", "k20"), ("gen", "default")) for m in ("diffcsp", "crysbfn")}
                         | {f"crystals/{d}/{t}/cdvae/default/seed0" for d in ("perov-5", "carbon-24")
                            for t in ("recon", "gen", "opt")})
    for run_id, planned in plan.items():
        task = planned.settings["task"]
        assert task["splits"] == {"train": "val", "val": "val", "test": "test"}
        assert task.get("allow_fewer_valid") or planned.run.task != "gen"
        assert "property_model" not in task  # auto: the smoke mirror holds no property model
        assert task["convention"] == planned.run.model  # each model under its own paper's rules
        if planned.run.task == "csp":
            assert task["num_samples"] == 20 and task["report_samples"] == [1]
        TrainConfig.from_settings(planned.settings["train"])  # every key is a trainer field
    assert FAMILY.dataset_options({}, "perov-5", "smoke") == {"files": ["perov_5-test.csv", "perov_5-val.csv"]}
    config = load_config(ROOT / "config.yaml")["crystals"]  # CDVAE runs on Perov-5: its CrystalNN graphs too
    assert FAMILY.dataset_options(config, "perov-5", "smoke")["crystal_graph"] == "crystalnn"
    with pytest.raises(DataError, match="not a smoke dataset"):
        FAMILY.dataset_options({}, "mp-20", "smoke")


def test_paper_plan_has_the_papers_settings_for_all_three_datasets():
    from replibench.families.crystals.models.crysbfn import CrysBFNConfig
    from replibench.families.crystals.models.diffcsp import DiffCSPConfig
    from replibench.families.task import model_config

    plan = _plan("paper")
    for dataset in ("mp-20", "perov-5", "carbon-24"):
        assert f"crystals/{dataset}/csp/diffcsp/k20/seed0" in plan and f"crystals/{dataset}/gen/crysbfn/default/seed0" in plan
        assert FAMILY.dataset_options({}, dataset, "paper")["files"] == [f"{dataset.replace('-', '_')}-{s}.csv"
                                                                         for s in ("train", "val", "test")]
    diffcsp = plan["crystals/mp-20/csp/diffcsp/k20/seed0"].settings
    assert diffcsp["model"] == {"step_lr": 1e-5}
    expected = {"optimizer": "adam", "lr": 1e-3, "epochs": 1000, "batch_size": 256, "lr_schedule": "plateau",
                "plateau_factor": 0.6, "plateau_patience": 30, "min_lr": 1e-4, "grad_clip_value": 0.5, "drop_last": False}
    assert {key: diffcsp["train"][key] for key in expected} == expected
    assert diffcsp["task"]["num_samples"] == 20 and diffcsp["task"]["report_samples"] == [1]
    assert "limit_test" not in diffcsp["task"] and "splits" not in diffcsp["task"]
    crysbfn = plan["crystals/mp-20/csp/crysbfn/k1/seed0"].settings
    assert crysbfn["model"]["num_steps"] == 1000 and crysbfn["train"]["ema_decay"] == 0.995
    assert crysbfn["train"]["optimizer"] == "adamw" and crysbfn["task"]["convention"] == "crysbfn"
    assert plan["crystals/mp-20/csp/crysbfn/k1-steps10/seed0"].settings["model"]["num_steps"] == 10
    assert plan["crystals/mp-20/gen/crysbfn/steps10/seed0"].settings["model"]["num_steps"] == 10
    assert plan["crystals/mp-20/gen/diffcsp/default/seed0"].settings["task"]["num_generated"] == 10000
    for planned in plan.values():
        TrainConfig.from_settings(planned.settings["train"])
        from replibench.families.crystals.models.cdvae import CDVAEConfig

        config_class = {"cdvae": CDVAEConfig, "diffcsp": DiffCSPConfig, "crysbfn": CrysBFNConfig}[planned.run.model]
        config = model_config(config_class, planned.settings["model"], {"task": planned.run.task},
                              name=planned.run.model)
        assert dataclasses.is_dataclass(config)


def test_carbon24_diffcsp_one_sample_row_has_its_own_run_at_the_one_sample_langevin_step():
    """DiffCSP scripts/eval_utils.py: Carbon-24 CSP step_lr 5e-6 for 1 sample, 5e-7 for 20; the other
    datasets use one step for both, so their k1 row still comes from the 20-sample run."""
    plan = _plan("paper")
    k20 = plan["crystals/carbon-24/csp/diffcsp/k20/seed0"].settings
    k1 = plan["crystals/carbon-24/csp/diffcsp/k1/seed0"].settings
    assert k20["model"]["step_lr"] == 5e-7 and k20["task"]["report_samples"] == []
    assert k1["model"]["step_lr"] == 5e-6 and k1["task"]["num_samples"] == 1
    assert k1["train"] == k20["train"]  # same training recipe; only the sampler differs
    for dataset, step in (("mp-20", 1e-5), ("perov-5", 5e-7)):
        assert f"crystals/{dataset}/csp/diffcsp/k1/seed0" not in plan
        settings = plan[f"crystals/{dataset}/csp/diffcsp/k20/seed0"].settings
        assert settings["model"]["step_lr"] == step and settings["task"]["report_samples"] == [1]
    assert plan["crystals/carbon-24/csp/crysbfn/k1/seed0"].settings["model"].get("step_lr") is None
    smoke = _plan("smoke")  # unchanged: one run per model, dataset and task
    assert "crystals/carbon-24/csp/diffcsp/k1/seed0" not in smoke
    assert smoke["crystals/carbon-24/csp/diffcsp/k20/seed0"].settings["task"]["report_samples"] == [1]


def test_extra_conventions_and_overrides_reach_only_their_model():
    plan = _plan("smoke", conventions={"diffcsp": ["crysbfn", "diffcsp"]},
                 overrides={"crysbfn": {"train": {"max_steps": 7}}})
    assert plan["crystals/perov-5/csp/diffcsp/k20/seed0"].settings["task"]["extra_conventions"] == ["crysbfn"]
    assert "extra_conventions" not in plan["crystals/perov-5/csp/crysbfn/k20/seed0"].settings["task"]
    assert plan["crystals/carbon-24/gen/crysbfn/default/seed0"].settings["train"]["max_steps"] == 7
    assert plan["crystals/carbon-24/gen/diffcsp/default/seed0"].settings["train"]["max_steps"] == 1000


def test_config_errors_name_the_key():
    config = load_config(ROOT / "config.yaml")
    bad = copy.deepcopy(config)
    bad["crystals"]["runs"][1]["samples"] = [1]  # gen has no samples
    with pytest.raises(ConfigError, match="crystals.runs\\[1\\]"):
        validate_config(bad)
    bad = copy.deepcopy(config)
    bad["crystals"]["conventions"] = {"diffcsp": ["matbench"]}
    with pytest.raises(ConfigError, match="'matbench' is not allowed; allowed values: cdvae, diffcsp, crysbfn"):
        validate_config(bad)
    with pytest.raises(ConfigError, match="no crysbfn settings for 'mp-20'"):
        FAMILY.run_settings({}, RunSpec("crystals", "mp-20", "gen", "crysbfn", "default", 0, "smoke"))


def _result_rows(variant: str, metrics: dict[str, float], preset: str = "paper") -> list[dict]:
    from replibench.families.crystals.metrics import metric_info_for

    samples = int(variant.removeprefix("k"))
    return [{"family": "crystals", "dataset": "mp-20", "task": "csp", "model": "diffcsp", "variant": variant,
             "variant_values": json.dumps({"samples": samples}), "preset": preset, "seed": 0, "split": "test", "metric": name, "value": value,
             "direction": metric_info_for(name).direction, "unit": metric_info_for(name).unit,
             "data_origin": "official", "steps": 10, "epochs": 1, "max_steps": None, "train_wall_s": 1.0,
             "gpu_hours": 0.0, "run_id": f"crystals/mp-20/csp/diffcsp/{variant}/seed0"} for name, value in metrics.items()]


def test_k1_rows_are_derived_from_the_20_sample_run_and_join_the_papers_numbers():
    from replibench.report import build_leaderboard, load_references

    results = pd.DataFrame(_result_rows("k20", {"match_rate": 77.0, "rmse": 0.05, "match_rate_k1": 51.0,
                                                "rmse_k1": 0.06, "match_rate_k1@crysbfn": 60.0}))
    derived = FAMILY.derived_results(results)
    assert sorted(zip(derived["variant"], derived["metric"], derived["value"])) == [
        ("k1", "match_rate", 51.0), ("k1", "match_rate@crysbfn", 60.0), ("k1", "rmse", 0.06)]
    assert set(derived["variant_values"]) == {'{"samples": 1}'}
    board = build_leaderboard(results, load_references([ROOT / "references" / "crystals.yaml"]))
    row = board[(board["variant"] == "k1") & (board["metric"] == "match_rate")].iloc[0]
    assert row["paper_value"] == 51.49 and row["status"] == "reproduced"  # within 2 points
    row = board[(board["variant"] == "k20") & (board["metric"] == "rmse")].iloc[0]
    assert row["paper_value"] == 0.0492 and row["status"] == "reproduced"
    assert board[board["metric"] == "match_rate@crysbfn"]["paper_value"].isna().all()
    # a run of the k1 variant itself wins over the derived row
    both = pd.DataFrame(_result_rows("k20", {"match_rate_k1": 51.0}) + _result_rows("k1", {"match_rate": 50.0}))
    assert FAMILY.derived_results(both).empty


def test_property_distribution_plot_from_generation_records(tmp_path):
    from replibench.report.plots import ReportRun

    distributions = {"density": {"edges": [1.0, 2.0, 3.0], "generated": [3, 1], "test": [2, 2]},
                     "num_elems": {"values": [1, 2, 3], "generated": [1, 2, 1], "test": [0, 3, 1]}}
    record = {"family": "crystals", "dataset": "perov-5", "task": "gen", "model": "crysbfn", "variant": "default",
              "seed": 0, "preset": "smoke",
              "protocol": {"convention": "crysbfn", "by_convention": {"crysbfn": {"distributions": distributions}}}}
    csp = {**record, "task": "csp", "variant": "k20"}
    runs = [ReportRun(r, tmp_path / "metrics.json", {}) for r in (record, csp)]
    plots = FAMILY.report_plots(runs, None, tmp_path)
    assert [(p.path.name, p.match) for p in plots] == [("property_distributions_perov-5.png",
                                                       {"dataset": "perov-5", "task": "gen"})]
    assert plots[0].path.stat().st_size > 1000 and plots[0].belongs_to({"family": "crystals", **record})


def test_paper_plan_has_cdvae_on_three_datasets_with_its_released_settings():
    """CDVAE's recon/gen/opt at the paper preset: vae.yaml + conf/data/*.yaml values, Langevin 50 x 100 at
    step 1e-4, the opt protocol of evaluate.py, and the released property model for gen/opt scoring."""
    from replibench.families.crystals.models.cdvae import CDVAEConfig

    plan = _plan("paper")
    for dataset, epochs, batch, max_atoms, forcing in (("mp-20", 1000, 256, 20, 500), ("perov-5", 3000, 512, 20, 1500),
                                                       ("carbon-24", 4000, 256, 24, 1000)):
        for task in ("recon", "gen", "opt"):
            planned = plan[f"crystals/{dataset}/{task}/cdvae/default/seed0"]
            settings = planned.settings
            assert (settings["train"]["epochs"], settings["train"]["batch_size"]) == (epochs, batch)
            assert settings["train"]["grad_clip_value"] == 0.5 and settings["train"]["plateau_patience"] == 30
            config = CDVAEConfig(**{**settings["model"], "task": task})
            assert (config.max_atoms, config.teacher_forcing_max_epoch) == (max_atoms, forcing)
            assert (config.num_noise_level, config.n_step_each, config.step_lr) == (50, 100, 1e-4)
            assert config.predict_property == (task == "opt")
            assert settings["task"]["convention"] == "cdvae"
            files = FAMILY.evaluation_files(planned.run, settings)
            if task == "recon":
                assert settings["task"]["sample_batch_size"] == 256 and files == {}
            else:
                name = {"mp-20": "mp20", "perov-5": "perovskite", "carbon-24": "carbon"}[dataset]
                assert sorted(files) == ["property_model_checkpoint", "property_model_hparams",
                                         "property_model_lattice_scaler", "property_model_prop_scaler"]
                assert all(path.startswith(f"data/raw/crystals/{name}-") for path in files.values())
        opt = plan[f"crystals/{dataset}/opt/cdvae/default/seed0"].settings["task"]
        assert (opt["num_starting_points"], opt["num_gradient_steps"], opt["opt_lr"], opt["num_saved_crys"]) == (
            100, 5000, 1e-3, 10)
    # every gen row scores wdist_prop with the property model, DiffCSP's and CrysBFN's too
    assert plan["crystals/mp-20/gen/diffcsp/default/seed0"].settings["task"]["property_model"] == "data/raw/crystals"
    none = _plan("paper", property_models="none")
    assert "property_model" not in none["crystals/mp-20/gen/diffcsp/default/seed0"].settings["task"]
