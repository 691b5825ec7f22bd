"""Masks stage: annotation readers (DAVIS palette, per-object folders), instance selection,
the torchvision Mask R-CNN path with a random checkpoint, and the clear errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from nvd.core.errors import ConfigError, InputError, WeightsError
from nvd.data.masks import MasksConfig, compute_masks, load_masks
from nvd.data.masks.maskrcnn import select_instances
from nvd.data.stores import new_array, open_store, write_store
from nvd.data.weights import WeightsConfig

NO_WEIGHTS = WeightsConfig()


def make_frames(path: Path, n_frames: int, size: tuple[int, int], frame_indices: list[int] | None = None) -> Path:
    """A frames store of random frames uint8 [T,H,W,3] from a frame folder named 00000.jpg, ..."""
    height, width = size
    indices = list(range(n_frames)) if frame_indices is None else frame_indices
    video = np.random.default_rng(0).integers(0, 256, (n_frames, height, width, 3), dtype=np.uint8)
    with write_store(path, "frames", config={}, code_version="test") as group:
        new_array(group, "frames", video.shape, "uint8", (1, height, width, 3), ("t", "y", "x", "c"))[...] = video
        group.attrs.update(
            fps=None,
            source="test",
            frame_indices=indices,
            source_frame_names=[f"{i:05d}.jpg" for i in indices],
            source_size=[height, width],
            size=[height, width],
        )
    return path


def random_labels(n: int, size: tuple[int, int], ids: list[int], seed: int = 0) -> np.ndarray:
    """uint8 [n,H,W] label maps: blocks of random ids from ``ids`` (0 = background)."""
    rng = np.random.default_rng(seed)
    blocks = rng.choice([0, *ids], size=(n, size[0] // 4, size[1] // 4)).astype(np.uint8)
    return np.kron(blocks, np.ones((4, 4), np.uint8))


def write_palette(folder: Path, labels: np.ndarray) -> None:
    """DAVIS 2017 style: one palette PNG per frame, pixel value = object id."""
    folder.mkdir(parents=True, exist_ok=True)
    palette = np.random.default_rng(1).integers(0, 256, 768).tolist()
    for i, label in enumerate(labels):
        img = Image.fromarray(label, mode="P")
        img.putpalette(palette)
        img.save(folder / f"{i:05d}.png")


def annotate(tmp_path: Path, frames: Path, folder: Path, **cfg) -> tuple[np.ndarray, list[str]]:
    out = compute_masks(frames, tmp_path / "masks.zarr", MasksConfig(backend="annotations", **cfg), NO_WEIGHTS, folder)
    assert open_store(out, "masks").attrs["backend"] == "annotations"
    return load_masks(out)


def test_davis_palette_round_trip(tmp_path):
    labels = random_labels(4, (48, 64), ids=[3, 1])  # id 2 unused: ids need not be contiguous
    write_palette(tmp_path / "ann", labels)
    masks, names = annotate(tmp_path, make_frames(tmp_path / "f.zarr", 4, (48, 64)), tmp_path / "ann")
    assert names == ["object_1", "object_3"]
    assert masks.dtype == np.uint8 and masks.shape == (2, 4, 48, 64)
    for k, obj in enumerate([1, 3]):
        np.testing.assert_array_equal(masks[k], labels == obj)  # IoU = 1


def test_object_folders_sorted_by_name(tmp_path):
    labels = random_labels(3, (32, 40), ids=[1, 2, 3], seed=2)
    created = {"zebra": 1, "apple": 2, "mango": 3}  # creation order differs from sorted order
    for name, obj in created.items():
        (tmp_path / "ann" / name).mkdir(parents=True)
        for i, label in enumerate(labels):
            # 0/255 for two objects, 0/1 for the third: any nonzero value is the object.
            scale = 1 if name == "mango" else 255
            Image.fromarray((label == obj).astype(np.uint8) * scale).save(tmp_path / "ann" / name / f"{i}.png")
    masks, names = annotate(tmp_path, make_frames(tmp_path / "f.zarr", 3, (32, 40)), tmp_path / "ann")
    assert names == ["apple", "mango", "zebra"]
    for k, name in enumerate(names):
        np.testing.assert_array_equal(masks[k], labels == created[name])


def test_resize_is_nearest_neighbour(tmp_path):
    labels = random_labels(2, (100, 132), ids=[1, 2], seed=3)  # source size; frames are smaller
    write_palette(tmp_path / "ann", labels)
    masks, names = annotate(tmp_path, make_frames(tmp_path / "f.zarr", 2, (50, 66)), tmp_path / "ann")
    assert set(np.unique(masks)) <= {0, 1}
    for t, label in enumerate(labels):
        expected = cv2.resize(label, (66, 50), interpolation=cv2.INTER_NEAREST)
        for k, obj in enumerate([1, 2]):
            np.testing.assert_array_equal(masks[k, t], expected == obj)


def test_binary_davis2016_mask_is_one_object(tmp_path):
    labels = random_labels(2, (48, 64), ids=[1], seed=4)
    (tmp_path / "ann").mkdir()
    for i, label in enumerate(labels):
        Image.fromarray(label * 255).convert("RGB").save(tmp_path / "ann" / f"{i:05d}.png")
    masks, names = annotate(
        tmp_path, make_frames(tmp_path / "f.zarr", 2, (24, 32)), tmp_path / "ann", objects=("bear",)
    )
    assert names == ["bear"]
    np.testing.assert_array_equal(masks[0], (labels[:, ::2, ::2] == 1))


def test_kept_frames_pick_their_annotation_files(tmp_path):
    # Frame i has object 1 only in column block i, so a wrong file is visible.
    labels = np.zeros((6, 16, 24), np.uint8)
    for i in range(6):
        labels[i, :, 4 * i : 4 * i + 4] = 1
    write_palette(tmp_path / "ann", labels)
    frames = make_frames(tmp_path / "f.zarr", 3, (16, 24), frame_indices=[1, 3, 5])
    masks, _ = annotate(tmp_path, frames, tmp_path / "ann")
    np.testing.assert_array_equal(masks[0], labels[[1, 3, 5]])


def test_more_object_folders_than_configured_objects(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / "ann" / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "ann" / name / "0.png")
    frames = make_frames(tmp_path / "f.zarr", 1, (8, 8))
    with pytest.raises(InputError, match=r"3 object\(s\) \['a', 'b', 'c'\].*masks.objects.*\['x', 'y'\]") as err:
        annotate(tmp_path, frames, tmp_path / "ann", objects=("x", "y"))
    assert str(tmp_path / "ann") in str(err.value)
    assert not (tmp_path / "masks.zarr").exists()


def test_missing_annotation_file(tmp_path):
    write_palette(tmp_path / "ann", random_labels(3, (8, 8), ids=[1]))
    frames = make_frames(tmp_path / "f.zarr", 4, (8, 8))
    with pytest.raises(InputError, match="no annotation for kept frame 3"):
        annotate(tmp_path, frames, tmp_path / "ann")
    # A file missing in the middle would shift every later mask: refused.
    (tmp_path / "ann" / "00001.png").rename(tmp_path / "ann" / "00003.png")  # files 0, 2, 3
    with pytest.raises(InputError, match="annotations: .*ann: frame numbers must be consecutive"):
        annotate(tmp_path, frames, tmp_path / "ann")


def test_annotations_folder_required(tmp_path):
    frames = make_frames(tmp_path / "f.zarr", 1, (8, 8))
    with pytest.raises(InputError, match="'annotations'"):
        annotate(tmp_path, frames, None)
    with pytest.raises(InputError, match="nowhere"):
        annotate(tmp_path, frames, tmp_path / "nowhere")


def test_none_backend_has_no_objects(tmp_path):
    out = compute_masks(make_frames(tmp_path / "f.zarr", 3, (8, 10)), tmp_path / "m.zarr", MasksConfig(), NO_WEIGHTS)
    masks, names = load_masks(out)
    assert masks.shape == (0, 3, 8, 10) and masks.dtype == np.uint8 and names == []


def test_select_instances():
    masks = np.zeros((4, 2, 3))
    for i in range(4):
        masks[i, i % 2, i % 3] = 0.9  # instance i: one pixel, probability above 0.5
    masks[0, 1, 2] = 0.4  # below 0.5: not part of the mask
    labels = ["dog", "person", "person", "car"]
    scores = np.array([0.9, 0.6, 0.8, 0.3])
    out = select_instances(labels, scores, masks, ["person", "anything", "person", "cat", "anything"], 0.5)
    assert out.dtype == np.uint8 and out.shape == (5, 2, 3)
    np.testing.assert_array_equal(out[0], masks[2] > 0.5)  # best person
    np.testing.assert_array_equal(out[2], masks[1] > 0.5)  # second person
    np.testing.assert_array_equal(out[1], masks[0] > 0.5)  # anything: best not taken (dog)
    assert not out[3].any()  # no cat
    assert not out[4].any()  # the car is under the threshold
    # No detections at all -> all-zero masks of the frame's size.
    empty = select_instances([], np.zeros(0), np.zeros((0, 2, 3)), ["person"], 0.5)
    assert empty.shape == (1, 2, 3) and not empty.any()


@pytest.fixture(scope="module")
def maskrcnn_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised torchvision Mask R-CNN state dict: the real loading code path."""
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "maskrcnn.pth"
    torch.save(maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91).state_dict(), path)
    return path


