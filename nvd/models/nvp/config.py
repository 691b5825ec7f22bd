"""NVP hyper-parameters: one frozen dataclass is the single source of defaults.

Level sides follow tiny-cuda-nn's dense-grid convention, which the reference used: level ``l``
has ``side_l = ceil(base_resolution * per_level_scale**l)`` vertices per axis (tcnn writes it
``ceil(base * scale**l - 1) + 1``). For 16 levels, base 16 and scale 1.35 that is 16, 22, 30,
40, 54, ..., 1069, 1443: the list the reference reports. floor() would give 16, 21, 29, ...,
1442 and round() 16, 22, 29, ..., 1443, neither of which matches.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from nvd.core.errors import ConfigError

# Number of 2-D planes in the keyframe latent: (row, col), (t, row), (t, col).
N_PLANES = 3
# The sparse grid's spatial neighbourhood: 3 x 3 cells around the nearest one.
SPARSE_NEIGHBOURS = 9


@dataclass(frozen=True)
class NVPConfig:
    """NVP model settings (defaults: the paper's NVP-S, except ``features``, see NVP_SIZES)."""

    levels: int = 16  # resolution levels of each keyframe plane
    base_resolution: int = 16  # side (vertices per axis) of level 0
    per_level_scale: float = 1.35  # growth factor of the side between levels
    features: int = 2  # F, features per level and per sparse-grid cell (2: NVP-S, 4: NVP-L)
    sparse_size: int = 300  # S, spatial side of the sparse grid [T, S, S, F]
    siren_width: int = 128  # width of every sine layer; also the modulator's width (see model.py)
    siren_layers: int = 3  # sine layers (each one modulated)
    first_omega: float = 30.0  # w0 of the first sine layer
    hidden_omega: float = 1.0  # w0 of the other sine layers (and the head's init)
    init_scale: float = 1e-4  # sparse grid ~ U(-init_scale, init_scale)
    plane_init_scale: float = 1e-4  # keyframe planes ~ U(-s, s), tiny-cuda-nn's grid default

    def __post_init__(self) -> None:
        positive = ("levels", "features", "sparse_size", "siren_width", "siren_layers")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"nvp: {name} must be >= 1, got {getattr(self, name)}")
        if self.base_resolution < 2:  # bilinear interpolation needs two vertices per axis
            raise ConfigError(f"nvp: base_resolution must be >= 2, got {self.base_resolution}")
        if self.per_level_scale < 1:
            raise ConfigError(f"nvp: per_level_scale must be >= 1, got {self.per_level_scale}")
        if self.first_omega <= 0 or self.hidden_omega <= 0:
            raise ConfigError("nvp: first_omega and hidden_omega must be > 0")
        if self.init_scale < 0 or self.plane_init_scale < 0:
            raise ConfigError("nvp: init_scale and plane_init_scale must be >= 0")

    @property
    def level_sides(self) -> tuple[int, ...]:
        """Vertices per axis of each level: ceil(base * scale**l), see the module docstring.

        The (1 - 1e-9) guard keeps sides that are integers in exact arithmetic from being
        rounded up by float noise (1.1**2 * 100 is 121.00000000000003).
        """
        return tuple(
            math.ceil(self.base_resolution * self.per_level_scale**level * (1 - 1e-9))
            for level in range(self.levels)
        )

    @property
    def latent_dim(self) -> int:
        """Width of the decoder's latent: 3 planes x L levels x F, plus 9F sparse (57F at L=16)."""
        return (N_PLANES * self.levels + SPARSE_NEIGHBOURS) * self.features


NVP_SIZES: dict[str, NVPConfig] = {"S": NVPConfig(features=2), "L": NVPConfig(features=4)}


def nvp_config(size: str | None = None, **overrides: object) -> NVPConfig:
    """The named size ("S", "L"; None: the dataclass defaults) with ``overrides`` applied."""
    if size is None:
        base = NVPConfig()
    elif size in NVP_SIZES:
        base = NVP_SIZES[size]
    else:
        raise ConfigError(f"nvp: unknown size {size!r}, expected one of {sorted(NVP_SIZES)}")
    known = {field.name for field in dataclasses.fields(NVPConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"nvp: unknown setting(s) {unknown}, expected some of {sorted(known)}")
    return dataclasses.replace(base, **overrides)
