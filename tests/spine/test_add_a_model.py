"""Adding a model to an existing family takes exactly its file and one registry line
(CONTRIBUTING.md's worked example): the family lists it for its task, the config schema allows it,
planning type-checks its settings from the file's Config, and it trains and is scored."""

from __future__ import annotations

from pathlib import Path

import pytest

from replibench import registry
from replibench.config import config_schema, family_object, load_config, plan_runs, validate_config
from replibench.families.ett.datasets.ett import preprocess
from replibench.errors import ConfigError
from replibench.results import read_metrics
from replibench.stages import evaluate_stage, train_stage

ROOT = Path(__file__).resolve().parents[2]
TOY = f"{__package__}.toy_forecaster:ToyForecaster"


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(registry.MODELS, "toy-linear", TOY)  # the one registry line


def _config(overrides: dict) -> dict:
    config = load_config(ROOT / "config.yaml")
    config["families"] = ["ett"]
    for other in ("crystals", "lra", "oc20"):
        config.pop(other, None)
    config["ett"] = {"seeds": [2021], "overrides": overrides,
                     "runs": [{"task": "forecast", "models": ["toy-linear"], "datasets": ["etth1"], "horizons": [96]}]}
    return config


def test_the_family_and_the_schema_know_the_new_model(toy_registered):
    assert family_object("ett").models["forecast"][-1] == "toy-linear"
    assert "toy-linear" not in family_object("ett").models["impute"]  # its TASKS say forecast only
    forecast = config_schema()["$defs"]["ett"]["properties"]["runs"]["items"]["allOf"][0]["then"]
    assert "toy-linear" in forecast["properties"]["models"]["items"]["enum"]


def test_its_settings_are_checked_when_the_run_is_planned(toy_registered):
    with pytest.raises(ConfigError, match="model.width: unknown key"):
        plan_runs(validate_config(_config({"toy-linear": {"model": {"width": 8}}})))


def test_it_trains_and_is_scored_through_the_pipeline(toy_registered, shared_data, tmp_path):
    [planned] = plan_runs(validate_config(_config({"toy-linear": {"train": {"max_steps": 30}}})))
    assert planned.run.run_id == "ett/etth1/forecast/toy-linear/h96/seed2021"
    data = tmp_path / "etth1"
    preprocess(shared_data / "ett" / "ETTh1.csv", data, dataset="etth1")
    run = tmp_path / "run"
    summary = train_stage(settings_json=planned.settings_json, data_dir=data, out_model=run / "model.pt",
                          out_summary=run / "train.json", checkpoint=run / "last.pt", progress=False)
    assert summary["steps"] == 30
    evaluate_stage(settings_json=planned.settings_json, data_dir=data, model_path=run / "model.pt",
                   train_summary=run / "train.json", out_metrics=run / "metrics.json",
                   out_predictions=run / "predictions.parquet", lock_file=ROOT / "requirements.lock")
    record = read_metrics(run / "metrics.json")  # schema-valid, like every model's
    assert record["model"] == "toy-linear" and 0 < record["metrics"]["mse"] < 5


def test_one_precedence_rule_for_data_facts_and_settings():
    """families/task.py model_config: facts from the data, the rest from settings; a setting that
    contradicts a fact is an error; None in the settings stands for the data's value."""
    from dataclasses import dataclass

    from replibench.families.task import model_config

    @dataclass
    class Config:
        enc_in: int = 7
        vocab_size: int | None = None
        width: int = 4

    assert model_config(Config, {"width": 8}, {"enc_in": 3, "missing_field": 1}, name="m") == Config(3, None, 8)
    assert model_config(Config, {"vocab_size": None}, {"vocab_size": 18}, name="m").vocab_size == 18
    assert model_config(Config, {"enc_in": 3}, {"enc_in": 3}, name="m").enc_in == 3  # the same value is fine
    with pytest.raises(ConfigError, match=r"model.enc_in = 5 contradicts the data, which fixes it to 3"):
        model_config(Config, {"enc_in": 5}, {"enc_in": 3}, name="m")
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        model_config(Config, {"depth": 2}, {}, name="m")
