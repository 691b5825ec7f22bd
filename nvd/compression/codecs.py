"""Decoding any compressed file, whatever its family: what ``nvd decode`` runs.

``decode_frames`` reads the container's family and hands it to that family's codec
(nvd.models.<family>.codec, imported only then).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import Tensor

from nvd.compression.container import EncodedVideo, read_container


def decode_frames(encoded: EncodedVideo, device: str | torch.device = "cpu") -> Tensor:
    """The video a file holds: float [T, H, W, 3] in [0, 1]."""
    if encoded.family == "nvp":
        from nvd.models.nvp.codec import render_nvp

        return render_nvp(encoded, device)
    from nvd.models.nerv.codec import decode_nerv, render_decoded

    return render_decoded(decode_nerv(encoded, device))


def timed_decode(path: str | Path, device: str | torch.device = "cpu") -> tuple[Tensor, float]:
    """(decoded frames, seconds from reading ``path`` to the last frame)."""
    start = time.perf_counter()
    frames = decode_frames(read_container(path), device)
    if frames.is_cuda:
        torch.cuda.synchronize(frames.device)
    return frames, time.perf_counter() - start
