"""Boosting-NeRV's conditional decoder pieces, shared by NeRV-, E-NeRV- and HNeRV-Boost.

- ``TimeEmbedding``: t [B] -> positional encoding [B, 160] (80 frequencies 1.25**k * pi, sines
  then cosines, see encoding.py) -> Linear 160 -> 64 -> sine -> Linear 64 -> 32 -> sine:
  c [B, 32]. (The public code's 1x1 convs on a [B, C, 1, 1] map are exactly these Linears.)
- ``TAT`` (temporal-aware affine transform): scale = net_s(c), shift = net_h(c), each
  Linear(32 -> 32) -> ReLU -> Linear(32 -> C), broadcast over space;
  out = x * (1 + scale) + shift. No normalisation: the frame's features keep their statistics
  and the time only nudges them, so zero scale and shift is the identity.
- ``TATResBlock``: x + conv3x3(TAT(GELU(conv3x3(TAT(x, c))), c)).
- ``BoostUnit``: an upsampling block (SNeRV: conv k <= 3 -> PixelShuffle(s) -> sine) followed
  by a TAT residual block at the new resolution. A boosted decoder is its stem followed by
  stages of such units, (1, 1, 2, 2, 2) of them on five stages, the first of each stage
  upsampling; the head's output goes through tanh(x) * 0.5 + 0.5.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nvd.models.nerv.blocks import Sine, UpsampleBlock
from nvd.models.nerv.config import BoostConfig
from nvd.models.nerv.encoding import PositionalEncoding


class TimeEmbedding(nn.Module):
    """Normalised time t [B] -> conditioning vector [B, cfg.time_dim]."""

    def __init__(self, cfg: BoostConfig = BoostConfig()) -> None:
        super().__init__()
        self.encoding = PositionalEncoding(cfg.time_base, cfg.time_levels)
        self.net = nn.Sequential(
            nn.Linear(self.encoding.out_dim, cfg.time_hidden), Sine(),
            nn.Linear(cfg.time_hidden, cfg.time_dim), Sine(),
        )

    def encode(self, t: Tensor) -> Tensor:
        """t [B] -> the sinusoidal encoding [B, 2 * time_levels] (sines, then cosines)."""
        return self.encoding(t)

    def forward(self, t: Tensor) -> Tensor:
        return self.net(self.encoding(t))


class TAT(nn.Module):
    """(x [B, C, H, W], c [B, cond_dim]) -> x * (1 + scale(c)) + shift(c), [B, C, H, W]."""

    def __init__(self, channels: int, cond_dim: int, hidden: int) -> None:
        super().__init__()
        self.scale = nn.Sequential(nn.Linear(cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        self.shift = nn.Sequential(nn.Linear(cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, channels))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        scale = self.scale(cond)[:, :, None, None]
        shift = self.shift(cond)[:, :, None, None]
        return x * (1 + scale) + shift


class TATResBlock(nn.Module):
    """(x [B, C, H, W], c [B, cond_dim]) -> x + conv(TAT(GELU(conv(TAT(x, c))), c)), [B, C, H, W]."""

    def __init__(self, channels: int, cond_dim: int, hidden: int) -> None:
        super().__init__()
        self.tat0 = TAT(channels, cond_dim, hidden)
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.GELU()
        self.tat1 = TAT(channels, cond_dim, hidden)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.act(self.conv0(self.tat0(x, cond)))
        return x + self.conv1(self.tat1(h, cond))


class BoostUnit(nn.Module):
    """(x [B, c_in, h, w], c) -> TATResBlock(up(x), c): [B, channels, h*s, w*s].

    ``up`` is any module mapping x to ``channels`` channels (an SNeRV block, E-NeRV's first
    stage block, or HNeRV's 1x1 stem conv).
    """

    def __init__(self, up: nn.Module, channels: int, cfg: BoostConfig) -> None:
        super().__init__()
        self.up = up
        self.res = TATResBlock(channels, cfg.time_dim, cfg.tat_hidden)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.res(self.up(x), cond)


def decoder_stages(c_in: int, widths: tuple[int, ...], strides: tuple[int, ...],
                   blocks: tuple[int, ...], kernels: tuple[int, ...], act: str,
                   boost_cfg: BoostConfig | None) -> tuple[nn.ModuleList, int]:
    """Stages of NeRV upsampling blocks, or of BoostUnits (SNeRV + TAT residual block) when
    ``boost_cfg`` is given.

    Stage i has blocks[i] units of widths[i] channels and kernel kernels[i], the first with
    stride strides[i], the rest with stride 1. Returns the units and their output channels.
    """
    units = nn.ModuleList()
    for width, stride, n_blocks, kernel in zip(widths, strides, blocks, kernels):
        for j in range(n_blocks):
            up = UpsampleBlock(c_in, width, stride if j == 0 else 1, kernel, act)
            units.append(BoostUnit(up, width, boost_cfg) if boost_cfg is not None else up)
            c_in = width
    return units, c_in


def run_units(units: nn.ModuleList, x: Tensor, cond: Tensor | None) -> Tensor:
    """Apply decoder units in order; BoostUnits also get the time embedding ``cond``."""
    for unit in units:
        x = unit(x, cond) if isinstance(unit, BoostUnit) else unit(x)
    return x


def zero_tat(tat: TAT) -> None:
    """Zero the last layers of a TAT's scale and shift nets: the TAT becomes the identity."""
    with torch.no_grad():
        for net in (tat.scale, tat.shift):
            net[-1].weight.zero_()
            net[-1].bias.zero_()
