"""Load and validate ``config.yaml``; expand it into the runs the workflow must produce.

Imported by the Snakefile, so only light libraries here (yaml, jsonschema).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from replibench.errors import ConfigError
from replibench.runs import RunSpec


def schema_text(name: str) -> str:
    return resources.files("replibench").joinpath("schemas", name).read_text(encoding="utf-8")


def config_schema() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(schema_text("config.schema.yaml"))


def load_config(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config


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
    return config


def family_object(name: str):
    from replibench.registry import resolve

    return resolve("family", name)


@dataclass(frozen=True)
class PlannedRun:
    """One run of the sweep with the settings its jobs receive (as canonical JSON)."""

    run: RunSpec
    settings: dict[str, Any]

    @property
    def settings_json(self) -> str:
        return json.dumps({"run": self.run.as_dict(), **self.settings}, sort_keys=True, separators=(",", ":"))

    @property
    def settings_sha256(self) -> str:
        return hashlib.sha256(self.settings_json.encode()).hexdigest()


def plan_runs(config: dict[str, Any]) -> list[PlannedRun]:
    """Every run the validated config asks for, across families, with its resolved settings."""
    from replibench.settings import validate_run_settings

    planned = []
    for family_name in config["families"]:
        family = family_object(family_name)
        family_config = config[family_name]
        for run in family.expand_runs(family_config, config["preset"]):
            family.check_run(run)
            settings = family.run_settings(family_config, run)
            validate_run_settings(run, settings, family=family, family_config=family_config)
            planned.append(PlannedRun(run, settings))
    return planned


def parse_settings_json(text: str) -> tuple[RunSpec, dict[str, Any]]:
    """Inverse of :attr:`PlannedRun.settings_json` (what a job receives on its command line)."""
    try:
        payload = json.loads(text)
        run = RunSpec(**payload.pop("run"))
    except (ValueError, TypeError, KeyError) as error:
        raise ConfigError(f"run settings are not valid JSON of the expected shape: {error}") from error
    return run, payload
