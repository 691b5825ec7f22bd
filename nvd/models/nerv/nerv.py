"""NeRV and NeRV-Boost: a video as a function of time alone.

t [B] -> positional encoding [B, 2L] -> stem MLP 2L -> stem_hidden (x stem_layers) ->
rows * cols * w0 (activation after every layer) -> reshape [B, w0, rows, cols] -> stages of
NeRV blocks (conv 3x3 -> PixelShuffle(s) -> act), widths from ``blocks.nerv_widths`` ->
conv 1x1 head -> tanh(x) * 0.5 + 0.5: RGB [B, 3, H, W], H = rows * prod(strides).

NeRV-Boost keeps the stem and replaces every block by a BoostUnit (SNeRV + TAT residual block)
conditioned on the time embedding of boost.py: the stem turns t into a first guess of the
frame's features, the TATs keep reminding every later stage which frame it is drawing.
"""

from __future__ import annotations

from torch import Tensor, nn

from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.blocks import mlp, nerv_widths, rgb_output
from nvd.models.nerv.boost import TimeEmbedding, decoder_stages, run_units
from nvd.models.nerv.config import NeRVConfig
from nvd.models.nerv.encoding import PositionalEncoding


class NeRV(NeRVFamilyModel):
    """NeRV / NeRV-Boost (cfg.boost) for height x width frames; see the module docstring."""

    def __init__(self, cfg: NeRVConfig, height: int, width: int, num_frames: int) -> None:
        super().__init__(cfg, height, width, num_frames)
        lay = self.layout
        self.stem_width = max(round(cfg.channel_width), 1)
        self.widths = nerv_widths(cfg.channel_width, lay.strides, cfg.expansion, cfg.reduce,
                                  cfg.lower_width)
        self.encoding = PositionalEncoding(cfg.pe_base, cfg.pe_levels)
        rows, cols = lay.grid
        dims = [self.encoding.out_dim] + [cfg.stem_hidden] * cfg.stem_layers
        self.stem = mlp(dims + [rows * cols * self.stem_width], cfg.act)
        self.time_embedding = TimeEmbedding(cfg.boost_cfg) if cfg.boost else None
        self.units, c_out = decoder_stages(self.stem_width, self.widths, lay.strides, lay.blocks,
                                           lay.kernels, cfg.act, cfg.boost_cfg if cfg.boost else None)
        self.head = nn.Conv2d(c_out, 3, 1)

    def render(self, t: Tensor, frames: Tensor | None = None) -> Tensor:
        """t [B] -> RGB [B, 3, H, W] in [0, 1]; ``frames`` is ignored."""
        rows, cols = self.layout.grid
        x = self.stem(self.encoding(t)).view(t.shape[0], self.stem_width, rows, cols)
        cond = self.time_embedding(t) if self.time_embedding is not None else None
        x = run_units(self.units, x, cond)
        return rgb_output(self.head(x), self.cfg.out_activation)
