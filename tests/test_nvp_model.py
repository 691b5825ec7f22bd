"""NVP model: grid lookups against naive references, gradients, shapes, sizes, a short fit."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.func import functional_call

from nvd.core.errors import ConfigError
from nvd.models.nvp.config import NVP_SIZES, NVPConfig, nvp_config
from nvd.models.nvp.grids import PLANE_AXES, MultiResPlanes, SparseGrid
from nvd.models.nvp.model import NVP

TINY = NVPConfig(levels=3, base_resolution=4, per_level_scale=1.5, features=2, sparse_size=8,
                 siren_width=32, siren_layers=3)


def naive_planes(planes: MultiResPlanes, coords: torch.Tensor) -> torch.Tensor:
    """Per point, plane and level: the explicit bilinear formula on the level image."""
    out = []
    for point in coords.clamp(0, 1).tolist():
        feats = []
        for plane, (a, b) in enumerate(PLANE_AXES):
            for level in range(len(planes.sides)):
                img = planes.level(plane, level)  # [F, rows, cols]
                rows, cols = img.shape[1:]
                u, v = point[a] * (rows - 1), point[b] * (cols - 1)
                i, j = min(int(math.floor(u)), rows - 2), min(int(math.floor(v)), cols - 2)
                fu, fv = u - i, v - j
                feats.append((1 - fu) * (1 - fv) * img[:, i, j] + (1 - fu) * fv * img[:, i, j + 1]
                             + fu * (1 - fv) * img[:, i + 1, j] + fu * fv * img[:, i + 1, j + 1])
        out.append(torch.cat(feats))
    return torch.stack(out)


def test_level_sides_match_the_reference_list():
    sides = NVPConfig().level_sides
    assert len(sides) == 16
    assert sides[:5] == (16, 22, 30, 40, 54)
    assert sides[-1] == 1443
    # Integer sides are not bumped by float noise.
    assert NVPConfig(levels=3, base_resolution=100, per_level_scale=1.1).level_sides == (100, 110, 121)


def test_sizes_and_overrides():
    assert NVP_SIZES["S"].features == 2 and NVP_SIZES["L"].features == 4
    assert nvp_config("L", levels=4).levels == 4 and nvp_config("L", levels=4).features == 4
    assert nvp_config(None) == NVPConfig()
    with pytest.raises(ConfigError):
        nvp_config("M")
    with pytest.raises(ConfigError):
        nvp_config("S", nonsense=1)
    with pytest.raises(ConfigError):
        NVPConfig(base_resolution=1)


@pytest.mark.parametrize("features", [2, 4])
def test_latent_width_is_57f(features):
    assert NVPConfig(features=features).latent_dim == 57 * features
    model = NVP(2, 5, 7, TINY)
    assert model.latent(torch.rand(11, 3)).shape == (11, TINY.latent_dim)
    assert TINY.latent_dim == (3 * TINY.levels + 9) * TINY.features


def test_plane_lookup_matches_naive_bilinear_float64():
    torch.manual_seed(0)
    planes = MultiResPlanes((2, 3, 5, 8), features=3, init_scale=1.0).double()
    coords = torch.rand(40, 3, dtype=torch.float64)
    # Edges, corners and out-of-range inputs (clamped) too.
    coords = torch.cat((coords, torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.5],
                                              [-0.3, 1.7, 0.25]], dtype=torch.float64)))
    got = planes(coords)
    assert got.shape == (44, 3 * 4 * 3) and got.dtype == torch.float64
    torch.testing.assert_close(got, naive_planes(planes, coords), rtol=1e-12, atol=1e-12)


def test_plane_level_agrees_with_grid_sample():
    """The align-corners convention is grid_sample's: level (plane 0) at (row, col)."""
    torch.manual_seed(1)
    planes = MultiResPlanes((4, 6), features=2, init_scale=1.0).double()
    coords = torch.rand(25, 3, dtype=torch.float64)
    got = planes(coords).view(25, 3, 2, 2)[:, 0, 1]  # plane rc, level 1
    img = planes.level(0, 1)[None]  # [1, F, side, side]
    grid = (coords[:, [2, 1]] * 2 - 1)[None, None]  # grid_sample wants (x = col, y = row) in [-1, 1]
    ref = torch.nn.functional.grid_sample(img, grid, mode="bilinear", align_corners=True)[0, :, 0].t()
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


