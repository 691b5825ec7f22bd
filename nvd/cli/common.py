"""What every ``nvd`` subcommand module shares: options generated from config dataclasses.

Options are generated from each component's config dataclass, so defaults and names always
match the workflow's config keys (``long_edge`` -> ``--long-edge``).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from nvd.data.weights import WEIGHT_SPECS, WeightsConfig

# command(name, function, help) -> the subcommand's parser (nvd.cli.build_parser)
Command = Callable[[str, Callable[[argparse.Namespace], None], str], argparse.ArgumentParser]


def add_dataclass_options(parser: argparse.ArgumentParser, cls: type, skip: Sequence[str] = ()) -> None:
    """Add one ``--field-name`` option per dataclass field, typed and defaulted from it."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} options (config section keys)")
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind, optional = _unwrap(hints[field.name])
        kwargs: dict[str, Any] = {"default": field.default, "dest": field.name}
        if typing.get_origin(kind) is typing.Literal:
            kwargs["choices"] = list(typing.get_args(kind))
        elif typing.get_origin(kind) is tuple:
            kwargs.update(nargs="+", type=str)
        elif kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _optional(kind) if optional else kind
        kwargs["help"] = f"default: {field.default}" + (" ('none' to unset)" if optional else "")
        group.add_argument(flag, **kwargs)


def from_options(cls: type, args: argparse.Namespace) -> Any:
    """Build ``cls`` from the options added by add_dataclass_options."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    return cls(**values)


def _optional(kind: type) -> Callable[[str], Any]:
    """Parse a value of ``kind``, or the word 'none' as None."""

    def parse(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """``int | None`` -> (int, True); ``int`` -> (int, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def add_weight_options(parser: argparse.ArgumentParser, keys: Sequence[str]) -> None:
    for key in keys:
        parser.add_argument(
            f"--{key.replace('_', '-')}-weights" if key != "detectron2_config" else "--detectron2-config",
            dest=f"weights_{key}",
            default=None,
            help=f"{WEIGHT_SPECS[key].what} (config key weights.{key})",
        )


def weights_from_options(args: argparse.Namespace) -> WeightsConfig:
    return WeightsConfig(**{k: getattr(args, f"weights_{k}", None) for k in WEIGHT_SPECS})


def add_video_stores(p: argparse.ArgumentParser, *, embedding: bool = False) -> None:
    """--frames, --flow, --masks (and --embedding): one video's stores."""
    p.add_argument("--frames", required=True, help="frames store")
    p.add_argument("--flow", required=True, help="flow store")
    p.add_argument("--masks", required=True, help="masks store")
    if embedding:
        p.add_argument("--embedding", default=None, help="embedding store")