def test_maskrcnn_backend(tmp_path, maskrcnn_checkpoint):
    cfg = MasksConfig(backend="maskrcnn", objects=("person", "anything"), min_size=128, device="cpu")
    weights = WeightsConfig(maskrcnn=str(maskrcnn_checkpoint))
    out = compute_masks(make_frames(tmp_path / "f.zarr", 2, (64, 80)), tmp_path / "m.zarr", cfg, weights)
    masks, names = load_masks(out)
    assert names == ["person", "anything"]
    assert masks.shape == (2, 2, 64, 80) and masks.dtype == np.uint8
    assert set(np.unique(masks)) <= {0, 1}
    assert open_store(out).attrs["nvd"]["config"]["weights"] == {"maskrcnn": str(maskrcnn_checkpoint)}


def test_maskrcnn_wrong_state_dict(tmp_path):
    import torch

    torch.save({"backbone.nonsense": torch.zeros(3)}, tmp_path / "bad.pth")
    cfg = MasksConfig(backend="maskrcnn", objects=("person",), min_size=128, device="cpu")
    weights = WeightsConfig(maskrcnn=str(tmp_path / "bad.pth"))
    with pytest.raises(WeightsError, match=r"weights\.maskrcnn.*bad\.pth"):
        compute_masks(make_frames(tmp_path / "f.zarr", 1, (8, 8)), tmp_path / "m.zarr", cfg, weights)


