"""Evaluation outputs of a trained decomposition and texture edits propagated through the video.

One tiny synthetic clip (8 frames of 32x24, a textured disc translating 14 px to the right
over a static background) is trained once for the module and evaluated once. 250 iterations:
after 150 the object's mapping followed it for only 2 of 3 seeds, after 250 for all 3. The
edit mechanics are also checked exactly on a demo scene's ground-truth uv and alpha.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from nvd.core.errors import ConfigError, InputError
from nvd.data.demo import SYNTHETIC_CLIPS, BackgroundSpec, ObjectSpec, RenderedScene, SceneSpec, render_scene
from nvd.data.loader import VideoTensors
from nvd.data.video_io import iter_video_frames, probe_video, write_video
from nvd.eval.metrics import lpips_metric, psnr
from nvd.eval.outputs import training_summary
from nvd.models.hashing_nvd.atlas import atlas_alpha, atlas_rgb, propagate_edit, sample_atlas
from nvd.models.hashing_nvd.edit import edit, edited_frames
from nvd.models.hashing_nvd.evaluate import _metrics, alpha_iou, evaluate
from nvd.models.hashing_nvd.model import DecompositionConfig
from nvd.models.hashing_nvd.objective import DecompositionTask, DecompositionTrainConfig
from nvd.models.hashing_nvd.render import atlas_images, render_video
from nvd.nn.encodings import HashGridConfig
from nvd.train.config import TrainConfig
from nvd.train.logs import read_log
from nvd.train.loop import TrainResult, seed_everything, train

T, H, W = 8, 24, 32
ATLAS = 256
FPS = 8.0
# A disc (about 10 x 9 px) moving right by 2 px per frame, centre (9 + 2t, 12).
SPEC = SceneSpec(
    size=(H, W),
    frames=T,
    fps=FPS,
    background=BackgroundSpec(atlas_size=(48, 64), seed=3, look_at=((24.0, 22.0), (30.0, 24.0)),
                              zoom=(1.0, 1.0), roll=(0.0, 0.0)),
    objects=(ObjectSpec(name="object1", seed=5, hue=0.55, origin=(9.0, 12.0), drift=(14.0, 0.0),
                        scale=(0.2, 0.0), spin=0.0, wobble=0.0),),
)
ITERATIONS = 250
GRID = HashGridConfig(n_levels=4, log2_table_size=10, base_resolution=8, per_level_scale=1.5, backend="torch")
TRAIN = DecompositionTrainConfig(
    batch_size=1024,
    pretrain_iterations=20,
    lr_mlp=3e-3,  # the reference's 1e-4 barely moves the mappings in a few hundred iterations
    model=DecompositionConfig(mapping_hidden=32, texture_hidden=32, residual_hidden=16, alpha_hidden=16,
                              texture_grid=GRID, residual_grid=GRID, alpha_grid=GRID),
)
META = {"config": {"iterations": ITERATIONS}, "code_version": "test"}
VIDEOS = ["rec.mp4", "rec_no_residual.mp4", "comparison.mp4", "alpha0.mp4", "alpha1.mp4",
          "residual0.mp4", "residual1.mp4", "checkerboard0.mp4", "checkerboard1.mp4"]


def video_tensors(scene: RenderedScene) -> VideoTensors:
    """The scene as training input, with its exact flow (all of it trusted)."""
    valid = torch.ones(scene.flow_forward.shape[:3], dtype=torch.bool)
    return VideoTensors(
        frames=torch.from_numpy(scene.frames).float() / 255,
        flow_forward=torch.from_numpy(scene.flow_forward),
        flow_backward=torch.from_numpy(scene.flow_backward),
        valid_forward=valid,
        valid_backward=valid.clone(),
        masks=torch.from_numpy(scene.masks).float(),
        object_names=list(scene.object_names),
    )


@pytest.fixture(scope="module")
def scene() -> RenderedScene:
    return render_scene(SPEC)


@pytest.fixture(scope="module")
def trained(scene: RenderedScene,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[DecompositionTask, TrainResult, Path]:
    """(task, train result, training folder) after ITERATIONS iterations on the CPU."""
    seed_everything(0)
    task = DecompositionTask(video_tensors(scene), TRAIN)
    folder = tmp_path_factory.mktemp("train")
    cfg = TrainConfig(iterations=ITERATIONS, log_every=50, checkpoint_every=ITERATIONS, device="cpu")
    return task, train(task, cfg, folder), folder


@pytest.fixture(scope="module")
def task(trained: tuple[DecompositionTask, TrainResult, Path]) -> DecompositionTask:
    return trained[0]


@pytest.fixture(scope="module")
def rendered(task: DecompositionTask) -> dict[str, torch.Tensor]:
    return render_video(task)


@pytest.fixture(scope="module")
def evaluated(trained: tuple[DecompositionTask, TrainResult, Path], scene: RenderedScene,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """(returned metrics, evaluation folder), timing taken from the training log."""
    task, _, folder = trained
    out = tmp_path_factory.mktemp("eval") / "eval"
    metrics = evaluate(task, out, fps=FPS, training=read_log(folder), meta=META, atlas_size=ATLAS,
                       truth={"masks": scene.masks})
    return metrics, out


# ---------------------------------------------------------------------------- rendering and atlases


def test_render_video_shapes_and_composition(task: DecompositionTask, rendered: dict[str, torch.Tensor]) -> None:
    k = task.model.n_layers
    shapes = {"rgb": (T, H, W, 3), "rgb_no_residual": (T, H, W, 3), "alpha": (k, T, H, W),
              "residual": (k, T, H, W, 3), "uv": (k, T, H, W, 2), "texture": (k, T, H, W, 3)}
    assert {key: tuple(v.shape) for key, v in rendered.items()} == shapes
    assert all(v.device.type == "cpu" for v in rendered.values())
    weighted = rendered["alpha"][..., None] * rendered["texture"]
    torch.testing.assert_close(rendered["rgb"], (weighted * rendered["residual"]).sum(0))
    torch.testing.assert_close(rendered["rgb_no_residual"], weighted.sum(0))
    # the per-frame layout matches rendering a single frame
    frame = task.render_frame(5)
    torch.testing.assert_close(rendered["uv"][:, 5], frame["uv"].movedim(2, 0))


def test_atlas_alpha_is_the_max_over_pixels_mapping_into_each_texel(task: DecompositionTask) -> None:
    # a 4x4 atlas: texel (row j, column i) covers u in [-1 + i/2, -1 + (i+1)/2), v likewise
    uv = torch.tensor([[-0.9, -0.9], [-0.6, -0.55],  # both in texel (0, 0)
                       [0.2, -0.9],  # texel (row 0, column 2): u picks the column
                       [-0.9, 0.2],  # texel (row 2, column 0)
                       [1.0, 1.0],  # the far edge belongs to the last texel
                       [0.6, 0.6], [0.7, 0.9]])  # texel (3, 3) as well
    alpha = torch.tensor([0.3, 0.7, 0.4, 0.2, 0.1, 0.9, 0.5])
    expected = torch.zeros(4, 4)
    expected[0, 0], expected[0, 2], expected[2, 0], expected[3, 3] = 0.7, 0.4, 0.2, 0.9
    torch.testing.assert_close(atlas_alpha(uv, alpha, 4), expected)

    # atlas_images: A from every frame's pixels of the layer, RGB from the texture network
    k = task.model.n_layers
    fake = {"uv": torch.zeros(k, 2, 1, 4, 2), "alpha": torch.zeros(k, 2, 1, 4)}
    fake["uv"][1] = uv[:4].reshape(1, 1, 4, 2).expand(2, 1, 4, 2)
    fake["uv"][1, 1, 0, 0] = torch.tensor([0.9, -0.9])  # frame 1 moves one pixel to texel (0, 3)
    fake["alpha"][1] = torch.tensor([[[0.3, 0.8, 0.4, 0.2]], [[0.6, 0.1, 0.1, 0.1]]])
    images = atlas_images(task, fake, size=4)
    assert [im.shape for im in images] == [(4, 4, 4)] * k and images[0].dtype == np.uint8
    expected_a = np.zeros((4, 4), np.uint8)
    expected_a[0, 0], expected_a[0, 2], expected_a[2, 0], expected_a[0, 3] = 204, 102, 51, 153
    np.testing.assert_array_equal(images[1][..., 3], expected_a)
    rgb = (atlas_rgb(task.model, 1, 4) * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(images[1][..., :3], rgb)


# ---------------------------------------------------------------------------- evaluate


def test_evaluate_writes_every_output_with_sane_metrics(
    evaluated: tuple[dict[str, Any], Path], trained: tuple[DecompositionTask, TrainResult, Path],
    rendered: dict[str, torch.Tensor],
) -> None:
    metrics, out = evaluated
    task, result, _ = trained
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["metrics.json", "tex0.png", "tex1.png", *VIDEOS])
    assert not list(out.parent.glob(".*")), "a temporary folder was left behind"
    assert json.loads((out / "metrics.json").read_text()) == metrics

    frames = task.video.frames
    assert 10 < metrics["psnr"] < 60 and 10 < metrics["psnr_no_residual"] < 60
    assert metrics["psnr"] == pytest.approx(psnr(rendered["rgb"].clamp(0, 1), frames), abs=1e-6)
    assert metrics["psnr_per_frame"] == pytest.approx(
        [psnr(rendered["rgb"][t : t + 1].clamp(0, 1), frames[t : t + 1]) for t in range(T)], abs=1e-6)
    assert len(metrics["psnr_no_residual_per_frame"]) == T
    assert 0.2 < metrics["ssim"] <= 1
    assert metrics["lpips"] is None  # no local weights configured
    assert metrics["iterations"] == ITERATIONS == result.iterations
    assert metrics["training_time_s"] == pytest.approx(result.wall_time_s)
    assert metrics["parameters"] == sum(p.numel() for p in task.model.parameters()) > 0
    assert metrics["meta"] == META
    assert (metrics["frames"], metrics["height"], metrics["width"], metrics["layers"]) == (T, H, W, 2)
    assert metrics["objects"] == ["object1"] and metrics["atlas_size"] == ATLAS and metrics["fps"] == FPS
    assert len(metrics["alpha_iou"]) == 1 and metrics["alpha_iou"][0] > 0.9

    for i in range(2):
        with Image.open(out / f"tex{i}.png") as image:
            assert (image.mode, image.size) == ("RGBA", (ATLAS, ATLAS))
    for name in VIDEOS:
        info = probe_video(out / name)
        size = (2 * W, 2 * H) if name == "comparison.mp4" else (W, H)
        assert (info["width"], info["height"]) == size, name
        assert len(list(iter_video_frames(out / name))) == T, name

    # the videos hold what they claim: rec is the reconstruction, the checkerboard edit of
    # the object changes the object's pixels and leaves the background alone
    decoded = {name: torch.from_numpy(np.stack(list(iter_video_frames(out / name)))).float() / 255
               for name in ("rec.mp4", "checkerboard0.mp4", "alpha0.mp4")}
    assert psnr(decoded["rec.mp4"], rendered["rgb"].clamp(0, 1)) > 30
    mask = task.video.masks[0].bool()
    change = (decoded["checkerboard0.mp4"] - decoded["rec.mp4"]).abs().mean(-1)
    assert change[mask].mean() > 0.15 and change[~mask].mean() < 0.05
    assert decoded["alpha0.mp4"][..., 0][mask].mean() > 0.7 and decoded["alpha0.mp4"][..., 0][~mask].mean() < 0.2


def test_evaluate_leaves_a_foreign_folder_alone(task: DecompositionTask, tmp_path: Path) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"precious")
    with pytest.raises(InputError, match="not an earlier evaluation"):
        evaluate(task, tmp_path, fps=FPS, training=[], meta={})
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"precious"


@pytest.fixture(scope="module")
def lpips_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised LPIPS weight file in nvd.eval.metrics' layout."""
    from torchvision.models import alexnet

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in alexnet(weights=None).features.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    state = {f"features.{k}": 0.05 * torch.randn(shape, generator=generator) for k, shape in shapes.items()}
    for i, channels in enumerate((64, 192, 384, 256, 256)):
        state[f"lin{i}.model.1.weight"] = torch.rand(1, channels, 1, 1, generator=generator)
    path = tmp_path_factory.mktemp("weights") / "lpips_alex.pth"
    torch.save(state, path)
    return path


