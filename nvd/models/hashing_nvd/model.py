"""Layered neural video decomposition (Hashing-NVD): the model.

A video is split into K layers, the K-1 foreground objects first and the background last.
Per layer i:

- mapping      (x,y,t) -> (u,v)          raw coordinates, MLP, tanh: atlas coords in (-1,1)
- texture      (u,v)   -> rgb            2-D hash grid + MLP, (tanh+1)/2
- residual     (u,v,t) -> 3 (positive)   3-D hash grid + MLP, softplus; uv detached, so the
                                         multiplicative residual never drags the mapping
and one alpha network (x,y,t) -> K-1 on a 3-D hash grid, made hierarchical: object i takes
a_i of what the objects in front of it left, the background takes the rest.

Rendering: rgb = sum_i alpha_i * texture_i(uv_i) * residual_i(uv_i, t).

Coordinates follow the references: x_n = x / (rez/2) - 1, y_n = y / (rez/2) - 1 with
rez = max(W, H), t_n = f / (T/2) - 1 (``normalise_coords``). The same class serves the
per-video decomposition and HyperNVD's target network (``bias=False`` there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nvd.nn.encodings import HashGridConfig
from nvd.nn.fields import GridField, mlp

ALPHA_CLAMP = 1e-5


@dataclass(frozen=True)
class DecompositionConfig:
    """Architecture of the layered decomposition (``decomposition.model`` section)."""

    mapping_hidden: int = 256
    mapping_layers: int = 4  # linear layers, output layer included
    texture_hidden: int = 64
    texture_layers: int = 4
    residual_hidden: int = 64
    residual_layers: int = 4
    alpha_hidden: int = 64
    alpha_layers: int = 4
    bias: bool = True  # HyperNVD's target network has no biases
    uv_scale_foreground: float = 0.9  # mapping initialised to uv = xy * scale
    uv_scale_background: float = 0.6
    texture_grid: HashGridConfig = field(default_factory=HashGridConfig)
    residual_grid: HashGridConfig = field(default_factory=HashGridConfig)
    alpha_grid: HashGridConfig = field(default_factory=HashGridConfig)


class LayeredDecomposition(nn.Module):
    """K-layer decomposition of one video (K-1 foreground objects, background last)."""

    def __init__(self, n_layers: int, cfg: DecompositionConfig = DecompositionConfig()):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1 (background only), got {n_layers}")
        self.n_layers = n_layers
        self.cfg = cfg
        self.mappings = nn.ModuleList(
            mlp(3, cfg.mapping_hidden, cfg.mapping_layers, 2, cfg.bias) for _ in range(n_layers)
        )
        self.textures = nn.ModuleList(
            GridField(2, cfg.texture_grid, cfg.texture_hidden, cfg.texture_layers, 3, cfg.bias)
            for _ in range(n_layers)
        )
        self.residuals = nn.ModuleList(
            GridField(3, cfg.residual_grid, cfg.residual_hidden, cfg.residual_layers, 3, cfg.bias)
            for _ in range(n_layers)
        )
        self.alpha = (
            GridField(3, cfg.alpha_grid, cfg.alpha_hidden, cfg.alpha_layers, n_layers - 1, cfg.bias)
            if n_layers > 1
            else None
        )
        scales = [cfg.uv_scale_foreground] * (n_layers - 1) + [cfg.uv_scale_background]
        self.register_buffer("uv_scales", torch.tensor(scales), persistent=False)

    def uv(self, xyt: Tensor) -> Tensor:
        """Atlas coordinates of every layer: xyt [N,3] in [-1,1] -> [N,K,2] in (-1,1)."""
        return torch.stack([torch.tanh(m(xyt)) for m in self.mappings], dim=1)

    def texture(self, uv: Tensor) -> Tensor:
        """Texture colour of every layer at its uv: [N,K,2] -> [N,K,3] in [0,1]."""
        return torch.stack([(torch.tanh(f(uv[:, i])) + 1) * 0.5 for i, f in enumerate(self.textures)], dim=1)

    def residual(self, uv: Tensor, t: Tensor) -> Tensor:
        """Multiplicative residual of every layer: uv [N,K,2] (detached here), t [N] -> [N,K,3] > 0."""
        uv = uv.detach()
        return torch.stack(
            [nn.functional.softplus(f(torch.cat([uv[:, i], t[:, None]], dim=1))) for i, f in enumerate(self.residuals)],
            dim=1,
        )

    def alpha_logits(self, xyt: Tensor) -> Tensor:
        """Per-object logits z: xyt [N,3] -> [N,K-1], with a_i = sigmoid(z_i) = (tanh(z_i/2)+1)/2."""
        return 2.0 * self.alpha(xyt)

    def alphas(self, xyt: Tensor) -> Tensor:
        """Hierarchical layer weights: xyt [N,3] -> [N,K], each row sums to 1."""
        if self.alpha is None:
            return xyt.new_ones(xyt.shape[0], 1)
        return hierarchical_alpha(self.alpha_logits(xyt))

    def forward(self, xyt: Tensor) -> dict[str, Tensor]:
        """Render points xyt [N,3] (normalised). Returns uv [N,K,2], texture [N,K,3],
        residual [N,K,3], alpha [N,K], log_alpha [N,K] (see hierarchical_log_alpha),
        rgb [N,3] and rgb_no_residual [N,3]."""
        uv = self.uv(xyt)
        texture = self.texture(uv)
        residual = self.residual(uv, xyt[:, 2])
        if self.alpha is None:
            alpha, log_alpha = xyt.new_ones(xyt.shape[0], 1), xyt.new_zeros(xyt.shape[0], 1)
        else:
            logits = self.alpha_logits(xyt)
            alpha, log_alpha = hierarchical_alpha(logits), hierarchical_log_alpha(logits)
        weighted = alpha[..., None] * texture
        return {
            "uv": uv,
            "texture": texture,
            "residual": residual,
            "alpha": alpha,
            "log_alpha": log_alpha,
            "rgb": (weighted * residual).sum(dim=1),
            "rgb_no_residual": weighted.sum(dim=1),
        }


def hierarchical_alpha(logits: Tensor) -> Tensor:
    """Object logits [N,K-1] -> layer weights [N,K] clamped to [ALPHA_CLAMP, 1-ALPHA_CLAMP].

    Object i takes a_i = sigmoid(z_i) of what the objects in front of it left visible, the
    background takes the rest: alpha_i = a_i * prod_{j<i} (1 - a_j).
    """
    a = torch.sigmoid(logits).clamp(ALPHA_CLAMP, 1 - ALPHA_CLAMP)
    # remaining[:, i] = prod_{j<i} (1 - a_j): what the objects in front leave visible
    remaining = torch.cumprod(torch.cat([torch.ones_like(a[:, :1]), 1 - a], dim=1), dim=1)
    alpha = torch.cat([a * remaining[:, :-1], remaining[:, -1:]], dim=1)
    return alpha.clamp(ALPHA_CLAMP, 1 - ALPHA_CLAMP)


def hierarchical_log_alpha(logits: Tensor) -> Tensor:
    """Object logits [N,K-1] -> log of the (unclamped) layer weights [N,K].

    Computed with logsigmoid, so it stays finite and keeps its gradient however saturated
    the logits are, unlike the log of the clamped ``hierarchical_alpha``: a loss on it can
    still turn a layer that is confidently wrong (e.g. one HyperNVD generated for another
    video's object) around.
    """
    log_a, log_not_a = F.logsigmoid(logits), F.logsigmoid(-logits)
    # prefix[:, i] = sum_{j<i} log(1 - a_j); its last column is the background's log weight
    prefix = torch.cat([torch.zeros_like(logits[:, :1]), torch.cumsum(log_not_a, dim=1)], dim=1)
    return torch.cat([log_a + prefix[:, :-1], prefix[:, -1:]], dim=1)


def normalise_coords(x: Tensor, y: Tensor, t: Tensor, width: int, height: int, frames: int) -> Tensor:
    """Pixel coordinates (x, y, frame index), each [N], -> normalised xyt [N,3].

    x_n = x / (rez/2) - 1 and y_n = y / (rez/2) - 1 with rez = max(W, H) (so the shorter side
    spans less than [-1,1] and pixels stay square), t_n = t / (T/2) - 1.
    """
    half = max(width, height) / 2.0
    return torch.stack([x / half - 1.0, y / half - 1.0, t / (frames / 2.0) - 1.0], dim=1)
