"""Issue 12 item 5: every setting a run uses is typed, range-checked and known when the workflow is
planned (``replibench config`` / ``snakemake -n``), not when the job runs after a queue wait.

Each bad override must stop planning with a message naming the run, the key, the value and what
is allowed — before any file is written.
"""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from replibench.config import load_config, plan_runs, validate_config
from replibench.errors import ConfigError
from replibench.settings import TASK_SETTINGS, model_config_fields, type_ok

ROOT = Path(__file__).resolve().parents[2]
DLINEAR_H96 = "ett/etth1/forecast/dlinear/h96/seed2021"


def repo_config(preset: str = "smoke") -> dict:
    return {**load_config(ROOT / "config.yaml"), "preset": preset}


def with_override(family: str, model: str, section: str, values: dict, preset: str = "smoke") -> dict:
    config = copy.deepcopy(repo_config(preset))
    config[family]["overrides"] = {model: {section: values}}
    return config


def plan_error(config: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        plan_runs(validate_config(config))
    return str(caught.value)


# (family, model, section, override, words the message must hold: run, key = value, what is allowed)
BAD_OVERRIDES = [
    ("ett", "dlinear", "train", {"lr": -1}, [DLINEAR_H96, "train.lr = -1", "> 0"]),
    ("ett", "dlinear", "train", {"batch_size": 0}, [DLINEAR_H96, "train.batch_size = 0", ">= 1"]),
    ("ett", "dlinear", "train", {"batch_size": -4}, [DLINEAR_H96, "train.batch_size = -4", ">= 1"]),
    ("ett", "dlinear", "train", {"epochs": -1}, [DLINEAR_H96, "train.epochs = -1", ">= 1"]),
    ("ett", "dlinear", "train", {"max_steps": 0}, [DLINEAR_H96, "train.max_steps = 0", ">= 1"]),
    ("ett", "dlinear", "train", {"optimizer": "adamm"}, [DLINEAR_H96, "train.optimizer = 'adamm'", "'adam', 'adamw'"]),
    ("ett", "dlinear", "train", {"lr_schedule": "cosin"}, ["train.lr_schedule = 'cosin'", "'cosine'"]),
    ("ett", "dlinear", "train", {"lr": "fast"}, ["train.lr = 'fast'", "finite number"]),
    ("ett", "dlinear", "train", {"lr": float("nan")}, ["train.lr = nan", "finite number"]),
    ("ett", "dlinear", "train", {"epochs": 2.5}, ["train.epochs = 2.5", "integer"]),
    ("ett", "dlinear", "train", {"drop_last": "maybe"}, ["train.drop_last = 'maybe'", "true or false"]),
    ("ett", "dlinear", "train", {"amp": "fp8"}, ["train.amp = 'fp8'", "'bf16'"]),
    ("ett", "dlinear", "train", {"device": "tpu"}, ["train.device = 'tpu'", "'cuda:<index>'"]),
    ("ett", "dlinear", "train", {"ema_decay": 1.0}, ["train.ema_decay = 1.0", "[0, 1)"]),
    ("ett", "dlinear", "train", {"micro_batches": 64}, ["train.micro_batches = 64", "<= batch_size (32)"]),
    ("ett", "dlinear", "train", {"milestones": [300, 100]}, ["train.milestones = [300, 100]", "increasing"]),
    ("ett", "dlinear", "train", {"learning_rate": 0.1}, ["train.learning_rate: unknown key", "allowed keys:", "lr"]),
    ("ett", "dlinear", "task", {"eval_batchsize": 8}, [DLINEAR_H96, "task.eval_batchsize: unknown key",
                                                       "eval_batch_size"]),
    ("ett", "dlinear", "task", {"eval_batch_size": 0}, ["task.eval_batch_size = 0", ">= 1"]),
    ("ett", "dlinear", "task", {"pred_len": 5}, [DLINEAR_H96, "task.pred_len = 5", "variant 'h96'", "fixes it to 96"]),
    ("ett", "naive-mean", "task", {"mask_ratio": 0.5}, ["ett/etth1/impute/naive-mean/mask0.125/seed2021",
                                                      "task.mask_ratio = 0.5", "fixes it to 0.125"]),
    ("ett", "timesnet", "model", {"d_model": "wide"}, ["model.d_model = 'wide'", "integer"]),
    ("ett", "timesnet", "model", {"dmodel": 8}, ["model.dmodel: unknown key", "d_model"]),
    ("crystals", "diffcsp", "task", {"num_samples": 3}, ["crystals/perov-5/csp/diffcsp/k20/seed0",
                                                         "task.num_samples = 3", "fixes it to 20"]),
    ("crystals", "diffcsp", "task", {"convention": "mine"}, ["task.convention = 'mine'", "'cdvae'"]),
    ("crystals", "diffcsp", "task", {"sample_batch_size": -1}, ["task.sample_batch_size = -1", ">= 1"]),
    ("lra", "s4d-legs", "model", {"s4d": {"d_state": "x"}}, ["model.s4d.d_state = 'x'", "integer"]),
    ("lra", "s4d-legs", "model", {"s4d": {"dstate": 4}}, ["model.s4d.dstate: unknown key", "d_state"]),
    ("lra", "mamba", "model", {"negative_eigenvalues": True}, ["lra/parity/state-tracking/mamba/range-0-1/seed0",
                                                              "model.negative_eigenvalues = True", "fixes it to False"]),
    ("lra", "transformer", "task", {"max_length": 0}, ["task.max_length = 0", ">= 1"]),
    ("oc20", "schnet", "task", {"graph": {"mode": "lazy"}}, ["task.graph.mode = 'lazy'", "'per_batch'"]),
    ("oc20", "schnet", "task", {"eval_batch_size": -2}, ["task.eval_batch_size = -2", ">= 1"]),
    ("oc20", "schnet", "task", {"test_splits": ["test_id"]}, ["oc20/", "test_splits", "hidden"]),
    ("oc20", "schnet", "model", {"cutof": 5.0}, ["model.cutof: unknown key", "hidden_channels"]),
]


@pytest.mark.parametrize("family, model, section, values, words", BAD_OVERRIDES,
                         ids=[f"{f}-{m}-{s}-{next(iter(v))}" for f, m, s, v, _ in BAD_OVERRIDES])
def test_bad_override_stops_planning_naming_run_key_value_and_allowed(family, model, section, values, words):
    message = plan_error(with_override(family, model, section, values))
    for word in words:
        assert word in message, message


def test_config_cli_refuses_a_bad_override_before_anything_is_written(tmp_path):
    result = subprocess.run([str(Path(sys.executable).parent / "replibench"), "config", "--config", str(ROOT / "config.yaml"),
                             "--set", "ett.overrides.dlinear.train.batch_size=-4"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{DLINEAR_H96}: train.batch_size = -4: must be >= 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # planning writes nothing


def test_snakemake_dry_run_stops_on_a_bad_override_and_writes_no_outputs(tmp_path):
    """The issue's reproduction: the nested --config form that Snakemake parses with YAML's
    BaseLoader (every scalar a string) still reaches the typed check, and no job is planned."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(repo_config()))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
                             "-n", "--config", "ett={overrides: {dlinear: {train: {lr: -1}}}}"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert f"{DLINEAR_H96}: train.lr = -1: must be > 0" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("preset", ["smoke", "paper"])
def test_every_family_preset_passes_validation(preset):
    planned = plan_runs(validate_config(repo_config(preset)))
    assert {p.run.family for p in planned} == {"ett", "crystals", "lra", "oc20"}
    assert all(p.settings["train"] and set(p.settings) <= {"task", "model", "train"} for p in planned)


def test_every_registered_task_declares_typed_settings():
    from replibench.registry import TASKS

    assert set(TASKS) == set(TASK_SETTINGS)


def test_crystal_conventions_match_the_task():
    from replibench.settings import CrystalSettings
    from replibench.families.crystals.tasks.csp_gen import CONVENTIONS

    assert CrystalSettings.RULES["convention"].ok("cdvae")
    assert all(CrystalSettings.RULES["convention"].ok(name) for name in CONVENTIONS)
    assert not CrystalSettings.RULES["convention"].ok("other")


def _real_fields(config_class) -> dict:
    fields = {}
    for item in dataclasses.fields(config_class):
        default = item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default
        fields[item.name] = (_real_fields(type(default)) if dataclasses.is_dataclass(default)
                             else item.type if isinstance(item.type, str) else item.type.__name__)
    return fields


def test_model_fields_read_from_source_equal_the_imported_config_dataclasses():
    """The plan reads each model's Config from its source (no torch); it must be the real one."""
    pytest.importorskip("torch_geometric")
    from replibench.registry import MODELS, resolve

    for name in MODELS:
        assert model_config_fields(name) == _real_fields(resolve("model", name).Config), name


@pytest.mark.parametrize("value, annotation, ok", [
    (3, "int", True), (True, "int", False), (3, "float", True), (float("inf"), "float", False),
    (None, "int | None", True), ("a", "int | None", False), ([1, 2], "tuple[int, ...]", True),
    ([1, "a"], "list[int]", False), ({"a": 1}, "dict[str, str]", True), ("x", "Any", True),
])
def test_type_check_by_annotation(value, annotation, ok):
    assert type_ok(value, annotation) is ok


def test_step_count_of_a_steps_variant_cannot_be_overridden():
    """Paper preset: CrysBFN's ``k1-steps10`` row stands for 10 sampling steps."""
    message = plan_error(with_override("crystals", "crysbfn", "model", {"num_steps": 50}, preset="paper"))
    assert "crystals/mp-20/csp/crysbfn/k1-steps10/seed0: model.num_steps = 50" in message
    assert "fixes it to 10" in message


def test_a_valid_override_still_plans_and_reaches_the_settings():
    planned = plan_runs(validate_config(with_override("ett", "dlinear", "train", {"lr": 0.005, "batch_size": 64})))
    dlinear = [p for p in planned if p.run.model == "dlinear"]
    assert dlinear and all(p.settings["train"]["lr"] == 0.005 and p.settings["train"]["batch_size"] == 64
                           for p in dlinear)


# one bad override per task, each through `snakemake -n` on a config of that task's runs only:
# (task, family, preset, model, section, override, words of the message)
BAD_OVERRIDE_PER_TASK = [
    ("forecast", "ett", "smoke", "dlinear", "train", {"lr": -1}, ["/forecast/dlinear/", "train.lr = -1", "> 0"]),
    ("impute", "ett", "smoke", "naive-mean", "task", {"mask_ratio": 0.5}, ["/impute/naive-mean/", "fixes it to"]),
    ("csp", "crystals", "smoke", "diffcsp", "task", {"convention": "mine"}, ["/csp/diffcsp/", "'cdvae'"]),
    ("gen", "crystals", "smoke", "crysbfn", "task", {"num_generated": 0}, ["/gen/crysbfn/", "task.num_generated = 0"]),
    ("lra-classify", "lra", "smoke", "s4d-legs", "model", {"s4d": {"dstate": 4}}, ["/lra-classify/s4d-legs/",
                                                                                 "model.s4d.dstate: unknown key"]),
    ("state-tracking", "lra", "smoke", "mamba", "train", {"epochs": 0}, ["/state-tracking/mamba/",
                                                                      "train.epochs = 0"]),
    ("s2ef", "oc20", "smoke", "schnet", "task", {"graph": {"mode": "lazy"}}, ["/s2ef/schnet/", "'per_batch'"]),
    ("is2re", "oc20", "paper", "dimenet-pp", "model", {"cutof": 5.0}, ["/is2re/dimenet-pp/", "model.cutof: unknown key"]),
]


@pytest.mark.workflow
@pytest.mark.parametrize("task, family, preset, model, section, values, words", BAD_OVERRIDE_PER_TASK,
                         ids=[row[0] for row in BAD_OVERRIDE_PER_TASK])
def test_snakemake_dry_run_rejects_a_bad_override_of_every_task(tmp_path, task, family, preset, model, section,
                                                                values, words):
    config = repo_config(preset)
    config["families"] = [family]
    config[family]["runs"] = [entry for entry in config[family]["runs"] if entry["task"] == task]
    assert config[family]["runs"], f"config.yaml has no {task} entry"
    config[family]["overrides"] = {model: {section: values}}
    for other in ("ett", "crystals", "lra", "oc20"):
        if other != family:
            config.pop(other, None)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
                             "-n"], capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    for word in words:
        assert word in output, output[-3000:]
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()
