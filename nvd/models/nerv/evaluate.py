"""Evaluation of trained NeRV-family models: regression, inpainting and interpolation.

Each evaluation writes one folder (nvd.eval.outputs.publish_evaluation), by the task the
model was trained for (its variant, tasks.py):

- regression: ``metrics.json`` with the video_quality figures (PSNR per frame on [0, 1]
  averaged, MS-SSIM, LPIPS (null without local weights), FLIP), the per-frame PSNR, the
  counted parameters (nvd.models.nerv.size), epochs, iterations, training time, config and
  code versions; ``rec.mp4`` (the reconstruction) and ``side_by_side.mp4`` (input | it).
- inpainting: the figures of the full frames against the original frames, PSNR inside the
  holes and outside them (the MSE over those pixels of every frame, per frame, averaged),
  beside the same figures of the input with holes (what the model was given);
  ``inpainted.mp4`` and ``holes_output_original.mp4`` (input with holes | output | original).
- interpolation: the video_quality figures of the odd frames (never trained on), beside
  linear blending of their two neighbours, and the figures of the trained even frames;
  ``interpolated.mp4`` (every frame up to the last held-out one's neighbour, trained frames
  reconstructed and held-out ones interpolated) and ``blend_output_original.mp4``.

Jobs: ``nerv_evaluate_job`` scores a model the training job published;
``nerv_inpaint_job`` and ``nerv_interpolate_job`` train their model (resuming, via run.py)
into the model folder and then score it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nvd.core.devices import resolve_device
from nvd.core.versioning import code_version
from nvd.data.loader import frames_uint8
from nvd.eval.metrics import psnr_per_frame, video_quality
from nvd.eval.outputs import (
    check_replaceable,
    finite,
    publish_evaluation,
    training_log,
    training_summary,
    video_fps,
    write_clip,
)
from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.objective import apply_holes, render_frames
from nvd.models.nerv.run import SavedModel, load_nerv, train_nerv_run
from nvd.models.nerv.size import counted_parameters
from nvd.models.nerv.tasks import inpaint_mask, interpolation_split, linear_blend, render_interpolated, variant
from nvd.models.nerv.training import inpaint_config, interpolate_config, nerv_train_config

REC_VIDEO = "rec.mp4"
SIDE_BY_SIDE_VIDEO = "side_by_side.mp4"
INPAINTED_VIDEO = "inpainted.mp4"
INPAINT_TRIPTYCH = "holes_output_original.mp4"
INTERPOLATED_VIDEO = "interpolated.mp4"
INTERPOLATE_TRIPTYCH = "blend_output_original.mp4"


def region_psnr(pred: Tensor, target: Tensor, region: Tensor) -> float | None:
    """Mean over frames of the PSNR of the pixels where ``region`` (bool [H, W]) is True;
    pred, target [T, H, W, 3] in [0, 1]. None when exact or the region is empty."""
    if not bool(region.any()):
        return None
    inside = region.to(pred.device)
    mse = (pred.clamp(0, 1) - target)[:, inside].square().mean(dim=(1, 2)).double()
    return finite(float((10 * torch.log10(1 / mse)).mean()))


def _common(model: NeRVFamilyModel, saved: SavedModel, model_path: str | os.PathLike) -> dict[str, Any]:
    meta = saved.meta
    iterations, seconds = training_summary(training_log(model_path))
    return {"model": meta["config"]["model"], "parameters": counted_parameters(model, model.num_frames),
            "model_size": meta["config"]["model_size"], "epochs": meta["config"]["epochs"],
            "iterations": iterations, "train_time_s": seconds, "variant": saved.variant,
            "config": meta["config"], "model_config": meta["model_config"],
            "code_version": {"training": meta["code_version"], "evaluation": code_version("nerv_evaluation")}}


def _concat(*clips: Tensor) -> list[Tensor]:
    """Frames side by side: [T, H, W, 3] clips -> T frames [H, n * W, 3]."""
    return [torch.cat(frames, dim=1) for frames in zip(*clips)]


def regression_outputs(model: NeRVFamilyModel, frames: Tensor, lpips_weights: str | None
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures, videos) of a model of the whole video; frames uint8 [T, H, W, 3]."""
    device = next(model.parameters()).device
    truth = frames.float() / 255
    rendered = render_frames(model, torch.arange(frames.shape[0], device=device), frames)
    figures = {**video_quality(rendered, truth, lpips_weights),
               "psnr_per_frame": [finite(v) for v in psnr_per_frame(rendered.clamp(0, 1), truth).tolist()]}
    return figures, {REC_VIDEO: rendered, SIDE_BY_SIDE_VIDEO: _concat(truth, rendered)}


