"""Training objective of the layered decomposition: sampling, every loss, mapping pretraining.

``DecompositionObjective`` holds the losses for any model with the decomposition's interface
(a trained module, or HyperNVD's target run on generated tensors); ``DecompositionTask`` adds
the optimiser and plugs into the model-agnostic loop in ``nvd.train.loop``. Per iteration
it samples ``batch_size`` pixels uniformly over all frames, renders them and their right and
lower neighbours (colour gradients, local rigidity), follows forward and backward flow to
the matched points (flow losses, consistent pixels only), and adds the regularisers; the
first ``pretrain_iterations`` only pull each layer's uv toward xy * scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from nvd.core.errors import InputError
from nvd.data.loader import VideoTensors
from nvd.models.hashing_nvd import losses as L
from nvd.models.hashing_nvd.losses import LossWeights, active_weights
from nvd.models.hashing_nvd.model import DecompositionConfig, LayeredDecomposition, normalise_coords
from nvd.train.config import TrainConfig

PSNR_FRAMES = 4  # frames the training log's PSNR averages over


@dataclass(frozen=True)
class DecompositionTrainConfig:
    """Per-video decomposition training (the ``decomposition`` config section)."""

    batch_size: int = 10_000  # pixels per iteration
    pretrain_iterations: int = 100  # mapping pretraining toward uv = xy * scale
    lr_grid: float = 1e-2  # hash-grid tables
    lr_mlp: float = 1e-4  # MLP weights
    # Learning rates decay exponentially to lr * lr_decay at the last iteration; 1.0 keeps
    # them constant as the references do. Short CPU runs (the demo) settle better with a decay.
    lr_decay: float = 1.0
    residual_patch: int = 8  # side of the border patch for residual consistency (px)
    residual_times: int = 4  # other frames the border patch is compared with
    model: DecompositionConfig = field(default_factory=DecompositionConfig)
    losses: LossWeights = field(default_factory=LossWeights)
    train: TrainConfig = field(default_factory=TrainConfig)


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(hash-grid tables, everything else): they train with different learning rates."""
    grid = [p for n, p in model.named_parameters() if n.endswith("grid.table")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("grid.table")]
    return grid, rest


