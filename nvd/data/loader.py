"""A video's cached stages as tensors on the training device.

Training holds the whole clip in memory and samples batches by indexing (no DataLoader):
frames, and where a family needs them, flow with its consistency masks and the object
masks (the layered decompositions do; the video representations need frames only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nvd.core.errors import InputError
from nvd.data.stores import open_store


@dataclass
class VideoTensors:
    """One video on a device. T frames of H x W pixels, K-1 object masks."""

    frames: Tensor  # float32 [T,H,W,3] in [0,1]
    flow_forward: Tensor | None = None  # float32 [T-1,H,W,2] px, frame t -> t+1
    flow_backward: Tensor | None = None  # float32 [T-1,H,W,2] px, frame t+1 -> t
    valid_forward: Tensor | None = None  # bool [T-1,H,W]
    valid_backward: Tensor | None = None  # bool [T-1,H,W]
    masks: Tensor | None = None  # float32 [K-1,T,H,W] in {0,1}; None: no masks store read
    object_names: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(T, H, W)."""
        t, h, w, _ = self.frames.shape
        return t, h, w

    @property
    def n_layers(self) -> int:
        """K: one layer per object plus the background."""
        return (0 if self.masks is None else self.masks.shape[0]) + 1


def load_video(frames_store: str | Path, flow_store: str | Path | None = None,
               masks_store: str | Path | None = None, device: torch.device | str = "cpu") -> VideoTensors:
    """Read a video's stores (frames, and flow and masks when given); InputError when their
    shapes disagree."""
    frames = np.asarray(open_store(frames_store, "frames")["frames"][:])
    t, h, w, _ = frames.shape

    def tensor(array: np.ndarray, dtype: torch.dtype) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=dtype)

    video = VideoTensors(frames=tensor(frames, torch.float32) / 255.0)
    if flow_store is not None:
        flow = open_store(flow_store, "flow")
        if flow["forward"].shape != (t - 1, h, w, 2):
            raise InputError(f"{flow_store}: flow shape {flow['forward'].shape} does not fit frames {frames.shape}")
        video.flow_forward = tensor(flow["forward"][:], torch.float32)
        video.flow_backward = tensor(flow["backward"][:], torch.float32)
        video.valid_forward = tensor(flow["forward_valid"][:], torch.bool)
        video.valid_backward = tensor(flow["backward_valid"][:], torch.bool)
    if masks_store is not None:
        group = open_store(masks_store, "masks")
        masks = np.asarray(group["masks"][:])
        if masks.shape[1:] != (t, h, w):
            raise InputError(f"{masks_store}: masks shape {masks.shape} does not fit frames {frames.shape}")
        video.masks = tensor(masks, torch.float32)
        video.object_names = list(group.attrs.get("objects", []))
    return video


def frames_identity(frames_store: str | Path) -> dict[str, Any]:
    """What identifies the video of a frames store: its source fingerprint, frame selection
    and size (a model is evaluated only on the video it was trained on)."""
    frames = open_store(frames_store, "frames")
    return {"source_fingerprint": frames.attrs.get("source_fingerprint"),
            "frame_indices": list(frames.attrs.get("frame_indices", [])),
            "shape": list(frames["frames"].shape)}


def frames_uint8(frames_store: str | Path, device: torch.device | str) -> Tensor:
    """The store's frames as uint8 [T, H, W, 3] on ``device`` (the video representations
    sample their batches from these, converting per batch)."""
    return torch.from_numpy(np.ascontiguousarray(open_store(frames_store, "frames")["frames"][:])).to(device)
