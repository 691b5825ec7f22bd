"""NeRV-family training runs: train one of the six models on a video's frames, reload it for
evaluation with checks.

The functions behind ``nvd nerv-train`` and the workflow's NeRV training rule. A trained model
is the final training checkpoint (module states only: nvd.train.runs.train_and_publish). Its
``identity`` (what a resumed checkpoint must match) holds the training config as it shapes
the run (the model's config before solving its width, the recipe, the epochs and the seed;
not the device or the log and checkpoint spacing), the code version of stage ``nerv``, the
video (source fingerprint, frame selection, size), the frames store's content fingerprint,
the video's (T, H, W) and the task variant (tasks.py: regression, inpainting with its mask,
interpolation). Its ``meta`` adds the solved model config and the counted parameters, from
which ``load_nerv`` rebuilds the model; a model is never evaluated on another video.

Data: exactly the frames array of the video's frames store (nvd.data.frames.load_frames),
nothing else from its folder.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nvd.core.devices import resolve_device
from nvd.core.errors import InputError
from nvd.core.versioning import code_version
from nvd.data.loader import frames_identity, frames_uint8
from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.config import model_config
from nvd.models.nerv.factory import build_model
from nvd.models.nerv.objective import NeRVTask
from nvd.models.nerv.tasks import task_setup, variant
from nvd.models.nerv.training import NeRVTrainConfig, nerv_train_config
from nvd.train.loop import TrainResult, load_modules, read_checkpoint, seed_everything, train
from nvd.train.runs import input_fingerprints, train_and_publish

log = logging.getLogger("nvd")


def model_fields(cfg: Any) -> dict[str, Any]:
    """A model config as plain fields (``boost`` left out: the name sets it)."""
    fields = dataclasses.asdict(cfg)
    fields.pop("boost")
    return fields


def training_identity(cfg: NeRVTrainConfig) -> dict[str, Any]:
    """The config as it shapes the run: the model's settings, the recipe, epochs and seed."""
    config = dataclasses.asdict(cfg)
    for key in ("overrides", "per_model", "eval_every", "checkpoint_every", "models", "model_sizes", "regression"):
        config.pop(key)
    config.update(model_config=model_fields(cfg.model_config()), lr=cfg.learning_rate, loss=cfg.loss_name,
                  train={"seed": cfg.train.seed})
    return config


def run_identity(cfg: NeRVTrainConfig, frames_store: str | Path, shape: tuple[int, int, int],
                 run_variant: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What makes two runs the same run (see the module docstring)."""
    return {"config": training_identity(cfg), "code_version": code_version("nerv"),
            "video": frames_identity(frames_store), "nerv_shape": [int(n) for n in shape],
            "variant": dict(run_variant or variant()), "inputs": input_fingerprints({"frames": frames_store})}


def build_task(frames: Tensor, cfg: NeRVTrainConfig, run_variant: Mapping[str, Any] | None = None) -> NeRVTask:
    """The seeded task of ``frames`` (uint8 [T, H, W, 3] on the training device) for the variant."""
    train_frames, mask = task_setup(run_variant, *frames.shape[:3])
    seed_everything(cfg.train.seed)
    return NeRVTask(frames, cfg, train_frames=train_frames, mask=mask)


def train_nerv(frames: Tensor, cfg: NeRVTrainConfig, work_dir: str | Path, identity: Mapping[str, Any],
               run_variant: Mapping[str, Any] | None = None) -> TrainResult:
    """Train on ``frames`` into ``work_dir``, resuming when it holds this run."""
    task = build_task(frames, cfg, run_variant)
    meta = {**identity, "model_config": model_fields(task.model.cfg), "parameters": task.parameter_count,
            "train_frames": task.indices.tolist()}
    log.info("%s: %d counted parameters (target %gM), %d training frames, %d epochs of %d steps",
             cfg.model, task.parameter_count, cfg.model_size, task.indices.shape[0], cfg.epochs,
             task.steps_per_epoch)
    return train(task, task.loop, work_dir, identity=identity, meta=meta)


def train_nerv_run(frames: Tensor, frames_store: str | Path, cfg: NeRVTrainConfig, work_dir: str | Path,
                   model_path: str | Path, *, run_variant: Mapping[str, Any] | None = None,
                   restart_on_mismatch: bool = False) -> TrainResult:
    """Train on ``frames`` (the store's frames, on the training device) for the variant, then
    publish the model and its log beside it."""
    identity = run_identity(cfg, frames_store, tuple(frames.shape[:3]), run_variant)
    return train_and_publish(lambda: train_nerv(frames, cfg, work_dir, identity, run_variant), work_dir,
                             model_path, restart_on_mismatch)


def nerv_train_job(frames_store: str | Path, sections: Mapping[str, Any], model_name: str,
                   work_dir: str | Path, model_path: str | Path) -> TrainResult:
    """The NeRV training job: model folder ``model_name`` (the workflow's wildcard: a model,
    with its size when the config has several) with the ``nerv`` section (training.run_sections),
    on the video's frames store. The workflow reruns it only when its
    inputs, config or code changed, so a checkpoint left by an older run is stale and is
    discarded."""
    cfg = nerv_train_config(sections.get("nerv"), model=model_name)
    frames = frames_uint8(frames_store, resolve_device(cfg.train.device))
    return train_nerv_run(frames, frames_store, cfg, work_dir, model_path, restart_on_mismatch=True)


@dataclass(frozen=True)
class SavedModel:
    """What a checkpoint says of the model it holds."""

    meta: dict[str, Any]  # the run identity, the solved model config, parameters, train_frames
    iteration: int
    wall_time_s: float  # training time to that iteration

    @property
    def variant(self) -> dict[str, Any]:
        return dict(self.meta["variant"])


def load_nerv(path: str | Path, device: str | torch.device = "cpu",
              frames_store: str | Path | None = None) -> tuple[NeRVFamilyModel, SavedModel]:
    """The NeRV-family model saved at ``path`` on ``device`` (eval mode).

    With ``frames_store`` the model must have been trained on that video (InputError
    otherwise: a model is never scored against frames it did not learn).
    """
    ckpt = read_checkpoint(path)
    meta = ckpt["meta"]
    if "nerv_shape" not in meta or "model_config" not in meta:
        raise InputError(f"{path}: not a NeRV-family model (its meta has no nerv_shape)")
    if frames_store is not None and meta["video"] != frames_identity(frames_store):
        raise InputError(f"{path}: the model was trained on another video than {frames_store} "
                         "(source, frame selection or size differ); retrain it on this video")
    cfg = model_config(meta["config"]["model"], **meta["model_config"])
    num_frames, height, width = meta["nerv_shape"]
    model = build_model(cfg, height, width, num_frames, resolve_device(device) if isinstance(device, str) else device)
    load_modules(path, {"model": model}, ckpt)
    model.eval()
    return model, SavedModel(meta, int(ckpt["iteration"]), float(ckpt["wall_time_s"]))
