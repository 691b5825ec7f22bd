"""Per-video decomposition runs: train, reload for evaluation and editing, with checks.

These are the functions behind ``nvd train`` / ``nvd evaluate`` / ``nvd edit`` and the
workflow rules ``decompose``, ``evaluate`` and ``edit``. A trained model is the final
training checkpoint; its ``meta`` holds the config, the code version and the identity of the
video it was trained on, so a model is never evaluated or edited on another video.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import section
from .decomposition_training import DecompositionTask, DecompositionTrainConfig
from .devices import resolve_device
from .errors import InputError
from .stores import open_store
from .training import (
    CHECKPOINT_NAME, LOG_NAME, CheckpointError, TrainResult, load_modules, read_checkpoint, read_log, seed_everything,
    train,
)
from .versioning import code_version
from .video_data import load_video

log = logging.getLogger("nvd")


@dataclass(frozen=True)
class EvaluationConfig:
    """Evaluation outputs (``evaluation`` section)."""

    atlas_size: int = 1000  # side of the tex{i}.png atlases (px)


def video_identity(frames_store: str | Path, masks_store: str | Path) -> dict[str, Any]:
    """What identifies the training video: source fingerprint, frame selection, size, objects."""
    frames = open_store(frames_store, "frames")
    masks = open_store(masks_store, "masks")
    return {
        "source_fingerprint": frames.attrs.get("source_fingerprint"),
        "frame_indices": list(frames.attrs.get("frame_indices", [])),
        "shape": list(frames["frames"].shape),
        "objects": list(masks.attrs.get("objects", [])),
    }


def run_identity(cfg: DecompositionTrainConfig, frames_store: str | Path, masks_store: str | Path) -> dict[str, Any]:
    """What makes two training runs the same run (resuming is only allowed between them).

    The loop's own bookkeeping (iterations, checkpoint and log intervals) is left out so a
    finished run can be extended; the seed is kept.
    """
    config = dataclasses.asdict(cfg)
    config["train"] = {"seed": cfg.train.seed}
    return {"config": config, "code_version": code_version("decomposition"),
            "video": video_identity(frames_store, masks_store)}


def train_decomposition(
    frames_store: str | Path,
    flow_store: str | Path,
    masks_store: str | Path,
    work_dir: str | Path,
    model_path: str | Path,
    cfg: DecompositionTrainConfig,
    *,
    restart_on_mismatch: bool = False,
) -> TrainResult:
    """Train the decomposition of one video; resume from ``work_dir`` when it holds this run.

    ``work_dir`` keeps the rolling checkpoint and log.csv (it survives a killed job, so the
    next attempt resumes). At the end the final checkpoint is copied to ``model_path`` and
    the log next to it as ``log.csv``. With ``restart_on_mismatch`` a checkpoint of a
    different run (other config, code or video: the workflow decided it is stale) is
    discarded; without it that is a CheckpointError.
    """
    device = resolve_device(cfg.train.device)
    video = load_video(frames_store, flow_store, masks_store, device)
    identity = run_identity(cfg, frames_store, masks_store)
    work_dir = Path(work_dir)

    def attempt() -> TrainResult:
        seed_everything(cfg.train.seed)
        task = DecompositionTask(video, cfg)
        return train(task, cfg.train, work_dir, identity=identity, meta=identity)

    try:
        result = attempt()
    except CheckpointError as exc:
        if not restart_on_mismatch:
            raise
        log.warning("discarding the stale checkpoint in %s: %s", work_dir, exc)
        shutil.rmtree(work_dir)
        result = attempt()
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    _copy_atomic(work_dir / CHECKPOINT_NAME, model_path)
    _copy_atomic(work_dir / LOG_NAME, training_log_path(model_path))
    return result


def training_log_path(model_path: str | Path) -> Path:
    """Where ``train_decomposition`` puts the training log of a model: ``log.csv`` beside it."""
    return Path(model_path).with_name(LOG_NAME)


def training_log(model_path: str | Path) -> list[dict[str, float]]:
    """The training log rows of a model (see nvd.training.read_log)."""
    return read_log(Path(model_path).parent)


def video_fps(frames_store: str | Path, default: float = 25.0) -> float:
    """Frame rate of the source video; ``default`` for frame folders, which have none."""
    fps = open_store(frames_store, "frames").attrs.get("fps")
    return float(fps) if fps else default


def load_truth(path: str | Path, frames_store: str | Path) -> dict[str, Any]:
    """A synthetic clip's ground-truth masks, aligned with a frames store.

    The frames stage may keep a subset of the frames and resize them; the masks
    (uint8 [K-1,T0,H0,W0] in ground_truth.npz) and per-layer atlas coordinates (float
    [K,T0,H0,W0,2], atlas pixels) get the same frame selection and a nearest-neighbour
    resize to the store's size: {"masks": uint8 [K-1,T,H,W], "uv": float32 [K,T,H,W,2]}.
    """
    import cv2
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: ground truth file does not exist")
    frames = open_store(frames_store, "frames")
    _, h, w, _ = frames["frames"].shape
    indices = [int(i) for i in frames.attrs["frame_indices"]]
    with np.load(path) as data:
        masks, uv = data["masks"], data["uv"]
    if indices and max(indices) >= masks.shape[1]:
        raise InputError(f"{path}: ground truth has {masks.shape[1]} frames, {frames_store} uses frame {max(indices)}")

    def align(maps: np.ndarray) -> np.ndarray:
        """[L,T0,H0,W0,...] -> [L,T,H,W,...]: kept frames, nearest-neighbour resize."""
        out = [[cv2.resize(maps[k, i], (w, h), interpolation=cv2.INTER_NEAREST) for i in indices]
               for k in range(maps.shape[0])]
        return np.asarray(out, dtype=maps.dtype).reshape(maps.shape[0], len(indices), h, w, *maps.shape[4:])

    return {"masks": align(masks), "uv": align(uv)}


def load_decomposition(
    model_path: str | Path,
    frames_store: str | Path,
    flow_store: str | Path,
    masks_store: str | Path,
    device: str = "auto",
) -> tuple[DecompositionTask, dict[str, Any]]:
    """Rebuild a trained decomposition for its video; (task, checkpoint meta).

    InputError when the model was trained on another video (fingerprint, frame selection,
    size or objects differ) — the usual cause is a mixed-up path.
    """
    checkpoint = read_checkpoint(model_path)
    meta = checkpoint["meta"]
    expected = video_identity(frames_store, masks_store)
    if meta.get("video") != expected:
        diffs = [k for k in expected if meta.get("video", {}).get(k) != expected[k]]
        raise InputError(
            f"{model_path} was trained on a different video than {frames_store} "
            f"(differs in: {', '.join(diffs) or 'everything'})"
        )
    cfg = section(DecompositionTrainConfig, meta["config"], "decomposition")
    video = load_video(frames_store, flow_store, masks_store, resolve_device(device))
    task = DecompositionTask(video, cfg)
    load_modules(model_path, task.modules(), checkpoint)
    task.model.eval()
    return task, meta


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.partial-{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
