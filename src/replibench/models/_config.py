"""Build a model config dataclass from a settings dict (a preset updated by config.yaml)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from replibench.errors import ConfigError

T = TypeVar("T")


def config_from_dict(config_cls: type[T], settings: dict[str, Any], *, source: str = "model settings") -> T:
    """``config_cls(**settings)``, refusing unknown keys with a message naming them and the allowed ones."""
    allowed = {f.name for f in fields(config_cls)}
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {unknown} for {config_cls.__name__}; expected a subset of {sorted(allowed)}"
        )
    return config_cls(**settings)
