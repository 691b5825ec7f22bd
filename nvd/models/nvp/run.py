"""NVP training runs: train on a video's frames with snapshots at fixed steps, reload for
evaluation with checks.

The functions behind ``nvd nvp-train`` and rule ``nvp_train``. A trained model is the final
training checkpoint; its ``meta`` holds the config, the code version and the identity of the
video (and of the degradation, for the super-resolution and interpolation runs), so a model
is never evaluated on another video. ``snapshots/step_<k>.pt`` hold the model at each of the
config's budgets (NVPTrainConfig.snapshot_steps) for the encoding-time table.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from nvd.core.devices import resolve_device
from nvd.core.errors import InputError
from nvd.core.layout import SNAPSHOTS_DIR
from nvd.core.publish import publishing
from nvd.core.versioning import code_version
from nvd.data.loader import frames_identity, frames_uint8
from nvd.models.nvp.config import NVPConfig, NVPTrainConfig, nvp_train_config
from nvd.models.nvp.model import NVP
from nvd.models.nvp.objective import NVPTask
from nvd.train.loop import (
    CHECKPOINT_NAME,
    TrainResult,
    load_modules,
    read_checkpoint,
    seed_everything,
    train,
    write_snapshot,
)
from nvd.train.runs import input_fingerprints, train_and_publish

log = logging.getLogger("nvd")


def snapshot_name(step: int) -> str:
    return f"step_{step:08d}.pt"


def run_identity(cfg: NVPTrainConfig, frames_store: str | Path, shape: tuple[int, int, int],
                 variant: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What makes two runs the same run: config (the loop's bookkeeping left out, the seed
    kept, so a finished run can be extended), code version, video, the frames store's content,
    the trained frames' (T, H, W) as ``nvp_shape`` and ``variant`` (the degradation of a
    super-resolution or interpolation run)."""
    config = dataclasses.asdict(cfg)
    config["train"] = {"seed": cfg.train.seed}
    config.pop("budgets")  # snapshots are read-outs of the run, not part of it
    return {"config": config, "code_version": code_version("nvp"), "video": frames_identity(frames_store),
            "nvp_shape": [int(n) for n in shape], "variant": dict(variant or {}),
            "inputs": input_fingerprints({"frames": frames_store})}


def train_nvp(frames: Tensor, cfg: NVPTrainConfig, work_dir: str | Path, identity: Mapping[str, Any],
              footprint: int = 1) -> TrainResult:
    """Train NVP on ``frames`` (uint8 [T, H, W, 3], on the training device) into ``work_dir``,
    resuming when it holds this run, and keep ``work_dir/snapshots/step_<k>.pt`` at each
    snapshot step. ``footprint``: each pixel observed over that many sub-pixels per axis
    (objective.py; super-resolution's training).

    The run trains in segments ending at the snapshot steps; each segment resumes the
    previous one's checkpoint exactly, so the whole equals one uninterrupted run (the
    schedule spans train.iterations throughout). A segment whose snapshot exists is skipped.
    """
    work_dir = Path(work_dir)
    snapshots = work_dir / SNAPSHOTS_DIR
    result = None
    for step in cfg.snapshot_steps:
        target = snapshots / snapshot_name(step)
        if target.is_file() and step != cfg.train.iterations:
            continue
        seed_everything(cfg.train.seed)
        task = NVPTask(frames, cfg, footprint)
        result = train(task, dataclasses.replace(cfg.train, iterations=step), work_dir, identity=identity,
                       meta=identity)
        write_snapshot(work_dir / CHECKPOINT_NAME, target)
    assert result is not None  # the last step is always trained (or found complete)
    return result


def publish_snapshots(work_dir: str | Path, out_dir: str | Path, steps: tuple[int, ...]) -> Path:
    """Copy the snapshots of ``steps`` from the work folder to ``out_dir``, as one folder."""
    source = Path(work_dir) / SNAPSHOTS_DIR
    with publishing(out_dir, folder=True) as tmp:
        for step in steps:
            (tmp / snapshot_name(step)).write_bytes((source / snapshot_name(step)).read_bytes())
    return Path(out_dir)


def train_nvp_run(frames: Tensor, frames_store: str | Path, cfg: NVPTrainConfig, work_dir: str | Path,
                  model_path: str | Path, snapshots_dir: str | Path | None = None, *,
                  variant: Mapping[str, Any] | None = None, footprint: int = 1,
                  restart_on_mismatch: bool = False) -> TrainResult:
    """Train on ``frames`` (the store's frames, or a degraded copy described by ``variant``),
    each pixel observed over ``footprint`` sub-pixels per axis, then publish the model, its log
    and (when ``snapshots_dir`` is given) the snapshots."""
    identity = run_identity(cfg, frames_store, tuple(frames.shape[:3]), {**(variant or {}), "footprint": footprint})
    result = train_and_publish(lambda: train_nvp(frames, cfg, work_dir, identity, footprint), work_dir, model_path,
                               restart_on_mismatch)
    if snapshots_dir is not None:
        publish_snapshots(work_dir, snapshots_dir, cfg.snapshot_steps)
    return result


def nvp_train_job(frames_store: str | Path, sections: Mapping[str, Any], work_dir: str | Path,
                  model_path: str | Path, snapshots_dir: str | Path) -> TrainResult:
    """The ``nvp_train`` job: the ``nvp`` section as written, on the video's frames store. The
    workflow reruns it only when its inputs, config or code changed, so a checkpoint left by
    an older run is stale and is discarded."""
    cfg = nvp_train_config(sections.get("nvp"))
    frames = frames_uint8(frames_store, resolve_device(cfg.train.device))
    return train_nvp_run(frames, frames_store, cfg, work_dir, model_path, snapshots_dir, restart_on_mismatch=True)


@dataclass(frozen=True)
class SavedModel:
    """What a checkpoint or snapshot says of the model it holds."""

    meta: dict[str, Any]  # the run identity it was trained under (run_identity)
    iteration: int
    wall_time_s: float  # training time to that iteration


def load_nvp(path: str | Path, device: str = "cpu",
             frames_store: str | Path | None = None) -> tuple[NVP, SavedModel]:
    """The NVP model saved at ``path`` (a checkpoint or a snapshot) on ``device`` (eval mode).

    With ``frames_store`` the model must have been trained on that video (InputError
    otherwise: a model is never scored against frames it did not learn).
    """
    ckpt = read_checkpoint(path)
    meta = ckpt["meta"]
    if "nvp_shape" not in meta:
        raise InputError(f"{path}: not an NVP model (its meta has no nvp_shape)")
    if frames_store is not None and meta["video"] != frames_identity(frames_store):
        raise InputError(f"{path}: the model was trained on another video than {frames_store} "
                         "(source, frame selection or size differ); retrain it on this video")
    cfg = NVPConfig(**meta["config"]["model"])
    num_frames, height, width = meta["nvp_shape"]
    model = NVP(num_frames, height, width, cfg).to(resolve_device(device))
    load_modules(path, {"model": model}, ckpt)
    model.eval()
    return model, SavedModel(meta, int(ckpt["iteration"]), float(ckpt["wall_time_s"]))
