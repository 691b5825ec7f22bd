"""Stage 4, video embedding: frames.zarr -> embedding.zarr.

Store layout (contract):
- ``windows``: float32 [W,D], one embedding per window of ``window`` consecutive frames.
- ``video``: float32 [D], the mean over windows.
- attrs ``backend``, ``dim`` (D), ``window``, ``window_starts`` (first frame of each window).
Backends: ``videomae`` (transformers VideoMAEModel from a local folder, D = hidden size,
768 for ViT-B) and ``stats`` (weight-free deterministic descriptor, D = 64).

Windows start at 0, stride, 2*stride, ... until one reaches the last frame; a window that
runs past the end (or a video shorter than the window) repeats the last frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import zarr

from nvd.core.errors import ConfigError, InputError
from nvd.core.progress import progress
from nvd.core.versioning import code_version
from nvd.data.stores import new_array, open_store, write_store
from nvd.data.weights import BACKEND_WEIGHTS, WeightsConfig

EMBEDDING_BACKENDS = ("videomae", "stats")


@dataclass(frozen=True)
class EmbeddingConfig:
    """Video embedding (``embedding`` section)."""

    backend: Literal["videomae", "stats"] = "stats"
    window: int = 16  # frames per window (videomae: must equal the model's num_frames)
    stride: int | None = None  # frames between window starts; None = window (no overlap)
    batch_size: int = 2  # windows per forward pass
    device: str = "auto"


def window_starts(n_frames: int, window: int, stride: int | None = None) -> list[int]:
    """First frame of each window: 0, stride, 2*stride, ... (stride None = window).

    Stops at the first window that reaches the last frame, so the video is covered (when
    stride <= window) and no window starts past the end.
    """
    stride = window if stride is None else stride
    starts = [0]
    while starts[-1] + window < n_frames and starts[-1] + stride < n_frames:
        starts.append(starts[-1] + stride)
    return starts


def compute_embedding(frames_store: str | Path, out: str | Path, cfg: EmbeddingConfig, weights: WeightsConfig) -> Path:
    """Write the embedding store for a video.

    Reads frames uint8 [T,H,W,3] window by window from ``frames_store`` and writes
    ``windows`` float32 [W,D] and ``video`` float32 [D] (mean of windows) to ``out``.
    Returns ``out`` as a Path. ConfigError for a bad window/stride/batch size or backend,
    WeightsError for missing or unfit model weights.
    """
    out = Path(out)
    for key in ("window", "batch_size", "stride"):
        value = getattr(cfg, key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"config key 'embedding.{key}' must be a positive integer, got {value!r}")
    frames = open_store(frames_store, "frames")["frames"]
    n_frames = frames.shape[0]
    if n_frames == 0:
        raise InputError(f"frames store '{frames_store}' holds no frames")

    embed: Callable[[list[np.ndarray]], np.ndarray]
    if cfg.backend == "stats":
        from nvd.data.embedding.stats import STATS_DIM, stats_descriptor

        dim = STATS_DIM

        def embed(windows: list[np.ndarray]) -> np.ndarray:
            return np.stack([stats_descriptor(w) for w in windows])

    elif cfg.backend == "videomae":
        from nvd.data.embedding.videomae import VideoMAEEmbedder

        embed = VideoMAEEmbedder(weights, cfg.window, cfg.device)
        dim = embed.dim
    else:
        raise ConfigError(
            f"config key 'embedding.backend': unknown backend '{cfg.backend}'; known: {list(EMBEDDING_BACKENDS)}"
        )

    starts = window_starts(n_frames, cfg.window, cfg.stride)
    batches = [starts[i : i + cfg.batch_size] for i in range(0, len(starts), cfg.batch_size)]
    parts = [
        embed([_window(frames, s, cfg.window) for s in batch])
        for batch in progress(batches, len(batches), f"embedding ({cfg.backend}, {len(starts)} windows)")
    ]
    windows = np.concatenate(parts).astype(np.float32)

    config = {
        "embedding": asdict(cfg),
        "weights": {key: getattr(weights, key) for key in BACKEND_WEIGHTS.get(("embedding", cfg.backend), ())},
    }
    with write_store(out, "embedding", config=config, code_version=code_version("embedding")) as store:
        new_array(store, "windows", windows.shape, "float32", windows.shape, ("window", "feature"))[...] = windows
        new_array(store, "video", (dim,), "float32", (dim,), ("feature",))[...] = windows.mean(axis=0)
        store.attrs.update({"backend": cfg.backend, "dim": dim, "window": cfg.window, "window_starts": starts})
    return out


def load_embedding(store: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a finished embedding store: (windows float32 [W,D], video float32 [D])."""
    group = open_store(store, "embedding")
    return np.asarray(group["windows"][...]), np.asarray(group["video"][...])


def _window(frames: zarr.Array, start: int, length: int) -> np.ndarray:
    """Frames [start, start+length) as uint8 [length,H,W,3], repeating the last frame past the end."""
    clip = np.asarray(frames[start : start + length])
    if len(clip) < length:
        clip = np.concatenate([clip, np.repeat(clip[-1:], length - len(clip), axis=0)])
    return clip
