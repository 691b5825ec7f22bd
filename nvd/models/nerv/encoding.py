"""Frame time and the sinusoidal positional encoding every NeRV-family model starts from.

Frame i of N has the normalised time t = (i + 1) / N (Boosting-NeRV's convention), so t lies
in (0, 1]; a fractional time (interpolation) is just another float.

The encoding of a value p is 2L values, all sines first, then all cosines:
``[sin(w_0 p), ..., sin(w_{L-1} p), cos(w_0 p), ..., cos(w_{L-1} p)]`` with w_k = base**k * pi
(base 1.25, L = 80: 160 values). The top frequencies are huge (1.25**79 * pi ~ 1.4e8), so the
arguments and sines are computed in float64 and only then cast: float32 sin of such arguments
differs between CPU and CUDA, which would make a model's outputs depend on the device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def normalized_time(t_index: Tensor, num_frames: int) -> Tensor:
    """Frame indices [B] (integers 0..N-1) -> times (i + 1) / N, float32 [B]."""
    return ((t_index.to(torch.float64) + 1) / num_frames).to(torch.float32)


class PositionalEncoding(nn.Module):
    """p [...] -> [..., 2 * levels]: sin(base**k * pi * p) for k < levels, then the cosines."""

    def __init__(self, base: float = 1.25, levels: int = 80) -> None:
        super().__init__()
        self.base, self.levels = base, levels
        freqs = torch.tensor([base**k * math.pi for k in range(levels)], dtype=torch.float64)
        self.register_buffer("freqs", freqs, persistent=False)

    @property
    def out_dim(self) -> int:
        return 2 * self.levels

    def forward(self, p: Tensor) -> Tensor:
        arg = p.to(torch.float64)[..., None] * self.freqs
        return torch.cat((torch.sin(arg), torch.cos(arg)), dim=-1).to(torch.float32)
