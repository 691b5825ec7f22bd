"""The model families, one subpackage each, and the registry of their model folders.

A video's trained models live in one folder per method (``nvd.core.layout.ResultsLayout.
run_dir``). ``METHODS`` says which family writes each folder and which config section holds
its training settings, so the evaluation of a model runs where (CPU or GPU) and with the
settings its training did. Torch-free: read when the DAG is built.
"""

from __future__ import annotations

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
# task: regression (the model's name), inpainting and interpolation.
NERV_MODELS = ("nerv", "nerv_boost", "enerv", "enerv_boost", "hnerv", "hnerv_boost")
NERV_TASKS = {"regression": "", "inpaint": "_inpaint", "interpolate": "_interpolate"}
METHODS.update({f"{model}{suffix}": Method("nerv", "nerv") for model in NERV_MODELS for suffix in NERV_TASKS.values()})


def nerv_method(model: str, task: str) -> str:
    """The model folder of a NeRV-family model trained for ``task`` (a key of NERV_TASKS)."""
    return f"{model}{NERV_TASKS[task]}"


def family_methods(*families: str) -> tuple[str, ...]:
    """The model folders written by ``families``."""
    return tuple(name for name, method in METHODS.items() if method.family in families)
