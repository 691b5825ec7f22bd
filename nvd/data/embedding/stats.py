"""Weight-free video descriptor: 64 hand-made colour, layout, texture and motion statistics.

A baseline for the learned embedding and a way to run the pipeline without model weights.
Deterministic: the same frames give the same bytes.
"""

from __future__ import annotations

import cv2
import numpy as np

STATS_DIM = 64
# Frames are first resized so their long edge is this many pixels: the gradient and motion
# statistics then measure the content, not the resolution the frames stage stored.
WORK_LONG_EDGE = 128
_CHANNEL_OFFSETS = np.array([0, 8, 16], dtype=np.uint8)
# Temporal differences are mostly small, so their bins are logarithmic in grey levels.
_TEMPORAL_EDGES = np.array([0, 2, 4, 8, 16, 32, 64, 128, 256], dtype=np.float64)
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601


def stats_descriptor(window: np.ndarray) -> np.ndarray:
    """Describe one window of frames, uint8 [w,H,W,3] RGB, as float32 [64].

    Features, in order (all roughly in [0, 1]):
    - [0:3]   RGB mean / 255
    - [3:6]   RGB standard deviation / 127.5
    - [6:30]  per-channel (R, G, B) 8-bin histograms of values (bins of 32 levels), each
              summing to 1
    - [30:46] 4x4 grid (row-major) of mean luminance / 255, averaged over the window
    - [46:54] 8-bin histogram of gradient orientation (unsigned, [0, pi)), weighted by
              gradient magnitude, summing to 1 (zeros for flat frames)
    - [54]    mean gradient magnitude / (255 * sqrt 2)
    - [55]    mean absolute temporal luminance difference / 255 (zero for w = 1)
    - [56:64] 8-bin histogram of absolute temporal luminance differences, edges
              0, 2, 4, 8, 16, 32, 64, 128, 256 grey levels, summing to 1 (zeros for w = 1)
    Luminance is BT.601. Everything is computed after resizing the frames (INTER_AREA when
    shrinking) to a long edge of 128 px, at least 4 px per side. Padding a short last
    window by repeating its last frame adds zero temporal differences.
    """
    frames = _work_size(window)
    n, h, w, _ = frames.shape
    rgb = frames.reshape(-1, 3).astype(np.float64)
    luma = frames.astype(np.float64) @ _LUMA  # [n,h,w]

    colour_hist = np.bincount(((frames >> 5) + _CHANNEL_OFFSETS).ravel(), minlength=24) / (n * h * w)

    # Grid cells from integer bounds; _work_size guarantees >= 4 px so no cell is empty.
    rows = np.linspace(0, h, 5).astype(int)
    cols = np.linspace(0, w, 5).astype(int)
    sums = np.add.reduceat(np.add.reduceat(luma.mean(axis=0), rows[:-1], axis=0), cols[:-1], axis=1)
    grid = sums / np.outer(np.diff(rows), np.diff(cols)) / 255

    gx = luma[:, :-1, 1:] - luma[:, :-1, :-1]
    gy = luma[:, 1:, :-1] - luma[:, :-1, :-1]
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((angle / (np.pi / 8)).astype(np.int64), 7)
    orientation = np.bincount(bins.ravel(), weights=magnitude.ravel(), minlength=8)
    orientation = orientation / orientation.sum() if orientation.sum() > 0 else orientation

    if n > 1:
        temporal = np.abs(np.diff(luma, axis=0))
        motion = [temporal.mean() / 255]
        motion_hist = np.histogram(temporal, bins=_TEMPORAL_EDGES)[0] / temporal.size
    else:
        motion, motion_hist = [0.0], np.zeros(8)

    return np.concatenate(
        [
            rgb.mean(axis=0) / 255,
            rgb.std(axis=0) / 127.5,
            colour_hist,
            grid.ravel(),
            orientation,
            [magnitude.mean() / (255 * np.sqrt(2))],
            motion,
            motion_hist,
        ]
    ).astype(np.float32)


def _work_size(window: np.ndarray) -> np.ndarray:
    """Resize uint8 [w,H,W,3] frames to a long edge of WORK_LONG_EDGE (each side >= 4 px)."""
    height, width = window.shape[1:3]
    scale = WORK_LONG_EDGE / max(height, width)
    size = (max(4, round(width * scale)), max(4, round(height * scale)))  # cv2 wants (w, h)
    if size == (width, height):
        return window
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(frame, size, interpolation=interpolation) for frame in window])
