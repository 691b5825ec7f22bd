"""What the benchmarks share: one training iteration of a TrainTask, and timing steps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def task_step(task: Any, device: str) -> Callable[[], None]:
    """One iteration as nvd.train.loop.train does it (zero_grad, step_loss, backward, the
    optimiser step), synchronised on CUDA so a timer sees it finish."""
    import torch

    optimizer, generator = task.optimizer(), torch.Generator(device=device).manual_seed(0)
    iteration = 0

    def step() -> None:
        nonlocal iteration
        iteration += 1
        optimizer.zero_grad(set_to_none=True)
        loss, _ = task.step_loss(iteration, generator)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def time_steps(step: Callable[[], None], steps: int, warmup: int = 2) -> list[float]:
    """Seconds of each of ``steps`` calls of ``step``, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times
