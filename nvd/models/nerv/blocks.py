"""Shared NeRV building blocks and the per-stage kernel / width / block schedules.

The NeRV upsampling block is conv(k x k, c_in -> c_out * s^2) -> PixelShuffle(s) ->
activation: [B, c_in, h, w] -> [B, c_out, h*s, w*s]. PixelShuffle turns channels into space,
so the conv runs at the low resolution and the block's cost is c_in * c_out * s^2 * k^2.

Widths are computed from the real-valued ``channel_width`` x directly (not chained from the
previous stage's rounded width as the public code does; the two differ by at most one channel)
so that the parameter count grows in many small steps as x grows and the size solver can hit
a target closely (see size.py).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nvd.core.errors import ConfigError


class Sine(nn.Module):
    """x -> sin(x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x)


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (one of config.ACTIVATIONS)."""
    if name == "sin":
        return Sine()
    if name == "gelu":
        return nn.GELU()
    if name == "relu":
        return nn.ReLU()
    if name == "silu":
        return nn.SiLU()
    if name == "leaky":
        return nn.LeakyReLU()
    raise ConfigError(f"nerv: unknown activation {name!r}")


def mlp(dims: list[int], act: str) -> nn.Sequential:
    """Linear layers dims[0] -> dims[1] -> ... each followed by ``act`` (the last one too, as
    the public NeRV_MLP does). [..., dims[0]] -> [..., dims[-1]]."""
    layers: list[nn.Module] = []
    for c_in, c_out in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(c_in, c_out), activation(act)]
    return nn.Sequential(*layers)


class UpsampleBlock(nn.Module):
    """NeRV block: [B, c_in, h, w] -> conv k -> PixelShuffle(stride) -> act -> [B, c_out, h*s, w*s].

    With act="sin" and kernel <= 3 this is Boosting-NeRV's SNeRV block.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, act: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out * stride * stride, kernel, padding=kernel // 2)
        self.shuffle = nn.PixelShuffle(stride) if stride > 1 else nn.Identity()
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.shuffle(self.conv(x)))


def rgb_output(x: Tensor, kind: str) -> Tensor:
    """Head output [B, 3, H, W] -> RGB in [0, 1]: tanh(x) * 0.5 + 0.5 or sigmoid(x)."""
    if kind == "tanh":
        return torch.tanh(x) * 0.5 + 0.5
    if kind == "sigmoid":
        return torch.sigmoid(x)
    raise ConfigError(f"nerv: unknown out_activation {kind!r}")


def stage_kernels(n: int, kernel_min: int, kernel_max: int, cap: int | None = None) -> tuple[int, ...]:
    """Stage i's kernel: min(kernel_min + 2i, kernel_max), then min(., cap) when capped.

    ks 0_1_5 over 5 stages: (1, 3, 5, 5, 5); with cap 3 (boost): (1, 3, 3, 3, 3).
    """
    kernels = [min(kernel_min + 2 * i, kernel_max) for i in range(n)]
    if cap is not None:
        kernels = [min(k, cap) for k in kernels]
    return tuple(kernels)


def stage_blocks(n: int, blocks: tuple[int, ...] | None, boost: bool) -> tuple[int, ...]:
    """Units per stage: ``blocks`` when given, else 1 per stage, or for boost 1 for the first
    two stages and 2 after (Boosting-NeRV's (1, 1, 2, 2, 2) on five stages)."""
    if blocks is not None:
        return tuple(blocks)
    if not boost:
        return (1,) * n
    return tuple(1 if i < 2 else 2 for i in range(n))


def hnerv_widths(x: float, n: int, reduce: float, lower_width: int) -> tuple[int, ...]:
    """HNeRV stage widths: stage i has max(round(x / reduce**(i+1)), lower_width) channels."""
    return tuple(max(round(x / reduce ** (i + 1)), lower_width) for i in range(n))


def nerv_widths(x: float, strides: tuple[int, ...], expansion: float, reduce: float,
                lower_width: int) -> tuple[int, ...]:
    """NeRV / E-NeRV stage widths: stage 0 has round(x * expansion) channels (no floor, as in
    the public code); stage i > 0 has max(floor(x * expansion / reduce**r), lower_width) with r
    the number of strided stages among 1..i (a stride-1 stage keeps its width)."""
    top = x * expansion
    widths, r = [max(round(top), 1)], 0
    for stride in strides[1:]:
        r += stride != 1
        widths.append(max(math.floor(top / reduce**r), lower_width))
    return tuple(widths)
