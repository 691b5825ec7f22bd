"""Frame-size geometry: strides against the stem / embedding grid, checked at the boundary.

A NeRV-family decoder starts from a feature map of ``grid = (rows, cols)`` cells (NeRV and
E-NeRV: the stem's fc_h x fc_w; HNeRV: the embedding, frame / prod(enc_strides)) and every
stage upsamples by its stride, so the strides must multiply to height / rows and to
width / cols, the same factor on both axes. 16:9 frames with a 9 x 16 grid satisfy that with
one stride list, e.g. 1280 x 720 -> 80 = 5*2*2*2*2, 1920 x 1080 -> 120 = 5*3*2*2*2,
320 x 180 -> 20 = 5*2*2, 160 x 90 -> 10 = 5*2, 64 x 36 -> 4 = 2*2.

``resolve_layout`` turns a config and a frame size into the concrete per-stage lists every
model builds from, and raises ConfigError naming the offending key otherwise.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from nvd.core.errors import ConfigError
from nvd.models.nerv.blocks import stage_blocks, stage_kernels
from nvd.models.nerv.config import HNeRVConfig, ModelConfig


def _fmt(strides: tuple[int, ...]) -> str:
    return "(" + ",".join(str(s) for s in strides) + ")"


def prime_strides(factor: int) -> tuple[int, ...]:
    """``factor`` as a product of primes, largest first: 80 -> (5, 2, 2, 2, 2); 1 -> ()."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    out, p = [], 2
    while factor > 1:
        while factor % p == 0:
            out.append(p)
            factor //= p
        p += 1
    return tuple(sorted(out, reverse=True))


def grid_factor(key: str, height: int, width: int, grid: tuple[int, int]) -> int:
    """The common upsampling factor from ``grid`` (rows, cols) to height x width."""
    rows, cols = grid
    if height % rows or width % cols or height // rows != width // cols:
        raise ConfigError(
            f"{key}: a {rows} x {cols} grid does not scale to {width}x{height} frames by one "
            f"integer factor ({height} / {rows} = {height / rows:g}, {width} / {cols} = "
            f"{width / cols:g}); change grid or the frame size")
    return height // rows


def strides_for(height: int, width: int, grid: tuple[int, int] = (9, 16)) -> tuple[int, ...]:
    """Strides (largest first) taking a ``grid`` feature map to height x width frames.

    1280x720 -> (5, 2, 2, 2, 2); 1920x1080 -> (5, 3, 2, 2, 2); 320x180 -> (5, 2, 2);
    160x90 -> (5, 2); 64x36 -> (2, 2).
    """
    factor = grid_factor("strides", height, width, grid)
    if factor == 1:
        raise ConfigError(f"strides: {width}x{height} frames are the grid {grid} itself; "
                          "nothing to upsample")
    return prime_strides(factor)


def check_strides(prefix: str, key: str, strides: tuple[int, ...], height: int, width: int,
                  grid: tuple[int, int]) -> None:
    """ConfigError unless ``strides`` multiply to the grid-to-frame factor."""
    factor = grid_factor(f"{prefix}: grid", height, width, grid)
    product = math.prod(strides)
    if product != factor:
        raise ConfigError(
            f"{prefix}: {key} {_fmt(strides)} multiply to {product} but {height} / {grid[0]} = "
            f"{factor} (frame height / grid rows; width {width} / {grid[1]} = {factor}); use "
            f"strides whose product is {factor}, e.g. {_fmt(prime_strides(factor))}")


@dataclass(frozen=True)
class Layout:
    """Per-stage lists of one model at one frame size."""

    grid: tuple[int, int]  # (rows, cols) of the decoder's first feature map
    strides: tuple[int, ...]  # decoder upsampling per stage
    blocks: tuple[int, ...]  # units per stage
    kernels: tuple[int, ...]  # conv kernel per stage (boost: capped)
    enc_strides: tuple[int, ...] | None = None  # HNeRV only


def _check_frame(prefix: str, height: int, width: int) -> None:
    if not all(isinstance(v, numbers.Integral) for v in (height, width)) or height < 1 or width < 1:
        raise ConfigError(f"{prefix}: frame size must be positive integers, got {width}x{height}")


def resolve_layout(cfg: ModelConfig, height: int, width: int) -> Layout:
    """The layout of ``cfg`` on height x width frames; ConfigError naming the key otherwise."""
    prefix = cfg.name
    _check_frame(prefix, height, width)
    enc_strides = None
    if isinstance(cfg, HNeRVConfig):
        if cfg.enc_strides is None:
            enc_strides = strides_for(height, width, cfg.grid)
        else:
            enc_strides = cfg.enc_strides
        down = math.prod(enc_strides)
        if height % down or width % down:
            raise ConfigError(
                f"{prefix}: enc_strides {_fmt(enc_strides)} multiply to {down}, which does not "
                f"divide the {width}x{height} frame ({height} / {down} = {height / down:g}, "
                f"{width} / {down} = {width / down:g})")
        grid = (height // down, width // down)
        strides = enc_strides if cfg.strides is None else cfg.strides
        if math.prod(strides) != down:
            raise ConfigError(
                f"{prefix}: strides {_fmt(strides)} multiply to {math.prod(strides)} but "
                f"enc_strides {_fmt(enc_strides)} multiply to {down}; the decoder must undo the "
                f"encoder's downsampling ({height} / {grid[0]} = {down})")
    else:
        grid = cfg.grid
        strides = strides_for(height, width, grid) if cfg.strides is None else cfg.strides
        check_strides(prefix, "strides", strides, height, width, grid)
    n = len(strides)
    if cfg.blocks is not None and len(cfg.blocks) != n:
        raise ConfigError(f"{prefix}: blocks {cfg.blocks} must have one entry per stage of "
                          f"strides {_fmt(strides)}")
    blocks = stage_blocks(n, cfg.blocks, cfg.boost)
    cap = cfg.boost_cfg.kernel_cap if cfg.boost else None
    kernels = stage_kernels(n, cfg.kernel_min, cfg.kernel_max, cap)
    return Layout(grid=grid, strides=tuple(strides), blocks=blocks, kernels=kernels,
                  enc_strides=enc_strides)
