"""NVP's training task for the shared loop: random (t, pixel) batches, MSE in [-1, 1], AdamW
with a cosine schedule, and the whole video's PSNR as the logged quality.

The target is ``(rgb - 127.5) / 127.5``. Each step draws samples uniformly (with
replacement) over every pixel of every frame, as the paper does; the PSNR logged at each log
point renders every frame (not the training batch), so log.csv's figure is the video's quality
and the model kept is simply the last one.

Footprint k (super-resolution's training, resampling.py): a pixel of the trained video is the
mean of a k-times finer video over its k x k sub-pixels (the observation model of area
downsampling), so the model is queried at the k x k sub-pixel centres of each sampled pixel and
their mean is compared with it. Rendering the finer grid then gives frames consistent with the
trained ones (their area average reproduces them) rather than an interpolation of point samples
at the pixel centres. Sub-pixel m of pixel i sits at ``i + (m + 0.5) / k - 0.5`` in pixel units
(``subpixel_positions``), where area resizing and bicubic upsampling put it. ``batch_size``
counts model queries, so a step costs the same at every footprint (batch_size // k**2 pixels).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nvd.eval.metrics import psnr
from nvd.models.nvp.config import NVPTrainConfig
from nvd.models.nvp.model import NVP


def axis_coordinate(index: Tensor, size: int) -> Tensor:
    """Positions (in samples; integer, or between samples) along an axis of ``size`` samples
    -> coordinates in [0, 1] (linspace(0, 1, size) at the samples; 0 on a one-sample axis), as
    NVP.pixel_coords lays them out."""
    return index.float() / (size - 1) if size > 1 else torch.zeros_like(index, dtype=torch.float32)


def subpixel_positions(size: int, footprint: int, device: torch.device | None = None) -> Tensor:
    """Positions, in pixel units of an axis of ``size`` pixels, of the ``footprint * size``
    sub-pixel centres: [footprint * size], sub-pixel m of pixel i at i + (m + 0.5) / k - 0.5."""
    fine = torch.arange(size * footprint, device=device, dtype=torch.float32)
    return (fine + 0.5) / footprint - 0.5


def cosine_lr(iteration: int, total: int, lr: float, lr_min: float) -> float:
    """Cosine from ``lr`` at iteration 1 to ``lr_min`` at iteration ``total``."""
    progress = (iteration - 1) / max(total - 1, 1)
    return lr_min + (lr - lr_min) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def render_video(model: NVP, height: int | None = None, width: int | None = None,
                 times: list[float] | None = None, blend_time: bool = False) -> Tensor:
    """Frames [T, H, W, 3] in [0, 1] at ``times`` (default: the model's own frames)."""
    if times is None:
        times = [model.frame_time(i) for i in range(model.num_frames)]
    return torch.stack([model.render_time(t, height, width, blend_time=blend_time) for t in times])


def render_fine(model: NVP, footprint: int) -> Tensor:
    """[T, k * H, k * W, 3] in [0, 1]: every frame of a model of an H x W video on the grid of
    sub-pixel centres of footprint k (module docstring); k = 1 is render_video."""
    device = model.planes.table.device
    rows = axis_coordinate(subpixel_positions(model.height, footprint, device), model.height)
    cols = axis_coordinate(subpixel_positions(model.width, footprint, device), model.width)
    return torch.stack([model.render_grid(model.frame_time(i), rows, cols) for i in range(model.num_frames)])


def render_observed(model: NVP, footprint: int = 1) -> Tensor:
    """[T, H, W, 3] in [0, 1]: the model's video as training observes it, each pixel the mean
    of its footprint x footprint sub-pixels (footprint 1: the pixel centres)."""
    if footprint == 1:
        return render_video(model)
    fine = render_fine(model, footprint).permute(0, 3, 1, 2)
    return F.avg_pool2d(fine, footprint).permute(0, 2, 3, 1)


class NVPTask:
    """The TrainTask of one video: ``frames`` uint8 [T, H, W, 3] on the training device, each
    pixel observed over ``footprint`` x ``footprint`` sub-pixels (module docstring)."""

    def __init__(self, frames: Tensor, cfg: NVPTrainConfig, footprint: int = 1) -> None:
        if frames.dim() != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"nvp: expected uint8 frames [T, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
        if footprint < 1:
            raise ValueError(f"nvp: footprint must be >= 1, got {footprint}")
        self.frames, self.cfg, self.footprint = frames, cfg, footprint
        self.num_frames, self.height, self.width = frames.shape[:3]
        self.model = NVP(self.num_frames, self.height, self.width, cfg.model).to(frames.device)
        # fused: one kernel over every parameter (CPU and CUDA), 5x faster than the default loop
        self._optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                            fused=True)
        self._target = frames.view(-1, 3)

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    def step_loss(self, iteration: int, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        cfg = self.cfg
        lr = cosine_lr(iteration, cfg.train.iterations, cfg.lr, cfg.lr_min)
        for group in self._optimizer.param_groups:
            group["lr"] = lr
        device, k = self.frames.device, self.footprint
        index = torch.randint(self._target.shape[0], (max(cfg.batch_size // k**2, 1),), generator=generator,
                              device=device)
        pixels = self.height * self.width
        t, rest = index // pixels, index % pixels
        rows, cols = (rest // self.width).float(), (rest % self.width).float()
        if k > 1:  # [B] -> [B, k * k]: the sub-pixel centres of each pixel
            sub = subpixel_positions(1, k, device)
            rows = (rows[:, None, None] + sub[None, :, None]).expand(-1, k, k).reshape(-1, k * k)
            cols = (cols[:, None, None] + sub[None, None, :]).expand(-1, k, k).reshape(-1, k * k)
            t = t[:, None].expand(-1, k * k)
        coords = torch.stack((axis_coordinate(t, self.num_frames), axis_coordinate(rows, self.height),
                              axis_coordinate(cols, self.width)), dim=-1).view(-1, 3)
        prediction = self.model(coords).view(index.shape[0], k * k, 3).mean(dim=1)
        target = (self._target[index].float() - 127.5) / 127.5
        loss = torch.mean((prediction - target) ** 2)
        return loss, {"lr": lr}

    def psnr(self) -> float:
        was_training = self.model.training
        self.model.eval()
        try:
            return psnr(render_observed(self.model, self.footprint), self.frames.float() / 255)
        finally:
            self.model.train(was_training)
