"""E-NeRV and E-NeRV-Boost: spatial and temporal context disentangled in the stem.

Stem (both): the grid cells' coordinates (r / rows, c / cols) are encoded (positional
encoding of each, concatenated: [P, 4L], P = rows * cols) -> Linear 4L -> D -> act: spatial
tokens [P, D] -> transformer block 1 (1 head) -> times the temporal token
t_emb = MLP(PE(t)) (2L -> 2D -> D, act) broadcast over the tokens -> transformer block 2
(8 heads) -> [B, D, rows, cols] -> a 1x1 projection D -> w0 with act (always present, so the
parameter count grows smoothly with channel_width; the public code skips it when D == w0).

Decoder, E-NeRV: before every unit the features are instance-normalised (no affine) and
modulated AdaIN-style by the time, x * gamma + beta, with (gamma, beta) = act(Linear(m)) from
a temporal branch m = MLP(PE(t)) (2L -> t_hidden -> t_hidden, act). Stage 0 uses E-NeRV's
two-conv block (``ConvUpBlock``), later stages NeRV blocks; widths ``blocks.nerv_widths`` with
expansion 3; conv 1x1 head; tanh(x) * 0.5 + 0.5.

E-NeRV-Boost drops the normalisation and the AdaIN modulation and instead follows every block
by a TAT residual block conditioned on the time embedding of boost.py (its TimeEmbedding is
exactly E-NeRV-Boost's temporal branch 2L -> 2 * ch_t -> ch_t, sine).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.blocks import activation, mlp, nerv_widths, rgb_output
from nvd.models.nerv.boost import BoostUnit, TimeEmbedding, decoder_stages, run_units
from nvd.models.nerv.config import ENeRVConfig
from nvd.models.nerv.encoding import PositionalEncoding
from nvd.models.nerv.transformer import TransformerBlock


class ConvUpBlock(nn.Module):
    """E-NeRV's first-stage block: [B, c_in, h, w] -> [B, c_out, h*s, w*s].

    Widening (c_in <= c_out): upsample to max(c_in // 4, 1) channels (conv k -> PixelShuffle),
    then conv 3x3 to c_out; narrowing: conv 3x3 to c_out, then upsample. Then act.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, act: str) -> None:
        super().__init__()
        if c_in <= c_out:
            mid = max(c_in // 4, 1)
            up = nn.Sequential(nn.Conv2d(c_in, mid * stride * stride, kernel, padding=kernel // 2),
                               nn.PixelShuffle(stride))
            self.body = nn.Sequential(up, nn.Conv2d(mid, c_out, 3, padding=1))
        else:
            up = nn.Sequential(nn.Conv2d(c_out, c_out * stride * stride, kernel, padding=kernel // 2),
                               nn.PixelShuffle(stride))
            self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), up)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x))


def instance_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Each channel of each image [B, C, H, W] to zero mean and unit variance over H, W (biased
    variance, as nn.InstanceNorm2d without affine). Written out: torch's CPU kernel returns a
    wrong input gradient when its input is NCHW and the gradient arriving channels-last (torch
    2.14), which is what a channels-last convolution after it sends back."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)


class AdaINModulation(nn.Module):
    """(x [B, C, H, W], m [B, t_hidden]) -> InstanceNorm(x) * gamma + beta, gamma/beta [B, C]."""

    def __init__(self, channels: int, t_hidden: int, act: str) -> None:
        super().__init__()
        self.to_gamma_beta = mlp([t_hidden, 2 * channels], act)

    def forward(self, x: Tensor, m: Tensor) -> Tensor:
        gamma, beta = self.to_gamma_beta(m)[:, :, None, None].chunk(2, dim=1)
        return instance_norm(x) * gamma + beta