def test_evaluate_again_replaces_the_earlier_evaluation_and_reports_lpips(
    evaluated: tuple[dict[str, Any], Path], lpips_file: Path, tmp_path: Path,
) -> None:
    # an untrained model of a 32x32 clip: LPIPS' AlexNet needs at least 31 px per side
    scene = render_scene(dataclasses.replace(SPEC, size=(32, 32)))
    seed_everything(0)
    untrained = DecompositionTask(video_tensors(scene), TRAIN)
    out = tmp_path / "eval"
    shutil.copytree(evaluated[1], out)
    (out / "stale.txt").write_text("from an older evaluation")
    metrics = evaluate(untrained, out, fps=FPS, training=TrainResult(0, 0.0, 0.0, tmp_path, None), meta={},
                       atlas_size=64, lpips_weights=str(lpips_file))
    assert not (out / "stale.txt").exists() and not list(tmp_path.glob(".*"))
    assert (metrics["height"], metrics["width"], metrics["iterations"], metrics["alpha_iou"]) == (32, 32, 0, None)
    rec = render_video(untrained)["rgb"].clamp(0, 1)
    assert metrics["lpips"] == pytest.approx(lpips_metric(str(lpips_file))(rec, untrained.video.frames))
    assert metrics["lpips"] > 0 and json.loads((out / "metrics.json").read_text())["lpips"] == metrics["lpips"]
    with Image.open(out / "tex0.png") as image:
        assert image.size == (64, 64)


