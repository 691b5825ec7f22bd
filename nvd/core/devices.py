"""Choice of compute device: GPU when present, CPU otherwise, same code path."""

from __future__ import annotations

from nvd.core.errors import ConfigError


def resolve_device(name: str = "auto") -> "torch.device":  # noqa: F821 - torch imported lazily
    """Turn a config device string ("auto", "cpu", "cuda", "cuda:1") into a torch.device.

    "auto" picks CUDA when available. Asking for CUDA on a machine without it is an error,
    not a silent fallback, so a cluster job never runs on CPU by accident.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' was requested but CUDA is not available on this machine")
    return device


def use_cpu_threads(n: int) -> None:
    """Run torch's CPU kernels on ``n`` threads (a Snakemake job's ``threads``).

    Torch otherwise takes every core, and on a busy machine its OpenMP workers spin against
    other jobs: on 2 cores with one other busy process, a decomposition step went from
    0.28 s with 1 thread to 8.3 s with 2.
    """
    import torch

    torch.set_num_threads(max(1, int(n)))
