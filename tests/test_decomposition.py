"""The layered decomposition: model structure, exact resume, and the workflow rules end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_DECOMPOSITION, demo_config, dry_run_jobs, kill_at, snakemake, write_config

from nvd.core.config import section
from nvd.core.errors import ConfigError, InputError
from nvd.data.loader import VideoTensors
from nvd.models.hashing_nvd.model import DecompositionConfig, LayeredDecomposition
from nvd.models.hashing_nvd.objective import DecompositionTask, DecompositionTrainConfig
from nvd.nn.encodings import HashGridConfig
from nvd.train.config import TrainConfig
from nvd.train.loop import seed_everything, train

SMALL_GRID = HashGridConfig(n_levels=3, log2_table_size=8)
SMALL = DecompositionConfig(mapping_hidden=16, mapping_layers=3, texture_hidden=8, texture_layers=2,
                            residual_hidden=8, residual_layers=2, alpha_hidden=8, alpha_layers=2,
                            texture_grid=SMALL_GRID, residual_grid=SMALL_GRID, alpha_grid=SMALL_GRID)


def tiny_video(frames: int = 4, h: int = 12, w: int = 16, objects: int = 1) -> VideoTensors:
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(objects, frames, h, w)
    masks[:, :, 3:8, 4:9] = 1
    return VideoTensors(
        frames=torch.rand(frames, h, w, 3, generator=g),
        flow_forward=torch.full((frames - 1, h, w, 2), 0.5), flow_backward=torch.full((frames - 1, h, w, 2), -0.5),
        valid_forward=torch.ones(frames - 1, h, w, dtype=torch.bool),
        valid_backward=torch.ones(frames - 1, h, w, dtype=torch.bool),
        masks=masks, object_names=[f"object{i}" for i in range(objects)])


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_render_shapes_and_hierarchical_alpha(layers):
    model = LayeredDecomposition(layers, SMALL)
    xyt = torch.rand(50, 3) * 2 - 1
    out = model(xyt)
    assert out["uv"].shape == (50, layers, 2) and out["alpha"].shape == (50, layers)
    assert torch.allclose(out["alpha"].sum(1), torch.ones(50), atol=1e-4)
    # log_alpha is the log of the same weights (away from the clamp), computed from the logits
    assert torch.allclose(out["log_alpha"].exp(), out["alpha"], atol=1e-5)
    assert (out["residual"] > 0).all() and (out["texture"] >= 0).all() and (out["texture"] <= 1).all()
    expected = (out["alpha"][..., None] * out["texture"] * out["residual"]).sum(1)
    assert torch.allclose(out["rgb"], expected, atol=1e-6)


def test_residual_does_not_move_the_mapping():
    """The residual sees uv detached: its gradient never reaches the mapping networks."""
    model = LayeredDecomposition(2, SMALL)
    out = model(torch.rand(20, 3) * 2 - 1)
    out["residual"].sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in model.mappings.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.residuals.parameters())


def test_hypernvd_style_model_has_no_biases():
    model = LayeredDecomposition(2, DecompositionConfig(**{**SMALL.__dict__, "bias": False}))
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]


def test_killed_decomposition_training_resumes_to_the_same_model(tmp_path):
    cfg = DecompositionTrainConfig(batch_size=64, pretrain_iterations=3, model=SMALL,
                                   train=TrainConfig(iterations=12, checkpoint_every=4, log_every=4, device="cpu"))
    video = tiny_video()

    def run(out: Path, fail_at: int | None = None) -> DecompositionTask:
        seed_everything(0)
        task = DecompositionTask(video, cfg)
        if fail_at is not None:
            kill_at(task, fail_at)
        train(task, cfg.train, out)
        return task

    reference = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", fail_at=7)
    resumed = run(tmp_path / "b")
    for (name, a), (_, b) in zip(reference.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_nested_section_keeps_the_defaults_of_keys_left_out():
    """A config names a few nested keys; every other key keeps its component's default."""
    from nvd.models.hashing_nvd.model import DecompositionConfig
    from nvd.nn.encodings import HashGridConfig

    cfg = section(DecompositionTrainConfig, {"model": {"mapping_hidden": 64, "texture_grid": {"n_levels": 12}},
                                             "train": {"device": "cpu"}}, "decomposition")
    assert cfg.model.mapping_hidden == 64 and cfg.model.texture_grid.n_levels == 12
    assert cfg.model.texture_grid.log2_table_size == HashGridConfig().log2_table_size
    assert cfg.model.residual_grid == HashGridConfig() and cfg.model.alpha_hidden == DecompositionConfig().alpha_hidden
    assert cfg.train.device == "cpu" and cfg.train.iterations == TrainConfig().iterations
    with pytest.raises(ConfigError, match="decomposition.model.texture_grid.*unknown key"):
        section(DecompositionTrainConfig, {"model": {"texture_grid": {"levels": 3}}}, "decomposition")


