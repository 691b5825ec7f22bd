"""NVP's learnable positional features: dense multi-resolution keyframe planes and a sparse grid.

Coordinates are (t, row, col) in [0, 1] (clamped), t = linspace(0, 1, T), row and col likewise
over the pixel grid.

MultiResPlanes: three 2-D planes over (row, col), (t, row), (t, col), each with L levels of
``side_l`` vertices per axis (config.py's level_sides) and F features per vertex, bilinearly
interpolated with "align corners": vertex ``i`` of an axis of n vertices sits at ``i / (n - 1)``.
For an input ``x`` the position is ``p = x * (n - 1)``, the cell ``c = min(floor(p), n - 2)``
and the fraction ``f = p - c`` (``f = 1`` on the far edge ``x = 1``); that equals
``grid_sample(..., mode="bilinear", align_corners=True)`` on the level image. With ``limits``
(T, H, W) an axis has at most as many vertices as the video has samples along it
(``plane_shapes``): a finer axis puts vertices between the frames or pixels, where no sample
trains them, and they would only show when rendering between samples (super-resolution,
interpolation), as the untrained initial values. The paper's layout is square (no limits).

Storage: one parameter ``table`` [P, F] holds every level of every plane, P the sum of their
rows x cols; level l of plane k is rows ``offsets[k][l] ..`` of it, row-major (vertex (i, j)
at ``i * cols + j``; i on the plane's first axis), so a level reshapes to an [F, rows, cols]
image without copying (``level``). The lookup is one weighted gather (``weighted_gather``) of
the 4 corners of all 3 x L (plane, level) cells per point: no Python loop over levels. A
padded [L, F, Smax, Smax] tensor per plane and one grid_sample would also be one op, but at
the default sizes it holds 16 * 1443**2 = 33.3M cells per plane for 4.6M real ones, and
parameters, gradients and both AdamW moments would all pay that 7x.

Output order: [N, 3 * L * F], plane-major (rc, tr, tc), then level, then feature.

SparseGrid: a parameter [T, S, S, F], cell k of an axis of n at k / (n - 1); the 3 x 3 spatial
neighbourhood of cells around the query: [N, 9 * F], neighbour-major (row offset -1, 0, 1, then
col offset -1, 0, 1), then feature, clamped to the grid (replicate borders). ``interpolation``
"nearest" (the paper): the nearest cell on all three axes (``round(x * (n-1))``, halves rounded
up) and its neighbours, piecewise constant in space. "linear": each of the 9 taps is read
bilinearly at the query's position offset by -1, 0 or +1 cell (the nearest slice in time), so
the features vary continuously between cells; at a cell centre it equals the nearest lookup.
Rendering between samples (super-resolution) then reads a blend of the cells around the query
instead of jumping from one cell's neighbourhood to the next.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nvd.models.nvp.config import N_PLANES, SPARSE_INTERPOLATIONS, SPARSE_NEIGHBOURS

# Which coordinate axes (0 = t, 1 = row, 2 = col) each plane spans, in output order.
PLANE_AXES = ((1, 2), (0, 1), (0, 2))
PLANE_NAMES = ("rc", "tr", "tc")


def _check_coords(coords: Tensor) -> None:
    if coords.dim() != 2 or coords.shape[1] != 3:
        raise ValueError(f"nvp: expected coordinates of shape [N, 3] (t, row, col), got {tuple(coords.shape)}")


def _position_dtype(coords: Tensor) -> torch.dtype:
    # At least float32: half precision cannot resolve cells at side 1443.
    return torch.promote_types(coords.dtype, torch.float32)


def plane_shapes(sides: Sequence[int], limits: Sequence[int] | None = None) -> tuple[tuple[tuple[int, int], ...], ...]:
    """(rows, cols) of every level of every plane: side x side, or with ``limits`` (T, H, W)
    each axis capped at the samples the video has along it (at least 2)."""
    def axis(side: int, coordinate: int) -> int:
        return side if limits is None else min(side, max(int(limits[coordinate]), 2))

    return tuple(tuple((axis(side, a), axis(side, b)) for side in sides) for a, b in PLANE_AXES)


class MultiResPlanes(nn.Module):
    """Three multi-resolution dense 2-D planes: coords [N, 3] -> features [N, 3 * L * F].

    ``sides``: vertices per axis of each level (each >= 2); ``limits``: (T, H, W) caps per
    coordinate axis (module docstring). ``table`` [P, F] is the only learnable tensor; the
    per-level constants are non-persistent buffers.
    """

    def __init__(self, sides: Sequence[int], features: int, init_scale: float = 1e-4,
                 limits: Sequence[int] | None = None) -> None:
        super().__init__()
        if not sides or min(sides) < 2:
            raise ValueError(f"nvp: every level needs a side >= 2, got {tuple(sides)}")
        self.sides = tuple(int(s) for s in sides)
        self.features = features
        self.output_dim = N_PLANES * len(self.sides) * features
        self.shapes = plane_shapes(self.sides, limits)
        offsets, total = [], 0
        for plane in self.shapes:
            offsets.append([])
            for rows, cols in plane:
                offsets[-1].append(total)
                total += rows * cols
        self.offsets = tuple(tuple(o) for o in offsets)
        if total >= 2**31:  # indices are int32
            raise ValueError(f"nvp: {total} plane rows do not fit int32 indices")
        self.register_buffer("dims_t", torch.tensor(self.shapes, dtype=torch.int64), persistent=False)  # [3, L, 2]
        # First row of (plane k, level l) in the flat [P, F] table: [3, L].
        self.register_buffer("start_t", torch.tensor(self.offsets, dtype=torch.int64), persistent=False)
        self.register_buffer("axes_t", torch.tensor(PLANE_AXES, dtype=torch.int64), persistent=False)
        self.table = nn.Parameter(torch.empty(total, features))
        with torch.no_grad():
            self.table.uniform_(-init_scale, init_scale)

    @staticmethod
    def parameter_count_for(sides: Sequence[int], features: int, limits: Sequence[int] | None = None) -> int:
        """Elements of ``table`` for these sides (and limits), without allocating it."""
        return sum(rows * cols for plane in plane_shapes(sides, limits) for rows, cols in plane) * features

    def level(self, plane: int, level: int) -> Tensor:
        """Level ``level`` of plane ``plane`` as an image view [F, rows, cols] (rows: the
        plane's first axis)."""
        (rows, cols), start = self.shapes[plane][level], self.offsets[plane][level]
        return self.table[start:start + rows * cols].view(rows, cols, self.features).permute(2, 0, 1)

    def forward(self, coords: Tensor) -> Tensor:
        """coords [N, 3] (t, row, col) in [0, 1] -> [N, 3 * L * F] in the table's dtype."""
        _check_coords(coords)
        n_points = coords.shape[0]
        x = coords.clamp(0.0, 1.0).to(_position_dtype(coords))[:, self.axes_t]  # [N, 3, 2]
        dims = self.dims_t.to(x.dtype)[None]  # [1, 3, L, 2]
        pos = x[:, :, None, :] * (dims - 1)  # [N, 3, L, 2]
        cell = torch.minimum(pos.floor(), dims - 2)  # x = 1 falls in the last cell, with f = 1
        frac = (pos - cell).to(self.table.dtype)
        cell = cell.to(torch.int64)
        cols = self.dims_t[None, :, :, 1]  # [1, 3, L]
        base = self.start_t[None] + cell[..., 0] * cols + cell[..., 1]  # [N, 3, L]
        # Corners (i, j), (i, j+1), (i+1, j), (i+1, j+1): [N, 3, L, 4].
        steps = torch.stack((torch.zeros_like(cols), torch.ones_like(cols), cols, cols + 1), dim=-1)
        rows = (base[..., None] + steps).to(torch.int32)
        fi, fj = frac[..., 0, None], frac[..., 1, None]  # [N, 3, L, 1]
        wi = torch.cat((1 - fi, 1 - fi, fi, fi), dim=-1)
        wj = torch.cat((1 - fj, fj, 1 - fj, fj), dim=-1)
        weights = wi * wj  # [N, 3, L, 4]
        out = weighted_gather(self.table.view(-1, self.features), rows.view(-1, 4), weights.view(-1, 4))
        return out.view(n_points, self.output_dim)


class _WeightedGather(torch.autograd.Function):
    """out[b] = sum_k weights[b, k] * table[rows[b, k]]; gradients for table and weights.

    The table's gradient is one index_add_ of the weighted output gradients: on the CPU three
    times faster than embedding_bag's backward (which sorts the indices), and as fast on CUDA.
    """

    @staticmethod
    def forward(ctx, table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:  # type: ignore[override]
        flat = rows.reshape(-1).to(torch.int64)
        corners = table.index_select(0, flat).view(*rows.shape, table.shape[1])  # [B, K, F]
        ctx.save_for_backward(flat, weights, corners if weights.requires_grad else flat)
        ctx.table_shape = table.shape
        return torch.einsum("bk,bkf->bf", weights, corners)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, Tensor | None]:  # type: ignore[override]
        flat, weights, corners = ctx.saved_tensors
        grad_table = grad_weights = None
        if ctx.needs_input_grad[0]:
            contrib = (weights[:, :, None] * grad[:, None, :]).reshape(-1, grad.shape[1])
            grad_table = grad.new_zeros(ctx.table_shape).index_add_(0, flat, contrib)
        if ctx.needs_input_grad[2]:
            grad_weights = torch.einsum("bf,bkf->bk", grad, corners)
        return grad_table, None, grad_weights


def weighted_gather(table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
    """table [P, F], rows [B, K] (int), weights [B, K] -> [B, F]: the weighted sum of K rows."""
    return _WeightedGather.apply(table, rows, weights)


def nearest_index(x: Tensor, size: int) -> Tensor:
    """Nearest of ``size`` cells spread over [0, 1] (cell k at k / (size - 1)): int64, halves up.

    floor(p + 0.5) rather than torch.round, whose half-to-even would send pixels that sit
    exactly between two cells alternately left and right.
    """
    pos = x.clamp(0.0, 1.0).to(_position_dtype(x)) * (size - 1)
    return torch.floor(pos + 0.5).to(torch.int64).clamp_(0, size - 1)


class SparseGrid(nn.Module):
    """Sparse positional features [T, S, S, F]: coords [N, 3] -> the 3 x 3 neighbourhood [N, 9F],
    read at the nearest cell or bilinearly (``interpolation``, module docstring)."""

    def __init__(self, num_frames: int, size: int, features: int, init_scale: float = 1e-4,
                 interpolation: str = "nearest") -> None:
        super().__init__()
        if num_frames < 1 or size < 1 or features < 1:
            raise ValueError("nvp: sparse grid needs num_frames, size and features >= 1")
        if interpolation not in SPARSE_INTERPOLATIONS:
            raise ValueError(f"nvp: sparse interpolation must be one of {SPARSE_INTERPOLATIONS}, got {interpolation!r}")
        if interpolation == "linear" and size < 2:
            raise ValueError("nvp: a linearly interpolated sparse grid needs size >= 2")
        self.num_frames, self.size, self.features = num_frames, size, features
        self.interpolation = interpolation
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

    def _gather(self, t: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        flat = (t[:, None] * self.size + rows) * self.size + cols  # [N, 9]
        # F.embedding's backward is a sparse-style index_add: cheap for a 54M-row grid.
        return F.embedding(flat, self.grid.view(-1, self.features)).reshape(t.shape[0], self.output_dim)

    def forward(self, coords: Tensor, blend_time: bool = False) -> Tensor:
        """coords [N, 3] (t, row, col) in [0, 1] -> [N, 9 * F] in the grid's dtype.

        ``blend_time``: instead of the nearest slice in time, blend the two slices around t
        linearly (frame interpolation); at a trained frame's t it equals the nearest lookup.
        """
        if self.interpolation == "linear":
            return self._linear(coords, blend_time)
        t, rows, cols = self.neighbour_indices(coords)
        if not blend_time or self.num_frames == 1:
            return self._gather(t, rows, cols)
        times, weights = self._time_corners(coords, blend_time)
        before, after = (self._gather(times[:, k], rows, cols) for k in (0, 1))
        return weights[:, :1] * before + weights[:, 1:] * after

    def _time_corners(self, coords: Tensor, blend_time: bool) -> tuple[Tensor, Tensor]:
        """Slices [N, K] and their weights [N, K]: the nearest one (K = 1), or the two around t
        blended linearly (K = 2)."""
        if not blend_time or self.num_frames == 1:
            t = nearest_index(coords[:, 0], self.num_frames)[:, None]
            return t, torch.ones(t.shape, dtype=self.grid.dtype, device=t.device)
        pos = coords[:, 0].clamp(0.0, 1.0).to(_position_dtype(coords)) * (self.num_frames - 1)
        before = pos.floor().to(torch.int64).clamp_(0, self.num_frames - 2)
        weight = (pos - before).to(self.grid.dtype)[:, None]
        return torch.cat((before[:, None], before[:, None] + 1), dim=1), torch.cat((1 - weight, weight), dim=1)

    def _linear(self, coords: Tensor, blend_time: bool) -> Tensor:
        """The "linear" lookup: 9 bilinear taps one cell apart, as one weighted gather."""
        _check_coords(coords)
        n, size = coords.shape[0], self.size
        times, time_weights = self._time_corners(coords, blend_time)  # [N, K]
        pos = coords[:, 1:].clamp(0.0, 1.0).to(_position_dtype(coords)) * (size - 1)  # [N, 2]
        taps = pos[:, None, :] + self.offsets_t.to(pos.dtype)[:, None]  # [N, 3 offsets, 2 axes]
        taps = taps.clamp(0, size - 1)  # replicate borders, as the nearest lookup's clamped indices
        cell = torch.minimum(taps.floor(), torch.full_like(taps, size - 2))
        frac = (taps - cell).to(self.grid.dtype)
        cell = cell.to(torch.int64)
        # Per axis the two vertices and their weights: [N, 3, 2]; rows from axis 0, cols from 1.
        r_idx = torch.stack((cell[..., 0], cell[..., 0] + 1), dim=-1)
        c_idx = torch.stack((cell[..., 1], cell[..., 1] + 1), dim=-1)
        r_w = torch.stack((1 - frac[..., 0], frac[..., 0]), dim=-1)
        c_w = torch.stack((1 - frac[..., 1], frac[..., 1]), dim=-1)
        # [N, K, 3 row taps, 3 col taps, 2 row vertices, 2 col vertices]
        flat = ((times[:, :, None, None, None, None] * size + r_idx[:, None, :, None, :, None]) * size
                + c_idx[:, None, None, :, None, :])
        weights = (time_weights[:, :, None, None, None, None] * r_w[:, None, :, None, :, None]
                   * c_w[:, None, None, :, None, :])
        # Tap-major output like the nearest lookup: [N, 3, 3, K * 4] corners per tap.
        flat = flat.permute(0, 2, 3, 1, 4, 5).reshape(n * SPARSE_NEIGHBOURS, -1)
        weights = weights.permute(0, 2, 3, 1, 4, 5).reshape(n * SPARSE_NEIGHBOURS, -1)
        out = weighted_gather(self.grid.view(-1, self.features), flat.to(torch.int32), weights)
        return out.view(n, self.output_dim)
