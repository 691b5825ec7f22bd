"""Workflow configuration: JSON-schema validation and per-component dataclasses.

The schema (nvd/schemas/config.schema.yaml, shipped with the package) checks keys and types; each component's
dataclass (FramesConfig, FlowConfig, ...) is the single source of its defaults. A
dataset may override any stage section; ``stage_section`` gives the merged result.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nvd.core.errors import ConfigError
from nvd.core.layout import DATA_STAGES, ResultsLayout

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"

C = TypeVar("C")


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    with path.open() as fh:
        config = yaml.safe_load(fh) or {}
    validate_config(config, source=str(path))
    return config


def validate_config(config: Mapping[str, Any], source: str = "config") -> None:
    """Check ``config`` against the JSON schema; raise ConfigError naming the first bad key."""
    import jsonschema

    with SCHEMA_PATH.open() as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: config key '{key}': {err.message}")


def section(cls: type[C], values: Mapping[str, Any] | None, name: str, base: C | None = None) -> C:
    """Build the dataclass ``cls`` from a config section, naming unknown keys.

    Keys not given take their value from ``base`` when one is passed, else the dataclass
    default. Nested dataclass fields are built from nested mappings (``decomposition.model.
    texture_grid``) on top of that field's default instance, so a component whose default
    sub-config differs from the sub-config's own defaults (HyperNVD's bias-free target) keeps
    it for the keys the user leaves out. Lists become tuples where the field is a tuple.
    """
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"config section '{name}': unknown key(s) {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            values[key] = section(hint, value, f"{name}.{key}", _field_default(fields[key], base))
        elif isinstance(value, list) and tuple in (typing.get_origin(hint), *map(typing.get_origin, typing.get_args(hint))):
            values[key] = tuple(value)
    if base is not None:
        return dataclasses.replace(base, **values)
    return cls(**values)


def _field_default(f: dataclasses.Field, base: Any) -> Any:
    """The value field ``f`` takes when not configured: from ``base``, else its default."""
    if base is not None:
        return getattr(base, f.name)
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def stage_section(config: Mapping[str, Any], stage: str, dataset: str | None = None) -> dict[str, Any]:
    """The ``stage`` section as given in the config, with the dataset's overrides on top."""
    if stage not in DATA_STAGES:
        raise ConfigError(f"unknown stage section '{stage}'; known: {list(DATA_STAGES)}")
    merged = dict(config.get(stage) or {})
    if dataset is not None:
        try:
            overrides = config["datasets"][dataset].get(stage) or {}
        except KeyError as exc:
            raise ConfigError(f"dataset '{dataset}' is not in the config's 'datasets'") from exc
        merged.update(overrides)
    return merged


def results_layout(config: Mapping[str, Any]) -> ResultsLayout:
    """The results tree of a workflow config (its ``results_dir``, else the layout's default)."""
    root = config.get("results_dir")
    return ResultsLayout(str(root)) if root is not None else ResultsLayout()


def as_dict(cfg: Any) -> dict[str, Any]:
    """A component config dataclass as a plain dict (for provenance and Snakemake params)."""
    return dataclasses.asdict(cfg)
