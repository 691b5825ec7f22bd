"""Evaluation outputs of a trained layered decomposition, and texture edits through the video.

``evaluate`` renders every frame once (``render_video``) and writes, into one folder:

- ``metrics.json``: PSNR with and without the residual, SSIM, LPIPS (null without local
  weights), per-frame PSNR, alpha IoU per object when ground truth is given, training time
  and iterations, parameter count and the caller's ``meta`` (config, code version);
- ``tex{i}.png``: layer i's atlas, RGBA (see ``atlas_images``);
- ``rec.mp4``, ``rec_no_residual.mp4``: the reconstruction with and without the residual;
- ``alpha{i}.mp4``: layer i's alpha as grey;
- ``residual{i}.mp4``: layer i's multiplicative residual shown as clamp(residual / 2, 0, 1),
  so 1 (no change) is mid-grey, darkening below it and brightening above it;
- ``comparison.mp4``: a 2x2 grid, input | reconstruction over no-residual reconstruction |
  alpha overlay (the input at half strength plus each object's colour times its alpha);
- ``checkerboard{i}.mp4``: layer i's atlas replaced by a checkerboard (``propagate_edit``
  in replace mode), which shows how the layer's texture moves with the video.

Every video is H.264 (``nvd.data.video_io.write_video``); editing is in ``edit``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from nvd.core.errors import InputError
from nvd.eval.metrics import psnr_per_frame, ssim, usable_lpips
from nvd.eval.outputs import (
    check_replaceable,
    finite,
    publish_evaluation,
    training_log,
    training_summary,
    video_fps,
    write_clip,
)
from nvd.models.hashing_nvd.atlas import checkerboard
from nvd.models.hashing_nvd.objective import DecompositionTask
from nvd.models.hashing_nvd.render import atlas_images, render_edit, render_video
from nvd.models.hashing_nvd.run import load_decomposition, load_truth
from nvd.train.loop import TrainResult

# Overlay colours of the objects in comparison.mp4 (cycled when there are more objects).
_OBJECT_COLOURS = (
    (1.0, 0.15, 0.15), (0.15, 1.0, 0.15), (0.2, 0.4, 1.0), (1.0, 0.9, 0.1), (1.0, 0.2, 1.0), (0.1, 1.0, 1.0),
)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationConfig:
    """Evaluation outputs (``evaluation`` section)."""

    atlas_size: int = 1000  # side of the tex{i}.png atlases (px)


# ---------------------------------------------------------------------------- evaluation


def evaluate(
    task: DecompositionTask,
    out_dir: str | os.PathLike,
    *,
    fps: float,
    training: TrainResult | Sequence[Mapping[str, float]],
    meta: Mapping[str, Any],
    atlas_size: int = 1000,
    lpips_weights: str | None = None,
    truth: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the evaluation outputs of ``task`` (list in the module doc) into ``out_dir``.

    ``training`` gives the training time and iterations: the ``TrainResult`` of ``train``,
    or the rows of its log (``nvd.train.logs.read_log``), whose last row is used. ``meta``
    (config, code version...) is copied into metrics.json. ``lpips_weights`` is a local
    LPIPS weight file (``nvd.eval.metrics.lpips_metric``); without it, or for frames under 31 px
    (too small for its AlexNet), lpips is null. ``truth``
    (optional) holds ``masks`` [K-1,T,H,W] (as in the demo clips' ground_truth.npz); with it
    metrics.json gets ``alpha_iou``, per object, else null.

    The folder is published as in ``nvd.eval.outputs.publish_evaluation`` (atomically,
    replacing only an earlier evaluation). Returns the metrics.
    """
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    iterations, train_time = training_summary(training)
    masks = _truth_masks(task, truth)
    rendered = render_video(task)
    frames = task.video.frames.detach().cpu()
    truth_uv = None if truth is None or "uv" not in truth else torch.as_tensor(np.asarray(truth["uv"])).float()
    metrics = _metrics(task, rendered, frames, lpips_weights, masks, truth_uv)
    metrics.update(training_time_s=train_time, iterations=iterations,
                   parameters=sum(p.numel() for p in task.model.parameters()),
                   frames=frames.shape[0], height=frames.shape[1], width=frames.shape[2],
                   layers=task.model.n_layers, objects=list(task.video.object_names),
                   atlas_size=atlas_size, fps=fps, meta=dict(meta))
    atlases = atlas_images(task, rendered, atlas_size)
    publish_evaluation(out_dir, metrics, lambda folder: _write_outputs(folder, frames, rendered, atlases, fps))
    _log.info("evaluation in %s: PSNR %s dB (%s dB without residual), SSIM %.4f",
              out_dir, metrics["psnr"], metrics["psnr_no_residual"], metrics["ssim"])
    return metrics


