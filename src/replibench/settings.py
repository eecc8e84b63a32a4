"""Typed, range-checked run settings, validated when the workflow is planned.

A run's settings are three sections: ``train`` (:class:`replibench.train.TrainConfig`), ``task``
(the task's settings dataclass, :data:`TASK_SETTINGS`) and ``model`` (the fields of the registered
model's ``Config`` dataclass). :func:`validate_run_settings` checks every key of every section —
known, of the declared type, inside its range — and, given the family, that no override changes a
key the run's variant stands for (``task.pred_len`` of an ``h96`` run). :func:`replibench.config.plan_runs`
calls it for every planned run, so ``snakemake -n`` and ``replibench config`` stop before any job
starts, with a message naming the run, the key, the value and what is allowed.

Imported while the Snakefile is parsed: no torch. A model's ``Config`` is read from its module's
source (:func:`model_config_fields`) instead of importing the module (which imports torch); a
contract test checks that reading against the imported dataclasses.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replibench.errors import ConfigError
from replibench.runs import RunSpec

__all__ = ["Rule", "TASK_SETTINGS", "check_section", "dataclass_fields", "model_config_fields",
           "validate_run_settings"]

SECTIONS = ("task", "model", "train")


@dataclass(frozen=True)
class Rule:
    """A range rule: ``ok(value)`` says whether a (type-checked) value is allowed; ``allowed`` says
    what is, in words, for the error message."""

    ok: Callable[[Any], bool]
    allowed: str


def at_least(bound: float) -> Rule:
    return Rule(lambda v: v is None or v >= bound, f">= {bound:g}")


def above(bound: float) -> Rule:
    return Rule(lambda v: v is None or v > bound, f"> {bound:g}")


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Rule:
    def ok(v: Any) -> bool:
        if v is None:
            return True
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    return Rule(ok, f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}")


def one_of(*choices: Any) -> Rule:
    return Rule(lambda v: v is None or v in choices, "one of " + ", ".join(repr(c) for c in choices))


def each(rule: Rule) -> Rule:
    """``rule`` for every element of a list/tuple."""
    return Rule(lambda v: v is None or all(rule.ok(item) for item in v), f"every element {rule.allowed}")


# --- task settings: one dataclass per task (the keys of ``settings["task"]``) ------------------
# Defaults are what the task uses when a key is absent; ``None`` default = the key is required
# only where the task reads it unconditionally (the ETT tasks' lengths come from the presets).


@dataclass
class ForecastSettings:
    """``forecast`` (ETT): input and horizon lengths in time steps; batch sizes in windows."""

    seq_len: int = 96
    pred_len: int = 96
    eval_batch_size: int = 1
    val_batch_size: int = 32
    RULES = {"seq_len": at_least(1), "pred_len": at_least(1), "eval_batch_size": at_least(1),
             "val_batch_size": at_least(1)}


@dataclass
class ImputeSettings:
    """``impute`` (ETT): input length in time steps, masked fraction of values, mask seed."""

    seq_len: int = 96
    mask_ratio: float = 0.125
    mask_seed: int = 0
    eval_batch_size: int = 1
    val_batch_size: int = 16
    RULES = {"seq_len": at_least(1), "mask_ratio": between(0.0, 1.0, low_open=True, high_open=True),
             "mask_seed": at_least(0), "eval_batch_size": at_least(1), "val_batch_size": at_least(1)}


def _weights_ok(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if value.get("source") == "released":
        return set(value) == {"source", "size", "config", "weights"} and value["size"] in ("small", "base")
    return value.get("source") == "tiny" and set(value) == {"source", "seed"} and isinstance(value["seed"], int)


@dataclass
class ZeroShotSettings:
    """``zeroshot`` (ETT, Moirai-MoE): forecast length (time steps), rolling windows, the context the
    model reads (time steps), patch size, sample paths per item, items per batch, and the weights:
    ``{source: released, size, config, weights}`` (paths of the downloaded hub files) or
    ``{source: tiny, seed}`` (the smoke preset's random checkpoint in the released format)."""

    prediction_length: int = 24
    windows: int = 7
    context_length: int = 1000
    patch_size: int = 16
    num_samples: int = 100
    batch_size: int = 32
    weights: dict[str, Any] = field(default_factory=lambda: {"source": "tiny", "seed": 0})
    RULES = {"prediction_length": at_least(1), "windows": at_least(1), "context_length": at_least(1),
             "patch_size": at_least(1), "num_samples": at_least(1), "batch_size": at_least(1),
             "weights": Rule(_weights_ok, "{source: released, size: small|base, config: path, weights: path} "
                                          "or {source: tiny, seed: int}")}


@dataclass
class ZeroShotLsfSettings:
    """``zeroshot-lsf`` (ETT, Moirai-MoE on Moirai's long-sequence protocol): forecast length and
    context (time steps), patch size, sample paths, items per batch, the weights (as ``zeroshot``),
    and ``max_windows``: the first test windows only (smoke; None = every window, the protocol)."""

    prediction_length: int = 96
    context_length: int = 5000
    patch_size: int = 16
    num_samples: int = 100
    batch_size: int = 32
    max_windows: int | None = None
    weights: dict[str, Any] = field(default_factory=lambda: {"source": "tiny", "seed": 0})
    RULES = {"prediction_length": at_least(1), "context_length": at_least(1), "patch_size": at_least(1),
             "num_samples": at_least(1), "batch_size": at_least(1), "max_windows": at_least(1),
             "weights": ZeroShotSettings.RULES["weights"]}


_CONVENTIONS = ("cdvae", "diffcsp", "crysbfn")  # replibench.families.crystals.tasks.csp_gen.CONVENTIONS (contract test)


@dataclass
class CrystalSettings:
    """``csp`` / ``gen`` / ``recon`` / ``opt`` (crystals): scoring convention, samples, batch sizes
    (structures); CDVAE's property optimisation: starting points, Adam steps and rate on z, decodings,
    and the folder of the released property model (``property_model``)."""

    convention: str = "diffcsp"
    extra_conventions: list[str] = field(default_factory=list)
    splits: dict[str, str] = field(default_factory=dict)
    eval_batch_size: int = 256
    limit_test: int | None = None
    num_samples: int = 1
    report_samples: list[int] = field(default_factory=list)
    num_generated: int = 10000
    allow_fewer_valid: bool = False
    sample_batch_size: int = 500
    num_workers: int | None = None
    num_starting_points: int = 100
    num_gradient_steps: int = 5000
    opt_lr: float = 1e-3
    num_saved_crys: int = 10
    property_model: str | None = None
    RULES = {"convention": one_of(*_CONVENTIONS), "extra_conventions": each(one_of(*_CONVENTIONS)),
             "eval_batch_size": at_least(1), "limit_test": at_least(1), "num_samples": at_least(1),
             "report_samples": each(at_least(1)), "num_generated": at_least(1), "sample_batch_size": at_least(1),
             "num_workers": at_least(1), "num_starting_points": at_least(1), "num_gradient_steps": at_least(1),
             "opt_lr": above(0.0), "num_saved_crys": at_least(2)}


@dataclass
class LraClassifySettings:
    """``lra-classify``: test batch size (sequences) and the longest sequence read (tokens)."""

    eval_batch_size: int = 64
    max_length: int | None = None
    RULES = {"eval_batch_size": at_least(1), "max_length": at_least(1)}


@dataclass
class StateTrackingSettings:
    """``state-tracking``: test batch size (sequences)."""

    eval_batch_size: int = 256
    RULES = {"eval_batch_size": at_least(1)}


def _oc20_settings():
    from replibench.registry import family_module

    return family_module("oc20", "tasks.settings").OC20Settings  # numpy only


#: task name → its settings dataclass (OC20's lives beside its task and is imported on demand)
TASK_SETTINGS: dict[str, Any] = {
    "forecast": ForecastSettings, "impute": ImputeSettings, "zeroshot": ZeroShotSettings,
    "zeroshot-lsf": ZeroShotLsfSettings, "csp": CrystalSettings, "gen": CrystalSettings,
    "recon": CrystalSettings, "opt": CrystalSettings,
    "lra-classify": LraClassifySettings, "state-tracking": StateTrackingSettings,
    "s2ef": _oc20_settings, "is2re": _oc20_settings,
}

_OC20_RULES = {"eval_batch_size": at_least(1), "val_max_structures": at_least(1),
               "energy_coefficient": at_least(0.0), "force_coefficient": at_least(0.0),
               "energy_target": one_of("energy_ref", "energy")}
_GRAPH_RULES = {"cutoff": above(0.0), "max_neighbors": at_least(1), "mode": one_of("precompute", "per_batch")}


def task_settings_class(task: str):
    if task not in TASK_SETTINGS:
        raise ConfigError(f"task {task!r} declares no settings; known: {', '.join(sorted(TASK_SETTINGS))}")
    declared = TASK_SETTINGS[task]
    return declared if dataclasses.is_dataclass(declared) else declared()


# --- types --------------------------------------------------------------------------------------


def _split_top(text: str, separator: str) -> list[str]:
    """Split ``text`` at ``separator`` outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == separator and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def type_ok(value: Any, annotation: str) -> bool:
    """Whether a JSON-ish ``value`` fits a dataclass field annotation (as written in the source).

    ``int`` excludes booleans; ``float`` takes integers, not booleans, and only finite values;
    ``list[...]``/``tuple[...]`` take lists or tuples whose elements fit; ``Any`` and names this
    checker does not know take anything.
    """
    for option in _split_top(annotation, "|"):
        if option == "None":
            if value is None:
                return True
        elif option == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                return True
        elif option == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return True
        elif option == "bool":
            if isinstance(value, bool):
                return True
        elif option == "str":
            if isinstance(value, str):
                return True
        elif option.split("[")[0] in ("list", "tuple", "Sequence"):
            if isinstance(value, (list, tuple)):
                inner = option[option.index("[") + 1:-1] if "[" in option else "Any"
                element = _split_top(inner, ",")[0]
                if all(type_ok(item, element) for item in value):
                    return True
        elif option.split("[")[0] in ("dict", "Mapping"):
            if isinstance(value, dict):
                return True
        else:  # Any, or a type the checker does not model
            return True
    return False


def _describe(annotation: str) -> str:
    return {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "a string"}.get(
        annotation, annotation)


def dataclass_fields(cls) -> dict[str, Any]:
    """``{name: annotation}`` of a dataclass; a field typed as another dataclass maps to its fields."""
    result: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        default = item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default
        if dataclasses.is_dataclass(default) and not isinstance(default, type):
            result[item.name] = dataclass_fields(type(default))
        else:
            result[item.name] = item.type if isinstance(item.type, str) else getattr(item.type, "__name__", "Any")
    return result


def check_section(where: str, values: Any, fields: dict[str, Any], rules: dict[str, Rule] | None = None,
                  nested_rules: dict[str, dict[str, Rule]] | None = None) -> None:
    """Refuse unknown keys, wrong types and out-of-range values of one settings section.

    ``where`` is the section's name in messages (``"ett/etth1/…/seed2021: train"``); ``fields``
    maps each allowed key to its annotation, or to a nested ``fields`` dict.
    """
    rules, nested_rules = rules or {}, nested_rules or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, found {values!r}")
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (value {values[unknown[0]]!r}); "
                          f"allowed keys: {', '.join(sorted(fields))}")
    for key, value in values.items():
        spec = fields[key]
        if isinstance(spec, dict):
            check_section(f"{where}.{key}", value, spec, nested_rules.get(key))
            continue
        if not type_ok(value, spec):
            raise ConfigError(f"{where}.{key} = {value!r}: must be {_describe(spec)} ({spec})")
        rule = rules.get(key)
        if rule is not None and not rule.ok(value):
            raise ConfigError(f"{where}.{key} = {value!r}: must be {rule.allowed}")


# --- model configs, read from source ------------------------------------------------------------


@dataclass(frozen=True)
class _Module:
    name: str
    classes: dict[str, ast.ClassDef]
    imports: dict[str, str]  # local name → module it is imported from


@functools.lru_cache(maxsize=None)
def _parse_module(module_name: str) -> _Module:
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        raise ConfigError(f"model module {module_name} not found")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    imports = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                imports[alias.asname or alias.name] = node.module
    return _Module(module_name, classes, imports)


def _find_class(module: _Module, name: str) -> tuple[_Module, ast.ClassDef] | None:
    if name in module.classes:
        return module, module.classes[name]
    if name in module.imports and module.imports[name].startswith("replibench."):
        other = _parse_module(module.imports[name])
        if name in other.classes:
            return other, other.classes[name]
    return None


def _is_dataclass(node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id == "dataclass":
            return True
    return False


def _fields_of(module: _Module, node: ast.ClassDef) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for base in node.bases:
        if isinstance(base, ast.Name) and (found := _find_class(module, base.id)) and _is_dataclass(found[1]):
            result.update(_fields_of(*found))
    for statement in node.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            annotation = ast.unparse(statement.annotation)
            if annotation.startswith("ClassVar"):
                continue
            nested = _find_class(module, annotation)
            result[statement.target.id] = (_fields_of(*nested) if nested and _is_dataclass(nested[1])
                                           else annotation)
    return result


def _in_class_or_bases(module: _Module, node: ast.ClassDef, pick: Callable[[_Module, ast.stmt], Any]) -> Any:
    """The first non-None ``pick(module, statement)`` over the class body, else over its base
    classes' (found in the module or a ``replibench`` module it imports), depth first."""
    for statement in node.body:
        found = pick(module, statement)
        if found is not None:
            return found
    for base in node.bases:
        if isinstance(base, ast.Name) and (found_class := _find_class(module, base.id)):
            found = _in_class_or_bases(*found_class, pick)
            if found is not None:
                return found
    return None


def _assigned_name(statement: ast.stmt, name: str) -> ast.expr | None:
    """The value of ``name = <value>`` when ``statement`` is that assignment."""
    if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == name):
        return statement.value
    return None


