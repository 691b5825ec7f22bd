"""HNeRV and HNeRV-Boost: a per-frame ConvNeXt encoder, a tiny embedding, a conv decoder.

Encoder (not counted in the model size): frames [B, 3, H, W] in [0, 1] -> stage 0: conv
(kernel = stride = s_0, 3 -> enc_dim) -> LayerNorm2d -> ConvNeXt block(s); stage i > 0:
LayerNorm2d -> conv (kernel = stride = s_i) -> ConvNeXt block(s) (timm's ConvNeXtBlock:
depthwise 7x7 -> LayerNorm -> MLP x4 -> layer scale 1e-6, plus skip). Every stage is enc_dim
wide except the last, which has embed_channels: the embedding e [B, 16, H/80, W/80] (16 x 9
x 16 at 720p with strides 5-2-2-2-2). The stored embeddings (num_frames of them) are counted.

Decoder: e -> conv stem_kernel (1x1) to w0 = channel_width -> act -> stages of NeRV blocks
(conv k_i -> PixelShuffle(s_i) -> act), k_i = min(kernel_min + 2i, kernel_max) (1, 3, 5, 5, 5),
widths ``blocks.hnerv_widths`` (x / 1.2**(i+1), at least lower_width) -> conv 3x3 head ->
tanh(x) * 0.5 + 0.5.

HNeRV-Boost: the stem conv is followed by a TAT residual block and every NeRV block becomes a
BoostUnit (SNeRV, kernel capped at 3, + TAT residual block), conditioned on the time embedding
of boost.py; blocks (1, 1, 2, 2, 2).

``decode(embedding, t)`` lets interpolation decode any embedding, e.g. the mean of two
neighbouring frames' embeddings; plain HNeRV ignores t.
"""

from __future__ import annotations

from collections.abc import Iterator

from timm.layers import LayerNorm2d
from timm.models.convnext import ConvNeXtBlock
from torch import Tensor, nn

from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.blocks import activation, hnerv_widths, rgb_output
from nvd.models.nerv.boost import BoostUnit, TimeEmbedding, decoder_stages, run_units
from nvd.models.nerv.config import HNeRVConfig

LAYER_SCALE_INIT = 1e-6  # ConvNeXt's layer-scale start, as HNeRV uses it


class ConvNeXtEncoder(nn.Module):
    """frames [B, 3, H, W] -> [B, dims[-1], H / prod(strides), W / prod(strides)]."""

    def __init__(self, strides: tuple[int, ...], dims: tuple[int, ...], blocks: int, kernel: int) -> None:
        super().__init__()
        stages = []
        for i, (stride, dim) in enumerate(zip(strides, dims)):
            if i == 0:
                down = [nn.Conv2d(3, dim, stride, stride=stride), LayerNorm2d(dim)]
            else:
                down = [LayerNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], dim, stride, stride=stride)]
            body = [ConvNeXtBlock(dim, kernel_size=kernel, ls_init_value=LAYER_SCALE_INIT)
                    for _ in range(blocks)]
            stages.append(nn.Sequential(*down, *body))
        self.stages = nn.Sequential(*stages)
        for module in self.modules():  # HNeRV's ConvNeXt init: truncated normal 0.02, zero bias
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, frames: Tensor) -> Tensor:
        return self.stages(frames)


class HNeRV(NeRVFamilyModel):
    """HNeRV / HNeRV-Boost (cfg.boost) for height x width frames; see the module docstring."""

    def __init__(self, cfg: HNeRVConfig, height: int, width: int, num_frames: int) -> None:
        super().__init__(cfg, height, width, num_frames)
        lay = self.layout
        n_enc = len(lay.enc_strides)
        dims = (cfg.enc_dim,) * (n_enc - 1) + (cfg.embed_channels,)
        self.encoder = ConvNeXtEncoder(lay.enc_strides, dims, cfg.enc_blocks, cfg.enc_kernel)
        self.embedding_shape = (cfg.embed_channels, *lay.grid)  # (C, rows, cols)

        self.stem_width = max(round(cfg.channel_width), 1)
        self.widths = hnerv_widths(cfg.channel_width, len(lay.strides), cfg.reduce, cfg.lower_width)
        boost_cfg = cfg.boost_cfg if cfg.boost else None
        stem = nn.Sequential(nn.Conv2d(cfg.embed_channels, self.stem_width, cfg.stem_kernel,
                                       padding=cfg.stem_kernel // 2), activation(cfg.act))
        self.stem = BoostUnit(stem, self.stem_width, boost_cfg) if boost_cfg is not None else stem
        self.units, c_out = decoder_stages(self.stem_width, self.widths, lay.strides, lay.blocks,
                                           lay.kernels, cfg.act, boost_cfg)
        self.time_embedding = TimeEmbedding(cfg.boost_cfg) if cfg.boost else None
        self.head = nn.Conv2d(c_out, 3, 3, padding=1)

    @property
    def embedding_numel(self) -> int:
        c, rows, cols = self.embedding_shape
        return c * rows * cols

    def uncounted_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()

    def embed(self, frames: Tensor) -> Tensor:
        """frames [B, 3, H, W] in [0, 1] -> embeddings [B, embed_channels, rows, cols]."""
        if frames.shape[-2:] != (self.height, self.width):
            raise ValueError(f"{self.cfg.name}: frames are {tuple(frames.shape[-2:])}, the model "
                             f"was built for {(self.height, self.width)}")
        return self.encoder(frames)

    def decode(self, embedding: Tensor, t: Tensor | None = None) -> Tensor:
        """embedding [B, C, rows, cols], times t [B] (boost only) -> RGB [B, 3, H, W] in [0, 1]."""
        cond = None
        if self.time_embedding is not None:
            if t is None:
                raise ValueError(f"{self.cfg.name}: decode needs the times t [B]")
            cond = self.time_embedding(t)
        x = self.stem(embedding, cond) if isinstance(self.stem, BoostUnit) else self.stem(embedding)
        x = run_units(self.units, x, cond)
        return rgb_output(self.head(x), self.cfg.out_activation)

    def render(self, t: Tensor, frames: Tensor | None = None) -> Tensor:
        """t [B], frames [B, 3, H, W] -> decode(embed(frames), t)."""
        if frames is None:
            raise ValueError(f"{self.cfg.name}: HNeRV models need the frames to embed")
        return self.decode(self.embed(frames), t)
