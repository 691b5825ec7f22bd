"""Config family -> model class, and construction of a model whose width is already set."""

from __future__ import annotations

from nvd.core.errors import ConfigError
from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.config import ModelConfig
from nvd.models.nerv.enerv import ENeRV
from nvd.models.nerv.hnerv import HNeRV
from nvd.models.nerv.nerv import NeRV

MODEL_CLASSES: dict[str, type[NeRVFamilyModel]] = {"nerv": NeRV, "enerv": ENeRV, "hnerv": HNeRV}


def construct(cfg: ModelConfig, height: int, width: int, num_frames: int) -> NeRVFamilyModel:
    """The model of ``cfg`` (channel_width set) for num_frames frames of height x width."""
    if cfg.family not in MODEL_CLASSES:
        raise ConfigError(f"nerv: no model for family {cfg.family!r}")
    return MODEL_CLASSES[cfg.family](cfg, height, width, num_frames)
