"""Multiresolution hash-grid encoding (Instant-NGP) in plain PyTorch, tinycudann when present.

Conventions (the torch backend; tests/test_encodings.py holds a naive reference that follows them):

- Level ``l`` has resolution ``R_l = floor(base_resolution * scale**l)`` cells per axis, with a
  1e-9 relative guard so that a scale derived from ``finest_resolution`` gives exactly that
  resolution on the last level (``16 * (2048/16)**(15/15)`` is 2047.9999999999984 in floats).
- Vertices sit at integer coordinates ``0..R_l`` ("align corners"): an input ``x`` in [0, 1] is
  clamped, scaled to ``p = x * R_l``, its cell is ``c = min(floor(p), R_l - 1)`` and its
  fractional position ``f = p - c`` in [0, 1] (``f = 1`` on the far face ``x = 1``). Instant-NGP
  instead uses ``p = x * (base * scale**l - 1) + 0.5``; the two layouts are not interchangeable.
- A level whose ``(R_l + 1)**d`` vertices fit in ``2**log2_table_size`` rows is dense: vertex
  ``v`` has row ``v_0 + v_1 (R_l+1) + v_2 (R_l+1)**2 + ...`` (axis 0 fastest), and the level
  takes that many rows rounded up to a multiple of 8. Every other level takes ``2**log2_table_size``
  rows addressed by the spatial hash ``(v_0 * 1) ^ (v_1 * 2654435761) ^ (v_2 * 805459861) ^ ...``
  taken mod 2**32 (uint32 wrap-around, computed exactly in int64) and then mod the table size.
- Levels are concatenated into one table ``[total_rows, features_per_level]`` at ``offsets``;
  the output is ``[N, n_levels * features_per_level]``, level-major (level 0's features first).
- Interpolation is d-linear over the cell's ``2**d`` corners; corner ``k`` has bit ``d-1-i`` of
  ``k`` set when it takes ``v_i = c_i + 1`` (axis 0 is the most significant bit).

Speed (this is the training bottleneck on CPU): one custom autograd function covers all points,
levels and corners. It loops over groups of levels of about GROUP_POINTS (level, point) pairs,
so that a group's intermediates stay in cache while the op count stays low. Per group, per-axis
terms [G, d, 2, N] are combined into corner indices and weights [G, 2**d, N] by broadcasting
with points innermost, the weighted gather-sum is one ``embedding_bag`` and the table gradient
one ``index_add_``. Indices are int32; backward gets only them and the fractional positions,
and computes the input gradient analytically (the 2-D atlas grid's input comes from a mapping
network, so gradients must reach ``x``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nvd.core.errors import ConfigError

# Instant-NGP's per-axis hash primes; the first is 1 so that axis 0 stays coherent in memory.
HASH_PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)
BACKENDS = ("auto", "torch", "tcnn")


@dataclass(frozen=True)
class HashGridConfig:
    """Multiresolution hash grid (one dataclass = single source of defaults)."""

    n_levels: int = 16
    features_per_level: int = 2
    log2_table_size: int = 15
    base_resolution: int = 16
    per_level_scale: float | None = 1.25  # growth factor between levels
    # When set (and per_level_scale is None): scale = exp(ln(finest / base) / (n_levels - 1)),
    # so the last level has exactly finest_resolution cells per axis. HyperNVD uses 2048.
    finest_resolution: int | None = None
    init_scale: float = 1e-4  # tables ~ U(-init_scale, init_scale)
    # tcnn = tinycudann, used only when importable and CUDA is available; "auto" picks it then,
    # else torch. Resolved once, when the module is built (the table layout depends on it).
    backend: Literal["auto", "torch", "tcnn"] = "auto"

    def __post_init__(self) -> None:
        if self.n_levels < 1 or self.features_per_level < 1 or self.base_resolution < 1:
            raise ConfigError("hash grid: n_levels, features_per_level and base_resolution must be >= 1")
        if not 3 <= self.log2_table_size <= 26:
            raise ConfigError(f"hash grid: log2_table_size must be in [3, 26], got {self.log2_table_size}")
        if (self.per_level_scale is None) == (self.finest_resolution is None):
            raise ConfigError("hash grid: set exactly one of per_level_scale and finest_resolution "
                              "(per_level_scale=None to derive it from finest_resolution)")
        if self.per_level_scale is not None and self.per_level_scale < 1:
            raise ConfigError(f"hash grid: per_level_scale must be >= 1, got {self.per_level_scale}")
        if self.finest_resolution is not None and self.finest_resolution < self.base_resolution:
            raise ConfigError("hash grid: finest_resolution must be >= base_resolution")
        if self.init_scale < 0:
            raise ConfigError(f"hash grid: init_scale must be >= 0, got {self.init_scale}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"hash grid: backend must be one of {BACKENDS}, got {self.backend!r}")

    @property
    def scale(self) -> float:
        """Growth factor between consecutive levels."""
        if self.per_level_scale is not None:
            return float(self.per_level_scale)
        if self.n_levels == 1:
            return 1.0
        return math.exp(math.log(self.finest_resolution / self.base_resolution) / (self.n_levels - 1))


class LevelLayout(NamedTuple):
    """Per-level geometry of the concatenated table; unpacks as (resolutions, sizes, offsets, dense)."""

    resolutions: tuple[int, ...]  # cells per axis; vertices 0..R per axis
    sizes: tuple[int, ...]  # rows of the table used by each level
    offsets: tuple[int, ...]  # first row of each level
    dense: tuple[bool, ...]  # True: indexed densely, False: hashed

    @property
    def total_rows(self) -> int:
        return self.offsets[-1] + self.sizes[-1]


def level_layout(input_dim: int, cfg: HashGridConfig) -> LevelLayout:
    """Resolutions, row counts, row offsets and dense flags of every level (torch backend)."""
    if not 1 <= input_dim <= len(HASH_PRIMES):
        raise ConfigError(f"hash grid: input_dim must be in [1, {len(HASH_PRIMES)}], got {input_dim}")
    hashed_rows = 1 << cfg.log2_table_size
    resolutions, sizes, offsets, dense = [], [], [], []
    offset = 0
    for level in range(cfg.n_levels):
        res = max(1, math.floor(cfg.base_resolution * cfg.scale**level * (1 + 1e-9)))
        vertices = (res + 1) ** input_dim
        is_dense = vertices <= hashed_rows
        size = -(-vertices // 8) * 8 if is_dense else hashed_rows
        resolutions.append(res)
        sizes.append(size)
        offsets.append(offset)
        dense.append(is_dense)
        offset += size
    if offset >= 2**31:  # indices are int32
        raise ConfigError(f"hash grid: {offset} table rows do not fit int32 indices")
    return LevelLayout(tuple(resolutions), tuple(sizes), tuple(offsets), tuple(dense))


def resolve_backend(cfg: HashGridConfig) -> Literal["torch", "tcnn"]:
    """The backend a HashGrid built now uses: tcnn when allowed, importable and CUDA is present."""
    if cfg.backend == "torch":
        return "torch"
    tcnn_ok = torch.cuda.is_available()
    if tcnn_ok:
        try:
            import tinycudann  # noqa: F401 - availability probe
        except (ImportError, OSError):  # tcnn raises EnvironmentError when it finds no usable GPU
            tcnn_ok = False
    if cfg.backend == "tcnn" and not tcnn_ok:
        raise ConfigError("hash grid: backend 'tcnn' needs the tinycudann package and a CUDA device")
    return "tcnn" if tcnn_ok else "torch"


def table_shape(input_dim: int, cfg: HashGridConfig) -> tuple[int, ...]:
    """Shape of ``HashGrid(input_dim, cfg).table`` without allocating the table.

    Torch backend: ``(total_rows, features_per_level)``. tcnn backend: tcnn's flat parameter
    vector ``(n_params,)`` (read off a freshly built tcnn encoding, which needs CUDA).
    """
    if resolve_backend(cfg) == "tcnn":
        return tuple(_tcnn_encoding(input_dim, cfg).params.shape)
    return (level_layout(input_dim, cfg).total_rows, cfg.features_per_level)


# (level, point) pairs processed together. On the 2-core CPU at 100k points, 3-D, 2**19 rows,
# forward + backward on one thread took 220-230 ms for groups of 2**18 and 2**19 pairs, 260-300
# ms one level at a time, 360 ms at 2**20 (out of cache) and 420 ms all levels at once. Fewer
# groups also means fewer ops, each a fork/join of the intra-op thread pool, which costs a
# scheduler tick whenever another process holds a core.
GROUP_POINTS = 1 << 18


class GridConstants(NamedTuple):
    """Per-level kernel constants (integer tensors, so ``module.double()`` leaves them alone)."""

    resolutions: Tensor  # [L] int64: cells per axis
    offsets: Tensor  # [L] int32: first row of each level (added in place to int32 indices)
    multipliers: Tensor  # [L, d] int64: dense row strides, or hash primes


def grid_constants(layout: LevelLayout, input_dim: int, device: torch.device | str | None = None) -> GridConstants:
    """The kernel constants of ``layout`` on ``device``."""
    return GridConstants(
        resolutions=torch.tensor(layout.resolutions, dtype=torch.int64, device=device),
        offsets=torch.tensor(layout.offsets, dtype=torch.int32, device=device),
        multipliers=torch.tensor([
            [(res + 1) ** axis for axis in range(input_dim)] if dense else list(HASH_PRIMES[:input_dim])
            for res, dense in zip(layout.resolutions, layout.dense)
        ], dtype=torch.int64, device=device),
    )


def _level_groups(layout: LevelLayout, n_points: int) -> list[tuple[int, int]]:
    """Ranges [start, stop) of consecutive levels, all dense or all hashed, of <= GROUP_POINTS work."""
    per_group = max(1, GROUP_POINTS // max(n_points, 1))
    groups, start = [], 0
    for level in range(1, len(layout.dense) + 1):
        if level == len(layout.dense) or layout.dense[level] != layout.dense[start] or level - start == per_group:
            groups.append((start, level))
            start = level
    return groups


def _combine_corners(axis_terms: Tensor, op: Callable[..., Tensor], out: Tensor | None = None) -> Tensor:
    """Per-corner values from per-axis ones: [G, d, 2, N] -> [G, 2**d, N], corner bits axis 0 first.

    ``op`` (add, xor, mul) merges one axis at a time: [G, k, 1, N] op [G, 1, 2, N] -> [G, 2k, N],
    the last merge written into ``out`` when given. Points stay innermost because PyTorch's CPU
    kernels broadcast several times slower over tiny inner dimensions ([N, k, 1] op [N, 1, 2]).
    """
    levels, dim, _, n_points = axis_terms.shape
    acc = axis_terms[:, 0]
    for axis in range(1, dim):
        pair = (acc[:, :, None], axis_terms[:, axis, None])
        if out is not None and axis == dim - 1:
            op(*pair, out=out.view(levels, 2**axis, 2, n_points))
            return out
        acc = op(*pair).view(levels, 2 ** (axis + 1), n_points)
    return acc if out is None else out.copy_(acc)


def _axis_weights(frac: Tensor) -> Tensor:
    """Linear interpolation weights per axis: frac [G, d, N] -> [G, d, 2, N] = (1 - f, f)."""
    return torch.stack((1 - frac, frac), dim=2)


def _point_major(corner_values: Tensor) -> Tensor:
    """[G, 2**d, N] -> [G*N, 2**d], one bag of corners per (level, point) for embedding_bag."""
    return corner_values.transpose(1, 2).reshape(-1, corner_values.shape[1])


class _HashGridFunction(torch.autograd.Function):
    """x [N, d], table [T, F] -> features [N, L*F]; see the module docstring for conventions.

    Works on groups of levels (_level_groups). Saved for backward: x and table (as given, no
    copies), corner rows [L, 2**d, N] int32 and fractional positions [L, d, N].
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, table: Tensor, layout: LevelLayout, consts: GridConstants) -> Tensor:
        n_points, dim = x.shape
        n_levels, corners, features = len(layout.resolutions), 2**dim, table.shape[1]
        # Positions at least in float32: half precision cannot resolve cells at R = 2048.
        xt = x.clamp(0.0, 1.0).t().to(torch.promote_types(x.dtype, torch.float32)).contiguous()  # [d, N]
        idx = torch.empty(n_levels, corners, n_points, dtype=torch.int32, device=x.device)
        frac = torch.empty(n_levels, dim, n_points, dtype=xt.dtype, device=x.device)
        out = torch.empty(n_points, n_levels, features, dtype=table.dtype, device=x.device)
        for start, stop in _level_groups(layout, n_points):
            res = consts.resolutions[start:stop, None, None].to(xt.dtype)
            pos = xt * res  # [G, d, N]
            cell = torch.minimum(pos.floor(), res - 1)  # x = 1 falls in the last cell, with f = 1
            torch.sub(pos, cell, out=frac[start:stop])
            mult = consts.multipliers[start:stop, :, None]
            term = cell.to(torch.int64) * mult  # [G, d, N]; exact: coords < 2**31, primes < 2**32
            if layout.dense[start]:
                term[:, 0] += consts.offsets[start:stop, None]  # the level's first row rides on axis 0
                terms = torch.stack((term, term + mult), dim=2).to(torch.int32)
                _combine_corners(terms, torch.add, out=idx[start:stop])
            else:
                # Masking each axis' product by size - 1 (a power of two) equals masking the XOR
                # by 0xFFFFFFFF (uint32 wrap-around) and then by size - 1, and fits int32.
                terms = (torch.stack((term, term + mult), dim=2) & (layout.sizes[start] - 1)).to(torch.int32)
                _combine_corners(terms, torch.bitwise_xor, out=idx[start:stop])
                idx[start:stop] += consts.offsets[start:stop, None, None]
            weights = _combine_corners(_axis_weights(frac[start:stop]).to(table.dtype), torch.mul)
            feats = F.embedding_bag(_point_major(idx[start:stop]), table, mode="sum",
                                    per_sample_weights=_point_major(weights))
            out[:, start:stop] = feats.view(stop - start, n_points, features).transpose(0, 1)
        ctx.save_for_backward(x, table, idx, frac, consts.resolutions)
        ctx.layout = layout
        return out.view(n_points, n_levels * features)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, table, idx, frac, resolutions = ctx.saved_tensors
        n_levels, corners, n_points = idx.shape
        dim, features = frac.shape[1], table.shape[1]
        # [N, L*F] -> [L, N, F]: one copy makes every level's gradient contiguous, which the
        # broadcasts below need to run vectorised.
        grad = grad_out.reshape(n_points, n_levels, features).transpose(0, 1).contiguous().to(table.dtype)
        grad_table = _TableGrad(table) if ctx.needs_input_grad[1] else None
        grad_xt = torch.zeros(dim, n_points, dtype=table.dtype, device=x.device) if ctx.needs_input_grad[0] else None
        for start, stop in _level_groups(ctx.layout, n_points):
            axis_weights = _axis_weights(frac[start:stop]).to(table.dtype)  # [G, d, 2, N]
            grad_group = grad[start:stop]  # [G, N, F]
            if grad_table is not None:
                grad_table.add(idx[start:stop], _combine_corners(axis_weights, torch.mul), grad_group)
            if grad_xt is not None:
                rows = _point_major(idx[start:stop])
                res = resolutions[start:stop, None].to(table.dtype)
                # d out / d f_i is the forward's corner sum with axis i's weights (1 - f_i, f_i)
                # replaced by their derivatives (-1, 1): the same fast embedding_bag gather-sum.
                for axis in range(dim):
                    slope_weights = axis_weights.clone()
                    slope_weights[:, axis, 0], slope_weights[:, axis, 1] = -1.0, 1.0
                    slope = _point_major(_combine_corners(slope_weights, torch.mul))
                    d_out = F.embedding_bag(rows, table, mode="sum", per_sample_weights=slope)
                    d_frac = torch.linalg.vecdot(d_out.view_as(grad_group), grad_group)  # [G, N]
                    grad_xt[axis] += (d_frac * res).sum(0)  # d f_i / d x_i = R_l
        grad_x = None
        if grad_xt is not None:
            inside = (x >= 0) & (x <= 1)  # the clamp passes no gradient outside [0, 1]
            grad_x = (grad_xt.t() * inside).to(x.dtype)
        return grad_x, None if grad_table is None else grad_table.grad, None, None


