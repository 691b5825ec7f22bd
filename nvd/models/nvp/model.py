"""The NVP model: positional features -> latent -> modulated SIREN over time -> RGB in [-1, 1].

Decoder (Mehta et al.'s modulated periodic activations, as NVP uses them): the SIREN's only
input is the time coordinate t [N, 1]; sine layer i computes
``h_i = sin(w0_i * (W_i h_{i-1} + b_i)) * m_i`` with w0 = first_omega for the first layer and
hidden_omega after. The multipliers come from a ReLU modulator fed the latent z [N, 57F]:
``m_1 = relu(A_1 z)``, ``m_i = relu(A_i [z, m_{i-1}])``, so each modulator layer's hidden state
IS the multiplier vector of its sine layer, and the modulator's width is siren_width. A linear
head maps the last h to 3 channels.

Output: no final activation. The target is (rgb - 127.5) / 127.5 in [-1, 1]; a tanh would
flatten the gradient exactly at the saturated black and white pixels that videos are full of,
while a linear head trained with MSE stays near the range anyway. Rendering clamps.

Initialisation (Sitzmann et al. 2020): the first sine layer's weights ~ U(-1/n, 1/n), later
sine layers' and the head's ~ U(-sqrt(6/n)/w0, sqrt(6/n)/w0), n = fan-in; biases take the
same bound as their weights. The modulator keeps PyTorch's Linear default.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nvd.models.nvp.config import NVPConfig
from nvd.models.nvp.grids import MultiResPlanes, SparseGrid

OUT_CHANNELS = 3


class SineLayer(nn.Module):
    """x [N, in] -> sin(omega * (W x + b)) [N, out], SIREN-initialised."""

    def __init__(self, in_dim: int, out_dim: int, omega: float, first: bool) -> None:
        super().__init__()
        self.omega = omega
        self.linear = nn.Linear(in_dim, out_dim)
        bound = 1 / in_dim if first else math.sqrt(6 / in_dim) / omega
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)
            self.linear.bias.uniform_(-bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega * self.linear(x))


class ModulatedSiren(nn.Module):
    """(t [N, 1], z [N, latent_dim]) -> [N, 3]; see the module docstring."""

    def __init__(self, latent_dim: int, cfg: NVPConfig) -> None:
        super().__init__()
        width = cfg.siren_width
        self.layers = nn.ModuleList(
            SineLayer(1 if i == 0 else width, width, cfg.first_omega if i == 0 else cfg.hidden_omega, first=i == 0)
            for i in range(cfg.siren_layers)
        )
        self.modulator = nn.ModuleList(
            nn.Linear(latent_dim if i == 0 else latent_dim + width, width) for i in range(cfg.siren_layers)
        )
        self.head = nn.Linear(width, OUT_CHANNELS)
        bound = math.sqrt(6 / width) / cfg.hidden_omega
        with torch.no_grad():
            self.head.weight.uniform_(-bound, bound)
            self.head.bias.uniform_(-bound, bound)

    @staticmethod
    def parameter_count_for(latent_dim: int, cfg: NVPConfig) -> int:
        """Weights and biases of the decoder, without building it."""
        width, layers = cfg.siren_width, cfg.siren_layers
        sine = (1 * width + width) + (layers - 1) * (width * width + width)
        modulator = (latent_dim * width + width) + (layers - 1) * ((latent_dim + width) * width + width)
        return sine + modulator + width * OUT_CHANNELS + OUT_CHANNELS

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        h, m = t, None
        for layer, mod in zip(self.layers, self.modulator):
            m = torch.relu(mod(z if m is None else torch.cat((z, m), dim=-1)))
            h = layer(h) * m
        return self.head(h)


def plane_limits(num_frames: int, height: int, width: int, cfg: NVPConfig) -> tuple[int, int, int] | None:
    """The (T, H, W) caps of the plane axes, None for the paper's square levels."""
    return (num_frames, height, width) if cfg.cap_to_video else None


