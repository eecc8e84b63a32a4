"""Load and validate ``config.yaml``; expand it into the runs the workflow must produce.

Imported by the Snakefile, so only light libraries here (yaml, jsonschema).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from replibench.errors import ConfigError
from replibench.runs import RunSpec


def schema_text(name: str) -> str:
    return resources.files("replibench").joinpath("schemas", name).read_text(encoding="utf-8")


def config_schema() -> dict[str, Any]:
    """The config schema with its ``{x-registry: <path>}`` name lists filled from the registry's
    families (:func:`registry_names`): names are declared once, where the code is."""
    import yaml

    return fill_registry_names(yaml.safe_load(schema_text("config.schema.yaml")))


def registry_names(path: str) -> list[str]:
    """The names a schema's ``x-registry`` path stands for, in the families' own order:
    ``families``; ``<family>.datasets`` / ``.tasks``; ``<family>.models`` (every model of the
    family) or ``<family>.models.<task>``; ``<family>.task_datasets.<task>``."""
    from replibench.registry import FAMILIES

    if path == "families":
        return list(FAMILIES)
    family_name, _, rest = path.partition(".")
    kind, _, task = rest.partition(".")
    family = family_object(family_name)
    if kind in ("datasets", "tasks") and not task:
        return list(getattr(family, kind))
    if kind == "models" and not task:
        return list(dict.fromkeys(model for models in family.models.values() for model in models))
    if kind in ("models", "task_datasets") and task:
        return list(getattr(family, kind)[task])
    raise ConfigError(f"config schema: x-registry {path!r} is not families or <family>.datasets|tasks|models"
                      "[.<task>] or <family>.task_datasets.<task>")


def fill_registry_names(node: Any) -> Any:
    """``node`` with every ``{x-registry: path, …}`` mapping turned into ``{enum: [names], …}``."""
    if isinstance(node, dict):
        filled = {key: fill_registry_names(value) for key, value in node.items() if key != "x-registry"}
        if "x-registry" in node:
            filled["enum"] = registry_names(node["x-registry"])
        return filled
    if isinstance(node, list):
        return [fill_registry_names(item) for item in node]
    return node


def _strict_yaml_loader():
    """A SafeLoader that refuses a key repeated in one mapping (PyYAML keeps the last silently, so
    ``lr: 0.1`` further down a section would quietly win over the ``lr`` a reader sees first)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key; construct_mapping below reports it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first at line {first.line + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictLoader


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a config file; a YAML syntax error or a duplicated key names its line and column."""
    import yaml

    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:  # a stream, so error marks name the file
            config = yaml.load(handle, Loader=_strict_yaml_loader())  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config


def check_config_files(paths: list[str | Path]) -> None:
    """Load each existing config file with :func:`load_config` (for its errors only): the Snakefile
    calls this before Snakemake reads them, so a syntax error names its line and a duplicated key is
    refused under ``snakemake`` as it is under ``replibench config``."""
    for path in paths:
        if Path(path).is_file():
            load_config(path)


def expand_dotted_keys(config: dict[str, Any]) -> dict[str, Any]:
    """Turn ``{"data.mirror": x}`` (what ``snakemake --config data.mirror=x`` sets) into nested keys."""
    from replibench.families.base import deep_merge

    result: dict[str, Any] = {}
    dotted: list[tuple[str, Any]] = []
    for key, value in config.items():
        if isinstance(key, str) and "." in key:
            dotted.append((key, value))
        else:
            result[key] = value
    for key, value in dotted:
        nested: Any = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        result = deep_merge(result, nested)
    return result


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def coerce_scalar_strings(value: Any) -> Any:
    """Re-read string leaves as YAML scalars: ``snakemake --config 'data={workers: 4}'`` parses nested
    values with YAML's BaseLoader, which leaves every scalar a string ("4", "null", "true")."""
    import yaml

    if isinstance(value, dict):
        return {key: coerce_scalar_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [coerce_scalar_strings(item) for item in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if parsed is None or isinstance(parsed, (bool, int, float)):
            return parsed
        if _FLOAT.fullmatch(value):  # YAML 1.1 reads "1e-3" as a string
            return float(value)
        return value
    return value


def _error_path(error) -> str:
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else (f".{part}" if parts else str(part)))
    return "".join(parts) or "(top level)"


def validate_config(config: dict[str, Any], source: str = "config.yaml") -> dict[str, Any]:
    """Validate against the schema; return the config with dotted keys expanded.

    The error names the key path and, for a wrong name, the allowed values — one message.
    """
    import jsonschema

    config = coerce_scalar_strings(expand_dotted_keys(copy.deepcopy(config)))
    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(list(e.absolute_path)), str(e.message)))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        if error.validator == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            message = f"{error.message}; allowed keys here: {', '.join(allowed)}"
        elif error.validator == "enum":
            message = f"{error.instance!r} is not allowed; allowed values: {', '.join(map(str, error.validator_value))}"
        else:
            message = error.message
        raise ConfigError(f"{source}: {_error_path(error)}: {message}")
    for family in config["families"]:
        if family not in config:
            raise ConfigError(f"{source}: families lists {family!r} but there is no {family!r} section")
    check_data_section(config["data"], source)
    return config


