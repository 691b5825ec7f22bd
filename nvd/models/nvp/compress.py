"""NVP's codec path as a job (rule ``nvp_compress``, ``nvd encode`` of an NVP model).

For one rate point of the ``nvp_compress`` section: encode the trained model (codec.py),
decode the bytes of the file exactly as ``nvd decode`` does, score that video, and publish
one folder (nvd.compression.outputs): ``stream.nvd``, ``rec.mp4``, ``metrics.json`` with the
rate point (bpp of the file) and, beside it, the PSNR of the 8-bit model before JPEG and
HEVC, so the images' and videos' coding loss shows. Encoding time = the model's training time
(its log) + the coding; decoding speed and memory come from ``nvd decode`` in a new process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nvd.compression.container import from_bytes, to_bytes
from nvd.compression.measure import measure_decode
from nvd.compression.outputs import publish_compressed, rate_point, scratch_file, video_fields
from nvd.core.devices import resolve_device
from nvd.core.layout import STREAM_NAME
from nvd.core.versioning import code_version
from nvd.data.loader import frames_uint8
from nvd.eval.metrics import psnr, video_quality
from nvd.eval.outputs import check_replaceable, training_log, training_summary, video_fps
from nvd.models.nvp.codec import encode_nvp, render_nvp
from nvd.models.nvp.codec_config import NVPCodecConfig, nvp_codec_config
from nvd.models.nvp.objective import render_video
from nvd.models.nvp.quantise import dequantised_model
from nvd.models.nvp.run import load_nvp


def compress_nvp(model_path: str | os.PathLike, frames_store: str | os.PathLike, out_dir: str | os.PathLike,
                 cfg: NVPCodecConfig, point: str, *, lpips_weights: str | None = None,
                 device: str = "auto", measure: bool = True) -> dict[str, Any]:
    """Encode the NVP model at ``model_path`` at ``cfg``'s point ``point`` into ``out_dir``
    (module docstring); returns metrics.json's contents. ``measure``: time ``nvd decode`` in
    a new process (False: leave decode_fps and decode_peak_mb null)."""
    check_replaceable(out_dir)
    rate = cfg.point(point)
    device = str(resolve_device(device))
    model, saved = load_nvp(model_path, "cpu", frames_store)
    fps = video_fps(frames_store)
    start = time.perf_counter()
    data = to_bytes(encode_nvp(model, rate, cfg, fps))
    coding_s = time.perf_counter() - start
    encoded = from_bytes(data, STREAM_NAME, family="nvp")
    frames = frames_uint8(frames_store, device).float() / 255
    decoded = render_nvp(encoded, device)
    quality = video_quality(decoded, frames, lpips_weights)
    eight_bit = psnr(render_video(dequantised_model(model).to(device)), frames)
    decode_fps = decode_peak = None
    if measure:
        with scratch_file(data, out_dir) as folder:
            stats = measure_decode(Path(folder) / STREAM_NAME, device)
        decode_fps, decode_peak = stats.fps, stats.peak_rss_mb
    _, train_s = training_summary(training_log(model_path))
    metrics = {
        "method": "nvp", "kind": "neural", "family": "nvp", "point": point,
        "points": [rate_point(len(data), encoded.video, quality, encode_time_s=train_s + coding_s,
                              decode_fps=decode_fps, decode_peak_mb=decode_peak, psnr_8bit=eight_bit,
                              payload_bytes={name: len(p) for name, p in encoded.payloads.items()})],
        **video_fields(encoded.video),
        "iterations": saved.iteration,
        "config": {"nvp_compress": {"point": point, "preset": cfg.preset, "decoder_dtype": cfg.decoder_dtype},
                   "training": saved.meta["config"]},
        "code_version": {"training": saved.meta["code_version"], "compression": code_version("nvp_compress")},
    }
    publish_compressed(out_dir, data, metrics, decoded, fps)
    return metrics


def nvp_compress_job(inputs: Mapping[str, Any], out_dir: str | os.PathLike, sections: Mapping[str, Any],
                     point: str, lpips_weights: str | None, device: str) -> dict[str, Any]:
    """The ``nvp_compress`` job: inputs ``model`` and ``frames``; the ``nvp_compress`` section."""
    torch.set_grad_enabled(False)
    return compress_nvp(inputs["model"], inputs["frames"], out_dir, nvp_codec_config(sections.get("nvp_compress")),
                        point, lpips_weights=lpips_weights, device=device)
