"""Evaluation of a trained NVP model: the quantised model's quality, its bpp, and the same
figures at every training budget (the encoding-time table).

Written into one folder (nvd.eval.outputs.publish_evaluation):

- ``metrics.json``: of the 8-bit quantised model (nvd.models.nvp.quantise): PSNR (per frame
  on [0, 1], then averaged), MS-SSIM, LPIPS (null without local weights), FLIP, bpp; the
  float model's PSNR and bpp beside them; per-frame PSNR; parameter counts; training
  iterations and time; ``budgets``: the quantised figures of each snapshot with the step
  and the training time it took; the config and code versions.
- ``rec.mp4``: the quantised model's reconstruction; ``side_by_side.mp4``: input | it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

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
from nvd.models.nvp.model import NVP
from nvd.models.nvp.objective import render_video
from nvd.models.nvp.quantise import bits_per_pixel, dequantised_model, model_bits
from nvd.models.nvp.run import load_nvp


def quantised_figures(model: NVP, frames: Tensor, lpips_weights: str | None) -> tuple[dict[str, Any], Tensor]:
    """Quality and bpp of ``model`` with 8-bit features against ``frames`` [T, H, W, 3] in
    [0, 1], and the quantised model's frames."""
    rendered = render_video(dequantised_model(model))
    bits = model_bits(model, quantised=True)
    figures = {**video_quality(rendered, frames, lpips_weights),
               "bpp": bits_per_pixel(bits, *frames.shape[:3]), "bits": bits}
    return figures, rendered


def snapshot_figures(snapshots: str | Path, frames_store: str | Path, frames: Tensor, device: str,
                     lpips_weights: str | None) -> list[dict[str, Any]]:
    """The quantised figures of every snapshot in ``snapshots``, by step."""
    rows = []
    for path in sorted(Path(snapshots).glob("step_*.pt")):
        model, saved = load_nvp(path, device, frames_store)
        figures, _ = quantised_figures(model, frames, lpips_weights)
        figures.pop("bits")
        rows.append({"step": saved.iteration, "wall_time_s": saved.wall_time_s, **figures})
    return rows


def evaluate_nvp(model_path: str | os.PathLike, frames_store: str | os.PathLike, out_dir: str | os.PathLike, *,
                 snapshots: str | os.PathLike | None = None, lpips_weights: str | None = None,
                 device: str = "auto") -> dict[str, Any]:
    """Evaluate the NVP model at ``model_path`` on its video: the ``nvp_evaluate`` rule and
    ``nvd nvp-evaluate``. ``snapshots``: the run's snapshots folder, for ``budgets``."""
    check_replaceable(out_dir)
    model, saved = load_nvp(model_path, device, frames_store)
    meta = saved.meta
    frames = frames_uint8(frames_store, model.planes.table.device).float() / 255
    if tuple(frames.shape[:3]) != (model.num_frames, model.height, model.width):
        raise ValueError("nvp: the model's video size differs from its frames store")  # frames_identity checks it
    float_rendered = render_video(model)
    figures, rendered = quantised_figures(model, frames, lpips_weights)
    iterations, seconds = training_summary(training_log(model_path))
    float_bits = model_bits(model, quantised=False)
    metrics = {
        **figures,
        "psnr_float": finite(psnr_per_frame(float_rendered, frames).mean().item()),
        "bpp_float": bits_per_pixel(float_bits, *frames.shape[:3]),
        "psnr_per_frame": [finite(v) for v in psnr_per_frame(rendered, frames).tolist()],
        "parameters": NVP.parameter_groups_for(model.num_frames, model.height, model.width, model.cfg),
        "iterations": iterations,
        "train_time_s": seconds,
        "budgets": [] if snapshots is None else snapshot_figures(snapshots, frames_store, frames, device, lpips_weights),
        "config": meta["config"],
        "code_version": {"training": meta["code_version"], "evaluation": code_version("nvp_evaluation")},
    }
    fps = video_fps(frames_store)

    def outputs(folder: Path) -> None:
        write_clip(folder / "rec.mp4", rendered, fps)
        write_clip(folder / "side_by_side.mp4", (torch.cat((f, r), dim=1) for f, r in zip(frames, rendered)), fps)

    publish_evaluation(out_dir, metrics, outputs)
    return metrics


def nvp_evaluate_job(inputs: Mapping[str, Any], out_dir: str | os.PathLike, lpips_weights: str | None,
                     device: str) -> dict[str, Any]:
    """The ``nvp_evaluate`` job: inputs ``model``, ``frames`` and ``snapshots``."""
    return evaluate_nvp(inputs["model"], inputs["frames"], out_dir, snapshots=inputs.get("snapshots"),
                        lpips_weights=lpips_weights, device=device)

