"""Weight-free OpenCV flow backends: DIS and Farneback, on grayscale frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import zarr

# Farneback settings. Pyramid halving (pyr_scale 0.5) over 5 levels puts the coarsest level
# at 1/16 resolution, where a motion of a few tens of px at 480p is a pixel or two, well
# inside the 15 px window. winsize 15 trades blur at motion edges for robustness to noise
# and compression artefacts. poly_n 5 with poly_sigma 1.1 is the pairing OpenCV documents
# for that neighbourhood size; 3 iterations per level is OpenCV's own example setting.
# flags 0 (box window) rather than the Gaussian one: Farneback is already ~4x slower than
# DIS.
FARNEBACK_PARAMS: dict[str, float | int] = {
    "pyr_scale": 0.5,
    "levels": 5,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.1,
    "flags": 0,
}

PairFlow = Callable[[np.ndarray, np.ndarray], np.ndarray]


def dis_flows(frames: "np.ndarray | zarr.Array") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """DIS flow (OpenCV preset MEDIUM) for each consecutive pair, both directions.

    frames: T frames, uint8 [H,W,3] RGB (a zarr array works: indexing reads one frame).
    Yields T-1 tuples (forward, backward) of float32 [H,W,2] (dx, dy).
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _pairwise(frames, lambda a, b: dis.calc(a, b, None))


def farneback_flows(frames: "np.ndarray | zarr.Array") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Farneback flow (``FARNEBACK_PARAMS``) for each consecutive pair, both directions.

    frames: T frames, uint8 [H,W,3] RGB. Yields T-1 tuples (forward, backward) of float32
    [H,W,2] (dx, dy).
    """
    return _pairwise(frames, lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK_PARAMS))


def _pairwise(frames: "np.ndarray | zarr.Array", calc: PairFlow) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Run ``calc(gray_a, gray_b) -> [H,W,2]`` both ways on consecutive frames.

    Each frame is read and converted to grayscale once, although it takes part in two pairs.
    """
    prev = _gray(frames[0])
    for i in range(1, frames.shape[0]):
        cur = _gray(frames[i])
        yield calc(prev, cur), calc(cur, prev)
        prev = cur


def _gray(frame: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] RGB -> uint8 [H,W] luma."""
    return cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2GRAY)