def _config_class(module: _Module, node: ast.ClassDef) -> tuple[_Module, ast.ClassDef] | None:
    """A model class's ``Config`` (``Config = SomeDataclass`` or a nested ``class Config``)."""

    def pick(module: _Module, statement: ast.stmt):
        value = _assigned_name(statement, "Config")
        if isinstance(value, ast.Name):
            return _find_class(module, value.id)
        if isinstance(statement, ast.ClassDef) and statement.name == "Config":
            return module, statement
        return None

    return _in_class_or_bases(module, node, pick)


@functools.lru_cache(maxsize=None)
def _model_config_fields(name: str) -> tuple[tuple[str, Any], ...]:
    from replibench.registry import MODELS

    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; allowed: {', '.join(sorted(MODELS))}")
    module_name, _, class_name = MODELS[name].partition(":")
    module = _parse_module(module_name)
    found = _find_class(module, class_name)
    config = _config_class(*found) if found else None
    if config is None:
        raise ConfigError(f"model {name!r}: {MODELS[name]} has no Config dataclass")
    return tuple(_fields_of(*config).items())


def _class_tasks(module: _Module, node: ast.ClassDef) -> tuple[str, ...] | None:
    """A class's ``TASKS = (...)`` literal, or its first base class's that has one."""

    def pick(_module: _Module, statement: ast.stmt):
        value = _assigned_name(statement, "TASKS")
        return tuple(ast.literal_eval(value)) if value is not None else None

    return _in_class_or_bases(module, node, pick)


