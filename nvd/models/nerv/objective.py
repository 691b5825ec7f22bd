"""The NeRV family's training task for the shared loop: epochs over the frames in a fresh
shuffled order, Adan with warm-up and cosine, and PSNR / MS-SSIM over every training frame as
the logged quality.

Order. Epoch e (0-based) visits the training frames in ``epoch_permutation(seed, e, n)``: a
permutation drawn from a CPU generator seeded from (seed, e) alone (NumPy's SeedSequence
mixes the pair), so it is reproducible, differs between epochs and needs no state of its own:
a resumed run recomputes exactly the order it was in. (The loop's sampling generator is
therefore not drawn from.) Iteration i of the loop (1-based) is step (i - 1) % s of epoch
(i - 1) // s, s = steps_per_epoch; its batch is the permutation's entries s_i * B ..
s_i * B + B - 1 (the last batch of an epoch may be shorter).

Learning rate (``warmup_cosine_lr``): with progress p = (i - 1) / I over the run's I
iterations, lr * (w0 + (1 - w0) * p / warmup) while p < warmup, then
lr * 0.5 * (1 + cos(pi * (p - warmup) / (1 - warmup))): from w0 * lr at the first step up to
lr at p = warmup, down towards 0 at the end (HNeRV's "cosine_0.1_1_0.1" with w0 = 0.1).

Tasks. ``train_frames`` restricts training to some frame indices (interpolation: the even
frames); the task then holds only those frames, so nothing else can reach the loss or the
encoder. ``mask`` (bool [H, W], True = hole) trains on the frames with the holes set to 0,
the loss only outside them (losses.py); the logged PSNR compares the full frames with the
original frames. The model is built for the whole video (``num_frames`` = T), so frame i's
time is (i + 1) / T whatever is trained.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from timm.optim import Adan
from torch import Tensor, nn

from nvd.eval.metrics import ms_ssim_per_frame, ms_ssim_win_size, psnr_per_frame
from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.factory import build_model
from nvd.models.nerv.hnerv import HNeRV
from nvd.models.nerv.losses import reconstruction_loss
from nvd.models.nerv.size import counted_parameters
from nvd.models.nerv.training import NeRVTrainConfig

RENDER_CHUNK = 4  # frames per forward pass when rendering for the logs and the evaluation


def warmup_cosine_lr(iteration: int, total: int, lr: float, warmup: float, warmup_start: float) -> float:
    """The learning rate of iteration ``iteration`` (1-based) of ``total``: see the module
    docstring (warm-up from warmup_start * lr, cosine after the warmup fraction)."""
    progress = (iteration - 1) / total
    if progress < warmup:
        return lr * (warmup_start + (1 - warmup_start) * progress / warmup)
    return lr * 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup)))


def epoch_permutation(seed: int, epoch: int, n: int) -> Tensor:
    """The order (int64 [n], CPU) in which epoch ``epoch`` visits n frames; a function of
    (seed, epoch) only."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)]).generate_state(2, np.uint64)
    generator = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
    return torch.randperm(n, generator=generator)


def needs_frames(model: nn.Module) -> bool:
    """Whether the model embeds the frames it draws (HNeRV) rather than only their time."""
    return isinstance(model, HNeRV)


def as_input(frames: Tensor) -> Tensor:
    """uint8 [B, H, W, 3] -> float [B, 3, H, W] in [0, 1] (the models' layout)."""
    return frames.permute(0, 3, 1, 2).float() / 255


@torch.no_grad()
def render_frames(model: NeRVFamilyModel, t_index: Tensor, frames: Tensor | None = None,
                  chunk: int = RENDER_CHUNK) -> Tensor:
    """Frames ``t_index`` [N] drawn by ``model``: float [N, H, W, 3] in [0, 1]. HNeRV embeds
    ``frames`` (uint8 [N, H, W, 3], what it was trained on); the others ignore it."""
    out = []
    for start in range(0, t_index.shape[0], chunk):
        part = None if frames is None or not needs_frames(model) else as_input(frames[start:start + chunk])
        out.append(model(t_index[start:start + chunk], part).permute(0, 2, 3, 1))
    return torch.cat(out)


