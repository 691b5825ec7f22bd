"""The data stages' config dataclasses, resolved per dataset (torch-free: used at DAG build)."""

from __future__ import annotations

from typing import Any, Mapping

from nvd.core.config import section, stage_section
from nvd.core.layout import DATA_STAGES
from nvd.data.datasets import video_stages
from nvd.data.embedding import EmbeddingConfig
from nvd.data.flow import FlowConfig
from nvd.data.frames import FramesConfig
from nvd.data.masks import MasksConfig

STAGE_CONFIGS: dict[str, type] = {
    "frames": FramesConfig,
    "flow": FlowConfig,
    "masks": MasksConfig,
    "embedding": EmbeddingConfig,
}
MODEL_STAGES = ("flow", "masks", "embedding")  # stages whose backends may need weights


def stage_config(config: Mapping[str, Any], stage: str, dataset: str) -> Any:
    """The dataclass config of ``stage`` for ``dataset`` (global section + dataset overrides)."""
    return section(STAGE_CONFIGS[stage], stage_section(config, stage, dataset), stage)


def backends_in_use(config: Mapping[str, Any]) -> dict[str, set[str]]:
    """{stage: backends} over the datasets the config runs that compute the stage (their
    families read it, nvd.data.datasets.video_stages), for the weight check."""
    datasets = config.get("run_datasets") or list(config["datasets"])
    stages = {d: video_stages(config, d, DATA_STAGES) for d in datasets}
    return {stage: {stage_config(config, stage, d).backend for d in datasets if stage in stages[d]}
            for stage in MODEL_STAGES}
