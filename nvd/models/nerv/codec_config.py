"""The NeRV family's codec settings (config section ``nerv_compress``): CEM fine-tuning and its
rate points. Torch-free: the workflow reads the point names (its ``{point}`` wildcard) when it
builds the DAG. What the settings do: nvd.models.nerv.cem.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nvd.core.config import section
from nvd.core.errors import ConfigError
from nvd.models.nerv.config import MODEL_PRESETS
from nvd.train.config import TrainConfig

TRAIN_KEYS = ("seed", "device")


@dataclass(frozen=True)
class CEMConfig:
    """CEM fine-tuning (config section ``nerv_compress``); see the module docstring."""

    models: tuple[str, ...] | None = None  # the models the workflow compresses; None: nerv.models
    targets: tuple[float, ...] = (0.05, 0.1)  # target bpp, one rate point each
    epochs: int = 100
    lr: float = 5e-4
    scale_lr: float | None = None  # lr of the log-scales and the offset; None: lr
    rate_lambda: float = 10.0  # weight of the bpp term while above the target
    init_bits: float | None = None  # bits per value of the initial scales; None: solved for the target
    batch_size: int = 1
    betas: tuple[float, float, float] = (0.98, 0.92, 0.99)  # Adan's, as in the regression
    eval_every: int = 10  # epochs between log rows (PSNR of the quantised model)
    checkpoint_every: int = 10  # epochs between checkpoints
    train: TrainConfig = TrainConfig()  # only seed and device are read

    def __post_init__(self) -> None:
        if self.models is not None and (not self.models or set(self.models) - set(MODEL_PRESETS)):
            raise ConfigError(f"nerv_compress.models: expected a non-empty list of {sorted(MODEL_PRESETS)} "
                              f"or null, got {self.models!r}")
        if not self.targets or not all(_positive(t) for t in self.targets):
            raise ConfigError(f"nerv_compress.targets: expected a non-empty list of numbers > 0 (bpp), "
                              f"got {self.targets!r}")
        names = [point_name(t) for t in self.targets]
        if len(set(names)) != len(names):
            raise ConfigError(f"nerv_compress.targets: two targets share a point name: {names}")
        for name in ("epochs", "batch_size", "eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"nerv_compress.{name} must be an integer >= 1, got {value!r}")
        for name in ("lr", "rate_lambda"):
            if not _positive(getattr(self, name)):
                raise ConfigError(f"nerv_compress.{name} must be a number > 0, got {getattr(self, name)!r}")
        if self.scale_lr is not None and not _positive(self.scale_lr):
            raise ConfigError(f"nerv_compress.scale_lr must be a number > 0 or null, got {self.scale_lr!r}")
        if self.init_bits is not None and not (_positive(self.init_bits) and self.init_bits <= 16):
            raise ConfigError(f"nerv_compress.init_bits must be a number in (0, 16] or null, got {self.init_bits!r}")
        if len(self.betas) != 3 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"nerv_compress.betas must be three numbers in [0, 1), got {self.betas!r}")

    def steps_per_epoch(self, num_frames: int) -> int:
        return math.ceil(num_frames / self.batch_size)

    def loop_config(self, num_frames: int) -> TrainConfig:
        """The shared loop's settings: epochs of ceil(T / batch_size) steps, logs and
        checkpoints at epoch ends."""
        steps = self.steps_per_epoch(num_frames)
        return TrainConfig(iterations=self.epochs * steps, checkpoint_every=self.checkpoint_every * steps,
                           log_every=self.eval_every * steps, seed=self.train.seed, device=self.train.device)

    def identity(self, target: float) -> dict[str, Any]:
        """The settings as they shape one point's fine-tuning (not the device, the spacing of
        logs and checkpoints, nor which models and targets the workflow runs)."""
        values = dataclasses.asdict(self)
        for key in ("models", "targets", "eval_every", "checkpoint_every", "train"):
            values.pop(key)
        return {**values, "betas": list(self.betas), "seed": self.train.seed, "target_bpp": float(target)}


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def cem_config(values: Mapping[str, Any] | None) -> CEMConfig:
    """The ``nerv_compress`` section as written -> CEMConfig."""
    values = dict(values or {})
    extra = sorted(set(values.get("train") or {}) - set(TRAIN_KEYS))
    if extra:
        raise ConfigError(f"config section 'nerv_compress.train': key(s) {extra} are not used (the steps "
                          f"follow from epochs); known: {list(TRAIN_KEYS)}")
    return section(CEMConfig, values, "nerv_compress")


def point_name(target: float) -> str:
    """The rate point of a target bpp, the workflow's ``{point}`` wildcard: 0.1 -> "bpp0.1"."""
    return f"bpp{float(target):g}"


def point_names(cfg: CEMConfig) -> list[str]:
    """The rate points of ``cfg``, in the order of its targets."""
    return [point_name(t) for t in cfg.targets]


def target_of(cfg: CEMConfig, point: str) -> float:
    """The target bpp of rate point ``point``; ConfigError naming the known points."""
    for target in cfg.targets:
        if point_name(target) == point:
            return float(target)
    raise ConfigError(f"nerv_compress: unknown rate point {point!r}; the targets give {point_names(cfg)}")


def point_section(values: Mapping[str, Any] | None, point: str) -> dict[str, Any]:
    """The ``nerv_compress`` section as one point's job reads it: its target alone and no
    model list, so that another target or model does not rerun this point."""
    values = dict(values or {})
    target = target_of(cem_config(values), point)
    values.pop("models", None)
    return {**values, "targets": [target]}