def test_plane_gradcheck():
    torch.manual_seed(2)
    planes = MultiResPlanes((2, 3), features=2, init_scale=1.0).double()
    table = planes.table.detach().clone().requires_grad_(True)
    # Away from vertex lines, where the interpolant is not differentiable.
    coords = (torch.rand(6, 3, dtype=torch.float64) * 0.4 + 0.05).requires_grad_(True)

    def fn(tab: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return functional_call(planes, {"table": tab}, (x,))

    assert torch.autograd.gradcheck(fn, (table, coords), eps=1e-6, atol=1e-8)


def coded_sparse_grid(interpolation: str = "nearest", frames: int = 2, size: int = 4) -> SparseGrid:
    """A sparse grid whose cell (t, r, c) holds (100 t + 10 r + c, -(...))."""
    grid = SparseGrid(num_frames=frames, size=size, features=2, interpolation=interpolation)
    with torch.no_grad():
        t, r, c = torch.meshgrid(torch.arange(frames), torch.arange(size), torch.arange(size), indexing="ij")
        code = (100 * t + 10 * r + c).float()
        grid.grid.copy_(torch.stack((code, -code), dim=-1))
    return grid


def test_sparse_grid_neighbourhood_is_clamped_at_borders():
    grid = coded_sparse_grid()
    coords = torch.tensor([[0.0, 0.0, 0.0],  # frame 0, top-left corner
                           [1.0, 1.0, 1.0],  # frame 1, bottom-right corner
                           [0.2, 0.5, 0.34]])  # frame 0 (nearest), row 0.5*3 = 1.5 -> 2 (halves up), col 1.02 -> 1
    out = grid(coords).view(3, 9, 2)
    expected = torch.tensor([
        [0, 0, 1, 0, 0, 1, 10, 10, 11],
        [122, 123, 123, 132, 133, 133, 132, 133, 133],
        [10, 11, 12, 20, 21, 22, 30, 31, 32],
    ], dtype=torch.float32)
    torch.testing.assert_close(out[..., 0], expected)
    torch.testing.assert_close(out[..., 1], -expected)


@pytest.mark.parametrize("frames,height,width", [(1, 6, 10), (3, 5, 4)])
def test_output_shapes(frames, height, width):
    model = NVP(frames, height, width, TINY)
    coords = torch.rand(17, 3)
    assert model(coords).shape == (17, 3)
    frame = model.render_frame(frames - 1)
    assert frame.shape == (height, width, 3)
    assert frame.min() >= 0 and frame.max() <= 1
    assert model.render_frame(0, height=2 * height, width=3 * width, chunk=7).shape == (2 * height, 3 * width, 3)
    with pytest.raises(IndexError):
        model.render_frame(frames)


def test_parameter_count_matches_modules():
    model = NVP(5, 8, 8, TINY)
    assert model.parameter_count() == NVP.parameter_count_for(5, 8, 8, TINY)
    groups = NVP.parameter_groups_for(5, 8, 8, TINY)
    assert groups["planes"] == model.planes.table.numel()
    assert groups["sparse"] == model.sparse.grid.numel() == 5 * 8 * 8 * 2
    assert groups["decoder"] == sum(p.numel() for p in model.decoder.parameters())


@pytest.mark.parametrize("size", ["S", "L"])
def test_parameter_count_1080p_600_frames(size):
    cfg = dataclasses.replace(NVP_SIZES[size], cap_to_video=False)  # the paper's square levels
    groups = NVP.parameter_groups_for(600, 1080, 1920, cfg)
    total = NVP.parameter_count_for(600, 1080, 1920, cfg)
    print(f"NVP-{size}: {groups} total {total:,}")
    assert groups["sparse"] == 600 * 300 * 300 * cfg.features
    assert groups["planes"] == 3 * sum(s * s for s in cfg.level_sides) * cfg.features
    assert groups["sparse"] > groups["planes"] > 100 * groups["decoder"]
    # At 8 bits per parameter over 600 * 1920 * 1080 pixels: the paper's ~0.9 bpp for NVP-S.
    bpp = total * 8 / (600 * 1920 * 1080)
    assert (0.8 < bpp < 1.0) if size == "S" else (1.6 < bpp < 2.0)


def test_short_fit_reduces_mse():
    torch.manual_seed(0)
    frames, height, width = 4, 16, 16
    t, r, c = torch.meshgrid(torch.linspace(0, 1, frames), torch.linspace(0, 1, height),
                             torch.linspace(0, 1, width), indexing="ij")
    coords = torch.stack((t, r, c), dim=-1).view(-1, 3)
    target = torch.stack((c, r, 0.5 * (t + c)), dim=-1).view(-1, 3) * 2 - 1  # gradients in [-1, 1]
    model = NVP(frames, height, width, TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    with torch.no_grad():
        start = torch.mean((model(coords) - target) ** 2).item()
    for _ in range(60):
        loss = torch.mean((model(coords) - target) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        end = torch.mean((model(coords) - target) ** 2).item()
    assert end < 0.05 * start, (start, end)


def test_plane_axes_are_capped_at_the_video_samples():
    """With cap_to_video no axis has more vertices than frames, rows or columns: the finest
    level of a 4-frame 6x9 video is 4 x 6 (t, row) and 6 x 9 (row, col); the lookup still
    matches the naive bilinear formula on those rectangular images."""
    cfg = dataclasses.replace(TINY, base_resolution=5, per_level_scale=2.0)  # sides 5, 10, 20
    model = NVP(4, 6, 9, cfg)
    assert model.planes.shapes[0] == ((5, 5), (6, 9), (6, 9))  # rc
    assert model.planes.shapes[1] == ((4, 5), (4, 6), (4, 6))  # tr
    assert model.planes.shapes[2] == ((4, 5), (4, 9), (4, 9))  # tc
    assert model.planes.table.numel() == NVP.parameter_groups_for(4, 6, 9, cfg)["planes"]
    square = NVP(4, 6, 9, dataclasses.replace(cfg, cap_to_video=False))
    assert square.planes.shapes[1][2] == (20, 20)
    planes = model.planes.double()
    with torch.no_grad():
        planes.table.normal_()
    coords = torch.rand(20, 3, dtype=torch.float64)
    coords[0] = 1.0
    torch.testing.assert_close(planes(coords), naive_planes(planes, coords), rtol=1e-12, atol=1e-12)
    # every vertex of a capped axis sits on a sample: a one-frame video uses two t vertices
    assert NVP(1, 6, 9, cfg).planes.shapes[1][0] == (2, 5)


def test_linear_sparse_grid_is_the_nearest_lookup_at_cells_and_bilinear_between():
    nearest, linear = coded_sparse_grid("nearest"), coded_sparse_grid("linear")
    t, r, c = torch.meshgrid(torch.arange(2.0), torch.arange(4.0), torch.arange(4.0), indexing="ij")
    cells = torch.stack((t, r / 3, c / 3), dim=-1).view(-1, 3)  # every cell centre, borders included
    torch.testing.assert_close(linear(cells), nearest(cells))
    # Halfway between cells (1, 1) and (1, 2) of frame 0: the mean of the two cells' lookups.
    between = torch.tensor([[0.0, 1 / 3, 1.5 / 3]])
    torch.testing.assert_close(linear(between), (nearest(cells[[5]]) + nearest(cells[[6]])) / 2)
    # The codes are affine in (r, c), so each tap reads the code at its clamped position.
    points = torch.rand(30, 3)
    pos = points[:, 1:] * 3
    offsets = torch.tensor([-1.0, 0.0, 1.0])
    rows = (pos[:, 0, None, None] + offsets[None, :, None]).clamp(0, 3).expand(-1, 3, 3)
    cols = (pos[:, 1, None, None] + offsets[None, None, :]).clamp(0, 3).expand(-1, 3, 3)
    code = 100 * torch.floor(points[:, 0] + 0.5)[:, None, None] + 10 * rows + cols
    torch.testing.assert_close(linear(points).view(30, 9, 2)[..., 0], code.reshape(30, 9), rtol=1e-5, atol=1e-4)


def test_linear_sparse_grid_matches_grid_sample_and_has_gradients():
    """Each tap is grid_sample (bilinear, align corners, border) of its slice at the query's
    position offset by one cell; time blending mixes the two slices around t."""
    torch.manual_seed(3)
    grid = SparseGrid(num_frames=3, size=5, features=2, init_scale=1.0, interpolation="linear").double()
    coords = torch.rand(12, 3, dtype=torch.float64)
    coords[:, 0] = torch.tensor([0.0, 0.5, 1.0]).repeat(4)  # on the slices, so the nearest is exact
    got = grid(coords).view(12, 3, 3, 2)
    for n, (t, r, c) in enumerate(coords.tolist()):
        image = grid.grid[round(t * 2)].permute(2, 0, 1)[None]  # [1, F, S, S]
        for i, di in enumerate((-1, 0, 1)):
            for j, dj in enumerate((-1, 0, 1)):
                q = [min(max(v * 4 + d, 0.0), 4.0) / 4 * 2 - 1 for v, d in ((c, dj), (r, di))]  # (x=col, y=row)
                ref = torch.nn.functional.grid_sample(image, torch.tensor(q, dtype=torch.float64).view(1, 1, 1, 2),
                                                      mode="bilinear", align_corners=True)
                torch.testing.assert_close(got[n, i, j], ref.view(2), rtol=1e-12, atol=1e-12)

    def at(t: float) -> torch.Tensor:
        return torch.cat((torch.full_like(coords[:, :1], t), coords[:, 1:]), dim=1)

    # halfway between slices 0 and 1
    torch.testing.assert_close(grid(at(0.25), blend_time=True), (grid(at(0.0)) + grid(at(0.5))) / 2)
    table = grid.grid.detach().clone().requires_grad_(True)
    inside = torch.rand(5, 3, dtype=torch.float64) * 0.3 + 0.1  # away from cell lines

    def fn(values: torch.Tensor) -> torch.Tensor:
        return functional_call(grid, {"grid": values}, (inside, True))

    assert torch.autograd.gradcheck(fn, (table,), eps=1e-6, atol=1e-8)


def test_sparse_interpolation_is_checked_and_reaches_the_model():
    with pytest.raises(ConfigError, match="sparse_interpolation"):
        NVPConfig(sparse_interpolation="cubic")
    with pytest.raises(ConfigError, match="sparse_size >= 2"):
        NVPConfig(sparse_size=1, sparse_interpolation="linear")
    model = NVP(2, 5, 7, dataclasses.replace(TINY, sparse_interpolation="linear"))
    assert model.sparse.interpolation == "linear"
    assert model.parameter_count() == NVP.parameter_count_for(2, 5, 7, TINY)  # same tensors as nearest
