"""What every codec reports: one rate point's figures, and a compressed folder's metrics.json.

Every method of the benchmark (each neural family's rate points, each anchor's CRFs) writes
``metrics.json`` with ``points``, a list of rate points of the same shape::

    {"bytes", "bits", "bpp",                     # the file's size: 8 * bytes over T * H * W
     "psnr", "ms_ssim", "lpips", "flip",         # nvd.eval.metrics.video_quality of the decoded video
     "encode_time_s", "decode_fps", "decode_peak_mb", ...}

beside ``method`` (what the benchmark plots it as), ``kind`` ("neural" or "anchor"), the
video's ``frames``, ``height``, ``width``, ``fps``, ``config`` and ``code_version``.
nvd.compression.benchmark reads nothing else.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from nvd.compression.container import bits_per_pixel
from nvd.core.layout import STREAM_NAME
from nvd.eval.outputs import publish_evaluation, write_clip

REC_VIDEO = "rec.mp4"


def rate_point(size_bytes: int, video: Mapping[str, Any], quality: Mapping[str, Any], *,
               encode_time_s: float | None, decode_fps: float | None, decode_peak_mb: float | None,
               **extra: Any) -> dict[str, Any]:
    """One rate point (module docstring): the size, ``quality`` (video_quality's figures),
    the timings and any ``extra`` figures of the method."""
    return {"bytes": int(size_bytes), "bits": 8 * int(size_bytes), "bpp": bits_per_pixel(size_bytes, video),
            **quality, "encode_time_s": encode_time_s, "decode_fps": decode_fps,
            "decode_peak_mb": decode_peak_mb, **extra}


def video_fields(video: Mapping[str, Any]) -> dict[str, Any]:
    return {key: video[key] for key in ("frames", "height", "width", "fps")}


def publish_compressed(out_dir: str | os.PathLike, data: bytes, metrics: Mapping[str, Any], decoded: Tensor,
                       fps: float) -> Path:
    """A neural codec's rate point as one folder, published atomically: ``stream.nvd`` (the
    file, ``data``), ``rec.mp4`` (``decoded`` [T, H, W, 3] in [0, 1], what a decoder of the
    file shows) and ``metrics.json``."""

    def outputs(folder: Path) -> None:
        (folder / STREAM_NAME).write_bytes(data)
        write_clip(folder / REC_VIDEO, decoded, fps)

    return publish_evaluation(out_dir, metrics, outputs)


def scratch_file(data: bytes, near: str | os.PathLike) -> tempfile.TemporaryDirectory:
    """A temporary folder beside ``near`` holding ``data`` as ``stream.nvd`` (for a decoder
    run in another process before the folder is published); use as a context manager."""
    parent = Path(near).parent
    parent.mkdir(parents=True, exist_ok=True)
    folder = tempfile.TemporaryDirectory(prefix=".decode-", dir=parent)
    (Path(folder.name) / STREAM_NAME).write_bytes(data)
    return folder
