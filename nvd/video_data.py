"""A video's cached stages as tensors on the training device.

Training holds the whole clip in memory and samples batches by indexing (no DataLoader):
frames, flow with its consistency masks, and the object masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import InputError
from .stores import open_store


@dataclass
class VideoTensors:
    """One video on a device. T frames of H x W pixels, K-1 object masks."""

    frames: Tensor  # float32 [T,H,W,3] in [0,1]
    flow_forward: Tensor  # float32 [T-1,H,W,2] px, frame t -> t+1
    flow_backward: Tensor  # float32 [T-1,H,W,2] px, frame t+1 -> t
    valid_forward: Tensor  # bool [T-1,H,W]
    valid_backward: Tensor  # bool [T-1,H,W]
    masks: Tensor  # float32 [K-1,T,H,W] in {0,1}
    object_names: list[str]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(T, H, W)."""
        t, h, w, _ = self.frames.shape
        return t, h, w

    @property
    def n_layers(self) -> int:
        """K: one layer per object plus the background."""
        return self.masks.shape[0] + 1


def load_video(frames_store: str | Path, flow_store: str | Path, masks_store: str | Path,
               device: torch.device | str = "cpu") -> VideoTensors:
    """Read the three stores of one video; InputError when their shapes disagree."""
    frames = np.asarray(open_store(frames_store, "frames")["frames"][:])
    flow = open_store(flow_store, "flow")
    masks_group = open_store(masks_store, "masks")
    masks = np.asarray(masks_group["masks"][:])
    t, h, w, _ = frames.shape
    if flow["forward"].shape != (t - 1, h, w, 2):
        raise InputError(f"{flow_store}: flow shape {flow['forward'].shape} does not fit frames {frames.shape}")
    if masks.shape[1:] != (t, h, w):
        raise InputError(f"{masks_store}: masks shape {masks.shape} does not fit frames {frames.shape}")

    def tensor(array: np.ndarray, dtype: torch.dtype) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=dtype)

    return VideoTensors(
        frames=tensor(frames, torch.float32) / 255.0,
        flow_forward=tensor(flow["forward"][:], torch.float32),
        flow_backward=tensor(flow["backward"][:], torch.float32),
        valid_forward=tensor(flow["forward_valid"][:], torch.bool),
        valid_backward=tensor(flow["backward_valid"][:], torch.bool),
        masks=tensor(masks, torch.float32),
        object_names=list(masks_group.attrs.get("objects", [])),
    )