def test_lpips_is_left_out_for_frames_too_small_for_it(
    task: DecompositionTask, rendered: dict[str, torch.Tensor], lpips_file: Path,
) -> None:
    with pytest.warns(UserWarning, match="frames of 32x24 are too small for LPIPS"):
        metrics = _metrics(task, rendered, task.video.frames, str(lpips_file), None)
    assert metrics["lpips"] is None and metrics["psnr"] > 10


def test_training_summary_from_result_or_log(trained: tuple[DecompositionTask, TrainResult, Path]) -> None:
    _, result, folder = trained
    assert training_summary(result) == (ITERATIONS, result.wall_time_s)
    assert training_summary(read_log(folder)) == (ITERATIONS, pytest.approx(result.wall_time_s))
    with pytest.raises(InputError, match="train the model"):
        training_summary([])


def test_alpha_iou_and_ground_truth_shape(task: DecompositionTask, tmp_path: Path) -> None:
    alpha = torch.zeros(3, 1, 2, 2)
    alpha[0, 0, 0] = 0.9  # predicted: top row
    alpha[1, 0, :, 0] = 0.6  # predicted: left column
    masks = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    masks[0, 0, 0, 0] = True  # 1 of 2 predicted pixels
    masks[1] = False  # object 1: predicted but absent
    assert alpha_iou(alpha, masks) == [0.5, 0.0]
    assert alpha_iou(torch.zeros(2, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.bool)) == [1.0]
    with pytest.raises(InputError, match=r"shape \(1, 8, 12, 16\).*\(1, 8, 24, 32\)"):
        evaluate(task, tmp_path / "e", fps=FPS, training=[{"iteration": 1, "wall_time_s": 1.0}], meta={},
                 truth={"masks": np.zeros((1, 8, 12, 16))})


