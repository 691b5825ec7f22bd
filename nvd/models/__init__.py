"""The model families, one subpackage each, and the registry of their model folders.

A video's trained models live in one folder per method (``nvd.core.layout.ResultsLayout.
run_dir``). ``METHODS`` says which family writes each folder and which config section holds
its training settings, so the evaluation of a model runs where (CPU or GPU) and with the
settings its training did. Torch-free: read when the DAG is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """One kind of trained model of a video."""

    family: str  # the subpackage under nvd.models
    section: str  # the config section holding its training settings (``<section>.train.device``)


METHODS: dict[str, Method] = {
    "decomposition": Method("hashing_nvd", "decomposition"),  # per-video Hashing-NVD
    "finetune": Method("hypernvd", "finetune"),  # finetuned from the hypernetwork's output
    "scratch": Method("hypernvd", "finetune"),  # the baseline: the finetune settings, random start
    "nvp": Method("nvp", "nvp"),  # NVP on the whole video
    "nvp_superres": Method("nvp", "nvp"),  # NVP on a downsampled copy, rendered at full size
    "nvp_interpolate": Method("nvp", "nvp"),  # NVP on every factor-th frame, rendered in between
}
# The NeRV family's six models (nvd.models.nerv.config.MODEL_PRESETS), each with a folder per
# task: regression (the model folder's name), inpainting and interpolation (that name plus the
# task's suffix). A config training every model at several sizes (nerv.model_sizes) names each
# folder with its size, ``hnerv_boost_3M``; with one size the name is the model's alone, so the
# sized folders are not listed in METHODS: NERV_MODEL_PATTERN matches every regression folder.
NERV_MODELS = ("nerv", "nerv_boost", "enerv", "enerv_boost", "hnerv", "hnerv_boost")
NERV_TASKS = {"regression": "", "inpaint": "_inpaint", "interpolate": "_interpolate"}
METHODS.update({f"{model}{suffix}": Method("nerv", "nerv") for model in NERV_MODELS for suffix in NERV_TASKS.values()})
# A regression folder: the model, then optionally "_<size>M" (size in millions, decimal digits).
NERV_MODEL_PATTERN = rf"(?:{'|'.join(NERV_MODELS)})(?:_[0-9]+(?:\.[0-9]+)?M)?"
_NERV_MODEL = re.compile(rf"({'|'.join(NERV_MODELS)})(?:_([0-9]+(?:\.[0-9]+)?)M)?")


def nerv_size_tag(size: float) -> str:
    """A model size (millions) as it appears in a folder name: 3 -> "3M", 0.75 -> "0.75M"
    (the shortest decimal that reads back as the same float)."""
    text = repr(float(size))
    return f"{text[:-2] if text.endswith('.0') else text}M"


def nerv_model_folder(model: str, size: float | None = None) -> str:
    """The regression folder of ``model`` trained at ``size`` millions (None: the config's one
    size, the folder is the model's name)."""
    return model if size is None else f"{model}_{nerv_size_tag(size)}"


def parse_nerv_model(folder: str) -> tuple[str, float | None]:
    """A regression folder name -> (model, size in millions or None); ValueError otherwise."""
    match = _NERV_MODEL.fullmatch(folder)
    if match is None:
        raise ValueError(f"{folder!r} names no NeRV-family model folder: expected one of {list(NERV_MODELS)}, "
                         "optionally followed by _<size>M (e.g. hnerv_boost_3M)")
    return match.group(1), None if match.group(2) is None else float(match.group(2))


def is_nerv_model_folder(name: str) -> bool:
    """Whether ``name`` is a NeRV-family regression folder (a model, optionally with its size)."""
    return _NERV_MODEL.fullmatch(name) is not None


def nerv_method(folder: str, task: str) -> str:
    """The model folder of the model of regression folder ``folder`` (``hnerv``,
    ``hnerv_3M``) trained for ``task`` (a key of NERV_TASKS)."""
    return f"{folder}{NERV_TASKS[task]}"


def family_methods(*families: str) -> tuple[str, ...]:
    """The model folders written by ``families``."""
    return tuple(name for name, method in METHODS.items() if method.family in families)