def check_data_section(data: dict[str, Any], source: str = "config.yaml") -> None:
    """What the schema cannot say about ``data``, checked before any job is planned.

    * ``mirror``: an ``http://``/``https://`` URL or an existing folder (nothing else is fetched);
    * ``checksums``: each key names a declared remote file (``<dataset folder>/<file>``) and each
      value has the full digest length of its algorithm — a short pin would otherwise be found
      wrong only after the whole file (8.2 GB for ``lra/lra_release.gz``) was downloaded.
    """
    from replibench.data.checksum import parse_checksum
    from replibench.data.download import check_mirror
    from replibench.registry import declared_mirror_paths
    from replibench.errors import DataError

    mirror = data.get("mirror")
    if mirror:
        try:
            check_mirror(mirror)
        except DataError as error:
            raise ConfigError(f"{source}: data.mirror: {error}") from error
    declared = declared_mirror_paths()
    for key, value in (data.get("checksums") or {}).items():
        if key not in declared:
            raise ConfigError(f"{source}: data.checksums: {key!r} is not a declared remote file; "
                              f"keys are <dataset folder>/<file>, one of: {', '.join(sorted(declared))}")
        try:
            parse_checksum(value)
        except ValueError as error:
            raise ConfigError(f"{source}: data.checksums.{key}: {error}") from error


def family_object(name: str):
    from replibench.registry import resolve

    return resolve("family", name)


@dataclass(frozen=True)
class PlannedRun:
    """One run of the sweep with the settings its jobs receive (as canonical JSON)."""

    run: RunSpec
    settings: dict[str, Any]
    #: stage (train, evaluate) → what its job asks the cluster for (family defaults, then
    #: config.yaml's ``resources`` overrides); not part of the settings: it changes no result
    resources: dict[str, Any] = field(default_factory=dict)
    #: a paper run's expected wall time with its source (:meth:`Family.paper_cost`), None when no
    #: figure exists or for smoke runs; not part of the settings either
    cost: Any = None
    #: 0: one evaluate job predicts and scores; N >= 1: N prediction shards (GPU jobs), then one
    #: CPU job gathers and scores them (:func:`evaluation_shards`)
    shards: int = 0
    #: the recorded GPU rehearsal's figure for this run (:data:`replibench.rehearsal.GPU_REHEARSAL_TABLE`)
    gpu_rehearsal: Any = None

    @property
    def costs(self) -> list[Any]:
        """The run's figures in the order the plan trusts them (:func:`replibench.plan.preferred_costs`)."""
        from replibench.plan import preferred_costs

        return preferred_costs(self.cost, self.gpu_rehearsal)

    @property
    def settings_json(self) -> str:
        return json.dumps({"run": self.run.as_dict(), **self.settings}, sort_keys=True, separators=(",", ":"))

    @property
    def settings_sha256(self) -> str:
        return hashlib.sha256(self.settings_json.encode()).hexdigest()


