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
}