class NVP(nn.Module):
    """NVP for a video of ``num_frames`` frames of ``height`` x ``width`` pixels.

    The parameter count depends on the video's size and cfg: with cfg.cap_to_video no plane
    axis has more vertices than the video has frames, rows or columns (grids.py); without it
    only num_frames matters (the sparse grid's time axis). height and width also set the pixel
    grid that render_frame queries by default.
    """

    def __init__(self, num_frames: int, height: int, width: int, cfg: NVPConfig = NVPConfig()) -> None:
        super().__init__()
        if num_frames < 1 or height < 1 or width < 1:
            raise ValueError(f"nvp: video size must be >= 1, got {num_frames} x {height} x {width}")
        self.num_frames, self.height, self.width, self.cfg = num_frames, height, width, cfg
        self.planes = MultiResPlanes(cfg.level_sides, cfg.features, cfg.plane_init_scale,
                                     plane_limits(num_frames, height, width, cfg))
        self.sparse = SparseGrid(num_frames, cfg.sparse_size, cfg.features, cfg.init_scale, cfg.sparse_interpolation)
        self.latent_dim = self.planes.output_dim + self.sparse.output_dim
        assert self.latent_dim == cfg.latent_dim
        self.decoder = ModulatedSiren(self.latent_dim, cfg)

    @staticmethod
    def parameter_groups_for(num_frames: int, height: int, width: int, cfg: NVPConfig) -> dict[str, int]:
        """Parameter counts of the planes, the sparse grid and the decoder, without allocating."""
        limits = plane_limits(num_frames, height, width, cfg)
        return {
            "planes": MultiResPlanes.parameter_count_for(cfg.level_sides, cfg.features, limits),
            "sparse": SparseGrid.parameter_count_for(num_frames, cfg.sparse_size, cfg.features),
            "decoder": ModulatedSiren.parameter_count_for(cfg.latent_dim, cfg),
        }

    @staticmethod
    def parameter_count_for(num_frames: int, height: int, width: int, cfg: NVPConfig) -> int:
        """Total parameters of NVP(num_frames, height, width, cfg), without allocating."""
        return sum(NVP.parameter_groups_for(num_frames, height, width, cfg).values())

    def parameter_count(self) -> int:
        """Total elements of this model's parameters."""
        return sum(p.numel() for p in self.parameters())

    def latent(self, coords: Tensor, blend_time: bool = False) -> Tensor:
        """coords [N, 3] (t, row, col) in [0, 1] -> z [N, latent_dim] (planes, then sparse).
        ``blend_time``: see SparseGrid.forward (the planes interpolate in t anyway)."""
        return torch.cat((self.planes(coords), self.sparse(coords, blend_time)), dim=-1)

    def forward(self, coords: Tensor, blend_time: bool = False) -> Tensor:
        """coords [N, 3] (t, row, col) in [0, 1] -> RGB [N, 3], trained towards [-1, 1]."""
        return self.decoder(coords[:, :1].to(self.planes.table.dtype), self.latent(coords, blend_time))

    def frame_time(self, t_index: int) -> float:
        """The time coordinate of frame t_index: linspace(0, 1, T)[t_index] (0 for T = 1)."""
        if not 0 <= t_index < self.num_frames:
            raise IndexError(f"nvp: frame {t_index} out of range for {self.num_frames} frames")
        return t_index / (self.num_frames - 1) if self.num_frames > 1 else 0.0

    def pixel_coords(self, t: float, height: int, width: int) -> Tensor:
        """Coordinates [height * width, 3] of a dense pixel grid at time t, row-major."""
        device, dtype = self.planes.table.device, self.planes.table.dtype
        # linspace(0, 1, 1) is [0]: a one-pixel axis sits at coordinate 0, like a one-frame video.
        rows = torch.linspace(0, 1, height, device=device, dtype=dtype)
        cols = torch.linspace(0, 1, width, device=device, dtype=dtype)
        grid_r, grid_c = torch.meshgrid(rows, cols, indexing="ij")
        return torch.stack((torch.full_like(grid_r, t), grid_r, grid_c), dim=-1).view(-1, 3)

    @torch.no_grad()
    def render_frame(self, t_index: int, height: int | None = None, width: int | None = None,
                     chunk: int = 1 << 16) -> Tensor:
        """Frame t_index as RGB [H, W, 3] in [0, 1], queried on a height x width pixel grid.

        height/width default to the video's; larger ones query a denser grid over the same
        [0, 1] square (super-resolution). Queried in chunks of ``chunk`` points.
        """
        return self.render_time(self.frame_time(t_index), height, width, chunk=chunk)

    @torch.no_grad()
    def render_time(self, t: float, height: int | None = None, width: int | None = None, *,
                    blend_time: bool = False, chunk: int = 1 << 16) -> Tensor:
        """The frame at time ``t`` in [0, 1] as RGB [H, W, 3] in [0, 1]; a t between two
        trained frames with ``blend_time`` is frame interpolation (SparseGrid.forward)."""
        height = self.height if height is None else height
        width = self.width if width is None else width
        device, dtype = self.planes.table.device, self.planes.table.dtype
        rows = torch.linspace(0, 1, height, device=device, dtype=dtype)
        cols = torch.linspace(0, 1, width, device=device, dtype=dtype)
        return self.render_grid(t, rows, cols, blend_time=blend_time, chunk=chunk)

    @torch.no_grad()
    def render_grid(self, t: float, rows: Tensor, cols: Tensor, *, blend_time: bool = False,
                    chunk: int = 1 << 16) -> Tensor:
        """RGB [len(rows), len(cols), 3] in [0, 1] at time t on the grid rows x cols
        (coordinates, [R] and [C]; outside [0, 1] they clamp to the border)."""
        grid_r, grid_c = torch.meshgrid(rows, cols, indexing="ij")
        coords = torch.stack((torch.full_like(grid_r, t), grid_r, grid_c), dim=-1).view(-1, 3)
        out = torch.cat([self(part, blend_time) for part in coords.split(chunk)])
        return ((out + 1) * 0.5).clamp_(0, 1).view(rows.numel(), cols.numel(), OUT_CHANNELS)