# ---------------------------------------------------------------------------- edits


def test_unmodified_atlases_in_add_mode_give_back_the_input(
    task: DecompositionTask, evaluated: tuple[dict[str, Any], Path], rendered: dict[str, torch.Tensor],
    tmp_path: Path,
) -> None:
    _, atlas_dir = evaluated
    edits = {k: atlas_dir / f"tex{k}.png" for k in range(2)}
    frames = edited_frames(task, atlas_dir, edits, rendered=rendered)
    assert torch.equal(frames, task.video.frames)
    path = edit(task, atlas_dir, edits, tmp_path / "custom_edit.mp4", fps=FPS)  # renders by itself
    assert path == tmp_path / "custom_edit.mp4"
    decoded = np.stack(list(iter_video_frames(path)))
    assert decoded.shape == (T, H, W, 3)
    # the same uint8 frames as the input, so the same video as encoding the input itself
    reference = write_video(tmp_path / "input.mp4", (task.video.frames * 255).round().to(torch.uint8).numpy(), FPS)
    np.testing.assert_array_equal(decoded, np.stack(list(iter_video_frames(reference))))


def test_replace_mode_with_unmodified_atlases_renders_the_atlases(
    task: DecompositionTask, evaluated: tuple[dict[str, Any], Path], rendered: dict[str, torch.Tensor],
) -> None:
    _, atlas_dir = evaluated
    frames = edited_frames(task, atlas_dir, {1: atlas_dir / "tex1.png"}, mode="replace", rendered=rendered)
    expected = torch.zeros(T, H, W, 3)
    for k in range(2):
        atlas = torch.from_numpy(np.asarray(Image.open(atlas_dir / f"tex{k}.png"))[..., :3].astype(np.float32) / 255)
        expected += rendered["alpha"][k][..., None] * rendered["residual"][k] * sample_atlas(atlas, rendered["uv"][k])
    torch.testing.assert_close(frames, expected.clamp(0, 1))
    # the atlas images read back where the texture network was evaluated: the result is the
    # model's own reconstruction up to the atlas' resolution and 8 bits
    assert psnr(frames, rendered["rgb"].clamp(0, 1)) > 40  # measured 52-57 dB (seeds 0, 1, 2)


