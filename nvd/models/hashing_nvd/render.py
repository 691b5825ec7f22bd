"""Rendering a trained decomposition over its whole video: frames, atlases, edits."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from nvd.eval.outputs import to_uint8
from nvd.models.hashing_nvd.atlas import atlas_alpha, atlas_rgb, propagate_edit
from nvd.models.hashing_nvd.objective import DecompositionTask

# Frames per propagate_edit call: bounds its [chunk,H,W,...] temporaries on long videos.
_EDIT_CHUNK = 8


@torch.no_grad()
def render_video(task: DecompositionTask) -> dict[str, Tensor]:
    """Render every frame of the task's video, on the CPU.

    Returns rgb [T,H,W,3], rgb_no_residual [T,H,W,3], alpha [K,T,H,W], residual [K,T,H,W,3],
    uv [K,T,H,W,2] and texture [K,T,H,W,3] (float32; rgb unclamped, as the model renders it).
    """
    t_count, h, w = task.video.shape
    k = task.model.n_layers
    out = {
        "rgb": torch.empty(t_count, h, w, 3),
        "rgb_no_residual": torch.empty(t_count, h, w, 3),
        "alpha": torch.empty(k, t_count, h, w),
        "residual": torch.empty(k, t_count, h, w, 3),
        "uv": torch.empty(k, t_count, h, w, 2),
        "texture": torch.empty(k, t_count, h, w, 3),
    }
    for t in range(t_count):
        frame = task.render_frame(t)  # [H,W,...], per-layer outputs [H,W,K,...]
        for key in ("rgb", "rgb_no_residual"):
            out[key][t] = frame[key].cpu()
        for key in ("alpha", "residual", "uv", "texture"):
            out[key][:, t] = frame[key].movedim(2, 0).cpu()
    return out


def atlas_images(task: DecompositionTask, rendered: Mapping[str, Tensor], size: int = 1000) -> list[np.ndarray]:
    """Per layer an RGBA uint8 [size,size,4] atlas image (texel convention: nvd.models.hashing_nvd.atlas).

    RGB is the layer's texture network on the atlas grid; A is the largest alpha of the video
    pixels (all frames, ``rendered`` from ``render_video``) whose uv falls into the texel, so
    atlas regions no pixel shows are transparent.
    """
    images = []
    for k in range(task.model.n_layers):
        rgb = atlas_rgb(task.model, k, size).cpu()
        alpha = atlas_alpha(rendered["uv"][k].reshape(-1, 2), rendered["alpha"][k].reshape(-1), size)
        images.append(to_uint8(torch.cat([rgb, alpha[..., None]], dim=-1)))
    return images


def render_edit(frames: Tensor, rendered: Mapping[str, Tensor], original: dict[int, Tensor],
                 edited: dict[int, Tensor], mode: str) -> Tensor:
    """``propagate_edit`` over the whole video in chunks of frames: [T,H,W,3] in [0,1]."""
    out = torch.empty_like(frames)
    for start in range(0, frames.shape[0], _EDIT_CHUNK):
        part = slice(start, start + _EDIT_CHUNK)
        out[part] = propagate_edit(frames[part], rendered["uv"][:, part], rendered["alpha"][:, part],
                                   rendered["residual"][:, part], original, edited, mode)
    return out
