"""RAFT backend: torchvision's RAFT-large with a local state dict, batched over frame pairs.

torch and torchvision are imported here only, so ``import nvd.data.flow`` stays cheap for the
OpenCV backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nvd.core.errors import WeightsError
from nvd.data.weights import WEIGHT_SPECS

if TYPE_CHECKING:
    import torch
    import zarr

# RAFT works on 1/8-resolution feature maps (so H and W must be multiples of 8) and pools
# its correlation volume three times, which torchvision only allows on feature maps of at
# least 16 x 16: inputs below 128 px per side are padded up to it.
_STRIDE = 8
_MIN_SIDE = 8 * 16


def load_raft(path: Path, device: "torch.device") -> "torch.nn.Module":
    """RAFT-large in eval mode on ``device``, with the state dict stored at ``path``.

    Raises WeightsError naming 'weights.raft' and the file when it cannot be read as a
    state dict or does not fit the architecture (wrong model, wrong variant).
    """
    import torch
    from torchvision.models.optical_flow import raft_large

    model = raft_large(weights=None, progress=False)
    try:
        # weights_only: a state dict needs no pickled code, and refusing it keeps a weight
        # file from running arbitrary code.
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # unpickling, non-mapping and key/shape errors all mean "wrong file"
        detail = " ".join(str(exc).split())
        if len(detail) > 400:
            detail = detail[:400] + " ..."
        raise WeightsError(
            f"config key 'weights.raft': '{path}' is not {WEIGHT_SPECS['raft'].what} "
            f"({type(exc).__name__}: {detail}); expected upstream model: {WEIGHT_SPECS['raft'].upstream}"
        ) from exc
    return model.eval().to(device)


def raft_flows(
    frames: "np.ndarray | zarr.Array",
    model: "torch.nn.Module",
    device: "torch.device",
    iterations: int,
    batch_size: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """RAFT flow for each consecutive pair, both directions.

    frames: T frames, uint8 [H,W,3] RGB (a zarr array works: slicing reads those frames).
    Each network call takes ``batch_size`` consecutive pairs in both directions, i.e. a
    batch of 2 * batch_size image pairs, and runs ``iterations`` refinement steps; the last
    refinement is the result. Yields T-1 tuples (forward, backward) of float32 [H,W,2]
    (dx, dy).
    """
    import torch

    t, h, w = frames.shape[:3]
    n_pairs = t - 1
    for start in range(0, n_pairs, batch_size):
        stop = min(start + batch_size, n_pairs)
        images = _prepare(np.asarray(frames[start : stop + 1]), device)  # [k+1,3,H',W']
        first, second = images[:-1], images[1:]
        with torch.inference_mode():
            predictions = model(
                torch.cat([first, second]), torch.cat([second, first]), num_flow_updates=iterations
            )
        flows = predictions[-1][:, :, :h, :w].permute(0, 2, 3, 1).float().cpu().numpy()
        k = stop - start
        for j in range(k):
            yield flows[j], flows[k + j]


def _prepare(frames: np.ndarray, device: "torch.device") -> "torch.Tensor":
    """uint8 [N,H,W,3] RGB -> float32 [N,3,H',W'] in [-1,1] on ``device``.

    Padding goes to the bottom and right only (replicating the edge), so pixel coordinates
    are unchanged and cropping the flow back to [:H,:W] needs no offset.
    """
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float()
    x = x / 127.5 - 1.0  # RAFT was trained on inputs normalised to [-1,1]
    h, w = x.shape[-2:]
    pad_h = max(_MIN_SIDE, -(-h // _STRIDE) * _STRIDE) - h
    pad_w = max(_MIN_SIDE, -(-w // _STRIDE) * _STRIDE) - w
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x.contiguous()
