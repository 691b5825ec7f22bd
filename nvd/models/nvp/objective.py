"""NVP's training task for the shared loop: random (t, pixel) batches, MSE in [-1, 1], AdamW
with a cosine schedule, and the whole video's PSNR as the logged quality.

The target is ``(rgb - 127.5) / 127.5``. Each step draws ``batch_size`` samples uniformly
(with replacement) over every pixel of every frame, as the paper does; the PSNR logged at
each log point renders every frame (not the training batch), so log.csv's figure is the
video's quality and the model kept is simply the last one.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nvd.eval.metrics import psnr
from nvd.models.nvp.config import NVPTrainConfig
from nvd.models.nvp.model import NVP


def axis_coordinate(index: Tensor, size: int) -> Tensor:
    """Integer positions along an axis of ``size`` samples -> coordinates in [0, 1]
    (linspace(0, 1, size); 0 on a one-sample axis), as NVP.pixel_coords lays them out."""
    return index.float() / (size - 1) if size > 1 else torch.zeros_like(index, dtype=torch.float32)


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


class NVPTask:
    """The TrainTask of one video: ``frames`` uint8 [T, H, W, 3] on the training device."""

    def __init__(self, frames: Tensor, cfg: NVPTrainConfig) -> None:
        if frames.dim() != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"nvp: expected uint8 frames [T, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
        self.frames, self.cfg = frames, cfg
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
        device = self.frames.device
        index = torch.randint(self._target.shape[0], (cfg.batch_size,), generator=generator, device=device)
        pixels = self.height * self.width
        t, rest = index // pixels, index % pixels
        coords = torch.stack((axis_coordinate(t, self.num_frames), axis_coordinate(rest // self.width, self.height),
                              axis_coordinate(rest % self.width, self.width)), dim=-1)
        target = (self._target[index].float() - 127.5) / 127.5
        loss = torch.mean((self.model(coords) - target) ** 2)
        return loss, {"lr": lr}

    def psnr(self) -> float:
        was_training = self.model.training
        self.model.eval()
        try:
            return psnr(render_video(self.model), self.frames.float() / 255)
        finally:
            self.model.train(was_training)