def _truth_masks(task: DecompositionTask, truth: Mapping[str, Any] | None) -> Tensor | None:
    """The ground-truth object masks as bool [K-1,T,H,W], or None without ground truth."""
    if truth is None:
        return None
    if "masks" not in truth:
        raise InputError(f"ground truth has no 'masks' (keys: {sorted(truth)})")
    masks = torch.as_tensor(np.asarray(truth["masks"])) > 0.5
    t_count, h, w = task.video.shape
    expected = (task.model.n_layers - 1, t_count, h, w)
    if tuple(masks.shape) != expected:
        raise InputError(f"ground-truth masks have shape {tuple(masks.shape)}, the decomposition needs "
                         f"{expected} (objects, frames, height, width)")
    return masks


def alpha_iou(alpha: Tensor, masks: Tensor) -> list[float]:
    """IoU of (alpha_k > 0.5) with object k's mask over all frames, per object.

    alpha [K,T,H,W] (objects first, background last), masks bool [K-1,T,H,W]. An object that
    is absent from both counts as a perfect match (1.0).
    """
    out = []
    for k in range(masks.shape[0]):
        pred = alpha[k] > 0.5
        union = (pred | masks[k]).sum().item()
        out.append((pred & masks[k]).sum().item() / union if union else 1.0)
    return out


def mark_tracking_error(uv: Tensor, alpha: Tensor, truth_uv: Tensor, truth_masks: Tensor,
                        visible_within: float = 1.0) -> list[float | None]:
    """How far a mark painted on each object's atlas lands from where it should, in px.

    For object k, the atlas point under the centre of its true mask in the first frame where
    it shows is "painted". In every frame where the true uv map still shows that point
    (some pixel's true uv within ``visible_within`` atlas px), the mark should be at that
    pixel; the decomposition puts it at the pixel of the object layer (alpha > 0.5) whose
    predicted uv is nearest to the painted point. Returns the mean distance per object
    (None when the object never shows).

    uv [K,T,H,W,2] and alpha [K,T,H,W] predicted; truth_uv [K,T,H,W,2] (atlas px) and
    truth_masks bool [K-1,T,H,W] from the scene.
    """
    k_objects, t_count, h, w = truth_masks.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pixels = torch.stack([xs, ys], -1).reshape(-1, 2).float()
    errors: list[float | None] = []
    for k in range(k_objects):
        shown = [t for t in range(t_count) if truth_masks[k, t].any()]
        if not shown:
            errors.append(None)
            continue
        t0 = shown[0]
        inside = truth_masks[k, t0].reshape(-1)
        centre = pixels[inside].mean(0)
        p0 = torch.where(inside)[0][torch.argmin((pixels[inside] - centre).norm(dim=1))]
        painted_pred, painted_true = uv[k, t0].reshape(-1, 2)[p0], truth_uv[k, t0].reshape(-1, 2)[p0]
        dists = []
        for t in shown:
            true_d = (truth_uv[k, t].reshape(-1, 2) - painted_true).norm(dim=1)
            true_d[~truth_masks[k, t].reshape(-1)] = float("inf")
            if true_d.min() > visible_within:
                continue
            layer = (alpha[k, t] > 0.5).reshape(-1)
            if not layer.any():
                continue
            pred_d = (uv[k, t].reshape(-1, 2) - painted_pred).norm(dim=1)
            pred_d[~layer] = float("inf")
            dists.append((pixels[torch.argmin(pred_d)] - pixels[torch.argmin(true_d)]).norm().item())
        errors.append(sum(dists) / len(dists) if dists else None)
    return errors