def test_maskrcnn_config_errors(tmp_path):
    frames = make_frames(tmp_path / "f.zarr", 1, (8, 8))
    with pytest.raises(ConfigError, match="unknown class name.*'unicorn'.*'person'"):
        compute_masks(frames, tmp_path / "m.zarr", MasksConfig(backend="maskrcnn", objects=("unicorn",)), NO_WEIGHTS)
    with pytest.raises(ConfigError, match="masks.objects"):
        compute_masks(frames, tmp_path / "m.zarr", MasksConfig(backend="maskrcnn"), NO_WEIGHTS)
    with pytest.raises(WeightsError, match=r"weights\.maskrcnn"):
        compute_masks(frames, tmp_path / "m.zarr", MasksConfig(backend="maskrcnn", objects=("dog",)), NO_WEIGHTS)


@pytest.mark.skipif(importlib.util.find_spec("detectron2") is not None, reason="detectron2 is installed")
def test_detectron2_not_installed(tmp_path):
    cfg = MasksConfig(backend="detectron2", objects=("person",))
    with pytest.raises(ConfigError, match="detectron2 is not installed.*maskrcnn"):
        compute_masks(make_frames(tmp_path / "f.zarr", 1, (8, 8)), tmp_path / "m.zarr", cfg, NO_WEIGHTS)