class _TableGrad:
    """Accumulator of dLoss/dtable: each corner's weight times its level's output gradient, per row.

    index_add_ on a 1-D tensor is several times faster than on the rows of a 2-D one (and the
    2-D path is slower still with int32 indices), so the gradient is kept 1-D, feature pairs
    packed as one complex number when F is even (complex addition adds real and imaginary parts
    independently: the same float additions).
    """

    def __init__(self, table: Tensor) -> None:
        self.grad = torch.zeros_like(table)
        features = table.shape[1]
        self.packed = features % 2 == 0
        self.per_row = features // 2 if self.packed else features
        flat = self.grad.view(-1)
        self.flat = torch.view_as_complex(flat.view(-1, 2)) if self.packed else flat

    def add(self, rows: Tensor, weights: Tensor, grad_group: Tensor) -> None:
        """rows, weights [G, 2**d, N]; grad_group [G, N, F] contiguous."""
        if self.packed:  # real * complex [.., F/2]: several times faster than real * real [.., F]
            grad_group = torch.view_as_complex(grad_group.view(*grad_group.shape[:2], self.per_row, 2))
        src = (weights[..., None] * grad_group[:, None]).view(-1)  # [G, 2**d, N, F or F/2]
        rows = rows.reshape(-1)
        if self.per_row > 1:
            pairs = torch.arange(self.per_row, device=rows.device)
            rows = (rows.to(torch.int64)[:, None] * self.per_row + pairs).view(-1)
        self.flat.index_add_(0, rows, src)