class DecompositionObjective:
    """Sampling, losses and rendering of one video's decomposition for a given model.

    ``model`` is a LayeredDecomposition or anything with its interface, e.g. a
    ``nvd.models.hypernvd.model.FunctionalDecomposition`` running the target on generated tensors (so
    HyperNVD trains through exactly these losses). It may be replaced between steps.
    """

    def __init__(self, video: VideoTensors, cfg: DecompositionTrainConfig, model) -> None:
        if video.flow_forward is None or video.masks is None:
            raise InputError("a layered decomposition needs the video's flow and masks stores, not frames alone")
        if model.n_layers != video.n_layers:
            raise ValueError(f"model has {model.n_layers} layers, the video needs {video.n_layers}")
        self.video = video
        self.cfg = cfg
        self.model = model
        t, h, w = video.shape
        self.resolution = max(w, h)

    @property
    def uv_scales(self) -> Tensor:
        return self.model.uv_scales

    def loss(self, iteration: int, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        """Loss of iteration ``iteration`` (1-based; mapping pretraining first) and its parts."""
        if iteration <= self.cfg.pretrain_iterations:
            loss = self.pretrain_loss(generator)
            return loss, {"pretrain": loss.item()}
        weights = active_weights(self.cfg.losses, iteration)
        terms = self.loss_terms(generator, weights)
        return L.combine(terms, weights)

    @torch.no_grad()
    def psnr(self) -> float:
        """Mean PSNR over up to PSNR_FRAMES evenly spaced frames (the training log's figure)."""
        count = self.video.shape[0]
        picks = sorted({round(i * (count - 1) / max(PSNR_FRAMES - 1, 1)) for i in range(min(PSNR_FRAMES, count))})
        values = []
        for t in picks:
            rendered = self.render_frame(t)["rgb"].clamp(0, 1)
            mse = torch.mean((rendered - self.video.frames[t]) ** 2)
            values.append(float(-10 * torch.log10(mse.clamp_min(1e-12))))
        return sum(values) / len(values)

    # -- sampling -----------------------------------------------------------------------
    def coords(self, x: Tensor, y: Tensor, t: Tensor) -> Tensor:
        tt, h, w = self.video.shape
        return normalise_coords(x, y, t, w, h, tt)

    def sample_pixels(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """n pixels uniformly over frames, x < W-1 and y < H-1 (their neighbours exist)."""
        t_, h, w = self.video.shape
        device = self.video.frames.device
        # Indices come from the task's generator (CPU or GPU) so runs and resumes repeat exactly.
        flat = torch.randint(0, t_ * (h - 1) * (w - 1), (n,), generator=generator, device=generator.device)
        flat = flat.to(device)
        t = flat // ((h - 1) * (w - 1))
        rem = flat % ((h - 1) * (w - 1))
        return rem % (w - 1), rem // (w - 1), t

    # -- losses -------------------------------------------------------------------------
    def pretrain_loss(self, generator: torch.Generator) -> Tensor:
        x, y, t = self.sample_pixels(self.cfg.batch_size, generator)
        xyt = self.coords(x.float(), y.float(), t.float())
        target = xyt[:, None, :2] * self.uv_scales[None, :, None]
        return torch.mean((self.model.uv(xyt) - target) ** 2)

    def loss_terms(self, generator: torch.Generator, weights: dict[str, float]) -> dict[str, Tensor]:
        video, model = self.video, self.model
        n = self.cfg.batch_size
        x, y, t = self.sample_pixels(n, generator)
        xf, yf, tf = x.float(), y.float(), t.float()
        # p, its right and its lower neighbour in one forward pass
        xyt = torch.cat([self.coords(xf, yf, tf), self.coords(xf + 1, yf, tf), self.coords(xf, yf + 1, tf)])
        out = model(xyt)
        p = {k: v[:n] for k, v in out.items()}
        rgb_dx, rgb_dy = out["rgb"][n : 2 * n], out["rgb"][2 * n :]
        uv_dx, uv_dy = out["uv"][n : 2 * n], out["uv"][2 * n :]
        gt = video.frames[t, y, x]
        terms: dict[str, Tensor] = {
            "rgb": L.rgb_loss(p["rgb"], gt),
            "gradient": L.gradient_loss(p["rgb"], rgb_dx, rgb_dy, gt, video.frames[t, y, x + 1], video.frames[t, y + 1, x]),
            "alpha_regularization": L.alpha_regularization_loss(p["alpha"]),
            "residual_regularization": L.residual_regularization_loss(p["residual"]),
            "rigidity": L.rigidity_loss(p["uv"], uv_dx, uv_dy, self.cfg.losses.rigidity_step_px,
                                        self.uv_scales, self.resolution),
        }
        if video.n_layers > 1:
            terms["sparsity"] = L.sparsity_loss(p["texture"][:, :-1], p["alpha"])
            if weights.get("alpha_bootstrapping", 0) > 0:
                terms["alpha_bootstrapping"] = L.alpha_bootstrapping_loss(p["log_alpha"], video.masks[:, t, y, x].T)
        if any(weights.get(k, 0) > 0 for k in ("global_rigidity_foreground", "global_rigidity_background")):
            terms.update(self.global_rigidity_terms(xyt[:n], p["uv"]))
        terms.update(self.flow_terms(x, y, t, p["uv"], p["alpha"]))
        if weights.get("residual_consistency", 0) > 0:
            terms["residual_consistency"] = self.residual_consistency_term(generator)
        return terms

    def global_rigidity_terms(self, xyt: Tensor, uv: Tensor) -> dict[str, Tensor]:
        """Rigidity on a wide stencil, separately for the foreground layers and the background."""
        step = self.cfg.losses.global_rigidity_step_px
        shift = 2.0 * step / self.resolution
        dx = xyt + xyt.new_tensor([shift, 0.0, 0.0])
        dy = xyt + xyt.new_tensor([0.0, shift, 0.0])
        uv_dx, uv_dy = self.model.uv(dx), self.model.uv(dy)
        terms = {"global_rigidity_background": L.rigidity_loss(
            uv[:, -1:], uv_dx[:, -1:], uv_dy[:, -1:], step, self.uv_scales[-1:], self.resolution)}
        if self.video.n_layers > 1:
            terms["global_rigidity_foreground"] = L.rigidity_loss(
                uv[:, :-1], uv_dx[:, :-1], uv_dy[:, :-1], step, self.uv_scales[:-1], self.resolution)
        return terms

    def flow_terms(self, x: Tensor, y: Tensor, t: Tensor, uv: Tensor, alpha: Tensor) -> dict[str, Tensor]:
        """Optical-flow and flow-alpha losses, forward (t -> t+1) and backward (t -> t-1)
        averaged; both matched points go through the network in one pass."""
        video = self.video
        frames = video.shape[0]
        n = x.shape[0]
        has_fwd, has_bwd = t < frames - 1, t > 0
        pair_fwd = torch.where(has_fwd, t, torch.zeros_like(t))
        pair_bwd = torch.where(has_bwd, t - 1, torch.zeros_like(t))
        f_fwd, f_bwd = video.flow_forward[pair_fwd, y, x], video.flow_backward[pair_bwd, y, x]
        valid_fwd = video.valid_forward[pair_fwd, y, x] & has_fwd
        valid_bwd = video.valid_backward[pair_bwd, y, x] & has_bwd
        xf, yf, tf = x.float(), y.float(), t.float()
        q = torch.cat([self.coords(xf + f_fwd[:, 0], yf + f_fwd[:, 1], tf + 1),
                       self.coords(xf + f_bwd[:, 0], yf + f_bwd[:, 1], tf - 1)])
        uv_q, alpha_q = self.model.uv(q), self.model.alphas(q)
        flow = sum(L.optical_flow_loss(uv, uv_q[s], alpha, v, self.uv_scales, self.resolution)
                   for s, v in ((slice(0, n), valid_fwd), (slice(n, None), valid_bwd)))
        flow_alpha = sum(L.flow_alpha_loss(alpha, alpha_q[s], v)
                         for s, v in ((slice(0, n), valid_fwd), (slice(n, None), valid_bwd)))
        return {"optical_flow": flow / 2, "flow_alpha": flow_alpha / 2}

    def residual_consistency_term(self, generator: torch.Generator) -> Tensor:
        """Residual at a border patch's atlas points, at its own frame vs other frames."""
        t_, h, w = self.video.shape
        device = self.video.frames.device
        side = min(self.cfg.residual_patch, h, w)
        t0, border, along, *others = torch.randint(
            0, 2**31 - 1, (3 + self.cfg.residual_times,), generator=generator, device=generator.device).tolist()
        # a patch touching one of the four borders (left, right, top, bottom)
        border %= 4
        x0 = {0: 0, 1: w - side}.get(border, along % (w - side + 1))
        y0 = {2: 0, 3: h - side}.get(border, along % (h - side + 1))
        ys, xs = torch.meshgrid(torch.arange(side, device=device), torch.arange(side, device=device), indexing="ij")
        xs, ys = (xs.flatten() + x0).float(), (ys.flatten() + y0).float()
        xyt = self.coords(xs, ys, torch.full_like(xs, float(t0 % t_)))
        uv = self.model.uv(xyt)
        res_t = self.model.residual(uv, xyt[:, 2])
        res_other = torch.stack([
            self.model.residual(uv, self.coords(xs, ys, torch.full_like(xs, float(o % t_)))[:, 2]) for o in others
        ])
        # every layer's residual at once: layers become extra channels
        return L.residual_consistency_loss(res_t.flatten(1), res_other.flatten(2))

    # -- rendering ----------------------------------------------------------------------
    @torch.no_grad()
    def render_frame(self, t: int, chunk: int = 65_536) -> dict[str, Tensor]:
        """Render every pixel of frame t: each output reshaped to [H,W,...]."""
        _, h, w = self.video.shape
        device = self.video.frames.device
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        xs, ys = xs.flatten().float(), ys.flatten().float()
        xyt = self.coords(xs, ys, torch.full_like(xs, float(t)))
        parts = [self.model(xyt[i : i + chunk]) for i in range(0, xyt.shape[0], chunk)]
        return {k: torch.cat([p[k] for p in parts]).reshape(h, w, *parts[0][k].shape[1:]) for k in parts[0]}


class DecompositionTask(DecompositionObjective):
    """The decomposition of one video as a TrainTask (see nvd.train.loop): the objective plus
    the model's parameters and their optimiser (grid tables and MLPs at their own rates)."""

    def __init__(self, video: VideoTensors, cfg: DecompositionTrainConfig,
                 model: LayeredDecomposition | None = None) -> None:
        device = video.frames.device
        model = (model or LayeredDecomposition(video.n_layers, cfg.model)).to(device)
        super().__init__(video, cfg, model)
        grid, rest = split_parameters(model)
        self._optimizer = torch.optim.Adam(
            [{"params": grid, "lr": cfg.lr_grid}, {"params": rest, "lr": cfg.lr_mlp}]
        )

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    def step_loss(self, iteration: int, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        self._set_learning_rates(iteration)
        return self.loss(iteration, generator)

    def _set_learning_rates(self, iteration: int) -> None:
        """The lr schedule is a function of the iteration alone, so resuming repeats it."""
        factor = self.cfg.lr_decay ** (iteration / self.cfg.train.iterations)
        for group, base in zip(self._optimizer.param_groups, (self.cfg.lr_grid, self.cfg.lr_mlp)):
            group["lr"] = base * factor