def inpaint_outputs(model: NeRVFamilyModel, frames: Tensor, mask: Tensor, lpips_weights: str | None
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures, videos) of a model trained on ``frames`` with the holes of ``mask``."""
    device = next(model.parameters()).device
    holed = apply_holes(frames, mask)
    truth, given = frames.float() / 255, holed.float() / 255
    rendered = render_frames(model, torch.arange(frames.shape[0], device=device), holed)
    figures = {
        "mask_fraction": float(mask.float().mean()),
        "output": {**video_quality(rendered, truth, lpips_weights), "psnr_holes": region_psnr(rendered, truth, mask),
                   "psnr_outside": region_psnr(rendered, truth, ~mask)},
        "input": {**video_quality(given, truth, lpips_weights), "psnr_holes": region_psnr(given, truth, mask),
                  "psnr_outside": region_psnr(given, truth, ~mask)},
    }
    return figures, {INPAINTED_VIDEO: rendered, INPAINT_TRIPTYCH: _concat(given, rendered, truth)}


def interpolate_outputs(model: NeRVFamilyModel, frames: Tensor, lpips_weights: str | None
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures, videos) of a model trained on the even frames of ``frames``."""
    device = next(model.parameters()).device
    trained, heldout = interpolation_split(frames.shape[0])
    truth = frames.float() / 255
    interpolated = render_interpolated(model, frames, heldout)
    blend = linear_blend(frames, heldout).to(interpolated.device)
    reconstructed = render_frames(model, torch.tensor(trained, device=device), frames[trained])
    figures = {"trained_frames": trained, "heldout_frames": heldout,
               "output": video_quality(interpolated, truth[heldout], lpips_weights),
               "baseline": video_quality(blend, truth[heldout], lpips_weights),
               "trained": video_quality(reconstructed, truth[trained], lpips_weights)}
    every = []
    for j in range(heldout[-1] + 2):
        every.append(reconstructed[j // 2] if j % 2 == 0 else interpolated[heldout.index(j)])
    return figures, {INTERPOLATED_VIDEO: torch.stack(every),
                     INTERPOLATE_TRIPTYCH: _concat(blend, interpolated, truth[heldout])}


def evaluate_nerv(model_path: str | os.PathLike, frames_store: str | os.PathLike, out_dir: str | os.PathLike, *,
                  lpips_weights: str | None = None, device: str = "auto") -> dict[str, Any]:
    """Evaluate the model at ``model_path`` on its video, by the task it was trained for (see
    the module docstring): ``nvd nerv-evaluate`` and the jobs."""
    check_replaceable(out_dir)
    model, saved = load_nerv(model_path, device, frames_store)
    frames = frames_uint8(frames_store, next(model.parameters()).device)
    if tuple(frames.shape[:3]) != (model.num_frames, model.height, model.width):
        raise ValueError("nerv: the model's video size differs from its frames store")  # frames_identity checks it
    run_variant = saved.variant
    task = run_variant.get("task", "regression")
    if task == "inpaint":
        mask = inpaint_mask(run_variant["mask"], model.height, model.width).to(frames.device)
        figures, videos = inpaint_outputs(model, frames, mask, lpips_weights)
    elif task == "interpolate":
        figures, videos = interpolate_outputs(model, frames, lpips_weights)
    else:
        figures, videos = regression_outputs(model, frames, lpips_weights)
    metrics = {**figures, **_common(model, saved, model_path)}
    fps = video_fps(frames_store)

    def outputs(folder: Path) -> None:
        for name, clip in videos.items():
            write_clip(folder / name, clip, fps)

    publish_evaluation(out_dir, metrics, outputs)
    return metrics


def nerv_evaluate_job(inputs: Mapping[str, Any], out_dir: str | os.PathLike, lpips_weights: str | None,
                      device: str) -> dict[str, Any]:
    """The NeRV evaluation job: inputs ``model`` and ``frames``."""
    return evaluate_nerv(inputs["model"], inputs["frames"], out_dir, lpips_weights=lpips_weights, device=device)


def _train_then_evaluate(frames_store: str | Path, sections: Mapping[str, Any], model_name: str,
                         run: Mapping[str, str], out_dir: str | os.PathLike, lpips_weights: str | None,
                         epochs: int | None, run_variant: dict[str, Any]) -> dict[str, Any]:
    cfg = nerv_train_config(sections.get("nerv"), model=model_name).with_epochs(epochs)
    check_replaceable(out_dir)
    frames = frames_uint8(frames_store, resolve_device(cfg.train.device))
    train_nerv_run(frames, frames_store, cfg, run["work"], run["model"], run_variant=run_variant,
                   restart_on_mismatch=True)
    del frames
    return evaluate_nerv(run["model"], frames_store, out_dir, lpips_weights=lpips_weights, device=cfg.train.device)


def nerv_inpaint_job(frames_store: str | Path, sections: Mapping[str, Any], model_name: str,
                     run: Mapping[str, str], out_dir: str | os.PathLike,
                     lpips_weights: str | None = None) -> dict[str, Any]:
    """The NeRV inpainting job: the ``nerv`` section, with ``nerv_inpaint``'s mask and epochs;
    ``run`` names the model folder's ``work`` and ``model`` paths."""
    task = inpaint_config(sections.get("nerv_inpaint"))
    return _train_then_evaluate(frames_store, sections, model_name, run, out_dir, lpips_weights, task.epochs,
                                variant("inpaint", task.mask))


def nerv_interpolate_job(frames_store: str | Path, sections: Mapping[str, Any], model_name: str,
                         run: Mapping[str, str], out_dir: str | os.PathLike,
                         lpips_weights: str | None = None) -> dict[str, Any]:
    """The NeRV interpolation job: the ``nerv`` section, with ``nerv_interpolate``'s epochs;
    ``run`` names the model folder's ``work`` and ``model`` paths."""
    task = interpolate_config(sections.get("nerv_interpolate"))
    return _train_then_evaluate(frames_store, sections, model_name, run, out_dir, lpips_weights, task.epochs,
                                variant("interpolate"))