@pytest.fixture(scope="module")
def decomposed(tmp_path_factory):
    """The demo clips through the whole workflow with a tiny decomposition."""
    workdir = tmp_path_factory.mktemp("decomposed")
    configfile = write_config(workdir, demo_config(decomposition=True))
    snakemake(workdir, "--configfile", str(configfile), "--cores", "2")
    return workdir, configfile


def test_workflow_trains_evaluates_and_edits(decomposed):
    workdir, _ = decomposed
    base = workdir / "results" / "synthetic" / "orbit" / "decomposition"
    metrics = json.loads((base / "eval" / "metrics.json").read_text())
    assert np.isfinite(metrics["psnr"]) and metrics["psnr"] > 8
    assert len(metrics["alpha_iou"]) == 1
    for name in ("tex0.png", "tex1.png", "rec.mp4", "rec_no_residual.mp4", "alpha0.mp4", "residual1.mp4",
                 "comparison.mp4", "checkerboard0.mp4"):
        assert (base / "eval" / name).stat().st_size > 0, name
    from nvd.data.video_io import probe_video

    assert probe_video(base / "custom_edit.mp4")["width"] == 64
    rows = (base / "log.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,wall_time_s") and len(rows) == 1 + 3
    carphone = workdir / "results" / "footage" / "carphone" / "decomposition" / "eval" / "metrics.json"
    assert json.loads(carphone.read_text())["psnr"] > 8


def test_decomposition_staleness(decomposed):
    workdir, configfile = decomposed
    assert dry_run_jobs(workdir, "--configfile", str(configfile)) == {}
    config = demo_config(decomposition=True)
    config["decomposition"] = {**TINY_DECOMPOSITION, "losses": {**TINY_DECOMPOSITION["losses"], "rgb": 4.0}}
    changed = write_config(workdir, config, "losses.yaml")
    assert dry_run_jobs(workdir, "--configfile", str(changed)) == {
        "decompose": 3, "evaluate": 3, "demo_edit_atlas": 1, "edit": 1, "all": 1}
    config = demo_config(decomposition=True, evaluation={"atlas_size": 32})
    changed = write_config(workdir, config, "eval.yaml")
    assert dry_run_jobs(workdir, "--configfile", str(changed)) == {
        "evaluate": 3, "demo_edit_atlas": 1, "edit": 1, "all": 1}


def test_model_refuses_another_video(decomposed):
    from nvd.models.hashing_nvd.run import load_decomposition

    workdir, _ = decomposed
    orbit, duo = workdir / "results" / "synthetic" / "orbit", workdir / "results" / "synthetic" / "duo"
    with pytest.raises(InputError, match="different video"):
        load_decomposition(orbit / "decomposition" / "model.pt", duo / "frames.zarr", duo / "flow.zarr",
                           duo / "masks.zarr")


def test_mark_tracking_error_is_zero_for_the_true_decomposition_and_large_for_a_frozen_one():
    from nvd.data.demo import SYNTHETIC_CLIPS, render_scene
    from nvd.models.hashing_nvd.evaluate import mark_tracking_error

    scene = render_scene(SYNTHETIC_CLIPS["orbit"])
    uv = torch.as_tensor(scene.uv)
    alpha = torch.as_tensor(scene.alpha)
    masks = torch.as_tensor(scene.masks) > 0
    assert mark_tracking_error(uv, alpha, uv, masks) == [0.0]
    frozen = uv[:, :1].expand_as(uv).clone()  # a mapping that ignores the motion
    assert mark_tracking_error(frozen, alpha, uv, masks)[0] > 5.0
