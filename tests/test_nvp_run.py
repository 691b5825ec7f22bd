"""NVP's training, quantisation, resampling and tables, in process on tiny clips."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY_NVP, kill_at, smooth_clip, write_frames_store

from nvd.core.errors import ConfigError, InputError
from nvd.models.nvp.config import ResamplingConfig, nvp_train_config
from nvd.models.nvp.model import NVP
from nvd.models.nvp.objective import (
    NVPTask,
    axis_coordinate,
    cosine_lr,
    render_fine,
    render_observed,
    render_video,
    subpixel_positions,
)
from nvd.models.nvp.quantise import dequantised_model, model_bits, quantise_features, quantise_groups
from nvd.models.nvp.resampling import (
    bicubic_upsample,
    downsample,
    heldout_frames,
    kept_frames,
    linear_blend,
    render_interpolated,
    resampling_config,
)
from nvd.models.nvp.run import load_nvp, run_identity, train_nvp, train_nvp_run
from nvd.models.nvp.tables import encoding_rows, resampling_rows
from nvd.train.loop import CheckpointError, read_checkpoint, seed_everything, train


def tiny_cfg(model=None, **overrides):
    values = json.loads(json.dumps(TINY_NVP))
    values["model"].update(model or {})
    values.update(overrides)
    return nvp_train_config(values)


def texture_clip(frames: int = 6, height: int = 16, width: int = 24):
    """uint8 [T, H, W, 3]: two drifting gratings of 0.1 to 0.2 cycles per pixel, detail that a
    2x downsampling keeps only in part (bicubic upsampling of it: 27.9 dB)."""
    t, y, x = torch.meshgrid(torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij")
    a = torch.sin(2 * math.pi * (0.17 * x + 0.05 * y) + t / 3)
    b = torch.sin(2 * math.pi * (0.13 * y - 0.07 * x) - t / 4)
    rgb = torch.stack((128 + 60 * a + 40 * b, 128 + 50 * b, 128 - 40 * a), dim=-1)
    return rgb.round().clamp(0, 255).to(torch.uint8)


def fitted(frames, cfg, footprint=1):
    """The model of a task trained for cfg.train.iterations steps, in eval mode."""
    generator = torch.Generator().manual_seed(cfg.train.seed)
    task = NVPTask(frames, cfg, footprint)
    optimizer = task.optimizer()
    for iteration in range(1, cfg.train.iterations + 1):
        loss, _ = task.step_loss(iteration, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return task.model.eval()


def test_cosine_schedule_ends_at_lr_min():
    assert cosine_lr(1, 100, 1e-2, 1e-5) == pytest.approx(1e-2)
    assert cosine_lr(100, 100, 1e-2, 1e-5) == pytest.approx(1e-5)
    assert cosine_lr(50, 99, 1e-2, 1e-5) == pytest.approx((1e-2 + 1e-5) / 2, rel=1e-6)


def test_size_and_model_keys_compose():
    cfg = nvp_train_config({"size": "L", "model": {"levels": 3}})
    assert cfg.model.features == 4 and cfg.model.levels == 3
    assert nvp_train_config({"model": {"levels": 3}}).model.features == 2  # S is the default size
    with pytest.raises(ConfigError, match="budgets"):
        nvp_train_config({"budgets": [5], "train": {"iterations": 4}})
    with pytest.raises(ConfigError, match="unknown"):
        nvp_train_config({"size": "M"})


def test_quantisation_round_trip_is_within_half_a_step_per_group():
    torch.manual_seed(0)
    values = torch.randn(5, 1000) * torch.tensor([1.0, 10.0, 0.01, 3.0, 0.0])[:, None]
    q = quantise_groups(values)
    assert q.codes.dtype == torch.uint8 and int(q.codes.max()) == 255
    bound = (q.high - q.low) / 510
    error = (q.dequantise() - values).abs().max(dim=1).values
    assert torch.all(error <= bound * (1 + 1e-5) + 1e-7)
    assert error[4] == 0  # a constant group comes back exact
    # a whole model: every (plane, level, feature) and sparse feature has its own range
    cfg = tiny_cfg().model
    model = NVP(3, 8, 12, cfg)
    with torch.no_grad():
        model.planes.table.normal_()
        model.sparse.grid.uniform_(-2, 5)
    codes = quantise_features(model)
    assert len(codes.levels) == 3 * cfg.levels and codes.groups == cfg.levels * 3 * cfg.features + cfg.features
    restored = dequantised_model(model, codes)
    for name in ("planes.table", "sparse.grid"):
        a, b = dict(model.named_parameters())[name], dict(restored.named_parameters())[name]
        assert 0 < (a - b).abs().max() <= (a.max() - a.min()) / 510
    assert torch.equal(restored.decoder.head.weight, model.decoder.head.weight)


def test_bits_count_features_at_8_bits_and_their_ranges():
    cfg = tiny_cfg().model
    model = NVP(3, 8, 12, cfg)
    groups = NVP.parameter_groups_for(3, 8, 12, cfg)
    features = groups["planes"] + groups["sparse"]
    ranges = 2 * 32 * (cfg.levels * 3 * cfg.features + cfg.features)
    assert model_bits(model, quantised=True) == 8 * features + 32 * groups["decoder"] + ranges
    assert model_bits(model, quantised=False) == 32 * sum(groups.values())


def test_training_fits_a_clip_and_resumes_exactly(tmp_path):
    frames = smooth_clip()
    cfg = tiny_cfg(train={"iterations": 30, "checkpoint_every": 10, "log_every": 10, "device": "cpu"},
                   batch_size=256, lr=2e-2)
    seed_everything(0)
    reference = NVPTask(frames, cfg)
    first_psnr = reference.psnr()
    result = train(reference, cfg.train, tmp_path / "straight")
    assert result.psnr > first_psnr + 8  # it learns (whole-video PSNR, not the batch)
    seed_everything(0)
    with pytest.raises(KeyboardInterrupt):
        train(kill_at(NVPTask(frames, cfg), 15), cfg.train, tmp_path / "killed")
    seed_everything(0)
    resumed_task = NVPTask(frames, cfg)
    resumed = train(resumed_task, cfg.train, tmp_path / "killed")
    assert resumed.resumed_from == 10
    for name, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed_task.model.state_dict()[name]), name


def test_snapshots_are_read_outs_of_one_uninterrupted_run(tmp_path):
    frames = smooth_clip()
    store = write_frames_store(tmp_path / "frames.zarr", frames)
    cfg = tiny_cfg(budgets=[7, 13])
    identity = run_identity(cfg, store, tuple(frames.shape[:3]))
    segmented = train_nvp(frames, cfg, tmp_path / "seg", identity)
    seed_everything(0)
    straight_task = NVPTask(frames, cfg)
    train(straight_task, cfg.train, tmp_path / "straight")
    final = read_checkpoint(segmented.checkpoint)["modules"]["model"]
    for name, value in straight_task.model.state_dict().items():
        assert torch.equal(value, final[name]), name
    snaps = sorted((tmp_path / "seg" / "snapshots").glob("step_*.pt"))
    assert [read_checkpoint(p)["iteration"] for p in snaps] == [7, 13, 20]
    assert "optimizer" not in read_checkpoint(snaps[0])
    model, saved = load_nvp(snaps[1], "cpu", store)
    assert saved.iteration == 13 and 0 < saved.wall_time_s < segmented.wall_time_s


def test_model_refuses_another_video_and_a_run_refuses_another_config(tmp_path):
    frames = smooth_clip()
    store = write_frames_store(tmp_path / "a.zarr", frames)
    other = write_frames_store(tmp_path / "b.zarr", frames.flip(0), source="other")
    cfg = tiny_cfg()
    train_nvp_run(frames, store, cfg, tmp_path / "work", tmp_path / "model.pt")
    with pytest.raises(InputError, match="another video"):
        load_nvp(tmp_path / "model.pt", "cpu", other)
    changed = dataclasses.replace(cfg, lr=cfg.lr / 2)
    with pytest.raises(CheckpointError, match="different run|another run|identity"):
        train_nvp_run(frames, store, changed, tmp_path / "work", tmp_path / "model.pt")
    # the workflow's job discards the stale checkpoint instead
    train_nvp_run(frames, store, changed, tmp_path / "work", tmp_path / "model.pt", restart_on_mismatch=True)
    assert load_nvp(tmp_path / "model.pt", "cpu", store)[1].meta["config"]["lr"] == cfg.lr / 2


def test_resampling_settings_are_checked():
    for factor in (0, 1, 1.5):
        with pytest.raises(ConfigError, match="integer >= 2"):
            ResamplingConfig(factor=factor)
    cfg, resampling = resampling_config({"nvp": TINY_NVP, "nvp_superres": {"factor": 3, "iterations": 5}},
                                        "nvp_superres")
    assert resampling.factor == 3 and cfg.train.iterations == 5 and cfg.budgets == ()
    cfg, _ = resampling_config({"nvp": TINY_NVP, "nvp_interpolate": {}}, "nvp_interpolate")
    assert cfg.train.iterations == TINY_NVP["train"]["iterations"] and cfg.budgets == ()  # no snapshots
    with pytest.raises(InputError, match="divisible by 3"):
        downsample(smooth_clip(2, 16, 24), 3)
    with pytest.raises(InputError, match="at least 3 frames"):
        kept_frames(2, 2)


def test_interpolation_frames_and_blend():
    assert kept_frames(8, 2) == [0, 2, 4, 6] and heldout_frames(8, 2) == [1, 3, 5]
    assert heldout_frames(7, 3) == [1, 2, 4, 5]
    frames = torch.stack([torch.full((2, 2, 3), 30 * i, dtype=torch.uint8) for i in range(7)])
    blend = linear_blend(frames, 3, [1, 5])
    assert torch.allclose(blend[0], torch.full((2, 2, 3), 30 / 255)) and torch.allclose(blend[1], torch.full((2, 2, 3), 150 / 255))
    # a model of the kept frames renders a kept frame exactly where it was trained
    model = NVP(4, 6, 8, tiny_cfg().model)
    with torch.no_grad():
        model.sparse.grid.normal_()
    assert torch.allclose(render_interpolated(model, 2, [4])[0], model.render_frame(2), atol=1e-6)
    between = render_interpolated(model, 2, [3])[0]
    assert not torch.allclose(between, model.render_frame(1)) and not torch.allclose(between, model.render_frame(2))


def test_subpixel_grid_puts_pixel_centres_where_resizing_does():
    positions = subpixel_positions(4, 2)  # 8 pixels rendered from 4
    # full pixel j sits at small position (j + 0.5) / 2 - 0.5
    assert torch.allclose(positions, (torch.arange(8, dtype=torch.float32) + 0.5) / 2 - 0.5)
    assert torch.allclose(axis_coordinate(positions, 4), positions / 3)
    # a linear ramp downsampled by INTER_AREA comes back exactly on the dense grid
    ramp = torch.arange(8, dtype=torch.float32).repeat(8, 1)[None, ..., None].expand(1, 8, 8, 3)
    small = downsample(ramp.to(torch.uint8) * 30, 2).float()
    back = small[0, 0, :, 0].numpy()
    assert np.allclose(np.interp(positions.numpy(), np.arange(4), back)[1:-1], (ramp[0, 0, 1:-1, 0] * 30).numpy())


def test_footprint_observes_the_mean_of_the_subpixels():
    model = NVP(2, 3, 4, tiny_cfg().model)
    with torch.no_grad():
        model.sparse.grid.normal_()
        model.planes.table.normal_()
    fine = render_fine(model, 2)
    assert fine.shape == (2, 6, 8, 3)
    torch.testing.assert_close(render_fine(model, 1), render_video(model))
    pooled = torch.nn.functional.avg_pool2d(fine.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    torch.testing.assert_close(render_observed(model, 2), pooled)
    # the training loss compares exactly that mean with the pixel
    frames = (render_observed(model, 2) * 255).round().to(torch.uint8)
    task = NVPTask(frames, tiny_cfg(batch_size=4 * 24), footprint=2)
    task.model.load_state_dict(model.state_dict())
    loss, _ = task.step_loss(1, torch.Generator().manual_seed(0))
    assert loss.item() < 1e-4  # only the 8-bit rounding of the target is left
    with pytest.raises(ValueError, match="footprint"):
        NVPTask(frames, tiny_cfg(), footprint=0)


def test_superres_trained_through_the_area_beats_bicubic_on_held_out_pixels():
    """On drifting gratings: NVP trained on the 2x downsampled clip, each small pixel the mean
    of its 2 x 2 full-size pixels, with the sparse grid read linearly, renders the full-size
    clip above bicubic upsampling; trained on the small pixel centres it falls well below."""
    from nvd.eval.metrics import psnr

    frames = texture_clip()
    small, truth = downsample(frames, 2), frames.float() / 255
    cfg = tiny_cfg(model={"sparse_interpolation": "linear", "sparse_size": 16}, batch_size=512, lr=2e-2, budgets=[],
                   train={"iterations": 200, "device": "cpu"})
    bicubic = psnr(bicubic_upsample(small, 16, 24), truth)
    seed_everything(0)
    area = psnr(render_fine(fitted(small, cfg, footprint=2), 2), truth)
    seed_everything(0)
    point = psnr(render_fine(fitted(small, cfg), 2), truth)
    assert area > bicubic + 1 and point < bicubic - 1, (area, bicubic, point)


def test_interpolation_renders_held_out_frames_faithfully():
    from nvd.eval.metrics import psnr

    frames = smooth_clip(6, 16, 24)
    cfg = tiny_cfg(batch_size=512, lr=2e-2, budgets=[],
                   train={"iterations": 150, "checkpoint_every": 150, "log_every": 150, "device": "cpu"})
    seed_everything(0)
    model = fitted(frames[kept_frames(6, 2)], cfg)
    held = heldout_frames(6, 2)
    rendered = render_interpolated(model, 2, held)
    assert rendered.shape == (2, 16, 24, 3)
    assert psnr(rendered, frames[held].float() / 255) > 22


def test_tables_average_over_videos():
    def video(psnr, wall):
        return {"budgets": [{"step": 10, "wall_time_s": wall, "psnr": psnr, "bpp": 1.0, "ms_ssim": 0.9,
                             "flip": 0.1, "lpips": None},
                            {"step": 20, "wall_time_s": 2 * wall, "psnr": psnr + 1, "bpp": 1.0, "ms_ssim": 0.9,
                             "flip": 0.1, "lpips": None}]}

    rows = encoding_rows({"a": video(30.0, 5.0), "b": video(32.0, 7.0)})
    assert [r["steps"] for r in rows] == [10, 20]
    assert rows[0]["psnr_mean"] == 31.0 and rows[0]["psnr_std"] == 1.0 and rows[1]["wall_time_s_mean"] == 12.0
    assert math.isnan(rows[0]["lpips_mean"])
    res = resampling_rows({"a": {"factor": 2, "nvp": {"psnr": 30.0, "ms_ssim": 0.9}, "baseline": {"psnr": 28.0, "ms_ssim": 0.8}},
                           "b": {"factor": 2, "nvp": {"psnr": 31.0, "ms_ssim": 0.9}, "baseline": {"psnr": 30.0, "ms_ssim": 0.8}}})
    assert res[-1]["video"] == "mean" and res[-1]["psnr_gain"] == 1.5


def test_render_video_covers_every_frame():
    model = NVP(3, 4, 5, tiny_cfg().model)
    video = render_video(model)
    assert video.shape == (3, 4, 5, 3) and torch.allclose(video[1], model.render_frame(1))
