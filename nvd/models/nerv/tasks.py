"""Boosting-NeRV's two downstream tasks: inpainting and frame interpolation.

A run's task is its ``variant`` (recorded in its identity): ``{"task": "regression"}`` (the
whole video), ``{"task": "inpaint", "mask": kind}`` or ``{"task": "interpolate"}``;
``task_setup`` turns it into what NeRVTask trains on.

Inpainting masks (``inpaint_mask``, bool [H, W], True = hole, the same for every frame):
- ``centre``: one rectangle of H // 4 rows by W // 4 columns, centred (top (H - h) // 2,
  left (W - w) // 2);
- ``squares``: five squares of 50 x 50 px at 1920 x 1080 (the DAVIS 1080p frames of the
  paper), scaled with the frame: side = max(1, round(50 * min(H / 1080, W / 1920))), i.e.
  33 px at 1280 x 720, 8 px at 320 x 180. Their centres sit at fixed fractions (row, col) of
  the frame: the middle (1/2, 1/2) and the four quarter points (1/4, 1/4), (1/4, 3/4),
  (3/4, 1/4), (3/4, 3/4); a square's top-left is (round(fr * H) - side // 2,
  round(fc * W) - side // 2). They never overlap or leave the frame.
The model trains on the frames with the holes set to 0 and the loss on the pixels outside
them; it is scored on the full frames and inside the holes against the original frames.

Interpolation (``interpolation_split``): train on the even frames 0, 2, 4, ...; score every
odd frame j that has both neighbours j - 1 and j + 1 (a last odd frame of an even-length
video has none after it and is left out). NeRV and E-NeRV draw frame j from its own time
(j + 1) / T (the model is built for all T frames); HNeRV decodes the mean of the embeddings
of frames j - 1 and j + 1 (both even, so trained), with frame j's time for HNeRV-Boost's
conditioning. The baseline is linear blending, the mean of the two neighbours. (HNeRV's size
is solved and counted with the embeddings of all T frames, as for the whole video, though
only the even frames' are needed.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from nvd.core.errors import ConfigError, InputError
from nvd.models import NERV_TASKS
from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.objective import RENDER_CHUNK, as_input, needs_frames, render_frames
from nvd.models.nerv.training import MASKS

SQUARE_SIDE = 50  # px at the reference size
SQUARE_REFERENCE = (1080, 1920)  # (height, width) the square side is given at
SQUARE_CENTRES = ((0.5, 0.5), (0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75))  # (row, col)
TASKS = tuple(NERV_TASKS)


def square_side(height: int, width: int) -> int:
    """Side in px of the ``squares`` mask's squares at height x width."""
    scale = min(height / SQUARE_REFERENCE[0], width / SQUARE_REFERENCE[1])
    return max(1, round(SQUARE_SIDE * scale))


def inpaint_mask(kind: str, height: int, width: int) -> Tensor:
    """The holes of mask ``kind`` ("centre" or "squares") on height x width frames: bool
    [H, W], True inside a hole. See the module docstring for the geometry."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    if kind == "centre":
        h, w = height // 4, width // 4
        if h < 1 or w < 1:
            raise InputError(f"the centre mask needs frames of at least 4 x 4 px, got {width}x{height}")
        top, left = (height - h) // 2, (width - w) // 2
        mask[top:top + h, left:left + w] = True
    elif kind == "squares":
        side = square_side(height, width)
        for fr, fc in SQUARE_CENTRES:
            top = min(max(round(fr * height) - side // 2, 0), height - side)
            left = min(max(round(fc * width) - side // 2, 0), width - side)
            mask[top:top + side, left:left + side] = True
    else:
        raise ConfigError(f"nerv_inpaint.mask must be one of {MASKS}, got {kind!r}")
    return mask


def interpolation_split(num_frames: int) -> tuple[list[int], list[int]]:
    """(trained, held out): the even frames, and the odd frames with both neighbours."""
    if num_frames < 3:
        raise InputError(f"frame interpolation needs at least 3 frames, got {num_frames}")
    trained = list(range(0, num_frames, 2))
    heldout = list(range(1, num_frames - 1, 2))
    return trained, heldout


def variant(task: str = "regression", mask: str | None = None) -> dict[str, Any]:
    """The variant of a run (see the module docstring)."""
    if task not in TASKS:
        raise ValueError(f"nerv: unknown task {task!r}, expected one of {TASKS}")
    if task == "inpaint":
        if mask not in MASKS:
            raise ConfigError(f"nerv_inpaint.mask must be one of {MASKS}, got {mask!r}")
        return {"task": task, "mask": mask}
    return {"task": task}


def task_setup(run_variant: Mapping[str, Any] | None, num_frames: int, height: int,
               width: int) -> tuple[list[int] | None, Tensor | None]:
    """(train_frames, mask) of NeRVTask for a run's variant (None: the whole video, no holes)."""
    run_variant = dict(run_variant or {"task": "regression"})
    task = run_variant.get("task", "regression")
    if task == "regression":
        return None, None
    if task == "inpaint":
        return None, inpaint_mask(run_variant["mask"], height, width)
    if task == "interpolate":
        return interpolation_split(num_frames)[0], None
    raise ValueError(f"nerv: unknown task {task!r}, expected one of {TASKS}")


def linear_blend(frames: Tensor, targets: list[int]) -> Tensor:
    """float [len(targets), H, W, 3] in [0, 1]: each target frame as the mean of its two
    neighbours in ``frames`` (uint8 [T, H, W, 3])."""
    x = frames.float() / 255
    return torch.stack([(x[j - 1] + x[j + 1]) / 2 for j in targets])


@torch.no_grad()
def render_interpolated(model: NeRVFamilyModel, frames: Tensor, targets: list[int]) -> Tensor:
    """float [len(targets), H, W, 3] in [0, 1]: frames ``targets`` (each with both neighbours)
    of a model trained on the others. HNeRV reads only the neighbours j - 1, j + 1 of
    ``frames`` (uint8 [T, H, W, 3]); NeRV and E-NeRV only the times."""
    device = next(model.parameters()).device
    index = torch.tensor(targets, dtype=torch.long, device=device)
    if not needs_frames(model):
        return render_frames(model, index)
    if any(j < 1 or j + 1 >= frames.shape[0] for j in targets):
        raise ValueError(f"nerv: every interpolated frame needs both neighbours in the {frames.shape[0]} frames")
    out = []
    for start in range(0, len(targets), RENDER_CHUNK):
        part = targets[start:start + RENDER_CHUNK]
        before = model.embed(as_input(frames[[j - 1 for j in part]].to(device)))
        after = model.embed(as_input(frames[[j + 1 for j in part]].to(device)))
        t = model.time(index[start:start + RENDER_CHUNK])
        out.append(model.decode((before + after) / 2, t).permute(0, 2, 3, 1))
    return torch.cat(out)