def quality_figures(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """{"psnr": [N], "ms_ssim": [N] (absent when the frames are too small)} per frame."""
    figures = {"psnr": psnr_per_frame(pred, target)}
    try:
        ms_ssim_win_size(*pred.shape[1:3])
    except ValueError:
        return figures
    figures["ms_ssim"] = ms_ssim_per_frame(pred.clamp(0, 1), target)
    return figures


def apply_holes(frames: Tensor, mask: Tensor | None) -> Tensor:
    """uint8 [T, H, W, 3] with the pixels where ``mask`` (bool [H, W]) is True set to 0."""
    if mask is None:
        return frames
    return frames * (~mask.to(frames.device))[None, :, :, None].to(frames.dtype)


class NeRVTask:
    """The TrainTask of one video: ``frames`` uint8 [T, H, W, 3] on the training device.

    Built after ``seed_everything(cfg.train.seed)`` (the weights' initialisation). The model
    is solved for cfg.model_size at the frame size (build_model). See the module docstring
    for ``train_frames`` and ``mask``.
    """

    def __init__(self, frames: Tensor, cfg: NeRVTrainConfig, *, train_frames: list[int] | None = None,
                 mask: Tensor | None = None) -> None:
        if frames.dim() != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"nerv: expected uint8 frames [T, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
        self.cfg = cfg
        self.num_frames, self.height, self.width = (int(n) for n in frames.shape[:3])
        device = frames.device
        indices = list(range(self.num_frames)) if train_frames is None else [int(i) for i in train_frames]
        if not indices or len(set(indices)) != len(indices) or not all(0 <= i < self.num_frames for i in indices):
            raise ValueError(f"nerv: train_frames must be distinct indices in 0..{self.num_frames - 1}, "
                             f"got {train_frames}")
        if mask is not None and tuple(mask.shape) != (self.height, self.width):
            raise ValueError(f"nerv: the mask is {tuple(mask.shape)}, the frames {(self.height, self.width)}")
        self.indices = torch.tensor(indices, dtype=torch.long, device=device)
        self.truth = frames[self.indices]  # what the logged figures compare with
        self.mask = None if mask is None else mask.to(device=device, dtype=torch.bool)
        self.inputs = apply_holes(self.truth, self.mask)  # what the loss and the encoder see
        self.keep = None if mask is None else (~self.mask).float()[None, None]
        self.model = build_model(cfg.model_config(), self.height, self.width, self.num_frames, device)
        # NHWC weights let oneDNN run every convolution without reordering its input and output
        # (the frames arrive NHWC already, as_input): 1.3-1.4x faster steps on the CPU for
        # NeRV, NeRV-Boost and E-NeRV-Boost, the same for the others (docs/lab/nerv-demo.md).
        self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.loop = cfg.loop_config(len(indices))
        self.steps_per_epoch = cfg.steps_per_epoch(len(indices))
        self.loss_name = cfg.loss_name
        self._optimizer = Adan(self.model.parameters(), lr=cfg.learning_rate, betas=tuple(cfg.betas),
                               weight_decay=cfg.weight_decay)
        self._order: tuple[int, Tensor] | None = None  # (epoch, its permutation on the device)

    @property
    def parameter_count(self) -> int:
        """Counted parameters (nvd.models.nerv.size): the model size."""
        return counted_parameters(self.model, self.num_frames)

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    def learning_rate(self, iteration: int) -> float:
        cfg = self.cfg
        return warmup_cosine_lr(iteration, self.loop.iterations, cfg.learning_rate, cfg.warmup, cfg.warmup_start)

    def order(self, epoch: int) -> Tensor:
        """Positions in the training frames, in epoch ``epoch``'s order (on the device)."""
        if self._order is None or self._order[0] != epoch:
            perm = epoch_permutation(self.cfg.train.seed, epoch, self.indices.shape[0])
            self._order = (epoch, perm.to(self.indices.device))
        return self._order[1]

    def batch(self, iteration: int) -> Tensor:
        """Positions in the training frames of iteration ``iteration``'s batch."""
        epoch, step = divmod(iteration - 1, self.steps_per_epoch)
        size = self.cfg.batch_size
        return self.order(epoch)[step * size:(step + 1) * size]

    def step_loss(self, iteration: int, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        lr = self.learning_rate(iteration)
        for group in self._optimizer.param_groups:
            group["lr"] = lr
        positions = self.batch(iteration)
        target = as_input(self.inputs[positions])
        pred = self.model(self.indices[positions], target)
        loss, terms = reconstruction_loss(self.loss_name, pred, target, self.keep)
        parts = {"lr": lr}
        if iteration % self.loop.log_every == 0 or iteration == self.loop.iterations:
            # The terms cost a host sync each: read only where the loop writes a log row.
            parts.update({name: float(value.detach()) for name, value in terms.items()})
        return loss, parts

    def render(self) -> Tensor:
        """The training frames as the model draws them: float [N, H, W, 3] in [0, 1]."""
        return render_frames(self.model, self.indices, self.inputs)

    def psnr(self) -> dict[str, float]:
        """Mean PSNR (and MS-SSIM when the frames allow it) over every training frame, against
        the original frames (holes included)."""
        was_training = self.model.training
        self.model.eval()
        try:
            sums: dict[str, float] = {}
            for start in range(0, self.indices.shape[0], RENDER_CHUNK):
                part = slice(start, start + RENDER_CHUNK)
                pred = render_frames(self.model, self.indices[part], self.inputs[part])
                for name, values in quality_figures(pred, self.truth[part].float() / 255).items():
                    sums[name] = sums.get(name, 0.0) + float(values.sum())
            return {name: total / self.indices.shape[0] for name, total in sums.items()}
        finally:
            self.model.train(was_training)