def _metrics(task: DecompositionTask, rendered: Mapping[str, Tensor], frames: Tensor,
             lpips_weights: str | None, masks: Tensor | None, truth_uv: Tensor | None = None) -> dict[str, Any]:
    """Quality figures of the rendered video against the input frames [T,H,W,3]."""
    # Clamped like the written videos: values outside [0,1] cannot be shown.
    rec = rendered["rgb"].clamp(0, 1)
    rec_no_residual = rendered["rgb_no_residual"].clamp(0, 1)
    per_frame = psnr_per_frame(rec, frames)
    per_frame_no_residual = psnr_per_frame(rec_no_residual, frames)
    lpips = usable_lpips(lpips_weights, frames.shape[1], frames.shape[2], task.video.frames.device)
    return {
        "psnr": finite(per_frame.mean().item()),
        "psnr_no_residual": finite(per_frame_no_residual.mean().item()),
        "ssim": ssim(rec, frames),
        "lpips": None if lpips is None else lpips(rec, frames),
        "psnr_per_frame": [finite(v) for v in per_frame.tolist()],
        "psnr_no_residual_per_frame": [finite(v) for v in per_frame_no_residual.tolist()],
        "alpha_iou": None if masks is None else alpha_iou(rendered["alpha"], masks),
        "mark_tracking_error_px": None if truth_uv is None else mark_tracking_error(
            rendered["uv"], rendered["alpha"], truth_uv, masks),
    }


def _write_outputs(folder: Path, frames: Tensor, rendered: Mapping[str, Tensor],
                   atlases: list[np.ndarray], fps: float) -> None:
    """Atlas PNGs and every video of the evaluation into ``folder``."""

    def video(name: str, clip: Iterator[Tensor] | Tensor) -> None:
        write_clip(folder / name, clip, fps)

    for i, image in enumerate(atlases):
        Image.fromarray(image).save(folder / f"tex{i}.png")  # uint8 [S,S,4]: RGBA
    rec = rendered["rgb"].clamp(0, 1)
    rec_no_residual = rendered["rgb_no_residual"].clamp(0, 1)
    video("rec.mp4", rec)
    video("rec_no_residual.mp4", rec_no_residual)
    for i in range(len(atlases)):
        video(f"alpha{i}.mp4", rendered["alpha"][i][..., None].expand(*rendered["alpha"][i].shape, 3))
        video(f"residual{i}.mp4", (rendered["residual"][i] / 2).clamp(0, 1))
    overlay = _alpha_overlay(frames, rendered["alpha"])
    video("comparison.mp4", (torch.cat([torch.cat([f, r], dim=1), torch.cat([n, o], dim=1)], dim=0)
                             for f, r, n, o in zip(frames, rec, rec_no_residual, overlay)))
    original = {k: torch.from_numpy(image[..., :3]).float() / 255 for k, image in enumerate(atlases)}
    size = atlases[0].shape[0]
    board = torch.cat([checkerboard(size), torch.ones(size, size, 1)], dim=-1)
    for i in range(len(atlases)):
        video(f"checkerboard{i}.mp4", render_edit(frames, rendered, original, {i: board}, "replace"))


def _alpha_overlay(frames: Tensor, alpha: Tensor) -> Tensor:
    """Half the input [T,H,W,3] plus half of each object's colour times its alpha [K,T,H,W]."""
    tint = torch.zeros_like(frames)
    for k in range(alpha.shape[0] - 1):  # the background (last) stays untinted
        colour = torch.tensor(_OBJECT_COLOURS[k % len(_OBJECT_COLOURS)])
        tint += alpha[k][..., None] * colour
    return 0.5 * frames + 0.5 * tint


def evaluate_model(model: str | os.PathLike, frames: str | os.PathLike, flow: str | os.PathLike,
                   masks: str | os.PathLike, out_dir: str | os.PathLike,
                   cfg: EvaluationConfig = EvaluationConfig(), *, lpips_weights: str | None = None,
                   truth: str | os.PathLike | None = None, device: str = "auto") -> dict[str, Any]:
    """Evaluate a trained model (``model.pt`` with its ``log.csv``) on its video's stores:
    the ``evaluate`` rule and ``nvd evaluate``. ``truth``: a synthetic clip's ground_truth.npz."""
    task, meta = load_decomposition(model, frames, flow, masks, device)
    return evaluate(task, out_dir, fps=video_fps(frames), training=training_log(model), meta=meta,
                    atlas_size=cfg.atlas_size, lpips_weights=lpips_weights,
                    truth=load_truth(truth, frames) if truth is not None else None)
