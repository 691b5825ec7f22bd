"""NVP's super-resolution and frame interpolation, measured on held-out data.

Super-resolution by k: NVP trains on the video downsampled k times per axis (INTER_AREA) and
renders at full size by querying a k-times denser coordinate grid; scored against the
original frames beside bicubic upsampling of the same downsampled frames. The dense grid
puts each full-size pixel centre where it lies in the small video (pixel centres, as
INTER_AREA and bicubic resizing use: full-size pixel j sits at small-video position
(j + 0.5) / k - 0.5), so NVP and bicubic see the same geometry. Training observes each small
pixel as the mean of the model over the k x k full-size pixels it was averaged from
(objective.py's footprint): the degradation the small video went through. Trained on the
pixel centres alone, the model is free to do anything between them, and is then worse than
bicubic (docs/lab/nvp-demo.md).

Frame interpolation by k: NVP trains on frames 0, k, 2k, ... and renders every frame between
the first and the last kept one, the sparse grid blended linearly between its two nearest
slices (the keyframe planes interpolate in t anyway); scored on the held-out frames against
the originals, beside linear blending of the two kept neighbours.

Each run writes its model folder (model.pt, log.csv, work/) and an eval folder: metrics.json
(NVP and the baseline, video_quality figures), the videos (baseline | NVP | original).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from nvd.core.config import section
from nvd.core.devices import resolve_device
from nvd.core.errors import InputError
from nvd.core.versioning import code_version
from nvd.data.loader import frames_uint8
from nvd.eval.metrics import video_quality
from nvd.eval.outputs import check_replaceable, publish_evaluation, video_fps, write_clip
from nvd.models.nvp.config import NVPTrainConfig, ResamplingConfig, nvp_train_config
from nvd.models.nvp.model import NVP
from nvd.models.nvp.objective import render_fine
from nvd.models.nvp.run import load_nvp, train_nvp_run


def downsample(frames: Tensor, factor: int) -> Tensor:
    """uint8 [T, H, W, 3] -> uint8 [T, H // factor, W // factor, 3] by INTER_AREA; H and W
    must be multiples of factor (the full-size grid is then exactly factor times denser)."""
    t, h, w, _ = frames.shape
    if h % factor or w % factor:
        raise InputError(f"super-resolution by {factor} needs frame sides divisible by {factor}, got {w}x{h}")
    small = [cv2.resize(f, (w // factor, h // factor), interpolation=cv2.INTER_AREA) for f in frames.cpu().numpy()]
    return torch.from_numpy(np.stack(small)).to(frames.device)


def bicubic_upsample(frames: Tensor, height: int, width: int) -> Tensor:
    """uint8 [T, h, w, 3] -> float [T, height, width, 3] in [0, 1] by bicubic resizing."""
    big = [cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in frames.cpu().numpy()]
    return torch.from_numpy(np.stack(big)).to(frames.device).float() / 255


def kept_frames(num_frames: int, factor: int) -> list[int]:
    """Frames 0, factor, 2 factor, ... < num_frames (at least two, to interpolate between)."""
    kept = list(range(0, num_frames, factor))
    if len(kept) < 2:
        raise InputError(f"frame interpolation by {factor} needs at least {factor + 1} frames, got {num_frames}")
    return kept


def heldout_frames(num_frames: int, factor: int) -> list[int]:
    """The frames between the first and last kept one that training does not see."""
    last = kept_frames(num_frames, factor)[-1]
    return [j for j in range(last + 1) if j % factor]


def linear_blend(frames: Tensor, factor: int, targets: list[int]) -> Tensor:
    """float [len(targets), H, W, 3] in [0, 1]: each target frame blended from its two kept
    neighbours, weighted by distance."""
    x = frames.float() / 255
    out = []
    for j in targets:
        before, weight = (j // factor) * factor, (j % factor) / factor
        out.append((1 - weight) * x[before] + weight * x[before + factor])
    return torch.stack(out)


def render_interpolated(model: NVP, factor: int, targets: list[int]) -> Tensor:
    """[len(targets), H, W, 3] in [0, 1]: original frame j of a model trained on every
    factor-th frame sits at t = j / (factor * (T' - 1))."""
    span = factor * (model.num_frames - 1)
    return torch.stack([model.render_time(j / span, blend_time=True) for j in targets])


def _figures(nvp: Tensor, baseline: Tensor, truth: Tensor, lpips_weights: str | None) -> dict[str, Any]:
    return {"nvp": video_quality(nvp, truth, lpips_weights), "baseline": video_quality(baseline, truth, lpips_weights)}


def _publish(out_dir: str | os.PathLike, metrics: Mapping[str, Any], videos: Mapping[str, list[Tensor] | Tensor],
             fps: float) -> None:
    def outputs(folder: Path) -> None:
        for name, clip in videos.items():
            write_clip(folder / name, clip, fps)

    publish_evaluation(out_dir, metrics, outputs)


def _trained(frames: Tensor, frames_store: str | Path, cfg: NVPTrainConfig, run: Mapping[str, str],
             variant: Mapping[str, Any], footprint: int = 1) -> NVP:
    result = train_nvp_run(frames, frames_store, cfg, run["work"], run["model"], variant=variant,
                           footprint=footprint, restart_on_mismatch=True)
    model, _ = load_nvp(result.checkpoint, cfg.train.device)
    return model


def resampling_config(sections: Mapping[str, Any], name: str) -> tuple[NVPTrainConfig, ResamplingConfig]:
    """The ``nvp`` section without snapshots (budgets), trained for the resampling section's
    ``iterations`` when given, and the resampling section ``name``."""
    resampling = section(ResamplingConfig, sections.get(name), name)
    cfg = nvp_train_config(sections.get("nvp"))
    iterations = cfg.train.iterations if resampling.iterations is None else resampling.iterations
    cfg = dataclasses.replace(cfg, budgets=(), train=dataclasses.replace(cfg.train, iterations=iterations))
    return cfg, resampling


def superres_job(frames_store: str | Path, sections: Mapping[str, Any], run: Mapping[str, str],
                 out_dir: str | os.PathLike, lpips_weights: str | None = None) -> dict[str, Any]:
    """The ``nvp_superres`` job: ``run`` names the model folder's work and model paths."""
    cfg, resampling = resampling_config(sections, "nvp_superres")
    check_replaceable(out_dir)
    full = frames_uint8(frames_store, resolve_device(cfg.train.device))
    small = downsample(full, resampling.factor)
    model = _trained(small, frames_store, cfg, run, {"superres": resampling.factor}, footprint=resampling.factor)
    truth = full.float() / 255
    nvp = render_fine(model, resampling.factor)
    bicubic = bicubic_upsample(small, *full.shape[1:3])
    metrics = {"factor": resampling.factor, "trained_size": list(small.shape[1:3]), "size": list(full.shape[1:3]),
               **_figures(nvp, bicubic, truth, lpips_weights),
               "config": dataclasses.asdict(cfg), "code_version": code_version("nvp_resampling")}
    side = [torch.cat((b, n, f), dim=1) for b, n, f in zip(bicubic, nvp, truth)]
    _publish(out_dir, metrics, {"superres.mp4": nvp, "bicubic_nvp_original.mp4": side}, video_fps(frames_store))
    return metrics


def interpolate_job(frames_store: str | Path, sections: Mapping[str, Any], run: Mapping[str, str],
                    out_dir: str | os.PathLike, lpips_weights: str | None = None) -> dict[str, Any]:
    """The ``nvp_interpolate`` job: ``run`` names the model folder's work and model paths."""
    cfg, resampling = resampling_config(sections, "nvp_interpolate")
    check_replaceable(out_dir)
    full = frames_uint8(frames_store, resolve_device(cfg.train.device))
    factor = resampling.factor
    kept, heldout = kept_frames(full.shape[0], factor), heldout_frames(full.shape[0], factor)
    model = _trained(full[kept], frames_store, cfg, run, {"interpolate": factor})
    truth = full[heldout].float() / 255
    nvp = render_interpolated(model, factor, heldout)
    blend = linear_blend(full, factor, heldout)
    every = render_interpolated(model, factor, list(range(kept[-1] + 1)))
    metrics = {"factor": factor, "trained_frames": kept, "heldout_frames": heldout,
               **_figures(nvp, blend, truth, lpips_weights),
               "config": dataclasses.asdict(cfg), "code_version": code_version("nvp_resampling")}
    side = [torch.cat((b, n, f), dim=1) for b, n, f in zip(blend, nvp, truth)]
    _publish(out_dir, metrics, {"interpolated.mp4": every, "blend_nvp_original.mp4": side}, video_fps(frames_store))
    return metrics
