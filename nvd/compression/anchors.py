"""The traditional anchors: x264, x265 and AV1 on a video's frames, measured like the neural codecs.

Settings (section ``codec_anchor``, the curves and their names): nvd.compression.anchor_config.

``codec_anchor_job`` codes the frames of a frames store at every CRF of one curve, from the
same RGB frames the neural codecs see, decodes each stream back to RGB and publishes one
folder (nvd.eval.outputs.publish_evaluation):

- ``metrics.json``: {"method": the curve's name, "kind": "anchor", "codec", "preset",
  "pix_fmt", "points": [...] (by bpp, ascending), "frames", "height", "width", "fps",
  "ffmpeg" (its version line), "config" (the curve), "code_version"}; a point is {"crf",
  "bytes", "bits" (8 * bytes), "bpp" (bits / (T * H * W)), "psnr", "ms_ssim", "lpips",
  "flip" (nvd.eval.metrics.video_quality on [0, 1] RGB), "encode_time_s" (the ffmpeg
  process, RGB in to stream out), "decode_time_s" (ffmpeg's own time from the stream opened
  to the last RGB frame out, its ~25 ms start-up left out: nvd.compression.ffmpeg.
  ffmpeg_seconds), "decode_fps" (frames / decode_time_s), "decode_peak_mb" (the ffmpeg
  process's peak resident memory: nvd.compression.measure)}.
- ``crf<N>.<suffix>``: each stream as measured (``.h264``, ``.hevc``, ``.obu``), which
  ``ffmpeg -i`` decodes and players play.

The bytes are the raw elementary stream: no container, and nothing a decoder does not need
(see nvd.compression.ffmpeg), as the neural codecs' files hold only what their decoder reads.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvd.compression.anchor_config import SECTION, AnchorCurve, anchor_config, anchor_curve
from nvd.compression.ffmpeg import (
    decode_rgb_video_measured,
    encode_rgb_video_measured,
    ffmpeg_seconds,
    ffmpeg_version,
    video_codec,
)
from nvd.compression.outputs import rate_point
from nvd.core.devices import resolve_device
from nvd.core.versioning import code_version
from nvd.data.loader import frames_uint8
from nvd.eval.metrics import video_quality
from nvd.eval.outputs import check_replaceable, publish_evaluation, video_fps


def bitstream_name(curve: AnchorCurve, crf: float) -> str:
    """The file one CRF's stream is kept in: ``crf<N>.<suffix>``."""
    return f"crf{crf:g}.{video_codec(curve.codec).suffix}"


def measure_point(frames: np.ndarray, target: torch.Tensor, curve: AnchorCurve, crf: float, fps: float,
                  lpips_weights: str | None) -> tuple[dict[str, Any], bytes]:
    """Code ``frames`` (uint8 [T, H, W, 3]) at ``crf`` and measure it against ``target``
    (the same frames, float [T, H, W, 3] in [0, 1], on the metrics' device): (the point,
    the stream)."""
    t, h, w, _ = frames.shape
    stream, encoded = encode_rgb_video_measured(frames, curve.codec, curve.preset, crf, curve.pix_fmt, fps)
    decoded, decoding = decode_rgb_video_measured(stream, curve.codec, t, h, w)
    decode_seconds = ffmpeg_seconds(decoding)
    pred = torch.from_numpy(decoded).to(target.device, torch.float32) / 255
    point = rate_point(len(stream), {"frames": t, "height": h, "width": w}, video_quality(pred, target, lpips_weights),
                       encode_time_s=encoded.seconds, decode_fps=t / decode_seconds if decode_seconds > 0 else None,
                       decode_peak_mb=decoding.peak_rss_mb, crf=crf, decode_time_s=decode_seconds)
    return point, stream


def codec_anchor_job(frames_store: str | os.PathLike, out_dir: str | os.PathLike, anchor: str,
                     sections: Mapping[str, Any], lpips_weights: str | None, device: str = "cpu") -> dict[str, Any]:
    """The ``codec_anchor`` rule: curve ``anchor`` of the config's ``codec_anchor`` section
    (``sections[SECTION]``, missing or None: the defaults) on the video of ``frames_store``,
    published to ``out_dir`` (see the module docstring); returns the metrics. ``device``:
    where the quality metrics run (nvd.core.devices.resolve_device)."""
    curve = anchor_curve(anchor_config((sections or {}).get(SECTION)), anchor)
    check_replaceable(out_dir)
    frames = frames_uint8(frames_store, "cpu").numpy()
    t, h, w, _ = frames.shape
    fps = video_fps(frames_store)
    target = torch.from_numpy(frames).to(resolve_device(device), torch.float32) / 255
    points, streams = [], {}
    for crf in curve.crfs:
        point, streams[bitstream_name(curve, crf)] = measure_point(frames, target, curve, crf, fps, lpips_weights)
        points.append(point)
    metrics = {"method": curve.name, "kind": "anchor", "codec": curve.codec, "preset": curve.preset,
               "pix_fmt": curve.pix_fmt, "points": sorted(points, key=lambda p: p["bpp"]),
               "frames": t, "height": h, "width": w, "fps": fps, "ffmpeg": ffmpeg_version(),
               "config": {**dataclasses.asdict(curve), "crfs": list(curve.crfs), "name": curve.name},
               "code_version": code_version(SECTION)}

    def outputs(folder: Path) -> None:
        for name, stream in streams.items():
            (folder / name).write_bytes(stream)

    publish_evaluation(out_dir, metrics, outputs)
    return metrics
