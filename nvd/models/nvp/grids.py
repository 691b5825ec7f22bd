"""NVP's learnable positional features: dense multi-resolution keyframe planes and a sparse grid.

Coordinates are (t, row, col) in [0, 1] (clamped), t = linspace(0, 1, T), row and col likewise
over the pixel grid.

MultiResPlanes: three 2-D planes over (row, col), (t, row), (t, col), each with L levels of
``side_l x side_l`` vertices (config.py's level_sides) and F features per vertex, bilinearly
interpolated with "align corners": vertex ``i`` of a level sits at ``i / (side_l - 1)``. For an
input ``x`` the position is ``p = x * (side_l - 1)``, the cell ``c = min(floor(p), side_l - 2)``
and the fraction ``f = p - c`` (``f = 1`` on the far edge ``x = 1``); that equals
``grid_sample(..., mode="bilinear", align_corners=True)`` on the level image.

Storage: one parameter ``table`` [3, P, F] holds every level of every plane, P = sum of
side_l**2; level l of plane k is rows ``offsets[l] .. offsets[l] + side_l**2`` of ``table[k]``,
row-major (vertex (i, j) at ``i * side_l + j``; i on the plane's first axis), so a level
reshapes to an [F, side, side] image without copying (``level``). The lookup is one
``embedding_bag`` over all 3 x L (plane, level) bags of 4 corners per point: no Python loop over
levels. A padded [L, F, Smax, Smax] tensor per plane and one grid_sample would also be one op,
but at the default sizes it holds 16 * 1443**2 = 33.3M cells per plane for 4.6M real ones, and
parameters, gradients and both AdamW moments would all pay that 7x.

Output order: [N, 3 * L * F], plane-major (rc, tr, tc), then level, then feature.

SparseGrid: a parameter [T, S, S, F]; the nearest cell on all three axes (``round(x * (n-1))``,
halves rounded up) and its 3 x 3 spatial neighbourhood, indices clamped to the grid (replicate
borders), no interpolation: [N, 9 * F], neighbour-major (row offset -1, 0, 1, then col offset
-1, 0, 1), then feature.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nvd.models.nvp.config import N_PLANES, SPARSE_NEIGHBOURS

# Which coordinate axes (0 = t, 1 = row, 2 = col) each plane spans, in output order.
PLANE_AXES = ((1, 2), (0, 1), (0, 2))
PLANE_NAMES = ("rc", "tr", "tc")


def _check_coords(coords: Tensor) -> None:
    if coords.dim() != 2 or coords.shape[1] != 3:
        raise ValueError(f"nvp: expected coordinates of shape [N, 3] (t, row, col), got {tuple(coords.shape)}")


def _position_dtype(coords: Tensor) -> torch.dtype:
    # At least float32: half precision cannot resolve cells at side 1443.
    return torch.promote_types(coords.dtype, torch.float32)


class MultiResPlanes(nn.Module):
    """Three multi-resolution dense 2-D planes: coords [N, 3] -> features [N, 3 * L * F].

    ``sides``: vertices per axis of each level (each >= 2). ``table`` [3, P, F] is the only
    learnable tensor; the per-level constants are non-persistent buffers.
    """

    def __init__(self, sides: Sequence[int], features: int, init_scale: float = 1e-4) -> None:
        super().__init__()
        if not sides or min(sides) < 2:
            raise ValueError(f"nvp: every level needs a side >= 2, got {tuple(sides)}")
        self.sides = tuple(int(s) for s in sides)
        self.features = features
        self.output_dim = N_PLANES * len(self.sides) * features
        offsets, total = [], 0
        for side in self.sides:
            offsets.append(total)
            total += side * side
        self.offsets = tuple(offsets)
        self.rows_per_plane = total
        if N_PLANES * total >= 2**31:  # indices are int32
            raise ValueError(f"nvp: {N_PLANES * total} plane rows do not fit int32 indices")
        self.register_buffer("side_t", torch.tensor(self.sides, dtype=torch.int64), persistent=False)
        # First row of (plane k, level l) in the flattened [3 * P, F] table: [3, L].
        starts = torch.tensor(offsets, dtype=torch.int64)[None, :] + torch.arange(N_PLANES)[:, None] * total
        self.register_buffer("start_t", starts, persistent=False)
        self.register_buffer("axes_t", torch.tensor(PLANE_AXES, dtype=torch.int64), persistent=False)
        self.table = nn.Parameter(torch.empty(N_PLANES, total, features))
        with torch.no_grad():
            self.table.uniform_(-init_scale, init_scale)

    @staticmethod
    def parameter_count_for(sides: Sequence[int], features: int) -> int:
        """Elements of ``table`` for these sides, without allocating it."""
        return N_PLANES * sum(int(s) ** 2 for s in sides) * features

    def level(self, plane: int, level: int) -> Tensor:
        """Level ``level`` of plane ``plane`` as an image view [F, side, side] (rows: first axis)."""
        side, start = self.sides[level], self.offsets[level]
        return self.table[plane, start:start + side * side].view(side, side, self.features).permute(2, 0, 1)

    def forward(self, coords: Tensor) -> Tensor:
        """coords [N, 3] (t, row, col) in [0, 1] -> [N, 3 * L * F] in the table's dtype."""
        _check_coords(coords)
        n_points = coords.shape[0]
        x = coords.clamp(0.0, 1.0).to(_position_dtype(coords))[:, self.axes_t]  # [N, 3, 2]
        side = self.side_t.to(x.dtype)[None, None, :, None]  # [1, 1, L, 1]
        pos = x[:, :, None, :] * (side - 1)  # [N, 3, L, 2]
        cell = torch.minimum(pos.floor(), side - 2)  # x = 1 falls in the last cell, with f = 1
        frac = (pos - cell).to(self.table.dtype)
        cell = cell.to(torch.int64)
        side_i = self.side_t[None, None, :]  # [1, 1, L]
        base = self.start_t[None] + cell[..., 0] * side_i + cell[..., 1]  # [N, 3, L]
        # Corners (i, j), (i, j+1), (i+1, j), (i+1, j+1): [N, 3, L, 4].
        steps = torch.stack((torch.zeros_like(side_i), torch.ones_like(side_i), side_i, side_i + 1), dim=-1)
        rows = (base[..., None] + steps).to(torch.int32)
        fi, fj = frac[..., 0, None], frac[..., 1, None]  # [N, 3, L, 1]
        wi = torch.cat((1 - fi, 1 - fi, fi, fi), dim=-1)
        wj = torch.cat((1 - fj, fj, 1 - fj, fj), dim=-1)
        weights = wi * wj  # [N, 3, L, 4]
        out = F.embedding_bag(rows.view(-1, 4), self.table.view(-1, self.features), mode="sum",
                              per_sample_weights=weights.reshape(-1, 4))
        return out.view(n_points, self.output_dim)


