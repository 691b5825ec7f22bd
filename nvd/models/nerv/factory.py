"""build_model: the one entry point from a config and a video's size to a ready model."""

from __future__ import annotations

import torch

from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.config import ModelConfig
from nvd.models.nerv.registry import construct
from nvd.models.nerv.size import solve_size


def build_model(cfg: ModelConfig, height: int, width: int, num_frames: int,
                device: torch.device | str | None = None) -> NeRVFamilyModel:
    """The model of ``cfg`` for num_frames frames of height x width pixels.

    With ``cfg.channel_width`` None the width (and, where needed, the trim field) is first
    solved so the counted parameters hit ``cfg.model_size`` (size.solve_size); the solved
    config is ``model.cfg``. Raises ConfigError on strides that do not fit the frame or a size
    the settings cannot reach.
    """
    if cfg.channel_width is None:
        cfg = solve_size(cfg, height, width, num_frames).cfg
    model = construct(cfg, height, width, num_frames)
    return model if device is None else model.to(device)
