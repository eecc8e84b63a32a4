"""Config validation messages, the sweep, and the anti-drift contract between schema, registry,
families and modules."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from replibench.config import (coerce_scalar_strings, config_schema, expand_dotted_keys, load_config,
                               parse_settings_json, plan_runs, validate_config)
from replibench.errors import ConfigError
from replibench.registry import DATASETS, FAMILIES, MODELS, TASKS, resolve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config():
    return load_config(ROOT / "config.yaml")


def test_shipped_config_is_valid(config):
    validated = validate_config(config)
    assert validated["preset"] == "smoke" and validated["families"]


def test_unknown_key_names_the_key_and_the_allowed_ones(config):
    config["data"]["mirorr"] = "http://x"
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    message = str(error.value)
    assert "data" in message and "'mirorr'" in message and "allowed keys here: checksums, mirror, workers" in message


def test_unknown_model_names_the_allowed_values(config):
    config["ett"]["runs"][0]["models"] = ["naive", "dlinaer"]
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    message = str(error.value)
    assert "ett.runs[0].models[1]" in message and "'dlinaer'" in message
    assert "naive, naive-mean, dlinear, timesnet" in message


def test_unknown_preset_and_missing_section(config):
    config["preset"] = "full"
    with pytest.raises(ConfigError, match="preset: 'full' is not allowed; allowed values: smoke, paper"):
        validate_config(config)
    config["preset"] = "smoke"
    del config["ett"]
    with pytest.raises(ConfigError, match="no 'ett' section"):
        validate_config(config)


def test_dotted_and_string_valued_overrides_as_snakemake_passes_them(config):
    config["data.mirror"] = "http://127.0.0.1:8000"
    config["ett.overrides"] = {"dlinear": {"train": {"lr": "0.005"}}}  # BaseLoader leaves scalars as strings
    validated = validate_config(config)
    assert validated["data"]["mirror"] == "http://127.0.0.1:8000" and validated["data"]["workers"] == 2
    assert validated["ett"]["overrides"]["dlinear"]["train"]["lr"] == 0.005
    assert expand_dotted_keys({"a.b.c": 1, "a": {"d": 2}}) == {"a": {"b": {"c": 1}, "d": 2}}
    assert coerce_scalar_strings({"x": ["1", "null", "true", "http://h:1", "1e-3"]}) == {"x": [1, None, True, "http://h:1", 0.001]}


def test_smoke_plan_covers_the_leaderboard_the_issue_asks_for(config):
    runs = {p.run.run_id for p in plan_runs(validate_config(config))}
    for dataset in ("etth1", "etth2", "ettm1", "ettm2"):
        for horizon in (96, 192, 336, 720):
            for model in ("naive", "dlinear"):
                assert f"ett/{dataset}/forecast/{model}/h{horizon}/seed2021" in runs
    assert "ett/etth1/forecast/timesnet/h96/seed2021" in runs
    paper = copy.deepcopy(config)
    paper["preset"] = "paper"
    paper_runs = {p.run.run_id for p in plan_runs(validate_config(paper))}
    assert "ett/ettm2/forecast/timesnet/h720/seed2021" in paper_runs


def test_default_run_reproduces_the_cpu_rows_at_the_paper_preset(config):
    """The shipped config pins the ETT baselines to `paper` (3 seeds) whatever the global preset."""
    planned = {p.run.run_id: p.run for p in plan_runs(validate_config(config))}
    for dataset in ("etth1", "etth2", "ettm1", "ettm2"):
        for horizon in (96, 192, 336, 720):
            for seed in (2021, 2022, 2023):
                assert planned[f"ett/{dataset}/forecast/dlinear/h{horizon}/seed{seed}"].preset == "paper"
    assert planned["ett/etth1/impute/naive/mask0.125/seed2022"].preset == "paper"
    assert planned["ett/etth1/forecast/timesnet/h96/seed2021"].preset == "smoke"


def test_preset_pin_and_entry_seeds(config):
    config["ett"]["runs"] = [
        {"task": "forecast", "preset": "paper", "seeds": [1, 2], "models": ["dlinear"], "datasets": ["etth1"],
         "horizons": [96]},
        {"task": "forecast", "presets": ["paper"], "models": ["timesnet"], "datasets": ["etth1"], "horizons": [96]},
        {"task": "forecast", "models": ["naive"], "datasets": ["etth2"], "horizons": [96]},
    ]
    config["families"] = ["ett"]
    smoke = {p.run.run_id: p for p in plan_runs(validate_config(config))}
    assert {run: p.run.preset for run, p in smoke.items()} == {
        "ett/etth1/forecast/dlinear/h96/seed1": "paper", "ett/etth1/forecast/dlinear/h96/seed2": "paper",
        "ett/etth2/forecast/naive/h96/seed2021": "smoke"}
    # the pinned run gets the paper's settings (validation batch 32), not smoke's (256)
    assert '"val_batch_size":32' in smoke["ett/etth1/forecast/dlinear/h96/seed1"].settings_json.replace(" ", "")
    config["preset"] = "paper"
    paper = {p.run.run_id: p.run.preset for p in plan_runs(validate_config(config))}
    assert paper["ett/etth1/forecast/timesnet/h96/seed2021"] == "paper"
    assert paper["ett/etth1/forecast/dlinear/h96/seed1"] == "paper"
    config["ett"]["runs"][0]["preset"] = "gpu"
    with pytest.raises(ConfigError, match="preset"):
        validate_config(config)


def test_changing_one_models_setting_changes_only_that_models_params(config):
    before = {p.run.run_id: p.settings_json for p in plan_runs(validate_config(config))}
    config["ett"]["overrides"] = {"dlinear": {"train": {"lr": 0.005}}}
    after = {p.run.run_id: p.settings_json for p in plan_runs(validate_config(config))}
    changed = {run for run in before if before[run] != after[run]}
    assert changed and all("/dlinear/" in run for run in changed)
    assert len(changed) == sum("/dlinear/" in run for run in before)


def test_settings_json_round_trip(config):
    planned = plan_runs(validate_config(config))[0]
    run, settings = parse_settings_json(planned.settings_json)
    assert run == planned.run and settings == planned.settings
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_settings_json("{not json")


def test_variants_are_typed_values_and_their_names_are_spelled_from_them(config):
    """Every planned run (both presets) carries its variant as typed values; the name in its path
    is the family's spelling of exactly those values, and both survive the job's JSON."""
    expected = {("ett", "forecast"): {"horizon": int}, ("ett", "impute"): {"mask_ratio": float},
                ("ett", "zeroshot"): {"horizon": int}, ("ett", "zeroshot-lsf"): {"horizon": int},
                ("crystals", "csp"): {"samples": int}, ("crystals", "gen"): {}, ("crystals", "recon"): {}, ("crystals", "opt"): {},
                ("lra", "state-tracking"): {"eigenvalue_low": int, "eigenvalue_high": int},
                ("lra", "lra-classify"): {}, ("oc20", "s2ef"): {}, ("oc20", "is2re"): {}}
    seen = set()
    for preset in ("smoke", "paper"):
        for planned in plan_runs(validate_config({**config, "preset": preset})):
            run = planned.run
            family = resolve("family", run.family)
            assert family.variant_name(run.task, run.values) == run.variant
            types = {name: type(value) for name, value in run.values.items() if name != "steps"}
            if run.model.startswith("equiformer-v2"):  # the OC20 models with one run per maximum degree L
                assert types == {"lmax": int} and run.variant == f"l{run.values['lmax']}", run.run_id
            else:
                assert types == expected[run.family, run.task], run.run_id
            assert parse_settings_json(planned.settings_json)[0].values == run.values
            seen.add((run.family, run.task))
    assert seen == set(expected)
    ett = resolve("family", "ett").make_run("etth1", "forecast", "dlinear", {"horizon": 336}, 1, "paper")
    assert (ett.variant, ett.as_dict()["variant_values"]) == ("h336", {"horizon": 336})
    with pytest.raises(ValueError, match="horizon"):
        resolve("family", "ett").make_run("etth1", "forecast", "dlinear", {"steps": 3}, 1)
    with pytest.raises(ValueError, match="names none"):
        resolve("family", "lra").make_run("listops", "lra-classify", "s4d-legs", {"horizon": 96}, 1)
    with pytest.raises(ValueError, match=r"oc20/s2ef: unknown variant values \{'horizon': 96\}; only lmax"):
        resolve("family", "oc20").make_run("s2ef-2m", "s2ef", "schnet", {"horizon": 96}, 1)


def _schema_enum(*path):
    node = config_schema()
    for key in path:
        node = node[key]
    return node


def test_registered_names_are_declared_once_by_the_families():
    """The schema lists no dataset, task or model name itself: its ``x-registry`` markers are filled
    from the families when it is loaded, so a name exists where its code is, and only there."""
    import yaml

    from replibench.config import schema_text

    registered = set(FAMILIES) | set(DATASETS) | set(TASKS) | set(MODELS)

    def literal_enums(node, path=()):
        if isinstance(node, dict):
            if "enum" in node and path[-2:] != ("crystals_conventions", "items"):  # convention names, not models
                yield path, set(map(str, node["enum"]))
            for key, value in node.items():
                yield from literal_enums(value, (*path, key))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                yield from literal_enums(item, (*path, str(index)))

    raw = yaml.safe_load(schema_text("config.schema.yaml"))
    assert [path for path, names in literal_enums(raw) if names & registered] == []
    schema = config_schema()
    assert schema["properties"]["families"]["items"]["enum"] == list(FAMILIES)
    families = {name: resolve("family", name) for name in FAMILIES}
    for name, family in families.items():
        assert family.name == name
        assert set(family.datasets) <= set(DATASETS) and set(family.tasks) <= set(TASKS)
        for models in family.models.values():
            assert set(models) <= set(MODELS)
    branches = schema["$defs"]["ett"]["properties"]["runs"]["items"]["allOf"]
    assert {b["if"]["properties"]["task"]["const"]: b["then"]["properties"]["models"]["items"]["enum"]
            for b in branches} == {task: list(models) for task, models in families["ett"].models.items()}
    lra = families["lra"]
    assert set(lra.datasets) == set().union(*map(set, lra.task_datasets.values()))
    from replibench.families.lra.family import EIGENVALUE_RANGES

    ranges = schema["$defs"]["lra"]["properties"]["runs"]["items"]["allOf"][1]["then"]["properties"][
        "eigenvalue_ranges"]["items"]["enum"]
    assert set(ranges) == set(EIGENVALUE_RANGES)
    generated = set(schema["$defs"]["lra"]["properties"]["generated_data"]["properties"])
    assert generated == {name for name in lra.datasets if resolve("dataset", name).generated}
    _crystals_schema_agrees(schema, families["crystals"])


def _crystals_schema_agrees(schema, family):
    from replibench.families.crystals.family import PAPER_CONVENTION, STEP_FIELD
    from replibench.families.crystals.metrics.conventions import CONVENTIONS

    crystals = schema["$defs"]["crystals"]
    assert schema["$defs"]["crystals_datasets"]["items"]["enum"] == list(family.datasets)
    models = set().union(*family.models.values())
    assert set(schema["$defs"]["crystals_models"]["items"]["enum"]) == models == set(PAPER_CONVENTION) == set(STEP_FIELD)
    assert set(crystals["properties"]["runs"]["items"]["properties"]["task"]["enum"]) == set(family.tasks)
    assert set(crystals["properties"]["overrides"]["propertyNames"]["enum"]) == models
    assert set(crystals["properties"]["conventions"]["propertyNames"]["enum"]) == models
    assert schema["$defs"]["crystals_conventions"]["items"]["enum"] == list(CONVENTIONS)
    assert set(PAPER_CONVENTION.values()) <= set(CONVENTIONS)


def test_oc20_synthetic_options_schema_matches_the_generator(config):
    from replibench.families.oc20.datasets.synthetic import DEFAULT_OPTIONS, synthetic_splits

    options = config_schema()["$defs"]["oc20"]["properties"]["synthetic_data"]["properties"]
    assert set(options) == set(DEFAULT_OPTIONS)
    family = resolve("family", "oc20")
    config["oc20"]["synthetic_data"] = {"train_systems": 5}
    resolved = family.dataset_options(validate_config(config)["oc20"], "s2ef-synthetic-emt", "smoke")
    assert resolved == {**DEFAULT_OPTIONS, "train_systems": 5} and len(synthetic_splits(resolved)) == 5
    assert family.dataset_options(config["oc20"], "s2ef-2m", "paper") == {}
    config["oc20"]["synthetic_data"] = {"systems": 5}
    with pytest.raises(ConfigError, match="'systems'"):
        validate_config(config)


def test_oc20_plan_and_wrong_task_dataset(config):
    smoke = {p.run.run_id: p for p in plan_runs(validate_config(config))}
    for model in ("schnet", "equivariant-cg", "equivariant-gaunt"):
        assert f"oc20/s2ef-synthetic-emt/s2ef/{model}/default/seed0" in smoke
    paper = copy.deepcopy(config)
    paper["preset"] = "paper"
    planned = {p.run.run_id: p for p in plan_runs(validate_config(paper))}
    schnet = planned["oc20/s2ef-2m/s2ef/schnet/default/seed0"].settings
    assert schnet["train"]["batch_size"] == 192 and schnet["train"]["milestones"] == [52083, 83333, 104166]
    assert schnet["task"]["force_coefficient"] == 100.0 and schnet["model"] == {}
    assert "oc20/is2re-all/is2re/dimenet-pp/default/seed0" in planned
    config["oc20"]["runs"] = [{"task": "s2ef", "datasets": ["is2re-all"], "models": ["schnet"]}]
    with pytest.raises(ConfigError, match="is2re-all"):
        validate_config(config)
    config["oc20"]["runs"] = [{"task": "is2re", "datasets": ["is2re-all"], "models": ["equivariant-cg"]}]
    with pytest.raises(ConfigError, match="'equivariant-cg' is not allowed"):
        validate_config(config)


def test_oc20_equiformer_runs_one_per_max_degree(config):
    """Table 1's EquiformerV2 rows (with and without Gaunt-Selfmix) at L = 4 and 6: fairchem's
    S2EF-2M config with lmax_list = [L], its radius graph (12 Å, 20 neighbours) and optimiser."""
    paper = copy.deepcopy(config)
    paper["preset"] = "paper"
    planned = {p.run.run_id: p for p in plan_runs(validate_config(paper))}
    for model in ("equiformer-v2", "equiformer-v2-gaunt-selfmix"):
        for degree in (4, 6):
            settings = planned[f"oc20/s2ef-2m/s2ef/{model}/l{degree}/seed0"].settings
            assert settings["model"] == {"lmax_list": [degree], "mmax_list": [2]}
            assert settings["task"]["graph"] == {"mode": "per_batch", "cutoff": 12.0, "max_neighbors": 20}
            train = settings["train"]
            assert (train["lr"], train["weight_decay"], train["batch_size"], train["epochs"]) == (4e-4, 1e-3, 64, 30)
            assert (train["lr_schedule"], train["warmup_steps"], train["lr_min_factor"]) == ("fairchem-cosine", 3125, 0.01)
    smoke = {p.run.run_id: p for p in plan_runs(validate_config(config))}
    smoke_run = smoke["oc20/s2ef-synthetic-emt/s2ef/equiformer-v2-gaunt-selfmix/l4/seed0"]
    assert smoke_run.settings["model"]["lmax_list"] == [4]
    assert smoke_run.settings["task"]["graph"] == {"cutoff": 12.0, "max_neighbors": 20}
    without_degrees = copy.deepcopy(config)
    without_degrees["oc20"]["runs"] = [{"task": "s2ef", "datasets": ["s2ef-2m"], "models": ["equiformer-v2"]}]
    with pytest.raises(ConfigError, match="equiformer-v2: the run entry needs max_degrees"):
        plan_runs(validate_config(without_degrees))
    schnet_with_degrees = copy.deepcopy(config)
    schnet_with_degrees["oc20"]["runs"] = [{"task": "s2ef", "datasets": ["s2ef-2m"], "models": ["schnet"],
                                            "max_degrees": [4]}]
    with pytest.raises(ConfigError, match="schnet: the run entry takes no max_degrees"):
        plan_runs(validate_config(schnet_with_degrees))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_has_a_config_dataclass(name):
    model_class = resolve("model", name)
    assert dataclasses.is_dataclass(model_class.Config)
    model_class(model_class.Config())  # defaults build a model


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_registered_dataset_declares_files_and_preprocess(name):
    spec = resolve("dataset", name)
    assert spec.name == name and spec.family in FAMILIES
    assert callable(spec.preprocess)
    family = resolve("family", spec.family)
    assert name in family.datasets + family.rehearsal_datasets
    assert name not in family.datasets or name not in family.rehearsal_datasets
    for remote in spec.remote_files:
        assert remote.mirror_path.startswith(("ett/", "perov_5/", "carbon_24/", "mp_20/", "mpts_52/", "lra/", "oc20/"))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_registered_task_names_itself_and_its_metrics(name):
    task = resolve("task", name)
    assert task.name == name and task.metric_info()


def test_unknown_registry_name_lists_the_allowed():
    with pytest.raises(ConfigError, match="unknown model 'nope'; allowed: .*dlinear, .*naive"):
        resolve("model", "nope")
