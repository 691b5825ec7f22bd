"""Forward-backward consistency of a flow pair (pure numpy/OpenCV, vectorised).

A pixel p of frame i has a trustworthy forward flow when following it to frame i+1 and
the backward flow from there brings it back near p:

    |f_fwd(p) + f_bwd(p + f_fwd(p))| < threshold

Occlusions, disocclusions and flow errors break that round trip. The mirror test gives the
backward mask.
"""

from __future__ import annotations

import cv2
import numpy as np


def consistency_masks(
    forward: np.ndarray, backward: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the pixels whose flow passes the forward-backward check.

    forward: float32 [H,W,2] (dx, dy) taking frame i to frame i+1.
    backward: float32 [H,W,2] taking frame i+1 to frame i.
    threshold: px; a round trip must end strictly closer than this to its start.
    Returns (forward_valid, backward_valid), bool [H,W] each: forward_valid on frame i's
    pixel grid, backward_valid on frame i+1's.
    """
    if forward.shape != backward.shape or forward.ndim != 3 or forward.shape[2] != 2:
        raise ValueError(
            f"forward and backward must both be [H,W,2]; got {forward.shape} and {backward.shape}"
        )
    return round_trip_valid(forward, backward, threshold), round_trip_valid(backward, forward, threshold)


def round_trip_valid(flow: np.ndarray, back: np.ndarray, threshold: float) -> np.ndarray:
    """bool [H,W]: |flow(p) + back(p + flow(p))| < threshold and p + flow(p) inside the frame.

    flow, back: float [H,W,2] (dx, dy). ``back`` is sampled bilinearly at the (sub-pixel)
    targets. Targets outside [0, W-1] x [0, H-1] have nothing to compare with and are
    invalid.
    """
    h, w = flow.shape[:2]
    flow = np.asarray(flow, dtype=np.float32)
    back = np.asarray(back, dtype=np.float32)
    map_x = flow[..., 0] + np.arange(w, dtype=np.float32)[None, :]
    map_y = flow[..., 1] + np.arange(h, dtype=np.float32)[:, None]
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    # cv2.remap does the bilinear lookup of both channels in one pass, an order of magnitude
    # faster than numpy gathers. It quantises target coordinates to 1/32 px, which moves the
    # sampled flow by at most |grad back| / 64 px: negligible against a ~1 px threshold.
    # BORDER_REPLICATE only matters for targets exactly on the last row/column (the
    # bilinear stencil's far neighbour has weight 0 there); everything farther is masked.
    sampled = cv2.remap(back, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    residual = flow + sampled
    err2 = residual[..., 0] ** 2 + residual[..., 1] ** 2
    return inside & (err2 < np.float32(threshold) ** 2)
