"""Hash-grid encoding: values against a naive per-point reference, gradients, module contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from nvd.core.errors import ConfigError
from nvd.nn.encodings import (
    HASH_PRIMES,
    HashGrid,
    HashGridConfig,
    hash_grid_encode,
    level_layout,
    resolve_backend,
    table_shape,
)

# Small grids where the coarse levels are dense and the finest ones hashed (2**8 rows).
GRIDS = {
    2: HashGridConfig(n_levels=5, features_per_level=2, log2_table_size=8, base_resolution=4,
                      per_level_scale=1.5, backend="torch"),
    3: HashGridConfig(n_levels=5, features_per_level=2, log2_table_size=8, base_resolution=2,
                      per_level_scale=1.5, backend="torch"),
}


def naive_encode(x: list[list[float]], table: list[list[float]], cfg: HashGridConfig, dtype: type) -> list[list[float]]:
    """Per point, per level, per corner, in plain Python ints and floats.

    Convention under test: R_l = floor(base * scale**l) (exact for these configs), vertices
    0..R_l, p = clamp(x, 0, 1) * R_l rounded like the kernel's float type ``dtype``, cell
    min(floor(p), R_l - 1); dense rows v_0 + v_1 (R+1) + ..., hashed rows
    (XOR_i v_i * prime_i mod 2**32) mod table size; levels concatenated.
    """
    d = len(x[0])
    size_hashed = 2**cfg.log2_table_size
    out = []
    for point in x:
        feats: list[float] = []
        offset = 0
        for level in range(cfg.n_levels):
            res = math.floor(cfg.base_resolution * cfg.per_level_scale**level)
            dense = (res + 1) ** d <= size_hashed
            size = -(-((res + 1) ** d) // 8) * 8 if dense else size_hashed
            pos = [float(dtype(min(max(v, 0.0), 1.0)) * dtype(res)) for v in point]
            cell = [min(math.floor(p), res - 1) for p in pos]
            frac = [p - c for p, c in zip(pos, cell)]
            acc = [0.0] * len(table[0])
            for corner in range(2**d):
                bits = [(corner >> (d - 1 - i)) & 1 for i in range(d)]
                vertex = [c + b for c, b in zip(cell, bits)]
                weight = 1.0
                for f, b in zip(frac, bits):
                    weight *= f if b else 1.0 - f
                if dense:
                    row = sum(v * (res + 1) ** i for i, v in enumerate(vertex))
                else:
                    h = 0
                    for v, prime in zip(vertex, HASH_PRIMES):
                        h ^= (v * prime) & 0xFFFFFFFF
                    row = h % size
                for j, value in enumerate(table[offset + row]):
                    acc[j] += weight * value
            feats.extend(acc)
            offset += size
        out.append(feats)
    return out


def test_level_layout_dense_then_hashed() -> None:
    layout = level_layout(2, GRIDS[2])
    assert layout.resolutions == (4, 6, 9, 13, 20)
    assert layout.sizes == (32, 56, 104, 200, 256)  # (R+1)**2 rounded up to 8; the last hashed
    assert layout.offsets == (0, 32, 88, 192, 392)
    assert layout.dense == (True, True, True, True, False)
    resolutions, sizes, offsets, dense = level_layout(3, GRIDS[3])
    assert dense == (True, True, True, False, False)
    assert table_shape(3, GRIDS[3]) == (offsets[-1] + sizes[-1], 2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("d", [2, 3])
def test_values_match_naive_reference(d: int, dtype: torch.dtype) -> None:
    torch.manual_seed(d)
    cfg = GRIDS[d]
    grid = HashGrid(d, cfg).to(dtype)
    with torch.no_grad():
        grid.table.uniform_(-1, 1)
    x = torch.rand(60, d, dtype=dtype) * 1.2 - 0.1  # some points outside [0, 1] (clamped)
    x[0] = 0.0
    x[1] = 1.0  # the far face: last cell, fractional position 1
    x[2, 0] = 0.5  # exactly on a vertex of every even resolution
    out = grid(x)
    assert out.dtype == dtype and out.shape == (60, grid.output_dim)
    ref = naive_encode(x.tolist(), grid.table.tolist(), cfg, np.float64 if dtype == torch.float64 else np.float32)
    torch.testing.assert_close(out.double(), torch.tensor(ref, dtype=torch.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize("d,features", [(2, 2), (3, 2), (2, 3), (1, 4)])
def test_gradcheck_table_and_input(d: int, features: int) -> None:
    torch.manual_seed(0)
    cfg = HashGridConfig(n_levels=3, features_per_level=features, log2_table_size=3 if d == 1 else 6,
                         base_resolution=3, per_level_scale=2.0, backend="torch")
    layout = level_layout(d, cfg)
    assert not all(layout.dense)
    table = (torch.rand(layout.total_rows, features, dtype=torch.float64) * 2 - 1).requires_grad_()
    x = (torch.rand(5, d, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()  # off cell faces a.s.
    assert torch.autograd.gradcheck(lambda x, table: hash_grid_encode(x, table, layout), (x, table))


def test_layout_of_another_dimension_is_refused() -> None:
    layout = level_layout(2, GRIDS[2])
    with pytest.raises(ValueError, match="3-D"):
        hash_grid_encode(torch.rand(4, 3), torch.zeros(layout.total_rows, 2), layout)


def test_level_groups_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's grouping of levels (a speed knob) changes no value and no table gradient
    (same additions in the same order) and the input gradient only by the summation order."""
    import nvd.nn.encodings

    torch.manual_seed(1)
    grid = HashGrid(3, GRIDS[3])
    x = torch.rand(40, 3, requires_grad=True)

    def run() -> tuple[torch.Tensor, ...]:
        grid.table.grad, x.grad = None, None
        out = grid(x)
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        return out.detach(), grid.table.grad, x.grad

    out, grad_table, grad_x = run()
    monkeypatch.setattr(nvd.nn.encodings, "GROUP_POINTS", 1)  # one level per group
    out_1, grad_table_1, grad_x_1 = run()
    assert torch.equal(out, out_1) and torch.equal(grad_table, grad_table_1)
    torch.testing.assert_close(grad_x, grad_x_1, rtol=1e-6, atol=0)


