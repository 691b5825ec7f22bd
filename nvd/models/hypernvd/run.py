"""HyperNVD runs: train the hypernetwork, finetune and train from scratch, score its output.

These are the functions behind ``nvd train-hyper`` / ``nvd finetune`` / ``nvd hyper-output``
and the workflow rules ``train_hyper``, ``finetune``, ``scratch`` and ``hyper_output``.

- The hypernetwork checkpoint (``train_hypernet``) is a training checkpoint whose ``meta``
  holds the HyperNVD config, the target's number of layers and the embedding dimension, so
  ``load_hypernet`` rebuilds it and refuses a target config other than the one it was made for.
- A finetuned model (``finetune``) is an ordinary decomposition model: the generated tensors
  are loaded into a plain ``LayeredDecomposition``, the hypernetwork is dropped, and the
  per-video training runs from there. ``evaluate`` and ``edit`` take it unchanged.
- The baseline (``train_scratch``) trains the same target architecture with the same
  settings from a random initialisation, except for the warm-ups a random start needs
  (mapping pretraining, long alpha bootstrapping, global rigidity: ``ScratchConfig``), as
  the paper compares finetuning with Hashing-NVD trained from scratch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nvd.core.config import section
from nvd.core.devices import resolve_device
from nvd.core.errors import ConfigError, InputError
from nvd.core.publish import publish_text
from nvd.core.versioning import code_version
from nvd.data.datasets import hypernet_split
from nvd.data.loader import load_video
from nvd.data.stores import content_fingerprint, open_store
from nvd.eval.metrics import psnr_per_frame
from nvd.models.hashing_nvd.model import DecompositionConfig, LayeredDecomposition
from nvd.models.hashing_nvd.objective import DecompositionTask, DecompositionTrainConfig
from nvd.models.hashing_nvd.render import render_video
from nvd.models.hashing_nvd.run import train_decomposition, video_identity
from nvd.models.hypernvd.model import HyperNetwork, parameter_count
from nvd.models.hypernvd.objective import HyperTask, HyperTrainConfig, ScratchConfig, finetune_defaults
from nvd.train.loop import CheckpointError, TrainResult, load_modules, read_checkpoint, seed_everything, train
from nvd.train.runs import file_digest, input_fingerprints, train_and_publish

log = logging.getLogger("nvd")


@dataclass(frozen=True)
class VideoStores:
    """The stores of one video that HyperNVD reads."""

    frames: Path
    flow: Path
    masks: Path
    embedding: Path | None = None  # the scratch baseline reads none

    @classmethod
    def of(cls, stores: Mapping[str, str | Path]) -> "VideoStores":
        """From a {stage: store} mapping (a job's inputs, ``ResultsLayout.stores``)."""
        embedding = stores.get("embedding")
        return cls(Path(stores["frames"]), Path(stores["flow"]), Path(stores["masks"]),
                   Path(embedding) if embedding else None)


def load_embedding(store: str | Path) -> Tensor:
    """The video's embedding: float32 [D], the first window's (HyperNVD uses the first 16 frames)."""
    group = open_store(store, "embedding")
    windows = np.asarray(group["windows"][:])
    if windows.ndim != 2 or windows.shape[0] < 1:
        raise InputError(f"{store}: expected embedding windows [W, D], got shape {windows.shape}")
    return torch.from_numpy(windows[0].astype(np.float32))


def hyper_config(config: Mapping[str, Any], check_split: bool = True) -> HyperTrainConfig:
    """The ``hypernet`` section of a workflow config; with ``check_split`` its splits are
    checked against the config's datasets (jobs get the sections alone, checked already)."""
    if config.get("hypernet") is None:
        raise ConfigError("the config has no 'hypernet' section")
    if check_split:
        hypernet_split(config)
    return section(HyperTrainConfig, config["hypernet"], "hypernet")


def finetune_config(config: Mapping[str, Any], check_split: bool = True) -> DecompositionTrainConfig:
    """The ``finetune`` section on top of HyperNVD's finetuning defaults, with the target model
    of ``hypernet.model`` (the architecture is the hypernetwork's, not configurable here)."""
    values = dict(config.get("finetune") or {})
    if "model" in values:
        raise ConfigError("finetune.model: the finetuned architecture is the hypernetwork's target; set hypernet.model")
    cfg = section(DecompositionTrainConfig, values, "finetune", finetune_defaults())
    return dataclasses.replace(cfg, model=hyper_config(config, check_split).model)


# ---------------------------------------------------------------------------- training


def hyper_identity(cfg: HyperTrainConfig, videos: Mapping[str, VideoStores]) -> dict[str, Any]:
    """What makes two hypernetwork runs the same run (the loop's bookkeeping left out): the
    config, the code version and, per training video, its identity and the content fingerprint
    of each of its stores (frames, flow, masks, embedding), so a checkpoint is only resumed on
    exactly the inputs it was trained on."""
    config = dataclasses.asdict(cfg)
    config["train"] = {"seed": cfg.train.seed}
    return {
        "config": config,
        "code_version": code_version("hypernet"),
        "videos": {name: {**video_identity(s.frames, s.masks),
                          "embedding": open_store(s.embedding, "embedding").attrs.get("backend"),
                          "inputs": input_fingerprints({"frames": s.frames, "flow": s.flow, "masks": s.masks,
                                                        "embedding": s.embedding})}
                   for name, s in sorted(videos.items())},
    }


def train_hypernet(videos: Mapping[str, VideoStores], work_dir: str | Path, model_path: str | Path,
                   cfg: HyperTrainConfig, *, restart_on_mismatch: bool = False) -> TrainResult:
    """Train the hypernetwork on ``videos`` (the training split); resume from ``work_dir``.

    The final checkpoint is copied to ``model_path`` with ``log.csv`` beside it (per-video
    PSNR of the generated decompositions against training time).
    """
    missing = sorted(set(cfg.train_videos) - set(videos))
    extra = sorted(set(videos) - set(cfg.train_videos))
    if missing or extra:
        raise InputError(f"hypernetwork training takes the training split {list(cfg.train_videos)}; "
                         f"missing {missing}, not in the split {extra}")
    device = resolve_device(cfg.train.device)
    tensors = {name: load_video(s.frames, s.flow, s.masks, device) for name, s in videos.items()}
    embeddings = {name: load_embedding(s.embedding) for name, s in videos.items()}
    identity = hyper_identity(cfg, videos)
    work_dir = Path(work_dir)

    def attempt() -> TrainResult:
        seed_everything(cfg.train.seed)
        task = HyperTask(tensors, embeddings, cfg)
        meta = {**identity, "n_layers": task.target.n_layers, "embedding_dim": task.hypernet.embedding_dim,
                "hypernet_parameters": parameter_count(task.hypernet),
                "target_parameters": parameter_count(task.target)}
        log.info("hypernetwork: %d parameters (%s heads) for a %d-parameter target", meta["hypernet_parameters"],
                 cfg.network.head, meta["target_parameters"])
        return train(task, cfg.train, work_dir, identity=identity, meta=meta)

    return train_and_publish(attempt, work_dir, model_path, restart_on_mismatch)


def load_hypernet(path: str | Path, target: DecompositionConfig | None = None,
                  device: str | torch.device = "cpu") -> tuple[HyperNetwork, LayeredDecomposition, dict[str, Any]]:
    """Rebuild a trained hypernetwork: (hypernet, target template, checkpoint meta).

    With ``target``, CheckpointError when the hypernetwork was made for another target config.
    """
    checkpoint = read_checkpoint(path)
    meta = checkpoint["meta"]
    if "n_layers" not in meta or "embedding_dim" not in meta:
        raise CheckpointError(f"{path} is not a hypernetwork checkpoint (no n_layers/embedding_dim in its meta)")
    cfg = section(HyperTrainConfig, meta["config"], "hypernet")
    if target is not None and dataclasses.asdict(target) != dataclasses.asdict(cfg.model):
        saved, wanted = dataclasses.asdict(cfg.model), dataclasses.asdict(target)
        diffs = sorted(k for k in saved if saved[k] != wanted[k])
        raise CheckpointError(f"{path} was made for a different target model (hypernet.model differs in: "
                              f"{', '.join(diffs)}); retrain the hypernetwork for this config")
    template = LayeredDecomposition(meta["n_layers"], cfg.model).to(device).requires_grad_(False)
    hypernet = HyperNetwork(template, meta["embedding_dim"], cfg.network).to(device)
    load_modules(path, {"hypernet": hypernet}, checkpoint)
    hypernet.eval()
    return hypernet, template, meta


@torch.no_grad()
def generate_state(hypernet: HyperNetwork, embedding: Tensor) -> dict[str, Tensor]:
    """The target's state_dict generated from one video embedding [D] (detached)."""
    device = next(hypernet.parameters()).device
    return {name: t.detach().clone() for name, t in hypernet(embedding.to(device)).items()}


def finetune(hypernet_path: str | Path, stores: VideoStores, work_dir: str | Path, model_path: str | Path,
             cfg: DecompositionTrainConfig, *, restart_on_mismatch: bool = False) -> TrainResult:
    """Finetune a decomposition of one video from the hypernetwork's output.

    The tensors are generated once from the video's embedding and loaded into a plain
    decomposition model; from there it is a per-video decomposition run (``cfg``, whose
    model must be the hypernetwork's target; see finetune_config).
    """
    device = resolve_device(cfg.train.device)
    hypernet, template, meta = load_hypernet(hypernet_path, cfg.model, device)
    masks = open_store(stores.masks, "masks")["masks"]
    if masks.shape[0] + 1 != template.n_layers:
        raise InputError(f"{stores.masks}: {masks.shape[0]} objects, the hypernetwork's target has "
                         f"{template.n_layers - 1} (+ background)")
    embedding = load_embedding(stores.embedding)
    if embedding.shape[0] != hypernet.embedding_dim:
        raise InputError(f"{stores.embedding}: a {embedding.shape[0]}-d embedding, the hypernetwork "
                         f"{hypernet_path} takes {hypernet.embedding_dim}-d ones (embedding backend differs?)")
    start = time.perf_counter()
    state = {name: t.cpu() for name, t in generate_state(hypernet, embedding).items()}
    log.info("generated the %d target tensors in %.2f s", len(state), time.perf_counter() - start)
    del hypernet, template
    return train_decomposition(stores.frames, stores.flow, stores.masks, work_dir, model_path, cfg,
                               restart_on_mismatch=restart_on_mismatch, initial_state=state,
                               init_identity={"hypernet": file_digest(hypernet_path),
                                              "embedding": content_fingerprint(stores.embedding, "embedding")})


def train_scratch(stores: VideoStores, work_dir: str | Path, model_path: str | Path,
                  cfg: DecompositionTrainConfig, scratch: ScratchConfig = ScratchConfig(), *,
                  restart_on_mismatch: bool = False) -> TrainResult:
    """The baseline: the same target model and ``cfg`` (the finetune settings) from a random
    initialisation, with the warm-ups of ``scratch``."""
    return train_decomposition(stores.frames, stores.flow, stores.masks, work_dir, model_path, scratch.apply(cfg),
                               restart_on_mismatch=restart_on_mismatch)


def scratch_config(config: Mapping[str, Any]) -> ScratchConfig:
    """The ``scratch`` section (the baseline's warm-ups)."""
    return section(ScratchConfig, config.get("scratch"), "scratch")


@torch.no_grad()
def hypernet_output_quality(hypernet_path: str | Path, stores: VideoStores, cfg: DecompositionTrainConfig,
                            out: str | Path | None = None, split: str | None = None) -> dict[str, Any]:
    """PSNR (mean over all frames, with and without the residual) of the decomposition the
    hypernetwork generates for a video, before any finetuning; written as JSON to ``out``."""
    device = resolve_device(cfg.train.device)
    hypernet, template, _ = load_hypernet(hypernet_path, cfg.model, device)
    embedding = load_embedding(stores.embedding)
    if embedding.shape[0] != hypernet.embedding_dim:
        raise InputError(f"{stores.embedding}: a {embedding.shape[0]}-d embedding, the hypernetwork takes "
                         f"{hypernet.embedding_dim}-d ones")
    video = load_video(stores.frames, stores.flow, stores.masks, device)
    task = DecompositionTask(video, cfg, LayeredDecomposition(template.n_layers, cfg.model))
    task.model.load_state_dict(generate_state(hypernet, embedding))
    task.model.eval()
    rendered = render_video(task)
    frames = video.frames.cpu()
    result = {
        "split": split,
        "psnr": psnr_per_frame(rendered["rgb"].clamp(0, 1), frames).mean().item(),
        "psnr_no_residual": psnr_per_frame(rendered["rgb_no_residual"].clamp(0, 1), frames).mean().item(),
        "hypernet": str(hypernet_path),
        "code_version": code_version("hypernet"),
    }
    if out is not None:
        publish_text(out, json.dumps(result, indent=1))
    return result


# ---------------------------------------------------------------------------- workflow jobs
# Each takes the job's stores and the config sections it reads, as written (the workflow
# checked the splits when it built the DAG), and runs only when its inputs, config or code
# changed: a checkpoint left by an older run is stale, not resumable.


def train_hypernet_job(videos: Mapping[str, Mapping[str, str | Path]], sections: Mapping[str, Any],
                       work_dir: str | Path, model_path: str | Path) -> TrainResult:
    """The ``train_hyper`` job: ``videos`` is {training video: {stage: store}}."""
    cfg = hyper_config(sections, check_split=False)
    return train_hypernet({video: VideoStores.of(stores) for video, stores in videos.items()}, work_dir,
                          model_path, cfg, restart_on_mismatch=True)


def finetune_job(inputs: Mapping[str, str | Path], sections: Mapping[str, Any], work_dir: str | Path,
                 model_path: str | Path) -> TrainResult:
    """The ``finetune`` job: ``inputs`` holds the video's stores and the ``hypernet`` model."""
    return finetune(inputs["hypernet"], VideoStores.of(inputs), work_dir, model_path,
                    finetune_config(sections, check_split=False), restart_on_mismatch=True)


def scratch_job(inputs: Mapping[str, str | Path], sections: Mapping[str, Any], work_dir: str | Path,
                model_path: str | Path) -> TrainResult:
    """The ``scratch`` job: the baseline on the video's stores (the finetune settings with the
    warm-ups of the ``scratch`` section)."""
    return train_scratch(VideoStores.of(inputs), work_dir, model_path, finetune_config(sections, check_split=False),
                         scratch_config(sections), restart_on_mismatch=True)


def hyper_output_job(inputs: Mapping[str, str | Path], sections: Mapping[str, Any], split: str,
                     out: str | Path) -> dict[str, Any]:
    """The ``hyper_output`` job: the hypernetwork's output quality for one video of ``split``."""
    return hypernet_output_quality(inputs["hypernet"], VideoStores.of(inputs),
                                   finetune_config(sections, check_split=False), out=out, split=split)
