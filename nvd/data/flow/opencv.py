"""Weight-free OpenCV flow backends: DIS and Farneback, on grayscale frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
    # One DIS object per direction: each keeps internal buffers, so they cannot be shared
    # between the two threads of _pairwise.
    forward, backward = (cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) for _ in range(2))
    return _pairwise(frames, lambda a, b: forward.calc(a, b, None), lambda a, b: backward.calc(a, b, None))


def farneback_flows(frames: "np.ndarray | zarr.Array") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Farneback flow (``FARNEBACK_PARAMS``) for each consecutive pair, both directions.

    frames: T frames, uint8 [H,W,3] RGB. Yields T-1 tuples (forward, backward) of float32
    [H,W,2] (dx, dy).
    """
    calc: PairFlow = lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK_PARAMS)  # noqa: E731
    return _pairwise(frames, calc, calc)


def _pairwise(
    frames: "np.ndarray | zarr.Array", forward: PairFlow, backward: PairFlow
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Run ``forward(a, b)`` and ``backward(b, a)`` -> [H,W,2] on consecutive gray frames.

    The two directions run in two threads with OpenCV's own threading turned off: on 2 cores
    that beats one direction at a time with OpenCV's parallel loops (41 vs 38 directional
    pairs/s for DIS at 480p), since DIS parallelises poorly inside one image. Each frame is
    read and converted to grayscale once, although it takes part in two pairs.
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="nvd-flow") as pool:
            prev = _gray(frames[0])
            for i in range(1, frames.shape[0]):
                cur = _gray(frames[i])
                fwd = pool.submit(forward, prev, cur)
                bwd = pool.submit(backward, cur, prev)
                yield fwd.result(), bwd.result()
                prev = cur
    finally:
        cv2.setNumThreads(threads)


def _gray(frame: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] RGB -> uint8 [H,W] luma."""
    return cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2GRAY)
