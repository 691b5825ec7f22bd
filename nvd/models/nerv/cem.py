"""Consistent entropy minimisation (CEM): quantisation-aware fine-tuning of a trained NeRV-family
model before it is entropy coded (Boosting-NeRV's compression).

Quantised tensors. Every counted parameter tensor w (all parameters but the ones
``uncounted_parameters()`` yields: HNeRV's encoder) has a learned scale s = exp(log_s):
code = round(w / s) with a straight-through estimator (identity gradient), w_hat = code * s.
HNeRV's embeddings, computed once by the trained encoder from the video's frames and then
held as a learnable tensor e [T, C, rows, cols] (the encoder is not part of the file), have a
learned scale and offset: code = round((e - o) / s), e_hat = code * s + o. The model is run on
the quantised tensors through ``torch.func.functional_call``: the model class is untouched.

Entropy model ("consistent"): per tensor, a Gaussian with the mean and (population) std of
that tensor's own codes, std at least nvd.compression.ans.STD_FLOOR: exactly what the coder
later fits to the final integer codes. Estimated rate = sum over tensors of -log2 P(code),
P(c) = Phi((c + 0.5 - mean) / std) - Phi((c - 0.5 - mean) / std) (at least 2^-24, the
coder's smallest probability), plus the side-information and header bits (a constant), as
bpp over T * H * W. It is differentiable in the weights and the scales through the STE.

Loss = the model's reconstruction loss (losses.reconstruction_loss with the loss it was
trained with) + rate_lambda * bpp while the estimated bpp is above the point's target (no
rate term below it). rate_lambda weighs bpp against the loss's own scale: the boosted models'
loss is ~100 times HNeRV's L2, and at lambda 1 they ended a few percent above their target.
Epoch order: objective.epoch_permutation (seed, epoch); lr: a plain cosine from lr to 0
(objective.warmup_cosine_lr without warm-up) for the weights and embeddings, the same times
scale_lr / lr for the log-scales and the offset; Adan.

Initial scales: s = base * sqrt(2 pi e) / 2^b, base the tensor's std (its largest |value|
when constant, 1 when zero), so a Gaussian tensor's codes start with about b bits of entropy
each. b is ``init_bits``, or with ``init_bits`` null the one b shared by all tensors whose
estimated bpp meets the target (bisection), so a short fine-tune starts at its rate point.

Exported codes (``CEMTask.export``): scales and offsets rounded as side information
(nvd.compression.ans.side_value: 4 significant digits, then float32), codes =
round(w / s) (or round((e - o) / s)) in float32 on the CPU, int32. ``dequantise`` (float32 on
the CPU) is the one function that turns codes back into tensors, for the encoder's
evaluation and the decoder alike, so both see bit-identical tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from timm.optim import Adan
from torch import Tensor, nn

from nvd.compression.ans import PRECISION, STD_FLOOR, fit_gaussian, gaussian_bits, side_value
from nvd.eval.metrics import psnr_per_frame
from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.codec_config import CEMConfig
from nvd.models.nerv.hnerv import HNeRV
from nvd.models.nerv.losses import reconstruction_loss
from nvd.models.nerv.objective import RENDER_CHUNK, as_input, epoch_permutation, warmup_cosine_lr

EMBEDDING_NAME = "embedding"  # HNeRV's stored embeddings among the quantised tensors
MAX_CODE = 1 << 23  # |code| bound: the coder's alphabet has fewer than 2^24 symbols
_GAUSSIAN_ENTROPY = math.log2(math.sqrt(2 * math.pi * math.e))  # bits of N(0, 1) over unit bins


# ------------------------------------------------------------------ quantised tensors


@dataclass(frozen=True)
class QuantisedTensor:
    """One tensor as the file holds it: integer codes and the float32 scale and offset."""

    name: str
    codes: Tensor  # int32, CPU, the tensor's shape
    scale: float  # a float32 value
    offset: float = 0.0  # a float32 value (0 for the weights)


def dequantise(tensor: QuantisedTensor) -> Tensor:
    """codes * scale + offset: float32 on the CPU (the encoder's and the decoder's one path)."""
    # Contiguous: the same values in another memory layout can take other kernel paths.
    values = tensor.codes.contiguous().to(torch.float32) * torch.tensor(tensor.scale, dtype=torch.float32)
    return values + torch.tensor(tensor.offset, dtype=torch.float32)


def ste_round(x: Tensor) -> Tensor:
    """round(x) forward, identity gradient."""
    return x + (torch.round(x) - x).detach()


def gaussian_rate_bits(codes: Tensor) -> Tensor:
    """Estimated bits of ``codes`` (any shape; float, integer valued) under the Gaussian of
    their own mean and std (see the module docstring); differentiable."""
    flat = codes.reshape(-1)
    if flat.numel() == 0:
        return flat.sum()
    mean = flat.mean()
    std = flat.std(correction=0).clamp_min(STD_FLOOR)
    # Mirrored to the left of the mean, where the normal CDF keeps its precision.
    side = torch.where(flat >= mean, -1.0, 1.0)
    z_hi = side * (flat - mean + 0.5 * side) / std
    z_lo = side * (flat - mean - 0.5 * side) / std
    prob = torch.special.ndtr(z_hi) - torch.special.ndtr(z_lo)
    return -torch.log2(prob.clamp_min(2.0 ** -PRECISION)).sum()


def _base_spread(values: Tensor) -> float:
    """The spread initial scales follow: std, else the largest |value|, else 1."""
    std = float(values.float().std(correction=0)) if values.numel() > 1 else 0.0
    if std > 0:
        return std
    peak = float(values.abs().max()) if values.numel() else 0.0
    return peak if peak > 0 else 1.0


class Quantiser(nn.Module):
    """The learned quantisation of a model's counted tensors and (HNeRV) its embeddings.

    ``names``: the counted parameters' names, in the model's order; ``log_scale`` [N] one
    per tensor; ``embedding`` [T, C, rows, cols] with ``embedding_log_scale`` and
    ``embedding_offset`` (scalars) when the model stores embeddings.
    """

    def __init__(self, names: Sequence[str], spreads: Sequence[float], embedding: Tensor | None,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        if EMBEDDING_NAME in names:
            raise ValueError(f"cem: a model parameter is called {EMBEDDING_NAME!r}, the embeddings' name")
        self.names = list(names)
        self.register_buffer("log_spread", torch.tensor([math.log(s) for s in spreads], device=device))
        self.log_scale = nn.Parameter(self.log_spread.clone())
        self.embedding = None if embedding is None else nn.Parameter(embedding.detach().contiguous().clone())
        if embedding is not None:
            self.register_buffer("embedding_log_spread", torch.tensor(math.log(_base_spread(embedding)),
                                                                      device=device))
            self.embedding_log_scale = nn.Parameter(self.embedding_log_spread.clone())
            self.embedding_offset = nn.Parameter(embedding.detach().float().mean())

    def set_bits(self, bits: float) -> None:
        """Every scale to spread * sqrt(2 pi e) / 2^bits (see the module docstring)."""
        shift = (_GAUSSIAN_ENTROPY - bits) * math.log(2)
        with torch.no_grad():
            self.log_scale.copy_(self.log_spread + shift)
            if self.embedding is not None:
                self.embedding_log_scale.copy_(self.embedding_log_spread + shift)

    def quantise(self, weights: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """({name: quantised tensor}, {name: its codes as floats}) with straight-through
        rounding; the embeddings under EMBEDDING_NAME."""
        values, codes = {}, {}
        scales = self.log_scale.exp()
        for i, name in enumerate(self.names):
            codes[name] = ste_round(weights[name] / scales[i])
            values[name] = codes[name] * scales[i]
        if self.embedding is not None:
            scale = self.embedding_log_scale.exp()
            codes[EMBEDDING_NAME] = ste_round((self.embedding - self.embedding_offset) / scale)
            values[EMBEDDING_NAME] = codes[EMBEDDING_NAME] * scale + self.embedding_offset
        return values, codes

    @torch.no_grad()
    def export(self, weights: Mapping[str, Tensor]) -> list[QuantisedTensor]:
        """The integer codes, float32 scales and offsets (see the module docstring)."""
        out = [_export(name, weights[name], side_value(math.exp(float(self.log_scale[i]))), 0.0)
               for i, name in enumerate(self.names)]
        if self.embedding is not None:
            out.append(_export(EMBEDDING_NAME, self.embedding, side_value(math.exp(float(self.embedding_log_scale))),
                               side_value(float(self.embedding_offset))))
        return out


def _export(name: str, values: Tensor, scale: float, offset: float) -> QuantisedTensor:
    x = values.detach().to("cpu", torch.float32).contiguous()
    codes = torch.round((x - torch.tensor(offset, dtype=torch.float32)) / torch.tensor(scale, dtype=torch.float32))
    if codes.numel() and float(codes.abs().max()) >= MAX_CODE:
        raise ValueError(f"cem: tensor {name!r} has codes beyond +-2^23 (scale {scale}): the scale collapsed")
    return QuantisedTensor(name, codes.to(torch.int32), scale, offset)


def render_quantised(model: NeRVFamilyModel, t_index: Tensor, embeddings: Tensor | None = None) -> Tensor:
    """Frames ``t_index`` [B] -> RGB [B, 3, H, W]: HNeRV decodes ``embeddings`` [B, C, rows,
    cols] at the frames' times, the others draw the frames from their indices."""
    if embeddings is None:
        return model(t_index)
    return model.decode(embeddings, model.time(t_index))


