"""Synthetic layered clips with exact ground truth, rendered by inverse mapping.

Every frame pixel is mapped to each layer's atlas (:mod:`nvd.data.demo.scenes`), the atlases are
sampled bilinearly there, and the layers are composited front to back with hard alpha. So
the uv maps are exact by construction, and the optical flow follows analytically from each
layer's inverse map.

Clip folder written by :func:`write_synthetic_clip` (T frames of H x W, K objects)::

    frames/00000.png ...            RGB uint8 frames
    masks/<object>/00000.png ...    one folder per object, grayscale 0/255, the object's
                                    visible region; sorted folder names = layer order
    ground_truth.npz

``ground_truth.npz`` (layers: the K objects front to back, then the background):

- ``masks``: uint8 [K, T, H, W], 0/1, the same masks as the PNG folders.
- ``alpha``: float32 [K+1, T, H, W], per-layer visibility weights; they are 0 or 1 (hard
  edges) and sum to 1 at every pixel. ``alpha[:K] == masks``.
- ``uv``: float32 [K+1, T, H, W, 2], every pixel's (u, v) in each layer's atlas, in atlas
  pixels with pixel centres at integer coordinates. Defined everywhere, also where the layer
  is hidden (there it may fall outside the atlas).
- ``atlas0`` ... ``atlas{K}``: float32 [Ha, Wa, 3] RGB in [0, 1], one per layer, same order.
  Frame t equals round(255 * sum_i alpha[i, t] * bilinear(atlas_i, uv[i, t])), with the
  bilinear sample clamped at the atlas border.
- ``flow_forward``: float32 [T-1, H, W, 2], (dx, dy) from frame t to t+1 of the surface point
  visible at each pixel of frame t (it may be hidden or out of view in frame t+1).
- ``flow_backward``: float32 [T-1, H, W, 2], likewise from frame t+1 to frame t.
- ``fps``: float64 scalar.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from nvd.core.errors import InputError
from nvd.core.publish import publishing
from nvd.data.demo.scenes import SYNTHETIC_CLIPS, LayerMap, SceneSpec

# A fixed timestamp for the npz members: numpy's own savez stamps the current time, which
# would make reruns differ byte for byte.
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class RenderedScene:
    """A rendered clip and its ground truth; layout as in ``ground_truth.npz``."""

    frames: np.ndarray  # uint8 [T, H, W, 3]
    object_names: tuple[str, ...]  # K names, front to back
    masks: np.ndarray  # uint8 [K, T, H, W]
    alpha: np.ndarray  # float32 [K+1, T, H, W]
    uv: np.ndarray  # float32 [K+1, T, H, W, 2]
    atlases: tuple[np.ndarray, ...]  # K+1 x float32 [Ha, Wa, 3]
    flow_forward: np.ndarray  # float32 [T-1, H, W, 2]
    flow_backward: np.ndarray  # float32 [T-1, H, W, 2]
    fps: float


def sample_bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup of ``image`` float32 [Ha, Wa, C] at points ``uv`` [..., 2].

    Points are clamped to the image (border replicate). Returns float32 [..., C]. Exact
    float arithmetic, unlike ``cv2.remap``, which rounds positions to 1/32 pixel.
    """
    h, w = image.shape[:2]
    u = np.clip(uv[..., 0].astype(np.float64), 0, w - 1)
    v = np.clip(uv[..., 1].astype(np.float64), 0, h - 1)
    # Clamp the left/top corner so the right/bottom neighbour stays inside at the last pixel.
    x0 = np.minimum(np.floor(u).astype(np.intp), w - 2)
    y0 = np.minimum(np.floor(v).astype(np.intp), h - 2)
    fx = (u - x0)[..., None]
    fy = (v - y0)[..., None]
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def pixel_grid(size: tuple[int, int]) -> np.ndarray:
    """Coordinates of every pixel centre of an (H, W) frame: float64 [H, W, 2] (x, y)."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([x, y], axis=-1)


def render_scene(spec: SceneSpec) -> RenderedScene:
    """Render ``spec`` and compute its ground truth (pure, deterministic)."""
    grid = pixel_grid(spec.size)
    maps = [spec.layer_maps(t) for t in range(spec.frames)]
    # float64 [K+1, T, H, W, 2]; the flow uses these exact values, rendering the stored float32.
    uv_exact = np.stack([[m.to_atlas(grid) for m in per_frame] for per_frame in maps], axis=1)
    uv = uv_exact.astype(np.float32)
    atlases = tuple(o.texture() for o in spec.objects) + (spec.background.texture(),)
    alpha = _composite_alpha(spec, uv)
    colour = sum(
        a[..., None] * sample_bilinear(atlas, uv_layer)
        for a, atlas, uv_layer in zip(alpha, atlases, uv)
    )
    frames = np.rint(np.clip(colour, 0.0, 1.0) * 255).astype(np.uint8)
    # Hard alpha: exactly one layer has weight 1 at each pixel.
    visible = np.argmax(alpha, axis=0)
    steps = range(spec.frames - 1)
    forward = [_true_flow(maps[t + 1], uv_exact[:, t], visible[t], grid) for t in steps]
    backward = [_true_flow(maps[t], uv_exact[:, t + 1], visible[t + 1], grid) for t in steps]
    return RenderedScene(
        frames=frames,
        object_names=tuple(o.name for o in spec.objects),
        masks=(alpha[:-1] > 0.5).astype(np.uint8),
        alpha=alpha,
        uv=uv,
        atlases=atlases,
        flow_forward=np.stack(forward),
        flow_backward=np.stack(backward),
        fps=spec.fps,
    )


def _composite_alpha(spec: SceneSpec, uv: np.ndarray) -> np.ndarray:
    """Front-to-back hard compositing weights: float32 [K+1, T, H, W], summing to 1."""
    remaining = np.ones(uv.shape[1:-1], np.float32)
    weights = []
    for obj, uv_obj in zip(spec.objects, uv):
        weight = obj.covers(uv_obj.astype(np.float64)) * remaining
        weights.append(weight)
        remaining = remaining - weight
    weights.append(remaining)
    return np.stack(weights).astype(np.float32)


def _true_flow(
    target_maps: list[LayerMap], uv_source: np.ndarray, visible: np.ndarray, grid: np.ndarray
) -> np.ndarray:
    """Exact flow from a source frame to a target frame: float32 [H, W, 2] (dx, dy).

    ``uv_source`` float64 [K+1, H, W, 2] are the source frame's atlas coordinates and
    ``visible`` int [H, W] the source's visible layer; each pixel's atlas point is carried
    into the target frame by its layer's target ``to_frame`` map.
    """
    flow = np.zeros(grid.shape, np.float64)
    for layer, layer_map in enumerate(target_maps):
        sel = visible == layer
        flow[sel] = layer_map.to_frame(uv_source[layer][sel]) - grid[sel]
    return flow.astype(np.float32)


def scene_spec(name: str) -> SceneSpec:
    """The synthetic scene called ``name``; InputError for unknown names."""
    if name not in SYNTHETIC_CLIPS:
        raise InputError(f"unknown synthetic demo clip '{name}'; known: {sorted(SYNTHETIC_CLIPS)}")
    return SYNTHETIC_CLIPS[name]


def write_synthetic_clip(name: str, out_dir: Path) -> Path:
    """Render the synthetic clip ``name`` into the folder ``out_dir`` (layout: module doc).

    The folder is built under a temporary sibling name and moved into place at the end
    (replacing an older one), so an interrupted run never leaves a complete-looking folder.
    Returns ``out_dir``.
    """
    scene = render_scene(scene_spec(name))
    out_dir = Path(out_dir)
    with publishing(out_dir, folder=True) as tmp:
        _write_clip_folder(scene, tmp)
    return out_dir


def _write_clip_folder(scene: RenderedScene, folder: Path) -> None:
    """Write frames, mask folders and ground_truth.npz of ``scene`` into a new ``folder``."""
    _write_pngs(scene.frames, folder / "frames")
    for name, mask in zip(scene.object_names, scene.masks):
        _write_pngs(mask * np.uint8(255), folder / "masks" / name)
    _write_ground_truth(scene, folder / "ground_truth.npz")


def _write_pngs(images: np.ndarray, folder: Path) -> None:
    """Save uint8 [T, H, W] (grayscale) or [T, H, W, 3] (RGB) as folder/00000.png ..."""
    folder.mkdir(parents=True)
    for t, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{t:05d}.png", format="PNG")


def _write_ground_truth(scene: RenderedScene, path: Path) -> None:
    """Save the ground-truth arrays as a deterministic npz (see module doc)."""
    arrays = {
        "masks": scene.masks,
        "alpha": scene.alpha,
        "uv": scene.uv,
        **{f"atlas{i}": atlas for i, atlas in enumerate(scene.atlases)},
        "flow_forward": scene.flow_forward,
        "flow_backward": scene.flow_backward,
        "fps": np.float64(scene.fps),
    }
    _save_npz(path, arrays)


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed member timestamps, readable by ``np.load``."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
