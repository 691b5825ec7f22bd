"""Stage 2, optical flow: frames.zarr -> flow.zarr.

Store layout (contract):
- ``forward``: [T-1,H,W,2] pixel displacement (dx, dy) taking frame i to frame i+1.
- ``backward``: [T-1,H,W,2] displacement taking frame i+1 to frame i.
  Both float16 when that keeps the end-point error under ``max_float16_epe`` px for this
  video, float32 otherwise (attrs ``dtype`` and ``float16_max_epe`` say which and why).
- ``forward_valid`` / ``backward_valid``: bool [T-1,H,W], forward-backward consistency:
  |f_fwd(p) + f_bwd(p + f_fwd(p))| < ``consistency_threshold`` px (bilinear lookup;
  points that leave the frame are invalid), and the mirror test for backward.
- attrs ``backend``.
Backends: ``raft`` (torchvision RAFT-large, weights from config), ``dis`` (OpenCV DIS,
weight-free), ``farneback`` (OpenCV).
Later stages read a store back with ``load_flow``.
"""

from __future__ import annotations

import shutil
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import zarr

from nvd.core.errors import ConfigError, InputError
from nvd.core.progress import progress
from nvd.core.versioning import code_version
from nvd.data.flow.consistency import consistency_masks
from nvd.data.flow.opencv import dis_flows, farneback_flows
from nvd.data.stores import new_array, open_store, write_store
from nvd.data.weights import WeightsConfig, weight_path

FLOW_BACKENDS = ("raft", "dis", "farneback")


@dataclass(frozen=True)
class FlowConfig:
    """Optical flow (``flow`` section)."""

    backend: Literal["raft", "dis", "farneback"] = "dis"
    consistency_threshold: float = 1.0  # px, forward-backward check
    max_float16_epe: float = 0.01  # px; store float16 only when rounding stays under this
    raft_iterations: int = 20  # RAFT recurrent refinement steps (references use 20)
    batch_size: int = 4  # frame pairs per RAFT forward pass
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:N"


PairFlows = Callable[[zarr.Array], Iterator[tuple[np.ndarray, np.ndarray]]]

FLOW_ARRAYS = ("forward", "backward")
VALID_ARRAYS = ("forward_valid", "backward_valid")
FLOW_DIMS = ("pair", "y", "x", "uv")
VALID_DIMS = ("pair", "y", "x")

# Computed pairs allowed to wait for the store writer: bounds memory to a few pairs.
_MAX_PENDING = 2
# Pairs per zarr write when staged float32 flow is stored: one call encodes that many
# chunks concurrently instead of one at a time.
_COPY_BLOCK = 16


def compute_flow(frames_store: str | Path, out: str | Path, cfg: FlowConfig, weights: WeightsConfig) -> Path:
    """Compute forward/backward flow and consistency masks for a frames store.

    frames_store: a finished frames store (uint8 [T,H,W,3] RGB, T >= 2). Flow is computed at
    the stored resolution. out: the flow store to write (layout in the module docstring);
    it appears only once complete. Returns ``out``.

    The backend computes pair i+1 while a writer thread checks consistency, compresses and
    stores pair i (OpenCV, torch, numpy and blosc release the GIL), so storage costs little
    wall time. Memory stays at a few frames whatever the video length.
    Raises ConfigError for a bad ``flow`` section, WeightsError for missing or unfitting RAFT
    weights (before any frame is read), StoreError/InputError for an unusable frames store.
    """
    _check_config(cfg)
    pair_flows = _backend(cfg, weights)
    frames = _open_frames(frames_store)
    out = Path(out)
    config = {"flow": asdict(cfg), "weights": {"raft": weights.raft} if cfg.backend == "raft" else {}}
    with write_store(out, "flow", config=config, code_version=code_version("flow")) as group:
        writer = _PairWriter(group, frames.shape[0] - 1, *frames.shape[1:3], cfg)
        pairs = progress(pair_flows(frames), total=frames.shape[0] - 1, desc=f"flow {cfg.backend}")
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nvd-flow-writer") as pool:
            # One worker: pairs are stored in order, so the writer's running maximum needs no lock.
            pending: deque[Future[None]] = deque()
            for i, (fwd, bwd) in enumerate(pairs):
                pending.append(pool.submit(writer.write, i, fwd, bwd))
                while len(pending) > _MAX_PENDING:
                    pending.popleft().result()  # re-raises a writer error here
            for future in pending:
                future.result()
        writer.finish()
    return out


