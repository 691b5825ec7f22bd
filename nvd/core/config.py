"""Workflow configuration: JSON-schema validation and per-component dataclasses.

The schema (nvd/schemas/config.schema.yaml, shipped with the package) checks keys and types; each component's
dataclass (FramesConfig, FlowConfig, ...) is the single source of its defaults. A
dataset may override any stage section; ``stage_section`` gives the merged result.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping, MutableMapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nvd.core.errors import ConfigError
from nvd.core.layout import DATA_STAGES, ResultsLayout

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"

C = TypeVar("C")


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it; errors name the file and the key.

    Numbers YAML 1.1 reads as strings (``1.0e6``, ``1e-4``: no dot or no exponent sign) are
    turned into numbers where the schema wants one (``validate_config``).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    with path.open() as fh:
        try:
            config = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys to values, got {type(config).__name__}")
    validate_config(config, source=str(path))
    return config


def validate_config(config: Mapping[str, Any], source: str = "config") -> None:
    """Check ``config`` against the JSON schema; raise ConfigError naming the first bad key
    and what it expects ("config key 'frames.long_edge': expected a positive integer or
    null, got 'big'").

    A mutable ``config`` first has its numbers-as-strings (``1.0e6``, ``1e-4``: YAML 1.1
    needs a dot and a signed exponent to read a float) replaced, in place, by the number
    where the schema wants a number (or an integer, when the value is whole).
    """
    validator = _validator()
    if isinstance(config, MutableMapping):
        coerce_numbers(config, validator)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise ConfigError(f"{source}: {describe_error(errors[0], validator.schema)}")


# A number YAML 1.1 leaves a string: an exponent without a sign, or a mantissa without a dot.
_NUMBER_STRING = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")
# Keywords that judge a scalar value as a whole: their errors are reported with what the key expects.
_SCALAR_KEYWORDS = {"type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                    "multipleOf", "anyOf", "oneOf"}


@cache
def _schema() -> dict[str, Any]:
    with SCHEMA_PATH.open() as fh:
        return yaml.safe_load(fh)


def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(_schema())


def coerce_numbers(config: MutableMapping[str, Any], validator: Any = None) -> list[str]:
    """Replace, in place, strings such as ``"1.0e6"`` where the schema wants a number (an
    int where it wants an integer and the value is whole); returns the keys changed."""
    validator = validator or _validator()
    changed: list[str] = []
    for _ in range(3):  # a fix can only expose fixes deeper down an anyOf
        fixes = {}
        for err in validator.iter_errors(config):
            for path, value in _number_fixes(err):
                fixes.setdefault(path, value)
        if not fixes:
            break
        for path, value in fixes.items():
            container: Any = config
            for part in path[:-1]:
                container = container[part]
            container[path[-1]] = value
            changed.append(".".join(map(str, path)))
    return changed


def _number_fixes(err: Any) -> list[tuple[tuple, Any]]:
    if err.validator == "type" and isinstance(err.instance, str) and _NUMBER_STRING.fullmatch(err.instance.strip()):
        wanted = [err.validator_value] if isinstance(err.validator_value, str) else list(err.validator_value)
        value = float(err.instance)
        if "number" in wanted:
            return [(tuple(err.absolute_path), value)]
        if "integer" in wanted and value.is_integer():
            return [(tuple(err.absolute_path), int(value))]
        return []
    return [fix for sub in err.context or () for fix in _number_fixes(sub)]


def describe_error(err: Any, schema: Mapping[str, Any] | None = None) -> str:
    """A jsonschema ValidationError as "config key '<key>': <what is wrong and expected>"."""
    schema = schema if schema is not None else _schema()
    err = _innermost(err)
    key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    return f"config key '{key}': {_problem(err, schema)}"


def _innermost(err: Any) -> Any:
    """The error to report: inside an anyOf/oneOf, the alternative of the value's own type
    when it fails deeper down (a bad video name in a mapping of videos); the anyOf itself
    when the value has none of the types or fails a scalar check (all alternatives named)."""
    if err.validator not in ("anyOf", "oneOf") or not err.context:
        return err
    deeper = [e for e in err.context
              if not (e.validator == "type" and not e.relative_path)
              and (e.relative_path or e.validator not in _SCALAR_KEYWORDS or "propertyNames" in e.relative_schema_path)]
    if not deeper:
        return err
    return _innermost(max(deeper, key=lambda e: len(e.relative_path)))


def _problem(err: Any, root: Mapping[str, Any]) -> str:
    value, schema = err.instance, err.schema if isinstance(err.schema, Mapping) else {}
    if err.validator == "pattern":
        what = schema.get("description") or f"a string matching {err.validator_value}"
        name = "name " if "propertyNames" in err.relative_schema_path else ""
        return f"{name}{_show(value)} is not allowed: expected {what}"
    if err.validator in _SCALAR_KEYWORDS:
        return f"expected {_expected(schema, root)}, got {_show(value)}"
    if err.validator == "additionalProperties" and isinstance(value, Mapping):
        known = sorted(schema.get("properties", {}))
        unknown = sorted(str(k) for k in value if k not in known)
        return f"unknown key(s) {unknown}; allowed: {known}"
    if err.validator == "required" and isinstance(value, Mapping):
        missing = [k for k in err.validator_value if k not in value]
        return f"missing required key(s) {missing}"
    if err.validator in ("minProperties", "minItems"):
        return f"needs at least {err.validator_value} entr{'y' if err.validator_value == 1 else 'ies'}, got none"
    if err.validator == "not" and schema.get("description"):
        return schema["description"]
    return err.message


def _expected(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    """What ``schema`` accepts, in words ("a positive integer or null", "one of 'raft', 'dis')."""
    while "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    if "enum" in schema:
        return "one of " + ", ".join(_show(v) for v in schema["enum"])
    if "const" in schema:
        return _show(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(dict.fromkeys(_expected(alt, root) for alt in schema[key]))
    if "pattern" in schema and schema.get("description"):
        return schema["description"]
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if not types:
        return "a valid value"
    return " or ".join(_expected_type(t, schema, root) for t in types)


def _expected_type(kind: str, schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if kind == "integer" and low == 1 and high is None and xhigh is None:
            return "a positive integer"
        bounds = [f">= {low}" if low is not None else None, f"> {xlow}" if xlow is not None else None,
                  f"<= {high}" if high is not None else None, f"< {xhigh}" if xhigh is not None else None]
        noun = "an integer" if kind == "integer" else "a number"
        return " ".join([noun, " and ".join(b for b in bounds if b)]).strip()
    if kind == "array":
        items = schema.get("items")
        return f"a list (each item {_expected(items, root)})" if isinstance(items, Mapping) else "a list"
    return {"null": "null", "boolean": "true or false", "string": "a string", "object": "a mapping"}.get(kind, kind)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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


def results_layout(config: Mapping[str, Any], directory: str | Path | None = None) -> ResultsLayout:
    """The results tree of a workflow config (its ``results_dir``, else the layout's default).

    A relative ``results_dir`` is relative to the folder the workflow runs in (Snakemake's
    ``--directory``, default the current folder); ``directory`` names that folder for tools
    run from elsewhere (``nvd summary --directory``).
    """
    root = str(config.get("results_dir") or ResultsLayout().root)
    if directory is not None:
        root = str(Path(directory) / root)
    return ResultsLayout(root)


def as_dict(cfg: Any) -> dict[str, Any]:
    """A component config dataclass as a plain dict (for provenance and Snakemake params)."""
    return dataclasses.asdict(cfg)