class ENeRV(NeRVFamilyModel):
    """E-NeRV / E-NeRV-Boost (cfg.boost) for height x width frames; see the module docstring."""

    def __init__(self, cfg: ENeRVConfig, height: int, width: int, num_frames: int) -> None:
        super().__init__(cfg, height, width, num_frames)
        lay, dim = self.layout, cfg.block_dim
        self.stem_width = max(round(cfg.channel_width), 1)
        self.widths = nerv_widths(cfg.channel_width, lay.strides, cfg.expansion, cfg.reduce,
                                  cfg.lower_width)
        self.encoding = PositionalEncoding(cfg.pe_base, cfg.pe_levels)
        enc = self.encoding.out_dim
        rows, cols = lay.grid
        coords = torch.stack(torch.meshgrid(torch.arange(rows) / rows, torch.arange(cols) / cols,
                                            indexing="ij"), dim=-1).view(rows * cols, 2)
        self.register_buffer("coords", coords, persistent=False)  # [P, 2] (row, col)
        self.stem_t = mlp([enc, 2 * dim, dim], cfg.act)
        self.stem_xy = mlp([2 * enc, dim], cfg.act)
        mlp_dim = max(int(dim * cfg.mlp_ratio), 1)
        self.trans1 = TransformerBlock(dim, cfg.heads[0], cfg.dim_head, mlp_dim)
        self.trans2 = TransformerBlock(dim, cfg.heads[1], cfg.dim_head, mlp_dim)
        self.to_conv = mlp([dim, self.stem_width], cfg.act)

        boost_cfg = cfg.boost_cfg if cfg.boost else None
        first = nn.ModuleList()  # stage 0: E-NeRV's two-conv block
        c_in = self.stem_width
        for j in range(lay.blocks[0]):
            up = ConvUpBlock(c_in, self.widths[0], lay.strides[0] if j == 0 else 1,
                             lay.kernels[0], cfg.act)
            first.append(BoostUnit(up, self.widths[0], boost_cfg) if boost_cfg is not None else up)
            c_in = self.widths[0]
        rest, c_out = decoder_stages(c_in, self.widths[1:], lay.strides[1:], lay.blocks[1:],
                                     lay.kernels[1:], cfg.act, boost_cfg)
        self.units = nn.ModuleList([*first, *rest])
        if cfg.boost:
            self.time_embedding = TimeEmbedding(cfg.boost_cfg)
        else:
            self.t_branch = mlp([enc, cfg.t_hidden, cfg.t_hidden], cfg.act)
            ins = [self.stem_width] + [self.widths[i] for i, n in enumerate(lay.blocks) for _ in range(n)]
            self.modulations = nn.ModuleList(AdaINModulation(c, cfg.t_hidden, cfg.act) for c in ins[:-1])
        self.head = nn.Conv2d(c_out, 3, 1)

    def stem(self, t: Tensor) -> Tensor:
        """t [B] -> the stem's feature map [B, w0, rows, cols]."""
        rows, cols = self.layout.grid
        xy = self.encoding(self.coords).flatten(1)  # [P, 4L]: row encoding, then col encoding
        tokens = self.trans1(self.stem_xy(xy)[None])  # [1, P, D]
        t_emb = self.stem_t(self.encoding(t))  # [B, D]
        tokens = self.trans2(tokens * t_emb[:, None, :])  # [B, P, D]
        x = self.to_conv(tokens)  # [B, P, w0]
        return x.transpose(1, 2).reshape(t.shape[0], self.stem_width, rows, cols)

    def render(self, t: Tensor, frames: Tensor | None = None) -> Tensor:
        """t [B] -> RGB [B, 3, H, W] in [0, 1]; ``frames`` is ignored."""
        x = self.stem(t)
        if self.cfg.boost:
            x = run_units(self.units, x, self.time_embedding(t))
        else:
            m = self.t_branch(self.encoding(t))
            for modulation, unit in zip(self.modulations, self.units):
                x = unit(modulation(x, m))
        return rgb_output(self.head(x), self.cfg.out_activation)
