"""Divergence of a training run: the check after every step, and what the message says.

A finite loss can still give a non-finite gradient, which the optimiser writes into the
parameters; the loop therefore checks the parameters after each step (one fused reduction
per device) before anything is logged, checkpointed or published.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from nvd.core.errors import NvdError


class TrainingDiverged(NvdError):
    """The loss, or a parameter after an optimiser step, became NaN or infinite; the last good
    checkpoint is left in place and nothing non-finite is checkpointed."""


def diverged_message(iteration: int, loss: Tensor, parts: Mapping[str, float], ckpt_path: Path) -> str:
    bad = [f"{name}={value}" for name, value in parts.items() if not math.isfinite(value)]
    which = (
        f"non-finite parts: {', '.join(bad)}"
        if bad
        else "all reported parts are finite, so a term outside them is not"
    )
    kept = (
        f"the last good checkpoint {ckpt_path} is kept"
        if ckpt_path.exists()
        else "no checkpoint had been written yet"
    )
    return (
        f"training diverged at iteration {iteration}: loss = {loss.item()} ({which}); {kept}. "
        "Resuming would repeat the same steps: lower the learning rates or check the inputs"
    )


def parameter_names(modules: Mapping[str, nn.Module]) -> dict[int, str]:
    """``id(parameter)`` -> "module 'name', parameter 'dotted.name'" for the messages."""
    names: dict[int, str] = {}
    for module_name, module in modules.items():
        for param_name, param in module.named_parameters():
            names.setdefault(id(param), f"module '{module_name}', parameter '{param_name}'")
    return names


_LOW_PRECISION = (torch.float16, torch.bfloat16)


def all_finite_by_sums(params: list[Tensor]) -> Tensor:
    """One flag: every value of ``params`` is finite. On the CPU a sum per tensor is the
    cheapest exact test (NaN and inf propagate through it, +inf and -inf give NaN; a finite
    tensor only overflows beyond 3e38 in total, in float32 or wider)."""
    sums = [p.sum(dtype=torch.float32) if p.dtype in _LOW_PRECISION else p.sum() for p in params]
    return torch.stack(sums).isfinite().all()


def all_finite_by_foreach(params: list[Tensor]) -> Tensor:
    """The same flag from one fused multi-tensor L1 norm (a few kernels for all tensors of a
    device, where a sum per tensor would launch one each), accumulated in float32 or wider."""
    low = [p for p in params if p.dtype in _LOW_PRECISION]
    rest = [p for p in params if p.dtype not in _LOW_PRECISION]
    norms = [*torch._foreach_norm(low, 1, dtype=torch.float32)] if low else []
    norms += [*torch._foreach_norm(rest, 1)] if rest else []
    return torch.stack(norms).isfinite().all()


class ParameterCheck:
    """Whether the parameters the optimiser steps are all finite, checked after each step.

    ``queue`` returns one flag tensor and reads nothing, so it adds no host sync: the loop
    reads the flag with the next loss check, or at once before a log row or checkpoint.
    Per device one fused reduction (see _all_finite_by_*); only when a flag is false are the
    parameters looked at one by one, to name the bad one.
    """

    def __init__(self, modules: Mapping[str, nn.Module], optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.names = parameter_names(modules)
        self._key: tuple[int, ...] = ()
        self._params: list[Tensor] = []
        self._by_device: list[tuple[torch.device, list[Tensor]]] = []

    def _groups(self) -> list[tuple[torch.device, list[Tensor]]]:
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        key = tuple(map(id, params))
        if key != self._key:  # param groups are rarely changed: regroup only then
            by_device: dict[torch.device, list[Tensor]] = {}
            for p in params:
                if p.numel():
                    by_device.setdefault(p.device, []).append(p)
            self._key, self._params, self._by_device = key, params, list(by_device.items())
        return self._by_device

    def queue(self) -> Tensor:
        """A bool tensor (not read): every stepped parameter is finite now."""
        flag: Tensor | None = None
        with torch.no_grad():
            for device, params in self._groups():
                finite = all_finite_by_sums(params) if device.type == "cpu" else all_finite_by_foreach(params)
                flag = finite if flag is None else flag & finite.to(flag.device)
        return flag if flag is not None else torch.tensor(True)

    def raise_if_diverged(self, iteration: int, loss: Tensor, flag: Tensor, ckpt_path: Path) -> None:
        """Read ``flag`` (a host sync); TrainingDiverged naming the first bad parameter."""
        if bool(flag):
            return
        bad = []
        with torch.no_grad():
            for p in self._params:
                finite = torch.isfinite(p)
                if not bool(finite.all()):
                    nan = int(torch.isnan(p).sum())
                    where = self.names.get(id(p), f"an optimiser parameter of shape {list(p.shape)}")
                    bad.append((where, p.numel(), nan, p.numel() - int(finite.sum()) - nan))
        if not bad:  # cannot happen unless the parameters changed since the step
            bad.append(("a parameter", 0, 0, 0))
        where, numel, nan, inf = bad[0]
        counts = " and ".join(f"{n} {kind}" for n, kind in ((nan, "NaN"), (inf, "infinite")) if n)
        detail = f"{counts} of its {numel} values" if numel else "non-finite values"
        more = f" (and {len(bad) - 1} more parameters)" if len(bad) > 1 else ""
        kept = (
            f"the last good checkpoint {ckpt_path} is kept"
            if ckpt_path.exists()
            else "no checkpoint had been written yet"
        )
        raise TrainingDiverged(
            f"training diverged at iteration {iteration}: the loss was finite "
            f"({loss.item()}) but after the optimiser step {where} has {detail}{more}, so a "
            f"gradient was not finite; {kept}. Resuming would repeat the same steps: lower the "
            "learning rates, clip the gradients or check the loss for an operation with an "
            "infinite derivative (sqrt or log at 0, division by a small number)"
        )