class _Renderer(nn.Module):
    """``render_quantised`` as a module, so functional_call can run it on quantised tensors."""

    def __init__(self, model: NeRVFamilyModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, t_index: Tensor, embeddings: Tensor | None = None) -> Tensor:
        return render_quantised(self.model, t_index, embeddings)


class CEMTask:
    """The TrainTask of one rate point (see the module docstring).

    ``model``: a trained NeRV-family model, fine-tuned in place; ``frames`` uint8 [T, H, W, 3]
    of its video on the model's device; ``loss_name`` the loss it was trained with;
    ``side_bits`` the header and side-information bits, or a function of the quantised
    tensors that gives them (evaluated once, on the initial quantisation). Built after
    ``seed_everything(cfg.train.seed)``; deterministic, so a resumed run rebuilds it exactly.
    """

    def __init__(self, model: NeRVFamilyModel, frames: Tensor, cfg: CEMConfig, target_bpp: float,
                 loss_name: str, side_bits: float | Callable[[list[QuantisedTensor]], float] = 0.0) -> None:
        if frames.dim() != 4 or frames.dtype != torch.uint8 or \
                tuple(frames.shape[:3]) != (model.num_frames, model.height, model.width):
            raise ValueError(f"cem: expected uint8 frames [{model.num_frames}, {model.height}, {model.width}, 3], "
                             f"got {frames.dtype} {tuple(frames.shape)}")
        self.cfg, self.target, self.loss_name = cfg, float(target_bpp), loss_name
        self.model = model
        self.device = frames.device
        self.frames = frames
        self.pixels = int(frames.shape[0]) * int(frames.shape[1]) * int(frames.shape[2])
        self.indices = torch.arange(frames.shape[0], device=self.device)
        skip = {id(p) for p in model.uncounted_parameters()}
        for p in model.uncounted_parameters():
            p.requires_grad_(False)  # HNeRV's encoder: not in the file, not fine-tuned
        self.weights = {name: p for name, p in model.named_parameters() if id(p) not in skip}
        embeddings = self._embed() if isinstance(model, HNeRV) else None
        self.quant = Quantiser(list(self.weights), [_base_spread(p.detach()) for p in self.weights.values()],
                               embeddings, self.device)
        self.quant.set_bits(cfg.init_bits if cfg.init_bits is not None else 8.0)
        self.side_bits = float(side_bits(self.export()) if callable(side_bits) else side_bits)
        self.init_bits = cfg.init_bits if cfg.init_bits is not None else self._solve_bits()
        self.quant.set_bits(self.init_bits)
        self.renderer = _Renderer(model)
        # NHWC, as NeRVTask trains: oneDNN's convolutions then need no reordering (faster on CPU).
        self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.loop = cfg.loop_config(int(frames.shape[0]))
        self.steps_per_epoch = cfg.steps_per_epoch(int(frames.shape[0]))
        values = [*self.weights.values()] + ([self.quant.embedding] if self.quant.embedding is not None else [])
        quantisation = [p for p in self.quant.parameters() if all(p is not v for v in values)]
        self._lr_factors = (1.0, (cfg.scale_lr if cfg.scale_lr is not None else cfg.lr) / cfg.lr)
        self._optimizer = Adan([{"params": values}, {"params": quantisation}], lr=cfg.lr,
                               betas=tuple(cfg.betas), weight_decay=0.0)
        self._order: tuple[int, Tensor] | None = None

    @torch.no_grad()
    def _embed(self) -> Tensor:
        """The trained encoder's embeddings of every frame: [T, C, rows, cols]."""
        was_training = self.model.training
        self.model.eval()
        parts = [self.model.embed(as_input(self.frames[i:i + RENDER_CHUNK]))
                 for i in range(0, self.frames.shape[0], RENDER_CHUNK)]
        self.model.train(was_training)
        return torch.cat(parts)

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, "quant": self.quant}

    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    def rate_bpp(self, codes: Mapping[str, Tensor]) -> Tensor:
        """Estimated bpp of the quantised tensors' ``codes`` plus the side bits."""
        bits = torch.stack([gaussian_rate_bits(c) for c in codes.values()]).sum()
        return (bits + self.side_bits) / self.pixels

    @torch.no_grad()
    def estimated_bpp(self) -> float:
        """The rate estimate of the current state."""
        return float(self.rate_bpp(self.quant.quantise(self.weights)[1]))

    def _solve_bits(self, low: float = -4.0, high: float = 16.0, steps: int = 24) -> float:
        """The shared initial bits whose estimated bpp is nearest the target from below."""
        self.quant.set_bits(low)
        if self.estimated_bpp() > self.target:
            return low  # even all-zero codes exceed it: the side information alone
        for _ in range(steps):
            mid = (low + high) / 2
            self.quant.set_bits(mid)
            if self.estimated_bpp() > self.target:
                high = mid
            else:
                low = mid
        return low

    def _order_of(self, epoch: int) -> Tensor:
        if self._order is None or self._order[0] != epoch:
            perm = epoch_permutation(self.cfg.train.seed, epoch, int(self.indices.shape[0]))
            self._order = (epoch, perm.to(self.device))
        return self._order[1]

    def _render(self, values: Mapping[str, Tensor], positions: Tensor) -> Tensor:
        params = {f"model.{name}": values[name] for name in self.quant.names}
        embeddings = values[EMBEDDING_NAME][positions] if EMBEDDING_NAME in values else None
        return torch.func.functional_call(self.renderer, params, (self.indices[positions], embeddings))

    def step_loss(self, iteration: int, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        lr = warmup_cosine_lr(iteration, self.loop.iterations, self.cfg.lr, 0.0, 1.0)
        for group, factor in zip(self._optimizer.param_groups, self._lr_factors):
            group["lr"] = lr * factor
        epoch, step = divmod(iteration - 1, self.steps_per_epoch)
        size = self.cfg.batch_size
        positions = self._order_of(epoch)[step * size:(step + 1) * size]
        values, codes = self.quant.quantise(self.weights)
        bpp = self.rate_bpp(codes)
        target = as_input(self.frames[positions])
        recon, terms = reconstruction_loss(self.loss_name, self._render(values, positions), target)
        # No host sync: the hinge is a select on the device.
        rate = torch.where(bpp > self.target, self.cfg.rate_lambda * bpp, torch.zeros_like(bpp))
        parts = {"lr": lr}
        if iteration % self.loop.log_every == 0 or iteration == self.loop.iterations:
            parts.update({"bpp": float(bpp.detach()), "reconstruction": float(recon.detach())})
        return recon + rate, parts

    def export(self) -> list[QuantisedTensor]:
        """The current quantisation as the file holds it (see the module docstring)."""
        return self.quant.export(self.weights)

    @torch.no_grad()
    def render_exported(self, tensors: Sequence[QuantisedTensor]) -> Tensor:
        """Every frame drawn from the dequantised ``tensors``: float [T, H, W, 3]."""
        values = {t.name: dequantise(t).to(self.device) for t in tensors}
        was_training = self.model.training
        self.model.eval()
        try:
            out = [self._render(values, self.indices[i:i + RENDER_CHUNK]).permute(0, 2, 3, 1)
                   for i in range(0, int(self.indices.shape[0]), RENDER_CHUNK)]
        finally:
            self.model.train(was_training)
        return torch.cat(out)

    def psnr(self) -> dict[str, float]:
        """PSNR over every frame of the model on its exported (hard-quantised) tensors, and the
        entropy model's bpp of those codes (``bpp_model``, side bits included)."""
        tensors = self.export()
        pred = self.render_exported(tensors)
        value = float(psnr_per_frame(pred.clamp(0, 1), self.frames.float() / 255).mean())
        bits = sum(gaussian_bits(t.codes.numpy(), fit_gaussian(t.codes.numpy())) for t in tensors)
        return {"psnr": value, "bpp_model": (bits + self.side_bits) / self.pixels}