class _PairWriter:
    """Fills the partial flow store one frame pair at a time.

    Whether float16 is precise enough is only known once every pair has been seen. Flow is
    written as float16 while it stays within ``max_float16_epe`` (the usual case: no second
    pass), and a float32 copy of every pair is staged in memory-mapped files inside the
    partial store (so a failed or killed run leaves nothing else behind). If some pair
    needs float32, ``finish`` replaces the float16 arrays from that copy.
    """

    def __init__(self, group: zarr.Group, n_pairs: int, h: int, w: int, cfg: FlowConfig) -> None:
        self.group = group
        self.cfg = cfg
        self.flow_shape = (n_pairs, h, w, 2)
        self.arrays = {
            name: new_array(group, name, (n_pairs, h, w), bool, (1, h, w), VALID_DIMS) for name in VALID_ARRAYS
        }
        for name in FLOW_ARRAYS:
            self.arrays[name] = self._flow_array(name, np.float16)
        self.staging = Path(group.store.root) / "_staging"
        self.staging.mkdir()
        self.staged = {
            name: np.lib.format.open_memmap(self.staging / f"{name}.npy", "w+", np.float32, self.flow_shape)
            for name in FLOW_ARRAYS
        }
        self.max_epe = 0.0

    def write(self, i: int, forward: np.ndarray, backward: np.ndarray) -> None:
        """Store pair i: float32 [H,W,2] forward and backward flow, and their masks."""
        masks = consistency_masks(forward, backward, self.cfg.consistency_threshold)
        for name, flow, mask in zip(FLOW_ARRAYS, (forward, backward), masks):
            self.arrays[f"{name}_valid"][i] = mask
            self.staged[name][i] = flow
            half, epe = _to_float16(flow)
            self.max_epe = max(self.max_epe, epe)
            if self.max_epe < self.cfg.max_float16_epe:  # else float32 it is: skip the wasted write
                self.arrays[name][i] = half

    def finish(self) -> None:
        """Settle the dtype, drop the staging files and record the attrs."""
        dtype = np.dtype(np.float16 if self.max_epe < self.cfg.max_float16_epe else np.float32)
        if dtype == np.float32:
            for name in FLOW_ARRAYS:
                self._replace_with_staged(name)
        self.staged.clear()  # drop the memory maps before deleting their files
        shutil.rmtree(self.staging)
        self.group.attrs.update(
            {"backend": self.cfg.backend, "dtype": dtype.name, "float16_max_epe": self.max_epe}
        )

    def _replace_with_staged(self, name: str) -> None:
        """Swap float16 array ``name`` for a float32 one holding the staged copy."""
        del self.group[name]
        array, staged = self._flow_array(name, np.float32), self.staged[name]
        for start in range(0, len(staged), _COPY_BLOCK):
            array[start : start + _COPY_BLOCK] = staged[start : start + _COPY_BLOCK]

    def _flow_array(self, name: str, dtype: np.dtype | type) -> zarr.Array:
        """An empty [T-1,H,W,2] flow array, one chunk per pair."""
        return new_array(self.group, name, self.flow_shape, dtype, (1, *self.flow_shape[1:]), FLOW_DIMS)


def load_flow(store: str | Path) -> dict[str, np.ndarray]:
    """Read a finished flow store into memory.

    Returns ``forward`` and ``backward`` as float32 [T-1,H,W,2] (dx, dy) whatever the stored
    dtype, and ``forward_valid`` / ``backward_valid`` as bool [T-1,H,W].
    """
    group = open_store(store, "flow")
    result = {name: np.asarray(group[name][:], dtype=np.float32) for name in FLOW_ARRAYS}
    result.update({name: np.asarray(group[name][:], dtype=bool) for name in VALID_ARRAYS})
    return result


def float16_rounding_epe(flow: np.ndarray) -> float:
    """Largest end-point error (px) that storing ``flow`` (float [...,2]) as float16 causes.

    Values beyond float16's range overflow to inf, and so does the result.
    """
    return _to_float16(np.asarray(flow, dtype=np.float32))[1]


def _to_float16(flow: np.ndarray) -> tuple[np.ndarray, float]:
    """float32 [...,2] -> (the float16 copy, its largest end-point error in px).

    One conversion serves both the measurement and the store write.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        half = flow.astype(np.float16)
        err2 = half.astype(np.float32)
        err2 -= flow
    if err2.size == 0:
        return half, 0.0
    np.square(err2, out=err2)
    return half, float(np.sqrt(np.max(err2[..., 0] + err2[..., 1])))


def _check_config(cfg: FlowConfig) -> None:
    """ConfigError naming the ``flow`` key whose value cannot work."""
    if cfg.backend not in FLOW_BACKENDS:
        raise ConfigError(
            f"config key 'flow.backend': unknown backend '{cfg.backend}'; "
            f"known: {', '.join(FLOW_BACKENDS)}"
        )
    checks: Mapping[str, tuple[bool, str]] = {
        "consistency_threshold": (cfg.consistency_threshold > 0, "a positive number of px"),
        "max_float16_epe": (cfg.max_float16_epe >= 0, "a number of px >= 0"),
        "raft_iterations": (cfg.raft_iterations >= 1, "an integer >= 1"),
        "batch_size": (cfg.batch_size >= 1, "an integer >= 1"),
    }
    for key, (ok, expected) in checks.items():
        if not ok:
            raise ConfigError(f"config key 'flow.{key}' must be {expected}; got {getattr(cfg, key)!r}")


def _backend(cfg: FlowConfig, weights: WeightsConfig) -> PairFlows:
    """The configured backend as frames -> iterator of (forward, backward) float32 [H,W,2].

    RAFT weights are checked and loaded here, so a bad file fails before any work is done.
    """
    if cfg.backend == "dis":
        return dis_flows
    if cfg.backend == "farneback":
        return farneback_flows
    from nvd.core.devices import resolve_device
    from nvd.data.flow.raft import load_raft, raft_flows

    device = resolve_device(cfg.device)
    model = load_raft(weight_path(weights, "raft"), device)
    return partial(
        raft_flows, model=model, device=device, iterations=cfg.raft_iterations, batch_size=cfg.batch_size
    )


def _open_frames(path: str | Path) -> zarr.Array:
    """The ``frames`` array of a finished frames store, uint8 [T,H,W,3], read lazily.

    Flow reads one frame (or one RAFT batch) at a time, so a long video is never held in
    memory whole.
    """
    frames = open_store(path, "frames")["frames"]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(
            f"{path}: 'frames' must be uint8 [T,H,W,3]; found {frames.dtype} {list(frames.shape)}"
        )
    if frames.shape[0] < 2:
        raise InputError(f"{path}: optical flow needs at least 2 frames; the store has {frames.shape[0]}")
    return frames