@functools.lru_cache(maxsize=None)
def _model_tasks(target: str) -> tuple[str, ...]:
    module_name, _, class_name = target.partition(":")
    module = _parse_module(module_name)
    found = _find_class(module, class_name)
    tasks = _class_tasks(*found) if found else None
    if tasks is None:
        raise ConfigError(f"model {target} declares no TASKS (a tuple of the task names it implements)")
    return tasks


def model_tasks(name: str) -> tuple[str, ...]:
    """The tasks registry model ``name`` implements: its class's ``TASKS`` literal, read from the
    module source without importing it (the class itself is where a model says what it does)."""
    from replibench.registry import MODELS

    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; allowed: {', '.join(sorted(MODELS))}")
    return _model_tasks(MODELS[name])


def model_config_fields(name: str) -> dict[str, Any]:
    """``{field: annotation}`` of registry model ``name``'s ``Config`` dataclass (a field typed as
    another dataclass maps to that one's fields), read from the module source without importing it."""
    return dict(_model_config_fields(name))


# --- the whole run ----------------------------------------------------------------------------------


def _get(settings: dict[str, Any], dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def check_variant(run: RunSpec, settings: dict[str, Any], fixed: dict[str, Any]) -> None:
    """Refuse settings that change a key the run's variant stands for (``fixed``: dotted key → the
    value the variant fixes it to, :meth:`~replibench.families.base.Family.variant_settings`)."""
    for key, wanted in fixed.items():
        found = _get(settings, key)
        if found != wanted:
            raise ConfigError(f"{run.run_id}: {key} = {found!r} contradicts the run's variant {run.variant!r}, "
                              f"which fixes it to {wanted!r}; choose the variant in the sweep "
                              f"(runs: …) instead of overriding {key}")


def validate_run_settings(run: RunSpec, settings: dict[str, Any], *, family: Any = None) -> None:
    """Check one run's settings (see the module docstring); raise :class:`ConfigError` naming
    ``run.run_id``, the dotted key, the value and what is allowed.

    With ``family`` the keys the run's variant fixes are checked too.
    """
    from replibench.train import TrainConfig

    unknown = sorted(set(settings) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{run.run_id}: unknown settings section {unknown[0]!r}; allowed: {', '.join(SECTIONS)}")
    where = f"{run.run_id}: "
    TrainConfig.check(settings.get("train", {}), where=where + "train")
    task_class = task_settings_class(run.task)
    is_oc20 = run.task in ("s2ef", "is2re")
    check_section(where + "task", settings.get("task", {}), dataclass_fields(task_class),
                  _OC20_RULES if is_oc20 else getattr(task_class, "RULES", {}),
                  {"graph": _GRAPH_RULES} if is_oc20 else None)
    if is_oc20:
        try:
            task_class.from_dict(settings.get("task", {}))  # its own cross-field checks (test splits)
        except ConfigError as error:
            raise ConfigError(f"{where}{error}") from error
    check_section(where + "model", settings.get("model", {}), model_config_fields(run.model))
    if family is not None:
        check_variant(run, settings, family.variant_settings(run))