def test_input_gradient_is_zero_where_clamped() -> None:
    grid = HashGrid(2, GRIDS[2]).double()
    with torch.no_grad():
        grid.table.uniform_(-1, 1)
    x = torch.tensor([[-0.3, 0.4], [0.3, 1.7], [0.3, 0.4]], dtype=torch.float64, requires_grad=True)
    grid(x).sum().backward()
    assert x.grad[0, 0] == 0 and x.grad[1, 1] == 0
    assert (x.grad[2] != 0).all() and x.grad[0, 1] != 0 and x.grad[1, 0] != 0


def test_clamps_inputs_outside_unit_cube() -> None:
    grid = HashGrid(3, GRIDS[3])
    x = torch.tensor([[-0.5, 0.2, 1.5], [2.0, -1.0, 0.7]])
    torch.testing.assert_close(grid(x), grid(x.clamp(0, 1)), rtol=0, atol=0)


def test_non_contiguous_input() -> None:
    grid = HashGrid(2, GRIDS[2])
    uv = torch.rand(20, 3, 2)[:, 1]  # like uv[:, layer] in the decomposition
    assert not uv.is_contiguous()
    torch.testing.assert_close(grid(uv), grid(uv.contiguous()), rtol=0, atol=0)


def test_half_precision_input_is_encoded_in_float32() -> None:
    grid = HashGrid(2, HashGridConfig(backend="torch", per_level_scale=None, finest_resolution=2048))
    x = torch.rand(20, 2).half().requires_grad_()
    out = grid(x)
    torch.testing.assert_close(out, grid(x.detach().float()), rtol=0, atol=0)
    out.sum().backward()
    assert out.dtype == torch.float32 and x.grad.dtype == torch.float16


def test_state_dict_holds_only_the_table() -> None:
    grid = HashGrid(3, GRIDS[3])
    assert list(grid.state_dict()) == ["table"]
    assert [name for name, _ in grid.named_parameters()] == ["table"]
    assert grid.table.dtype == torch.float32
    assert tuple(grid.table.shape) == table_shape(3, GRIDS[3]) == HashGrid.table_shape(3, GRIDS[3])
    assert grid.table.abs().max() <= GRIDS[3].init_scale
    fresh = HashGrid(3, GRIDS[3])
    fresh.load_state_dict(grid.state_dict())
    x = torch.rand(10, 3)
    torch.testing.assert_close(fresh(x), grid(x))


def test_defaults_and_output_dim() -> None:
    cfg = HashGridConfig()
    assert (cfg.n_levels, cfg.features_per_level, cfg.log2_table_size, cfg.base_resolution) == (16, 2, 15, 16)
    grid = HashGrid(2, HashGridConfig(backend="torch"))
    assert grid.output_dim == 32
    out = grid(torch.rand(7, 2))
    assert out.shape == (7, 32) and out.dtype == torch.float32
    assert level_layout(2, cfg).resolutions == tuple(math.floor(16 * 1.25**level) for level in range(16))


def test_finest_resolution_sets_the_scale() -> None:
    cfg = HashGridConfig(per_level_scale=None, finest_resolution=2048, log2_table_size=19)
    assert cfg.scale == pytest.approx(2 ** (7 / 15))
    resolutions = level_layout(2, cfg).resolutions
    assert resolutions[0] == 16 and resolutions[-1] == 2048  # not 2047: float round-off guarded
    assert list(resolutions) == sorted(resolutions)
    with pytest.raises(ConfigError):
        HashGridConfig(finest_resolution=2048)  # ambiguous: per_level_scale is also set
    with pytest.raises(ConfigError):
        HashGridConfig(per_level_scale=None)


def test_backend_resolution() -> None:
    assert resolve_backend(HashGridConfig(backend="torch")) == "torch"
    try:
        import tinycudann  # noqa: F401
    except ImportError:
        assert resolve_backend(HashGridConfig(backend="auto")) == "torch"
        with pytest.raises(ConfigError):
            HashGrid(2, HashGridConfig(backend="tcnn"))


def test_functional_call_with_generated_table() -> None:
    """A hypernetwork's output replaces the table; gradients reach the hypernetwork."""
    torch.manual_seed(0)
    cfg = GRIDS[2]
    grid = HashGrid(2, cfg)
    rows, features = table_shape(2, cfg)
    hyper = nn.Linear(4, rows * features)
    code = torch.randn(4)
    table = hyper(code).view(rows, features)
    x = torch.rand(30, 2, requires_grad=True)
    out = functional_call(grid, {"table": table}, (x,))
    torch.testing.assert_close(out, hash_grid_encode(x, table.detach(), grid.layout))
    (out**2).sum().backward()
    assert grid.table.grad is None
    assert hyper.weight.grad is not None and hyper.weight.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0
    # The table gradient that reached the hypernetwork is the direct one.
    direct = table.detach().requires_grad_()
    (hash_grid_encode(x.detach(), direct, grid.layout) ** 2).sum().backward()
    torch.testing.assert_close(hyper.bias.grad, direct.grad.view(-1))
