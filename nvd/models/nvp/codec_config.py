"""NVP's codec settings (config section ``nvp_compress``): the rate points and how each is coded.
Torch-free: the workflow reads the point names (its ``{point}`` wildcard) when it builds the
DAG. What the settings do: nvd.models.nvp.codec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nvd.core.config import section
from nvd.core.errors import ConfigError
from nvd.models.nvp.config import N_PLANES

PLANE_LABELS = ("rc", "tr", "tc")  # grids.PLANE_NAMES, the order of a point's qscales
DECODER_PRECISIONS = ("float32", "float16")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


@dataclass(frozen=True)
class NVPPoint:
    """One rate point: JPEG qscale of the (row, col), (t, row), (t, col) planes and the sparse
    grid's HEVC CRF."""

    qscale: tuple[int, int, int] = (2, 3, 3)
    crf: float = 21

    def __post_init__(self) -> None:
        if len(self.qscale) != N_PLANES or not all(isinstance(q, int) and 2 <= q <= 31 for q in self.qscale):
            raise ConfigError(f"nvp_compress.points: qscale must be {N_PLANES} integers in 2..31 (one per plane "
                              f"{'/'.join(PLANE_LABELS)}), got {list(self.qscale)!r}")
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"nvp_compress.points: crf must lie in 0..51, got {self.crf!r}")

    @property
    def name(self) -> str:
        """The workflow's ``{point}``: ``q2-3-3_crf21``."""
        crf = f"{self.crf:g}".replace(".", "p")
        return f"q{'-'.join(str(q) for q in self.qscale)}_crf{crf}"


@dataclass(frozen=True)
class NVPCodecConfig:
    """NVP's codec (config section ``nvp_compress``): the rate points, x265's preset, the
    decoder's precision. Defaults: the paper's point (qscale 2/3/3, CRF 21, preset slow, its
    HEVC at 25 frames/s) and two coarser ones inside its recommended range (qscale 2-5, CRF
    20-25), so the three give a rate-distortion curve."""

    points: tuple[NVPPoint, ...] = (NVPPoint(), NVPPoint((3, 4, 4), 23), NVPPoint((5, 5, 5), 25))
    preset: str = "slow"
    hevc_fps: float = 25.0  # x265's rate control reads it; the paper fixes 25
    decoder_dtype: str = "float32"

    def __post_init__(self) -> None:
        if not self.points:
            raise ConfigError("nvp_compress.points must list at least one point")
        names = [p.name for p in self.points]
        if len(set(names)) != len(names):
            raise ConfigError(f"nvp_compress.points: duplicate points {names}")
        if self.preset not in PRESETS:
            raise ConfigError(f"nvp_compress.preset must be one of {PRESETS}, got {self.preset!r}")
        if self.decoder_dtype not in DECODER_PRECISIONS:
            raise ConfigError(f"nvp_compress.decoder_dtype must be one of {list(DECODER_PRECISIONS)}, "
                              f"got {self.decoder_dtype!r}")
        if not self.hevc_fps > 0:
            raise ConfigError(f"nvp_compress.hevc_fps must be > 0, got {self.hevc_fps!r}")

    def point_names(self) -> list[str]:
        """The workflow's ``{point}`` values, in the config's order."""
        return [p.name for p in self.points]

    def point(self, name: str) -> NVPPoint:
        """The point called ``name`` (ConfigError listing the known names otherwise)."""
        for point in self.points:
            if point.name == name:
                return point
        raise ConfigError(f"nvp_compress: no point {name!r}; the config's points are "
                          f"{[p.name for p in self.points]}")


def nvp_codec_config(values: Mapping[str, Any] | None) -> NVPCodecConfig:
    """The ``nvp_compress`` section as written -> NVPCodecConfig."""
    values = dict(values or {})
    if "points" in values:
        values["points"] = tuple(section(NVPPoint, _point_values(p), "nvp_compress.points")
                                 for p in values["points"] or ())
    return section(NVPCodecConfig, values, "nvp_compress")


def _point_values(values: Any) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise ConfigError(f"nvp_compress.points: each point is a mapping {{qscale, crf}}, got {values!r}")
    values = dict(values)
    if isinstance(values.get("qscale"), int):  # one qscale for all three planes
        values["qscale"] = (values["qscale"],) * N_PLANES
    if "qscale" in values:
        values["qscale"] = tuple(values["qscale"])
    return values


def point_section(values: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """The ``nvp_compress`` section as one point's job reads it: the point ``name`` alone among
    the points, so that changing another point does not rerun this one."""
    values = dict(values or {})
    cfg = nvp_codec_config(values)
    point = cfg.point(name)
    return {**values, "points": [{"qscale": list(point.qscale), "crf": point.crf}]}
