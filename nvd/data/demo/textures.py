"""Procedural atlas textures for the synthetic scenes: float32 RGB in [0, 1], seeded.

Textures are procedural rather than photographs so the demo needs no data files; they
carry detail at every scale from a few pixels up, which optical flow and atlas training
need to lock on to.
"""

from __future__ import annotations

import cv2
import numpy as np

# Cell sizes (pixels) of the value-noise octaves, coarse to fine.
_OCTAVES = (64, 32, 16, 8, 4)


def value_noise(
    size: tuple[int, int], cell: int, rng: np.random.Generator, channels: int
) -> np.ndarray:
    """Smooth random field: uniform values on a ``cell``-spaced grid, bicubically upsampled.

    Returns float32 [H, W, channels], roughly in [0, 1].
    """
    h, w = size
    # One spare grid row/column on each side so the crop never sees the resize's border.
    gh, gw = h // cell + 3, w // cell + 3
    grid = rng.random((gh, gw, channels), dtype=np.float32)
    up = cv2.resize(grid, (gw * cell, gh * cell), interpolation=cv2.INTER_CUBIC)
    up = up.reshape(gh * cell, gw * cell, channels)
    return up[cell : cell + h, cell : cell + w]


def fractal_noise(size: tuple[int, int], rng: np.random.Generator, channels: int) -> np.ndarray:
    """Equal-weight sum of value-noise octaves, contrast-stretched to [0, 1].

    Equal weights keep the fine octaves visible (natural 1/f weights would blur them away).
    Returns float32 [H, W, channels].
    """
    total = sum(value_noise(size, cell, rng, channels) for cell in _OCTAVES)
    lo, hi = np.percentile(total, [1, 99])
    return np.clip((total - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def pebbles(image: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """Overlay ``count`` half-transparent discs of random size and muted colour.

    Discs give the sharp edges and corners that noise lacks; their coverage is computed
    per pixel from the distance to the rim (1-pixel anti-aliasing). Returns a new float32
    [H, W, 3].
    """
    h, w = image.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = image.copy()
    for _ in range(count):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        radius = rng.uniform(2.0, 8.0)
        colour = (0.2 + 0.6 * rng.random(3)).astype(np.float32)
        cover = np.clip(radius + 0.5 - np.hypot(x - cx, y - cy), 0.0, 1.0)[..., None]
        out += 0.5 * cover * (colour - out)
    return out


def background_texture(size: tuple[int, int], seed: int) -> np.ndarray:
    """Multi-scale noise tinted by colour noise, strewn with pebbles.

    Returns float32 [H, W, 3] in [0, 1].
    """
    rng = np.random.default_rng(seed)
    luminance = fractal_noise(size, rng, 1)
    tint = fractal_noise(size, rng, 3)
    # Mostly luminance so colours stay natural; the tint keeps channels from being identical.
    rgb = np.clip(0.1 + 0.6 * luminance + 0.3 * tint, 0.0, 1.0)
    area = size[0] * size[1]
    return np.clip(pebbles(rgb, rng, count=area // 500), 0.0, 1.0).astype(np.float32)


def object_texture(size: int, seed: int, hue: float) -> np.ndarray:
    """Colourful square texture: rings and spiral spokes around the centre over fine noise.

    The hue swings around ``hue`` (in turns) with the angle, which makes rotation visible;
    rings, spokes and noise give the flow texture in every direction.
    Returns float32 [size, size, 3] in [0, 1].
    """
    rng = np.random.default_rng(seed)
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - c
    radius = np.hypot(x, y)
    angle = np.arctan2(y, x)
    noise = fractal_noise((size, size), rng, 1)[..., 0] - 0.5
    hsv = np.empty((size, size, 3), np.float32)
    # OpenCV's float HSV: H in degrees [0, 360), S and V in [0, 1].
    hsv[..., 0] = (360.0 * (hue + 0.12 * np.cos(angle) + 0.08 * noise)) % 360.0
    hsv[..., 1] = 0.75 + 0.2 * noise
    hsv[..., 2] = (
        0.6
        + 0.2 * np.sin(2 * np.pi * radius / 7.0)
        + 0.12 * np.sin(5 * angle + radius / 4.0)
        + 0.15 * noise
    )
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)
