"""HyperNVD multi-video training: one hypernetwork, every training video's decomposition losses.

Per iteration ``HyperTask.step_loss`` visits the training videos in turn: it generates the
target's tensors from the video's embedding, runs the decomposition objective of that video
on them (the same sampling and losses as a per-video decomposition, mapping pretraining
first) and backpropagates ``loss / N`` at once, so only one video's graph is alive at a time
(the reference keeps all of them until the step). ``nvd.train.loop.train`` then takes one Adam
step on the hypernetwork.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from nvd.core.errors import InputError
from nvd.data.datasets import check_split
from nvd.data.loader import VideoTensors
from nvd.models.hashing_nvd.losses import LossWeights
from nvd.models.hashing_nvd.model import DecompositionConfig, LayeredDecomposition
from nvd.models.hashing_nvd.objective import DecompositionObjective, DecompositionTrainConfig
from nvd.models.hypernvd.model import FunctionalDecomposition, HyperNetConfig, HyperNetwork
from nvd.nn.encodings import HashGridConfig
from nvd.train.config import TrainConfig


def hypernvd_target() -> DecompositionConfig:
    """HyperNVD's target decomposition: no MLP biases, grids up to 2048 cells, uv scale 0.9."""
    grid = HashGridConfig(per_level_scale=None, finest_resolution=2048)
    return DecompositionConfig(bias=False, uv_scale_background=0.9, texture_grid=grid, residual_grid=grid,
                               alpha_grid=grid)


@dataclass(frozen=True)
class HyperTrainConfig:
    """HyperNVD training across videos (``hypernet`` section); paper settings by default."""

    dataset: str = ""  # the dataset both splits name videos of
    train_videos: tuple[str, ...] = ()
    heldout_videos: tuple[str, ...] = ()  # finetuned and compared with training from scratch
    lr: float = 1e-4  # Adam on the hypernetwork
    lr_decay: float = 1.0  # exponential decay to lr * lr_decay at the last iteration
    batch_size: int = DecompositionTrainConfig.batch_size  # pixels per video per iteration
    pretrain_iterations: int = 50  # mapping pretraining passes
    residual_patch: int = DecompositionTrainConfig.residual_patch
    residual_times: int = DecompositionTrainConfig.residual_times
    model: DecompositionConfig = field(default_factory=hypernvd_target)  # the target network
    network: HyperNetConfig = field(default_factory=HyperNetConfig)
    losses: LossWeights = field(default_factory=LossWeights)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(iterations=10_000, checkpoint_every=1_000,
                                                                   log_every=100))

    def __post_init__(self) -> None:
        # without the config's datasets at hand (a job), their videos are not checked here
        check_split(self.dataset, self.train_videos, self.heldout_videos)

    def objective(self) -> DecompositionTrainConfig:
        """The per-video objective's settings (batch, schedule, losses, target model)."""
        return DecompositionTrainConfig(
            batch_size=self.batch_size, pretrain_iterations=self.pretrain_iterations,
            residual_patch=self.residual_patch, residual_times=self.residual_times,
            model=self.model, losses=self.losses, train=self.train,
        )