def _layout_matches(layout: LevelLayout, dim: int) -> bool:
    """Whether ``layout`` is level_layout's for dim-D inputs (dense levels' sizes depend on d)."""
    for res, size, _, dense in zip(*layout):
        vertices = (res + 1) ** dim
        if (size != -(-vertices // 8) * 8) if dense else (vertices <= size):
            return False
    return True


def hash_grid_encode(x: Tensor, table: Tensor, layout: LevelLayout, consts: GridConstants | None = None) -> Tensor:
    """Encode points with the torch kernel: x [N, d] in [0, 1] -> [N, L * F] in table's dtype.

    table: [layout.total_rows, F]; consts: grid_constants(layout, d) on x's device (built here
    when None). Differentiable wrt both x and table, which may be any tensor (e.g. a
    hypernetwork's output).
    """
    if x.dim() != 2 or not 1 <= x.shape[1] <= len(HASH_PRIMES):
        raise ValueError(f"hash grid: expected x of shape [N, d <= {len(HASH_PRIMES)}], got {tuple(x.shape)}")
    if table.dim() != 2 or table.shape[0] != layout.total_rows:
        raise ValueError(f"hash grid: expected a table of {layout.total_rows} rows, got {tuple(table.shape)}")
    dim = x.shape[1]
    if not _layout_matches(layout, dim):
        raise ValueError(f"hash grid: the level layout was not made for {dim}-D inputs")
    if consts is None:
        consts = grid_constants(layout, dim, x.device)
    return _HashGridFunction.apply(x, table, layout, consts)


def _tcnn_encoding(input_dim: int, cfg: HashGridConfig) -> nn.Module:
    """tinycudann's hash grid with cfg's settings (tcnn's own resolution convention and layout)."""
    import tinycudann as tcnn

    return tcnn.Encoding(input_dim, {
        "otype": "HashGrid",
        "n_levels": cfg.n_levels,
        "n_features_per_level": cfg.features_per_level,
        "log2_hashmap_size": cfg.log2_table_size,
        "base_resolution": cfg.base_resolution,
        "per_level_scale": cfg.scale,
    }, dtype=torch.float32)


class HashGrid(nn.Module):
    """Multiresolution hash-grid encoding: x [N, input_dim] in [0, 1] -> float32 [N, output_dim].

    ``table`` is the only learnable tensor (``[total_rows, features_per_level]``, all levels
    concatenated; see the module docstring for the layout) and forward reads ``self.table`` as
    given, so torch.func.functional_call can substitute a generated table and gradients flow
    back to its producer. Kernel constants are non-persistent buffers: the state_dict holds
    only ``table``.

    With the tcnn backend (see HashGridConfig.backend) ``table`` is tinycudann's flat parameter
    vector instead, with tcnn's own level layout and resolution convention: tables of the two
    backends are not interchangeable.
    """

    def __init__(self, input_dim: int, cfg: HashGridConfig = HashGridConfig()) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.cfg = cfg
        self.output_dim = cfg.n_levels * cfg.features_per_level
        self.backend = resolve_backend(cfg)
        if self.backend == "tcnn":
            encoding = _tcnn_encoding(input_dim, cfg)
            # Kept out of the module tree so its params are not a second learnable tensor.
            self._tcnn = (encoding,)
            self.table = nn.Parameter(torch.empty_like(encoding.params))
        else:
            self.layout = level_layout(input_dim, cfg)
            for name, value in grid_constants(self.layout, input_dim)._asdict().items():
                self.register_buffer(name, value, persistent=False)
            self.table = nn.Parameter(torch.empty(self.layout.total_rows, cfg.features_per_level))
        with torch.no_grad():
            self.table.uniform_(-cfg.init_scale, cfg.init_scale)

    table_shape = staticmethod(table_shape)

    def forward(self, x: Tensor) -> Tensor:
        """x [N, input_dim] in [0, 1] (clamped) -> [N, output_dim] in the table's dtype."""
        if self.backend == "tcnn":
            return self._tcnn_forward(x)
        if x.dim() != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"hash grid: expected x of shape [N, {self.input_dim}], got {tuple(x.shape)}")
        consts = GridConstants(self.resolutions, self.offsets, self.multipliers)
        return hash_grid_encode(x, self.table, self.layout, consts)

    def _tcnn_forward(self, x: Tensor) -> Tensor:
        (encoding,) = self._tcnn
        if not x.is_cuda:
            raise ValueError("hash grid: the tcnn backend needs inputs on CUDA")
        return torch.func.functional_call(encoding, {"params": self.table}, (x.clamp(0.0, 1.0),))