def nearest_index(x: Tensor, size: int) -> Tensor:
    """Nearest of ``size`` cells spread over [0, 1] (cell k at k / (size - 1)): int64, halves up.

    floor(p + 0.5) rather than torch.round, whose half-to-even would send pixels that sit
    exactly between two cells alternately left and right.
    """
    pos = x.clamp(0.0, 1.0).to(_position_dtype(x)) * (size - 1)
    return torch.floor(pos + 0.5).to(torch.int64).clamp_(0, size - 1)


class SparseGrid(nn.Module):
    """Sparse positional features [T, S, S, F]: coords [N, 3] -> the 3 x 3 neighbourhood [N, 9F]."""

    def __init__(self, num_frames: int, size: int, features: int, init_scale: float = 1e-4) -> None:
        super().__init__()
        if num_frames < 1 or size < 1 or features < 1:
            raise ValueError("nvp: sparse grid needs num_frames, size and features >= 1")
        self.num_frames, self.size, self.features = num_frames, size, features
        self.output_dim = SPARSE_NEIGHBOURS * features
        self.register_buffer("offsets_t", torch.tensor([-1, 0, 1], dtype=torch.int64), persistent=False)
        self.grid = nn.Parameter(torch.empty(num_frames, size, size, features))
        with torch.no_grad():
            self.grid.uniform_(-init_scale, init_scale)

    @staticmethod
    def parameter_count_for(num_frames: int, size: int, features: int) -> int:
        """Elements of ``grid``, without allocating it."""
        return num_frames * size * size * features

    def neighbour_indices(self, coords: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Frame [N], rows [N, 9] and cols [N, 9] of each point's clamped 3 x 3 neighbourhood."""
        _check_coords(coords)
        t = nearest_index(coords[:, 0], self.num_frames)
        r = nearest_index(coords[:, 1], self.size)
        c = nearest_index(coords[:, 2], self.size)
        rows = (r[:, None] + self.offsets_t).clamp_(0, self.size - 1)  # [N, 3]
        cols = (c[:, None] + self.offsets_t).clamp_(0, self.size - 1)
        return t, rows[:, :, None].expand(-1, 3, 3).reshape(-1, 9), cols[:, None, :].expand(-1, 3, 3).reshape(-1, 9)

    def forward(self, coords: Tensor) -> Tensor:
        """coords [N, 3] (t, row, col) in [0, 1] -> [N, 9 * F] in the grid's dtype."""
        t, rows, cols = self.neighbour_indices(coords)
        flat = (t[:, None] * self.size + rows) * self.size + cols  # [N, 9]
        # F.embedding's backward is a sparse-style index_add: cheap for a 54M-row grid.
        out = F.embedding(flat, self.grid.view(-1, self.features))  # [N, 9, F]
        return out.reshape(coords.shape[0], self.output_dim)