def red_square(atlas_path: Path, centre_uv: torch.Tensor, half_width: float) -> np.ndarray:
    """tex{i}.png with an opaque red square of ``half_width`` (uv units) around centre_uv."""
    image = np.array(Image.open(atlas_path))
    size = image.shape[0]
    centres = (np.arange(size) + 0.5) / size * 2 - 1
    cols = np.abs(centres - float(centre_uv[0])) <= half_width
    rows = np.abs(centres - float(centre_uv[1])) <= half_width
    image[np.ix_(rows, cols)] = (255, 0, 0, 255)
    return image


def red_pixels(frames: torch.Tensor) -> torch.Tensor:
    """bool [T,H,W]: pixels that are clearly red."""
    return (frames[..., 0] - frames[..., 1:].amax(-1)) > 0.4


def centroid(mask: torch.Tensor) -> np.ndarray:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return np.array([xs.float().mean().item(), ys.float().mean().item()])


def test_a_painted_mark_moves_with_the_object_after_training(
    task: DecompositionTask, evaluated: tuple[dict[str, Any], Path], rendered: dict[str, torch.Tensor],
    scene: RenderedScene, tmp_path: Path,
) -> None:
    _, atlas_dir = evaluated
    x0, y0 = 9, 12  # the object's centre in frame 0
    uv0 = rendered["uv"][0, 0, y0, x0]
    step = (rendered["uv"][0, 0, y0, x0 + 1] - uv0).norm()  # atlas distance of one pixel there
    painted = red_square(atlas_dir / "tex0.png", uv0, 1.2 * float(step))
    Image.fromarray(painted).save(tmp_path / "red.png")
    frames = edited_frames(task, atlas_dir, {0: tmp_path / "red.png"}, rendered=rendered)
    red = red_pixels(frames)
    truth_uv = scene.uv[0, 0, y0, x0].astype(np.float64)
    for t in range(T):
        expected = SPEC.layer_maps(t)[0].to_frame(truth_uv)  # where that surface point is in frame t
        assert red[t].sum() >= 2, t
        # within 1.5 px (measured at most 0.71 px with seeds 0, 1, 2) of a point that travels 14 px
        assert np.linalg.norm(centroid(red[t]) - expected) < 1.5, (t, centroid(red[t]), expected)
        if np.linalg.norm(expected - [x0, y0]) > 4:  # moved away: nothing red is left behind
            assert not red[t, y0 - 2 : y0 + 3, x0 - 2 : x0 + 3].any(), t
    # wherever the uv misses the painted texels the video is the input, exactly
    mark = torch.from_numpy(np.any(painted != np.asarray(Image.open(atlas_dir / "tex0.png")), axis=-1))
    untouched = sample_atlas(mark[..., None].float(), rendered["uv"][0])[..., 0] == 0
    assert untouched.float().mean() > 0.8
    assert torch.equal(frames[untouched], task.video.frames[untouched])


def test_edit_mechanics_on_ground_truth_uv_and_alpha() -> None:
    """propagate_edit with the demo scene's exact uv and alpha (residual 1): a green dot painted on
    the spinning, wobbling, circling object lands where the object's analytic map puts it."""
    spec = SYNTHETIC_CLIPS["orbit"]
    scene = render_scene(spec)
    atlas = torch.from_numpy(scene.atlases[0])  # [64,64,3]
    size = atlas.shape[0]
    # atlas pixels (centres at integers) -> the [-1,1] texel convention of nvd.models.hashing_nvd.atlas
    uv = (torch.from_numpy(scene.uv) + 0.5) / torch.tensor([size, size]) * 2 - 1
    alpha = torch.from_numpy(scene.alpha)
    frames = torch.from_numpy(scene.frames).float() / 255
    dot = np.array([40.0, 25.0])  # atlas pixel on the object (radii 26 x 22 about 31.5)
    yy, xx = np.mgrid[0:size, 0:size]
    paint = torch.zeros(size, size, 4)
    paint[torch.from_numpy(np.hypot(xx - dot[0], yy - dot[1]) <= 2.5)] = torch.tensor([0.0, 1, 0, 1])
    out = propagate_edit(frames, uv[:1], alpha[:1], torch.ones(1, *alpha.shape[1:], 3), {0: atlas}, {0: paint})
    # the object is red-orange: find the green dot by the change it makes
    marked = (out - frames).abs().sum(-1) > 0.5
    touched = sample_atlas(paint[..., 3:], uv[0])[..., 0] * alpha[0] > 0
    for t in range(spec.frames):
        expected = spec.layer_maps(t)[0].to_frame(dot)
        # a ~12 px blob: its pixel centroid is within 0.75 px (measured at most 0.45 px)
        assert np.linalg.norm(centroid(marked[t]) - expected) < 0.75, (t, centroid(marked[t]), expected)
        assert torch.equal(out[t][~touched[t]], frames[t][~touched[t]])
    first, last = spec.layer_maps(0)[0].to_frame(dot), spec.layer_maps(spec.frames - 1)[0].to_frame(dot)
    assert np.linalg.norm(first - last) > 10  # the dot really travelled


