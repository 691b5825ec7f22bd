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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nvd.core.config import section
from nvd.core.errors import ConfigError
from nvd.train.config import TrainConfig

# Number of 2-D planes in the keyframe latent: (row, col), (t, row), (t, col).
N_PLANES = 3
# The sparse grid's spatial neighbourhood: 3 x 3 cells around the nearest one.
SPARSE_NEIGHBOURS = 9
# How the sparse grid is read between its cells (grids.SparseGrid).
SPARSE_INTERPOLATIONS = ("nearest", "linear")


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
    # No plane axis finer than the video's samples along it (frames, rows, cols; grids.py):
    # vertices between samples are never trained. False: the paper's square levels.
    cap_to_video: bool = True
    # How the sparse grid is read (grids.py): "nearest" cell, the paper's, piecewise constant in
    # space; "linear", bilinear between cells, so rendering between the trained pixels
    # (super-resolution) varies smoothly.
    sparse_interpolation: str = "nearest"

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
        if self.sparse_interpolation not in SPARSE_INTERPOLATIONS:
            raise ConfigError(f"nvp: sparse_interpolation must be one of {SPARSE_INTERPOLATIONS}, "
                              f"got {self.sparse_interpolation!r}")
        if self.sparse_interpolation == "linear" and self.sparse_size < 2:
            raise ConfigError(f"nvp: sparse_interpolation 'linear' needs sparse_size >= 2, got {self.sparse_size}")
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


@dataclass(frozen=True)
class NVPTrainConfig:
    """NVP training (config section ``nvp``; defaults: the paper's NVP-S recipe).

    ``size`` names the model's base (NVP_SIZES); keys under ``model`` override it one by one
    (``nvp_train_config``). ``budgets``: step counts at which the run keeps a snapshot of its
    model for the encoding-time table; the last step (train.iterations) is always one. The
    snapshots belong to one run whose cosine schedule spans train.iterations, so a budget's
    figures are those of that run at that step, not of a run scheduled for the budget.
    """

    size: str | None = "S"
    model: NVPConfig = NVPConfig()
    batch_size: int = 1_245_184  # (t, pixel) samples per step
    lr: float = 1e-2  # AdamW, cosine from lr to lr_min over train.iterations
    lr_min: float = 1e-5
    weight_decay: float = 1e-3
    budgets: tuple[int, ...] = ()
    train: TrainConfig = TrainConfig(iterations=100_000, checkpoint_every=5_000, log_every=5_000)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"nvp.batch_size must be >= 1, got {self.batch_size}")
        if not 0 < self.lr_min <= self.lr:
            raise ConfigError(f"nvp: need 0 < lr_min <= lr, got lr={self.lr}, lr_min={self.lr_min}")
        if self.weight_decay < 0:
            raise ConfigError(f"nvp.weight_decay must be >= 0, got {self.weight_decay}")
        bad = [b for b in self.budgets if not 1 <= b <= self.train.iterations]
        if bad:
            raise ConfigError(f"nvp.budgets must lie in 1..train.iterations ({self.train.iterations}), got {bad}")

    @property
    def snapshot_steps(self) -> tuple[int, ...]:
        """The budgets, sorted, with the final step."""
        return tuple(sorted({*self.budgets, self.train.iterations}))


@dataclass(frozen=True)
class ResamplingConfig:
    """Super-resolution or frame interpolation by ``factor`` (sections ``nvp_superres`` and
    ``nvp_interpolate``): train on the video downsampled factor times per axis (area
    averaging), or on every factor-th frame, then render the full size or the frames in
    between and score them against the held-out original (resampling.py)."""

    factor: int = 2
    iterations: int | None = None  # training steps; None: nvp.train.iterations

    def __post_init__(self) -> None:
        if not isinstance(self.factor, int) or self.factor < 2:
            raise ConfigError(f"nvp resampling factor must be an integer >= 2, got {self.factor!r}")
        if self.iterations is not None and self.iterations < 1:
            raise ConfigError(f"nvp resampling iterations must be >= 1, got {self.iterations}")


def nvp_train_config(values: Mapping[str, Any] | None, name: str = "nvp") -> NVPTrainConfig:
    """The ``nvp`` section as written -> NVPTrainConfig: the named size's model with the
    ``model`` keys on top, the other keys on top of the defaults."""
    values = dict(values or {})
    size = values.get("size", NVPTrainConfig.size)
    base = NVPTrainConfig(size=size, model=nvp_config(size))
    return section(NVPTrainConfig, values, name, base=base)
