"""The shared training loop's settings (torch-free: the workflow reads them at DAG build)."""

from __future__ import annotations

from dataclasses import dataclass

from nvd.core.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation loop settings (single source of defaults)."""

    iterations: int = 50_000
    checkpoint_every: int = 5_000
    log_every: int = 500
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("iterations", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"training.{name} must be at least 1, got {getattr(self, name)}")