def test_edit_input_errors(task: DecompositionTask, evaluated: tuple[dict[str, Any], Path],
                           rendered: dict[str, torch.Tensor], tmp_path: Path) -> None:
    _, atlas_dir = evaluated
    tex0 = np.asarray(Image.open(atlas_dir / "tex0.png"))

    def run(edits: dict[int, Any], folder: Path = atlas_dir, mode: str = "add") -> torch.Tensor:
        return edited_frames(task, folder, edits, mode=mode, rendered=rendered)

    with pytest.raises(InputError, match=r"no layer 2 to edit; valid layers: 0 \(object1\), 1 \(background\)"):
        run({2: atlas_dir / "tex0.png"})
    with pytest.raises(InputError, match=r"no layer -1, 'x' to edit"):
        run({-1: atlas_dir / "tex0.png", "x": atlas_dir / "tex0.png"})
    assert torch.equal(run({"1": atlas_dir / "tex1.png"}), task.video.frames)  # a config's string key
    for mode, name in (("L", "grey.png"), ("LA", "grey_alpha.png")):
        Image.fromarray(tex0[..., 0]).convert(mode).save(tmp_path / name)
        channels = len(mode)
        with pytest.raises(InputError, match=rf"{name}: edited atlas of layer 0 has {channels} channels? "
                                             rf"\(mode {mode}\); it must be RGB or RGBA"):
            run({0: tmp_path / name})
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png: edited atlas of layer 0 is not a readable image"):
        run({0: tmp_path / "broken.png"})
    with pytest.raises(InputError, match="missing.png: edited atlas of layer 1 does not exist"):
        run({1: tmp_path / "missing.png"})
    empty = tmp_path / "no_atlases"
    empty.mkdir()
    with pytest.raises(InputError, match=r"tex0.png: atlas of layer 0 does not exist; run the evaluation first"):
        run({0: atlas_dir / "tex0.png"}, folder=empty)
    with pytest.raises(ConfigError, match="edit mode"):
        run({0: atlas_dir / "tex0.png"}, mode="multiply")


def test_edit_image_of_another_size_is_resampled_with_a_warning(
    task: DecompositionTask, evaluated: tuple[dict[str, Any], Path], rendered: dict[str, torch.Tensor],
    tmp_path: Path,
) -> None:
    _, atlas_dir = evaluated
    # plain RGB (fully opaque) green: resampling a uniform image changes nothing, so the
    # result must equal the edit at the atlas size
    Image.new("RGB", (300, 200), (0, 255, 0)).save(tmp_path / "big.png")
    Image.new("RGB", (ATLAS, ATLAS), (0, 255, 0)).save(tmp_path / "fit.png")
    with pytest.warns(UserWarning, match=rf"big.png: edited atlas of layer 1 is 300x200, "
                                         rf"the atlas is {ATLAS}x{ATLAS}; resampling it to {ATLAS}x{ATLAS}"):
        resampled = edited_frames(task, atlas_dir, {1: tmp_path / "big.png"}, rendered=rendered)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right size: no warning
        fitting = edited_frames(task, atlas_dir, {1: tmp_path / "fit.png"}, rendered=rendered)
    assert torch.equal(resampled, fitting)
    background = task.video.masks[0] == 0
    assert fitting[background][:, 1].mean() > 0.8 and fitting[background][:, 0].mean() < 0.2
