"""The interface every NeRV-family model shares.

``model(t_index, frames=None)``: frame indices [B] (int64, 0..N-1) -> RGB [B, 3, H, W] in [0, 1].
``frames`` [B, 3, H, W] in [0, 1] (the frames of those indices) is required by HNeRV models,
which encode each frame to its embedding, and ignored by NeRV / E-NeRV, which see only time.
``model.render(t, frames=None)`` is the same with normalised times t [B] float ((i + 1) / N;
any float works, e.g. between frames).
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from nvd.models.nerv.config import ModelConfig
from nvd.models.nerv.encoding import normalized_time
from nvd.models.nerv.geometry import Layout, resolve_layout


class NeRVFamilyModel(nn.Module):
    """Base class: holds the config, the video size and the resolved layout."""

    def __init__(self, cfg: ModelConfig, height: int, width: int, num_frames: int) -> None:
        super().__init__()
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f"{cfg.name}: num_frames must be >= 1, got {num_frames!r}")
        if cfg.channel_width is None:
            raise ValueError(f"{cfg.name}: channel_width is unset; build_model solves it from "
                             "model_size, or set it")
        self.cfg, self.height, self.width, self.num_frames = cfg, height, width, num_frames
        self.layout: Layout = resolve_layout(cfg, height, width)

    @property
    def embedding_numel(self) -> int:
        """Values of one frame's stored embedding (0: the model stores none)."""
        return 0

    def uncounted_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters left out of the model size (HNeRV: the encoder)."""
        return iter(())

    def time(self, t_index: Tensor) -> Tensor:
        """Frame indices [B] -> normalised times (i + 1) / num_frames, float32 [B]."""
        return normalized_time(t_index, self.num_frames)

    def forward(self, t_index: Tensor, frames: Tensor | None = None) -> Tensor:
        """Frame indices [B] (and HNeRV: frames [B, 3, H, W]) -> RGB [B, 3, H, W] in [0, 1]."""
        return self.render(self.time(t_index), frames)

    def render(self, t: Tensor, frames: Tensor | None = None) -> Tensor:
        """Normalised times [B] (and HNeRV: frames) -> RGB [B, 3, H, W] in [0, 1]."""
        raise NotImplementedError