class HyperTask:
    """The hypernetwork over a set of training videos, as a TrainTask (see nvd.train.loop).

    videos and embeddings are keyed by video name; every video must have the target's
    number of layers and every embedding the same dimension.
    """

    def __init__(self, videos: Mapping[str, VideoTensors], embeddings: Mapping[str, Tensor],
                 cfg: HyperTrainConfig, hypernet: HyperNetwork | None = None) -> None:
        if not videos:
            raise InputError("HyperNVD training needs at least one video")
        if set(videos) != set(embeddings):
            raise InputError(f"videos {sorted(videos)} and embeddings {sorted(embeddings)} differ")
        layers = {name: v.n_layers for name, v in videos.items()}
        if len(set(layers.values())) != 1:
            raise InputError(f"the training videos must have the same number of layers (objects + 1), got {layers}")
        dims = {name: e.shape for name, e in embeddings.items()}
        if len({tuple(s) for s in dims.values()}) != 1 or len(next(iter(dims.values()))) != 1:
            raise InputError(f"the embeddings must be vectors of one dimension, got shapes {dims}")
        self.cfg = cfg
        device = next(iter(videos.values())).frames.device
        n_layers = next(iter(layers.values()))
        # The template the generated tensors run in; its own parameters never train.
        self.target = LayeredDecomposition(n_layers, cfg.model).to(device).requires_grad_(False)
        dim = next(iter(dims.values()))[0]
        self.hypernet = (hypernet or HyperNetwork(self.target, dim, cfg.network)).to(device)
        if self.hypernet.embedding_dim != dim:
            raise InputError(f"the hypernetwork takes {self.hypernet.embedding_dim}-d embeddings, these are {dim}-d")
        self.embeddings = {name: e.to(device=device, dtype=torch.float32) for name, e in embeddings.items()}
        objective_cfg = cfg.objective()
        self.objectives = {name: DecompositionObjective(video, objective_cfg, self.target)
                           for name, video in videos.items()}
        self._optimizer = torch.optim.Adam(self.hypernet.parameters(), lr=cfg.lr)

    def generated(self, name: str) -> FunctionalDecomposition:
        """The target run on the tensors generated from video ``name``'s embedding."""
        return FunctionalDecomposition(self.target, self.hypernet(self.embeddings[name]))

    # -- TrainTask protocol -------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"hypernet": self.hypernet}

    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    def step_loss(self, iteration: int, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        self._optimizer.param_groups[0]["lr"] = self.cfg.lr * self.cfg.lr_decay ** (iteration / self.cfg.train.iterations)
        n = len(self.objectives)
        total = torch.zeros((), device=self.target.uv_scales.device)
        parts: dict[str, float] = {}
        for name, objective in self.objectives.items():
            objective.model = self.generated(name)
            loss, video_parts = objective.loss(iteration, generator)
            (loss / n).backward()  # frees this video's graph before the next is built
            total += loss.detach() / n
            for key, value in video_parts.items():
                parts[key] = parts.get(key, 0.0) + value / n
            objective.model = self.target  # drop the generated tensors (and their graph)
        return total, parts

    @torch.no_grad()
    def psnr(self) -> dict[str, float]:
        """Mean PSNR of the generated decompositions, and each video's as ``psnr_<video>``."""
        per_video = {}
        for name, objective in self.objectives.items():
            objective.model = self.generated(name)
            per_video[f"psnr_{name}"] = objective.psnr()
            objective.model = self.target
        return {"psnr": sum(per_video.values()) / len(per_video), **per_video}


def finetune_defaults() -> DecompositionTrainConfig:
    """HyperNVD's finetuning schedule (``finetune`` section defaults): 80,000 iterations of
    150,000 pixels, alpha bootstrapping only until iteration 500, no mapping pretraining (the
    generated mapping is trained already)."""
    base = DecompositionTrainConfig()
    return replace(base, batch_size=150_000, pretrain_iterations=0,
                   losses=replace(base.losses, alpha_bootstrapping_until=500),
                   train=replace(base.train, iterations=80_000))


@dataclass(frozen=True)
class ScratchConfig:
    """The from-scratch baseline's warm-ups (``scratch`` section). The baseline trains with
    the ``finetune`` settings except these: a random initialisation needs the per-video
    decomposition's mapping pretraining, alpha bootstrapping and global rigidity phases,
    which a generated initialisation does without. Defaults: Hashing-NVD's.

    The foreground global rigidity weight is the baseline's own too: a generated object
    mapping may finetune faster under a stronger pull toward a rigid mapping than a random
    start tolerates (the demo's figures are in config.yaml)."""

    pretrain_iterations: int = DecompositionTrainConfig.pretrain_iterations
    alpha_bootstrapping_until: int = LossWeights.alpha_bootstrapping_until
    global_rigidity_until: int = LossWeights.global_rigidity_until
    global_rigidity_foreground: float = LossWeights.global_rigidity_foreground

    def apply(self, cfg: DecompositionTrainConfig) -> DecompositionTrainConfig:
        """``cfg`` (the finetune settings) with the baseline's warm-ups."""
        losses = replace(cfg.losses, alpha_bootstrapping_until=self.alpha_bootstrapping_until,
                         global_rigidity_until=self.global_rigidity_until,
                         global_rigidity_foreground=self.global_rigidity_foreground)
        return replace(cfg, pretrain_iterations=self.pretrain_iterations, losses=losses)
