"""NeRV-family training: losses, schedule, epoch order, resume, fitting, inpainting and
interpolation, loading and divergence, in process on tiny clips (64 x 36, ~0.02M parameters)."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY_NERV_MODELS, kill_at, smooth_clip, write_frames_store

from nvd.core.errors import ConfigError, InputError
from nvd.core.layout import METRICS_NAME, MODEL_NAME, WORK_DIR
from nvd.eval.metrics import ms_ssim_loss_term
from nvd.models.nerv.evaluate import INPAINT_TRIPTYCH, REC_VIDEO, evaluate_nerv, nerv_interpolate_job, region_psnr
from nvd.models.nerv.losses import boost_loss, fft_l1, reconstruction_loss
from nvd.models.nerv.objective import NeRVTask, epoch_permutation, warmup_cosine_lr
from nvd.models.nerv.run import build_task, load_nerv, run_identity, train_nerv_run
from nvd.models.nerv.tasks import (
    SQUARE_CENTRES,
    inpaint_mask,
    interpolation_split,
    linear_blend,
    render_interpolated,
    square_side,
    task_setup,
    variant,
)
from nvd.models.nerv.tables import boost_gains
from nvd.models.nerv.training import nerv_train_config, run_sections, task_folders
from nvd.train.divergence import TrainingDiverged
from nvd.train.loop import read_checkpoint, train

H, W = 36, 64
def tiny_section(**overrides):
    values = {"model_size": 0.02, "per_model": TINY_NERV_MODELS, "epochs": 3, "checkpoint_every": 1,
              "train": {"device": "cpu", "seed": 0}}
    values.update(overrides)
    return values


def tiny_cfg(model: str, **overrides):
    return nerv_train_config(tiny_section(**overrides), model=model)


def params(task) -> list[torch.Tensor]:
    return [p.detach().clone() for p in task.model.parameters()]


# ---------------------------------------------------------------- config


def test_config_defaults_and_checks():
    cfg = nerv_train_config({}, model="enerv_boost")
    assert cfg.learning_rate == 1.5e-3 and cfg.loss_name == "boost" and cfg.betas == (0.98, 0.92, 0.99)
    assert nerv_train_config({}, model="nerv_boost").learning_rate == 3e-3
    assert nerv_train_config({"lr": 1e-3}, model="enerv_boost").learning_rate == 1e-3
    assert [nerv_train_config({}, model=m).loss_name for m in ("nerv", "enerv", "hnerv")] == ["fusion", "fusion", "l2"]
    # per_model applies to its model only; strides follow the frame size unless set
    cfg = tiny_cfg("nerv")
    assert cfg.model_config().stem_hidden == 16 and cfg.model_config().strides is None
    assert tiny_cfg("hnerv", overrides={"strides": [2, 2]}).model_config().strides == (2, 2)
    loop = cfg.loop_config(6)
    assert (loop.iterations, loop.log_every, loop.checkpoint_every) == (18, 6, 6)
    assert tiny_cfg("nerv", batch_size=4).steps_per_epoch(6) == 2
    for bad in ({"train": {"iterations": 5}}, {"model": "nope"}, {"loss": "l3"}, {"overrides": {"model_size": 1}},
                {"per_model": {"nope": {}}}, {"overrides": {"nonsense": 1}}, {"lr": float("inf")}):
        with pytest.raises(ConfigError):
            nerv_train_config(bad)


def test_model_sizes_name_the_folders_and_each_run_sees_its_own_settings():
    one = {"model_size": 0.2, "models": ["hnerv", "hnerv_boost"], "per_model": {"hnerv": {"lower_width": 8}}}
    assert task_folders({"nerv": one}, "regression") == ["hnerv", "hnerv_boost"]  # one size: the demo's names
    several = {key: value for key, value in one.items() if key != "model_size"} | {"model_sizes": [0.75, 1.5, 3]}
    config = {"nerv": several, "nerv_inpaint": {"models": ["hnerv_boost"], "mask": "squares"}}
    assert task_folders(config, "regression") == ["hnerv_0.75M", "hnerv_boost_0.75M", "hnerv_1.5M",
                                                  "hnerv_boost_1.5M", "hnerv_3M", "hnerv_boost_3M"]
    assert task_folders(config, "inpaint") == ["hnerv_boost_0.75M", "hnerv_boost_1.5M", "hnerv_boost_3M"]
    assert task_folders(config, "interpolate") == []  # no nerv_interpolate section
    assert task_folders({"nerv": {**several, "regression": False}, "nerv_inpaint": {}}, "regression") == []
    # a folder trains at its size with its model's settings only: the workflow's params
    run = run_sections(config, "hnerv_boost_1.5M", "nerv_inpaint")
    assert run == {"nerv": {"model_size": 1.5}, "nerv_inpaint": {"mask": "squares"}}
    assert run_sections(config, "hnerv_3M")["nerv"] == {"model_size": 3.0, "per_model": {"hnerv": {"lower_width": 8}}}
    cfg = nerv_train_config(run["nerv"], model="hnerv_boost_1.5M")
    assert (cfg.model, cfg.model_size) == ("hnerv_boost", 1.5)
    assert nerv_train_config(several, model="hnerv_3M").model_config().lower_width == 8
    assert nerv_train_config({"model_sizes": [0.5]}, model="nerv").model_size == 0.5
    with pytest.raises(ConfigError, match="hnerv_0.75M"):  # which size would it be?
        nerv_train_config(several, model="hnerv")
    for bad in ({"model_size": 1, "model_sizes": [2]}, {"model_sizes": []}, {"model_sizes": [1, 1.0]},
                {"model_sizes": [0]}, {"model_sizes": [1e-7]}, {"regression": "no"}):
        with pytest.raises(ConfigError):
            nerv_train_config(bad)


def test_boost_gain_pairs_models_of_the_same_size():
    rows = [{"model": name, "psnr_mean": psnr} for name, psnr in
            (("hnerv_1.5M", 30.0), ("hnerv_boost_1.5M", 33.5), ("hnerv_3M", 32.0), ("hnerv_boost_3M", 34.0),
             ("enerv_boost_3M", 31.0))]
    assert boost_gains(rows) == {"hnerv_boost_1.5M": 3.5, "hnerv_boost_3M": 2.0}  # enerv did not run
    assert boost_gains([{"model": "nerv", "psnr_mean": 20.0}, {"model": "nerv_boost", "psnr_mean": 23.0}]) == \
        {"nerv_boost": 3.0}


# ---------------------------------------------------------------- losses and schedule


def test_boost_loss_hand_cases():
    torch.manual_seed(0)
    x = torch.rand(1, 3, H, W)
    assert boost_loss(x, x.clone()).item() == pytest.approx(0, abs=1e-4)
    # FFT term: a unit impulse against zeros has a flat spectrum of ones
    impulse = torch.zeros(1, 1, 2, 2)
    impulse[0, 0, 0, 0] = 1
    assert fft_l1(impulse, torch.zeros_like(impulse)).item() == pytest.approx(1.0)
    for width in (5, 6, 1):  # the half spectrum's mirrored columns: odd, even (a Nyquist column), none
        p, t = torch.rand(2, 3, 4, width), torch.rand(2, 3, 4, width)
        expected = np.abs(np.fft.fft2(p.numpy()) - np.fft.fft2(t.numpy())).mean()
        assert fft_l1(p, t).item() == pytest.approx(expected, rel=1e-5)
    # the total: 60 * (0.7 L1 + 0.3 (1 - MS-SSIM)) + FFT-L1
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    total, terms = reconstruction_loss("boost", y, x)
    l1 = (y - x).abs().mean().item()
    ms = ms_ssim_loss_term(y, x).item()
    fft = np.abs(np.fft.fft2(y.numpy()) - np.fft.fft2(x.numpy())).mean()
    assert total.item() == pytest.approx(60 * (0.7 * l1 + 0.3 * ms) + fft, rel=1e-5)
    assert set(terms) == {"l1", "ms_ssim_loss", "fft_l1"}
    assert reconstruction_loss("l2", y, x)[0].item() == pytest.approx(((y - x) ** 2).mean().item())


def test_lr_schedule_warmup_peak_and_end():
    lr = 3e-3
    assert warmup_cosine_lr(1, 100, lr, 0.1, 0.1) == pytest.approx(0.1 * lr)
    assert warmup_cosine_lr(6, 100, lr, 0.1, 0.1) == pytest.approx(lr * (0.1 + 0.9 * 0.5))
    assert warmup_cosine_lr(11, 100, lr, 0.1, 0.1) == pytest.approx(lr)  # progress 0.1: the peak
    assert warmup_cosine_lr(56, 100, lr, 0.1, 0.1) == pytest.approx(lr / 2)  # half-way down the cosine
    end = warmup_cosine_lr(100, 100, lr, 0.1, 0.1)
    assert 0 < end < 1e-3 * lr
    values = [warmup_cosine_lr(i, 100, lr, 0.1, 0.1) for i in range(1, 101)]
    assert max(values) == pytest.approx(lr) and values.index(max(values)) == 10


# ---------------------------------------------------------------- epoch order and resume


def test_each_epoch_visits_every_training_frame_once_in_a_new_order():
    frames = smooth_clip(7, H, W)
    train_frames, _ = task_setup(variant("interpolate"), 7, H, W)
    task = NeRVTask(frames, tiny_cfg("nerv"), train_frames=train_frames)
    steps = task.steps_per_epoch
    assert steps == 4
    epochs = [[int(task.indices[task.batch(e * steps + s + 1)]) for s in range(steps)] for e in range(3)]
    for order in epochs:
        assert sorted(order) == [0, 2, 4, 6]
    assert len({tuple(order) for order in epochs}) > 1
    assert torch.equal(epoch_permutation(0, 5, 50), epoch_permutation(0, 5, 50))
    assert not torch.equal(epoch_permutation(0, 5, 50), epoch_permutation(0, 6, 50))
    assert not torch.equal(epoch_permutation(0, 5, 50), epoch_permutation(1, 5, 50))
    # batches of 3 cover the frames too, the last one shorter
    task = NeRVTask(frames, tiny_cfg("nerv", batch_size=3))
    seen = torch.cat([task.batch(i) for i in range(1, task.steps_per_epoch + 1)])
    assert sorted(seen.tolist()) == list(range(7))


def test_killed_run_resumes_bit_identically(tmp_path):
    frames = smooth_clip(6, H, W)
    cfg = tiny_cfg("hnerv_boost", epochs=3)
    whole = build_task(frames, cfg)
    train(whole, whole.loop, tmp_path / "whole", identity={"run": 1})
    killed = kill_at(build_task(frames, cfg), 10)  # in epoch 1, after the checkpoint at 6
    with pytest.raises(KeyboardInterrupt):
        train(killed, killed.loop, tmp_path / "resumed", identity={"run": 1})
    resumed = build_task(frames, cfg)
    result = train(resumed, resumed.loop, tmp_path / "resumed", identity={"run": 1})
    assert result.resumed_from == 6 and result.iterations == 18
    for a, b in zip(params(whole), params(resumed)):
        assert torch.equal(a, b)
    rows = (tmp_path / "resumed" / "log.csv").read_text().splitlines()
    assert rows[0].split(",")[:3] == ["iteration", "wall_time_s", "loss"] and "ms_ssim" in rows[0]
    assert [int(r.split(",")[0]) for r in rows[1:]] == [6, 12, 18]


def test_tiny_model_fits_a_smooth_clip():
    frames = smooth_clip(4, H, W)
    task = build_task(frames, tiny_cfg("hnerv", epochs=40, eval_every=40, checkpoint_every=40, lr=1e-2))
    before = task.psnr()["psnr"]
    generator = torch.Generator()
    optimizer = task.optimizer()
    for it in range(1, task.loop.iterations + 1):
        optimizer.zero_grad()
        loss, _ = task.step_loss(it, generator)
        loss.backward()
        optimizer.step()
    after = task.psnr()
    assert after["psnr"] > before + 8, (before, after)  # about 13 -> 27 dB
    assert 0 < after["ms_ssim"] <= 1


# ---------------------------------------------------------------- inpainting


def test_masks_have_the_documented_sizes():
    centre = inpaint_mask("centre", 720, 1280)
    rows, cols = centre.any(dim=1).nonzero().flatten(), centre.any(dim=0).nonzero().flatten()
    assert int(centre.sum()) == 180 * 320 and (rows[0], cols[0]) == (270, 480)
    assert int(inpaint_mask("centre", H, W).sum()) == (H // 4) * (W // 4)
    assert square_side(1080, 1920) == 50 and square_side(720, 1280) == 33 and square_side(180, 320) == 8
    for height, width in ((1080, 1920), (720, 1280), (180, 320)):
        squares = inpaint_mask("squares", height, width)
        side = square_side(height, width)
        assert int(squares.sum()) == len(SQUARE_CENTRES) * side * side  # five, disjoint, inside
    squares = inpaint_mask("squares", 1080, 1920)
    assert bool(squares[540 - 25:540 + 25, 960 - 25:960 + 25].all()) and bool(squares[270, 480])
    assert not bool(squares[0, 0])


def test_inpainting_loss_ignores_the_holes():
    mask = inpaint_mask("centre", H, W)
    frames = smooth_clip(4, H, W)
    changed = frames.clone()
    changed[:, mask] = 255 - changed[:, mask]  # only the holes differ
    for name in ("nerv_boost", "hnerv"):
        grads, losses = [], []
        for clip in (frames, changed):
            torch.manual_seed(0)
            task = NeRVTask(clip, tiny_cfg(name), mask=mask)
            loss, _ = task.step_loss(1, torch.Generator())
            loss.backward()
            losses.append(loss.item())
            grads.append([p.grad.clone() for p in task.model.parameters() if p.grad is not None])
        assert losses[0] == losses[1]
        for a, b in zip(*grads):
            assert torch.equal(a, b)
    # and a prediction pixel inside a hole has no gradient
    pred = torch.rand(1, 3, H, W, requires_grad=True)
    keep = (~mask).float()[None, None]
    for loss_name in ("boost", "fusion", "l2"):
        pred.grad = None
        loss, _ = reconstruction_loss(loss_name, pred, torch.rand(1, 3, H, W), keep)
        loss.backward()
        assert float(pred.grad[:, :, mask].abs().max()) == 0 and float(pred.grad[:, :, ~mask].abs().max()) > 0


def test_region_psnr_inside_the_holes():
    mask = inpaint_mask("centre", H, W)
    truth = torch.full((2, H, W, 3), 0.5)
    pred = truth.clone()
    pred[:, mask] += 0.1
    assert region_psnr(pred, truth, mask) == pytest.approx(20.0, abs=1e-4)
    assert region_psnr(pred, truth, ~mask) is None  # exact outside


# ---------------------------------------------------------------- interpolation


def test_interpolation_trains_on_even_frames_only():
    frames = smooth_clip(7, H, W)
    trained, heldout = interpolation_split(7)
    assert (trained, heldout) == ([0, 2, 4, 6], [1, 3, 5])
    assert interpolation_split(6) == ([0, 2, 4], [1, 3])
    task = build_task(frames, tiny_cfg("hnerv_boost"), variant("interpolate"))
    assert task.indices.tolist() == trained and torch.equal(task.truth, frames[trained])
    seen_t, seen_frames = [], []
    forward = task.model.forward

    def recording(t_index, x=None):
        seen_t.extend(t_index.tolist())
        seen_frames.append(x)
        return forward(t_index, x)

    task.model.forward = recording
    for it in range(1, 2 * task.steps_per_epoch + 1):
        task.step_loss(it, torch.Generator())
    task.psnr()
    assert seen_t and all(i % 2 == 0 for i in seen_t)
    odd = frames[1::2].permute(0, 3, 1, 2).float() / 255
    for x in seen_frames:
        assert not any(torch.equal(frame, o) for frame in x for o in odd)


def test_hnerv_odd_frame_decodes_the_mean_embedding():
    frames = smooth_clip(5, H, W)
    task = build_task(frames, tiny_cfg("hnerv_boost"), variant("interpolate"))
    model = task.model.eval()
    got = render_interpolated(model, frames, [1, 3])
    with torch.no_grad():
        x = frames.permute(0, 3, 1, 2).float() / 255
        e = model.embed(x)
        want = model.decode((e[[0, 2]] + e[[2, 4]]) / 2, model.time(torch.tensor([1, 3]))).permute(0, 2, 3, 1)
    assert torch.allclose(got, want, atol=1e-6)
    nerv = build_task(frames, tiny_cfg("nerv"), variant("interpolate")).model.eval()
    with torch.no_grad():
        assert torch.allclose(render_interpolated(nerv, frames, [3]), nerv(torch.tensor([3])).permute(0, 2, 3, 1))
    blend = linear_blend(frames, [1])
    assert torch.allclose(blend[0], (frames[0].float() + frames[2].float()) / 510)


# ---------------------------------------------------------------- runs, loading, evaluation


def test_run_publishes_loads_and_refuses_another_video(tmp_path):
    frames = smooth_clip(4, H, W)
    store = write_frames_store(tmp_path / "frames.zarr", frames)
    other = write_frames_store(tmp_path / "other.zarr", frames, source="xyz")
    cfg = tiny_cfg("nerv_boost", epochs=2)
    out = tmp_path / "run"
    result = train_nerv_run(frames, store, cfg, out / WORK_DIR, out / MODEL_NAME)
    assert result.iterations == 8 and (out / "log.csv").is_file()
    model, saved = load_nerv(out / MODEL_NAME, "cpu", store)
    assert saved.variant == {"task": "regression"} and saved.meta["nerv_shape"] == [4, H, W]
    assert abs(saved.meta["parameters"] - 20_000) < 400
    with pytest.raises(InputError, match="another video"):
        load_nerv(out / MODEL_NAME, "cpu", other)
    # the identity pins the variant, the epochs and the model's config
    assert run_identity(cfg, store, (4, H, W)) != run_identity(cfg, store, (4, H, W), variant("interpolate"))
    assert run_identity(cfg, store, (4, H, W)) != run_identity(cfg.with_epochs(3), store, (4, H, W))
    metrics = evaluate_nerv(out / MODEL_NAME, store, out / "eval", device="cpu")
    assert (out / "eval" / REC_VIDEO).is_file() and (out / "eval" / METRICS_NAME).is_file()
    assert metrics["psnr"] == pytest.approx(result.psnr, abs=1e-3) and metrics["epochs"] == 2
    assert metrics["parameters"] == saved.meta["parameters"] and len(metrics["psnr_per_frame"]) == 4
    json.loads((out / "eval" / METRICS_NAME).read_text())


def test_inpaint_and_interpolate_jobs(tmp_path):
    from nvd.models.nerv.evaluate import nerv_inpaint_job

    frames = smooth_clip(5, H, W)
    store = write_frames_store(tmp_path / "frames.zarr", frames)
    sections = {"nerv": tiny_section(epochs=1), "nerv_inpaint": {"mask": "squares"}}
    run = {"work": str(tmp_path / "inpaint" / WORK_DIR), "model": str(tmp_path / "inpaint" / MODEL_NAME)}
    metrics = nerv_inpaint_job(store, sections, "hnerv", run, tmp_path / "inpaint" / "eval")
    assert metrics["variant"] == {"task": "inpaint", "mask": "squares"}
    assert metrics["input"]["psnr_outside"] is None  # the input is exact outside the holes
    assert metrics["output"]["psnr_holes"] > 0 and metrics["output"]["psnr"] > 0
    assert metrics["mask_fraction"] == pytest.approx(5 * square_side(H, W) ** 2 / (H * W))
    assert (tmp_path / "inpaint" / "eval" / INPAINT_TRIPTYCH).is_file()
    run = {"work": str(tmp_path / "interp" / WORK_DIR), "model": str(tmp_path / "interp" / MODEL_NAME)}
    metrics = nerv_interpolate_job(store, {"nerv": tiny_section(epochs=1), "nerv_interpolate": {"epochs": 2}},
                                   "nerv", run, tmp_path / "interp" / "eval")
    assert metrics["heldout_frames"] == [1, 3] and metrics["epochs"] == 2 and metrics["iterations"] == 6
    assert set(metrics["output"]) >= {"psnr", "ms_ssim"} and metrics["baseline"]["psnr"] > 0
    assert read_checkpoint(run["model"])["meta"]["train_frames"] == [0, 2, 4]


def test_cli_trains_and_evaluates(tmp_path):
    import yaml

    from nvd.cli import nerv as cli

    store = write_frames_store(tmp_path / "frames.zarr", smooth_clip(4, H, W))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"clips": {"videos": {"clip": str(tmp_path)}}},
                                      "nerv": tiny_section()}))
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")

    def command(name, fn, help):
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=fn)
        return p

    cli.register(command)
    out = tmp_path / "run"
    for argv in (["nerv-train", "--model", "enerv", "--frames", str(store), "--out", str(out), "--epochs", "1",
                  "--config", str(config)],
                 ["nerv-evaluate", "--model-file", str(out / MODEL_NAME), "--frames", str(store), "--device", "cpu"]):
        args = parser.parse_args(argv)
        args.func(args)
    metrics = json.loads((out / "eval" / METRICS_NAME).read_text())
    assert metrics["model"] == "enerv" and metrics["epochs"] == 1


def test_nan_stops_with_the_parameter_named(tmp_path):
    task = build_task(smooth_clip(4, H, W), tiny_cfg("nerv"))
    task.learning_rate = lambda iteration: math.inf
    with pytest.raises(TrainingDiverged, match="parameter"):
        train(task, task.loop, tmp_path / "run")
