"""The traditional anchors: x264, x265 and AV1 on a video's frames, measured like the neural codecs.

Config section ``codec_anchor`` (``AnchorConfig``)::

    codec_anchor:
      anchors:
        - {codec: x265, preset: veryslow, crfs: [14, 20, 26, 32, 38], pix_fmts: [yuv420p, yuv444p]}
        - {codec: svtav1, preset: 6, crfs: [15, 30, 45, 55, 63]}

Each entry gives one rate-distortion curve per pix_fmt; a curve is named
``<codec>_<preset>_<pix_fmt>`` (``x265_veryslow_yuv444p``), the workflow's ``{anchor}``.
Codecs, presets and CRF ranges: nvd.compression.ffmpeg.CODECS.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvd.compression.ffmpeg import (
    decode_rgb_video_measured,
    encode_rgb_video_measured,
    ffmpeg_seconds,
    ffmpeg_version,
    video_codec,
)
from nvd.compression.outputs import rate_point
from nvd.core.config import section
from nvd.core.devices import resolve_device
from nvd.core.errors import ConfigError
from nvd.core.versioning import code_version
from nvd.data.loader import frames_uint8
from nvd.eval.metrics import video_quality
from nvd.eval.outputs import check_replaceable, publish_evaluation, video_fps

SECTION = "codec_anchor"


@dataclass(frozen=True)
class AnchorSpec:
    """One entry of ``codec_anchor.anchors``: a codec at one preset and its CRFs, coded in
    each of ``pix_fmts`` (one curve each)."""

    codec: str
    preset: str  # x264/x265 preset name, SVT-AV1 preset number, aom cpu-used
    crfs: tuple[float, ...]
    pix_fmts: tuple[str, ...] = ("yuv420p",)

    def __post_init__(self) -> None:
        if isinstance(self.preset, int) and not isinstance(self.preset, bool):
            object.__setattr__(self, "preset", str(self.preset))  # YAML reads `preset: 6` as a number


@dataclass(frozen=True)
class AnchorCurve:
    """One rate-distortion curve: a codec, preset and pixel format at several CRFs."""

    codec: str
    preset: str
    pix_fmt: str
    crfs: tuple[float, ...]

    @property
    def name(self) -> str:
        """``<codec>_<preset>_<pix_fmt>``: the workflow's ``{anchor}`` wildcard."""
        return f"{self.codec}_{self.preset}_{self.pix_fmt}"


# CRF steps of 6 halve the rate of x264 and x265 about once a step; 14..38 spans about
# 0.025-0.8 bpp and 25-39 dB PSNR on the demo's small clips (160-320 px wide, 24-32 frames:
# bunny at 320x180, 0.75 -> 0.025 bpp; carphone at 176x144, 0.5 -> 0.03), the range the
# neural codecs reach, with points close enough for Bjontegaard's interpolation.
X26X_CRFS = (14, 20, 26, 32, 38)
# SVT-AV1's CRF scale (0-63) is flatter at the top: 15..63 spans about 0.45-0.02 bpp there.
SVTAV1_CRFS = (15, 30, 45, 55, 63)
BOTH_PIX_FMTS = ("yuv420p", "yuv444p")
DEFAULT_ANCHORS = (
    AnchorSpec("x264", "medium", X26X_CRFS, BOTH_PIX_FMTS),
    AnchorSpec("x264", "veryslow", X26X_CRFS, BOTH_PIX_FMTS),
    AnchorSpec("x265", "medium", X26X_CRFS, BOTH_PIX_FMTS),
    AnchorSpec("x265", "veryslow", X26X_CRFS, BOTH_PIX_FMTS),
    # preset 6: SVT-AV1's quality-oriented range (4-6) at a speed the demo affords
    AnchorSpec("svtav1", "6", SVTAV1_CRFS, ("yuv420p",)),
)


@dataclass(frozen=True)
class AnchorConfig:
    """The ``codec_anchor`` section: the anchor curves every video is coded with."""

    anchors: tuple[AnchorSpec, ...] = DEFAULT_ANCHORS

    def __post_init__(self) -> None:
        if not isinstance(self.anchors, tuple) or not self.anchors:
            raise ConfigError(f"config key '{SECTION}.anchors': needs at least one anchor, got {self.anchors!r}")
        seen: dict[str, str] = {}
        for index, spec in enumerate(self.anchors):
            key = f"{SECTION}.anchors[{index}]"
            _check_spec(spec, key)
            for pix_fmt in spec.pix_fmts:
                name = AnchorCurve(spec.codec, spec.preset, pix_fmt, spec.crfs).name
                if name in seen:
                    raise ConfigError(f"config key '{key}': curve {name} is already given by {seen[name]}")
                seen[name] = key

    @property
    def curves(self) -> tuple[AnchorCurve, ...]:
        """Every curve, in the order of the config."""
        return tuple(AnchorCurve(spec.codec, spec.preset, pix_fmt, tuple(spec.crfs))
                     for spec in self.anchors for pix_fmt in spec.pix_fmts)


def _check_spec(spec: AnchorSpec, key: str) -> None:
    """ConfigError naming the key of the first thing wrong with ``spec``."""
    try:
        codec = video_codec(spec.codec)
    except ConfigError as exc:
        raise ConfigError(f"config key '{key}.codec': {exc}") from None
    for field in ("crfs", "pix_fmts"):
        values = getattr(spec, field)
        if not isinstance(values, tuple) or not values:
            raise ConfigError(f"config key '{key}.{field}': needs a non-empty list, got {values!r}")
        if len(set(values)) != len(values):
            raise ConfigError(f"config key '{key}.{field}': lists a value twice: {list(values)}")
    checks = [("preset", {"preset": spec.preset})]
    checks += [(f"crfs[{i}]", {"crf": crf}) for i, crf in enumerate(spec.crfs)]
    checks += [(f"pix_fmts[{i}]", {"pix_fmt": pix_fmt}) for i, pix_fmt in enumerate(spec.pix_fmts)]
    for where, settings in checks:
        problem = codec.problem(**settings)
        if problem:
            raise ConfigError(f"config key '{key}.{where}': {problem}")


def anchor_config(values: Mapping[str, Any] | None) -> AnchorConfig:
    """The ``codec_anchor`` section as written in the config (None: the defaults)."""
    values = dict(values or {})
    specs = values.pop("anchors", None)
    cfg = section(AnchorConfig, values, SECTION)
    if specs is None:
        return cfg
    if not isinstance(specs, (list, tuple)):
        raise ConfigError(f"config key '{SECTION}.anchors': needs a list of anchors, got {specs!r}")
    parsed = []
    for index, spec in enumerate(specs):
        key = f"{SECTION}.anchors[{index}]"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"config key '{key}': needs a mapping {{codec, preset, crfs, pix_fmts}}, got {spec!r}")
        missing = [name for name in ("codec", "preset", "crfs") if name not in spec]
        if missing:
            raise ConfigError(f"config key '{key}': lacks {missing}")
        parsed.append(section(AnchorSpec, spec, key))
    return dataclasses.replace(cfg, anchors=tuple(parsed))


def anchor_names(cfg: AnchorConfig) -> list[str]:
    """The names of every curve of ``cfg`` (the workflow's ``{anchor}`` values)."""
    return [curve.name for curve in cfg.curves]


def anchor_curve(cfg: AnchorConfig, name: str) -> AnchorCurve:
    """The curve called ``name``; ConfigError listing the known names otherwise."""
    for curve in cfg.curves:
        if curve.name == name:
            return curve
    raise ConfigError(f"unknown anchor {name!r}; the config's '{SECTION}' gives: {anchor_names(cfg)}")


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
