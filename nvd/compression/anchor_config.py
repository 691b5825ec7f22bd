"""The anchors' settings (config section ``codec_anchor``): which traditional codec curves
every video of a representation dataset is coded with. Torch-free: the workflow reads the
curve names (its ``{anchor}`` wildcard) when it builds the DAG.

::

    codec_anchor:
      anchors:
        - {codec: x265, preset: veryslow, crfs: [14, 20, 26, 32, 38], pix_fmts: [yuv420p, yuv444p]}
        - {codec: svtav1, preset: 6, crfs: [15, 30, 45, 55, 63]}

Each entry gives one rate-distortion curve per pix_fmt; a curve is named
``<codec>_<preset>_<pix_fmt>`` (``x265_veryslow_yuv444p``). Codecs, presets and CRF ranges:
nvd.compression.ffmpeg.CODECS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nvd.compression.ffmpeg import video_codec
from nvd.core.config import section
from nvd.core.errors import ConfigError

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


def curve_section(values: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """The ``codec_anchor`` section as one curve's job reads it: that curve alone, so that
    changing another curve does not rerun this one."""
    curve = anchor_curve(anchor_config(values), name)
    return {"anchors": [{"codec": curve.codec, "preset": curve.preset, "crfs": list(curve.crfs),
                         "pix_fmts": [curve.pix_fmt]}]}