def plan_runs(config: dict[str, Any]) -> list[PlannedRun]:
    """Every run the validated config asks for, across families, with its resolved settings."""
    from replibench.settings import validate_run_settings

    from replibench.plan import preferred_costs
    from replibench.rehearsal import GPU_REHEARSAL_TABLE, rehearsal_costs

    drafts = []
    for family_name in config["families"]:
        family = family_object(family_name)
        family_config = config[family_name]
        for run in family.expand_runs(family_config, config["preset"]):
            family.check_run(run)
            settings = family.run_settings(family_config, run)
            validate_run_settings(run, settings, family=family)
            cost = family.paper_cost(run, settings) if run.preset == "paper" else None
            train = family.run_resources(run, "train").overridden(config.get("resources", {}).get("train", {}),
                                                                  "config.yaml resources")
            drafts.append((family, PlannedRun(run, settings, {"train": train}, cost)))
    # the committed GPU rehearsal sizes evaluation jobs where no log gives a figure (read once)
    rehearsed = rehearsal_costs([draft for _, draft in drafts if draft.run.preset == "paper"], GPU_REHEARSAL_TABLE)
    planned = []
    for family, draft in drafts:
        gpu = rehearsed.get(draft.run.run_id)
        evaluate_cost = next((c for c in preferred_costs(draft.cost, gpu) if c.evaluate_hours is not None), None)
        shards = evaluation_shards(family, draft.run, evaluate_cost, config.get("evaluate_shards", "auto"))
        resources = run_resources(family, draft.run, config, evaluate_cost, shards, score_cost=draft.cost)
        planned.append(PlannedRun(draft.run, draft.settings, resources, draft.cost, shards, gpu))
    return planned


def run_resources(family, run: RunSpec, config: dict[str, Any], cost: Any = None, shards: int = 0,
                  score_cost: Any = None) -> dict[str, Any]:
    """Stage → :class:`~replibench.families.base.Resources` of one run: the family's need for the
    run (by preset, model, dataset); an evaluation job (the whole evaluation, or one of ``shards``
    prediction shards), which cannot resume, asks for at least
    :func:`replibench.plan.evaluation_minutes` of its share of ``cost``, and the scoring job of a
    sharded evaluation for its CPU work; ``config["resources"][stage]`` is laid over the result."""
    from replibench.families.base import RUN_STAGES
    from replibench.plan import evaluation_minutes

    overrides = config.get("resources", {})
    sized = {}
    for stage in RUN_STAGES:
        if stage == "score" and not shards:
            continue
        need = family.run_resources(run, stage)
        if stage == "evaluate" and cost is not None and cost.evaluate_hours is not None:
            hours = cost.evaluate_hours / max(shards, 1)
            if evaluation_minutes(hours) > need.runtime_min:
                need = need.overridden({"runtime_min": evaluation_minutes(hours)},
                                       f"sized for {hours:.3g} h expected per job ({cost.device}; {cost.source}) "
                                       "× 1.5: evaluation does not resume")
        if stage == "score" and score_cost is not None and score_cost.score_core_hours is not None:
            hours = score_cost.score_core_hours / need.cpus
            if evaluation_minutes(hours) > need.runtime_min:
                need = need.overridden({"runtime_min": evaluation_minutes(hours)},
                                       f"sized for {score_cost.score_core_hours:.3g} core-hours of scoring over "
                                       f"{need.cpus} CPUs × 1.5 ({score_cost.source})")
        sized[stage] = need.overridden(overrides.get(stage, {}), "config.yaml resources")
    return sized


def evaluation_shards(family, run: RunSpec, cost: Any, setting: Any) -> int:
    """Prediction shards of a run's evaluation (0: one job predicts and scores). Only a task of
    ``family.shardable_tasks`` is split. ``setting`` (config ``evaluate_shards``): an integer forces
    that many; ``auto`` gives a paper run ⌈expected hours × 1.5 / SHARD_HOURS⌉ shards (1 when no
    figure exists), used when that is more than one or the family scores on the CPU."""
    import math

    from replibench.plan import EVALUATE_SAFETY, SHARD_HOURS

    if run.task not in family.shardable_tasks:
        return 0
    if setting != "auto":
        return int(setting)
    if run.preset != "paper":
        return 0
    hours = cost.evaluate_hours if cost is not None else None
    shards = 1 if hours is None else max(1, math.ceil(hours * EVALUATE_SAFETY / SHARD_HOURS))
    return shards if shards > 1 or family.scores_on_cpu else 0


def preprocess_resources(dataset_family, dataset: str, config: dict[str, Any]):
    """Resources of preprocessing ``dataset`` (family default + ``config["resources"]["preprocess"]``)."""
    return dataset_family.preprocess_resources(dataset, config["preset"]).overridden(
        config.get("resources", {}).get("preprocess", {}), "config.yaml resources")


def parse_settings_json(text: str) -> tuple[RunSpec, dict[str, Any]]:
    """Inverse of :attr:`PlannedRun.settings_json` (what a job receives on its command line)."""
    try:
        payload = json.loads(text)
        run = RunSpec(**payload.pop("run"))
    except (ValueError, TypeError, KeyError) as error:
        raise ConfigError(f"run settings are not valid JSON of the expected shape: {error}") from error
    return run, payload
