"""Evaluation outputs of a trained layered decomposition, and texture edits through the video.

``evaluate`` renders every frame once (``render_video``) and writes, into one folder:

- ``metrics.json``: PSNR with and without the residual, SSIM, LPIPS (null without local
  weights), per-frame PSNR, alpha IoU per object when ground truth is given, training time
  and iterations, parameter count and the caller's ``meta`` (config, code version);
- ``tex{i}.png``: layer i's atlas, RGBA (see ``atlas_images``);
- ``rec.mp4``, ``rec_no_residual.mp4``: the reconstruction with and without the residual;
- ``alpha{i}.mp4``: layer i's alpha as grey;
- ``residual{i}.mp4``: layer i's multiplicative residual shown as clamp(residual / 2, 0, 1),
  so 1 (no change) is mid-grey, darkening below it and brightening above it;
- ``comparison.mp4``: a 2x2 grid, input | reconstruction over no-residual reconstruction |
  alpha overlay (the input at half strength plus each object's colour times its alpha);
- ``checkerboard{i}.mp4``: layer i's atlas replaced by a checkerboard (``propagate_edit``
  in replace mode), which shows how the layer's texture moves with the video.

``edit`` renders user-edited atlas images (painted over the ``tex{i}.png`` files) through
the video into one mp4. Layers are ordered as in the model: objects first (mask order),
background last. Every video is H.264 (``nvd.video_io.write_video``).
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
import shutil
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from .atlas import atlas_alpha, atlas_rgb, checkerboard, propagate_edit
from .decomposition_training import DecompositionTask
from .errors import ConfigError, InputError
from .metrics import lpips_metric, psnr_per_frame, ssim
from .training import TrainResult
from .video_io import write_video

METRICS_NAME = "metrics.json"
EDIT_MODES = ("add", "replace")
_PARTIAL_TAG = ".partial-"
# Frames per propagate_edit call: bounds its [chunk,H,W,...] temporaries on long videos.
_EDIT_CHUNK = 8
# The smallest frame side LPIPS' AlexNet trunk accepts (nvd.metrics.LPIPS.per_frame).
_LPIPS_MIN_SIDE = 31
# Overlay colours of the objects in comparison.mp4 (cycled when there are more objects).
_OBJECT_COLOURS = (
    (1.0, 0.15, 0.15), (0.15, 1.0, 0.15), (0.2, 0.4, 1.0), (1.0, 0.9, 0.1), (1.0, 0.2, 1.0), (0.1, 1.0, 1.0),
)

_log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- rendering


@torch.no_grad()
def render_video(task: DecompositionTask) -> dict[str, Tensor]:
    """Render every frame of the task's video, on the CPU.

    Returns rgb [T,H,W,3], rgb_no_residual [T,H,W,3], alpha [K,T,H,W], residual [K,T,H,W,3],
    uv [K,T,H,W,2] and texture [K,T,H,W,3] (float32; rgb unclamped, as the model renders it).
    """
    t_count, h, w = task.video.shape
    k = task.model.n_layers
    out = {
        "rgb": torch.empty(t_count, h, w, 3),
        "rgb_no_residual": torch.empty(t_count, h, w, 3),
        "alpha": torch.empty(k, t_count, h, w),
        "residual": torch.empty(k, t_count, h, w, 3),
        "uv": torch.empty(k, t_count, h, w, 2),
        "texture": torch.empty(k, t_count, h, w, 3),
    }
    for t in range(t_count):
        frame = task.render_frame(t)  # [H,W,...], per-layer outputs [H,W,K,...]
        for key in ("rgb", "rgb_no_residual"):
            out[key][t] = frame[key].cpu()
        for key in ("alpha", "residual", "uv", "texture"):
            out[key][:, t] = frame[key].movedim(2, 0).cpu()
    return out


def atlas_images(task: DecompositionTask, rendered: Mapping[str, Tensor], size: int = 1000) -> list[np.ndarray]:
    """Per layer an RGBA uint8 [size,size,4] atlas image (texel convention: nvd.atlas).

    RGB is the layer's texture network on the atlas grid; A is the largest alpha of the video
    pixels (all frames, ``rendered`` from ``render_video``) whose uv falls into the texel, so
    atlas regions no pixel shows are transparent.
    """
    images = []
    for k in range(task.model.n_layers):
        rgb = atlas_rgb(task.model, k, size).cpu()
        alpha = atlas_alpha(rendered["uv"][k].reshape(-1, 2), rendered["alpha"][k].reshape(-1), size)
        images.append(_to_uint8(torch.cat([rgb, alpha[..., None]], dim=-1)))
    return images


def _to_uint8(x: Tensor) -> np.ndarray:
    """Values in [0,1] (clamped) -> uint8 array of the same shape, rounded."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _render_edit(frames: Tensor, rendered: Mapping[str, Tensor], original: dict[int, Tensor],
                 edited: dict[int, Tensor], mode: str) -> Tensor:
    """``propagate_edit`` over the whole video in chunks of frames: [T,H,W,3] in [0,1]."""
    out = torch.empty_like(frames)
    for start in range(0, frames.shape[0], _EDIT_CHUNK):
        part = slice(start, start + _EDIT_CHUNK)
        out[part] = propagate_edit(frames[part], rendered["uv"][:, part], rendered["alpha"][:, part],
                                   rendered["residual"][:, part], original, edited, mode)
    return out


# ---------------------------------------------------------------------------- evaluation


def evaluate(
    task: DecompositionTask,
    out_dir: str | os.PathLike,
    *,
    fps: float,
    training: TrainResult | Sequence[Mapping[str, float]],
    meta: Mapping[str, Any],
    atlas_size: int = 1000,
    lpips_weights: str | None = None,
    truth: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the evaluation outputs of ``task`` (list in the module doc) into ``out_dir``.

    ``training`` gives the training time and iterations: the ``TrainResult`` of ``train``,
    or the rows of its log (``nvd.training.read_log``), whose last row is used. ``meta``
    (config, code version...) is copied into metrics.json. ``lpips_weights`` is a local
    LPIPS weight file (``nvd.metrics.lpips_metric``); without it, or for frames under 31 px
    (too small for its AlexNet), lpips is null. ``truth``
    (optional) holds ``masks`` [K-1,T,H,W] (as in the demo clips' ground_truth.npz); with it
    metrics.json gets ``alpha_iou``, per object, else null.

    The folder is built under a temporary sibling name and renamed into place at the end,
    so an interrupted evaluation never leaves a complete-looking folder. An existing
    ``out_dir`` is replaced only when it is empty or an earlier evaluation (it has
    metrics.json): anything else is refused (InputError), never deleted. Returns the metrics.
    """
    out_dir = Path(out_dir)
    replaceable = out_dir.is_dir() and (not any(out_dir.iterdir()) or (out_dir / METRICS_NAME).is_file())
    if out_dir.exists() and not replaceable:
        raise InputError(f"{out_dir}: exists and is not an earlier evaluation; "
                         "choose an empty or new output folder for the evaluation")
    iterations, train_time = _training_summary(training)
    masks = _truth_masks(task, truth)
    rendered = render_video(task)
    frames = task.video.frames.detach().cpu()
    truth_uv = None if truth is None or "uv" not in truth else torch.as_tensor(np.asarray(truth["uv"])).float()
    metrics = _metrics(task, rendered, frames, lpips_weights, masks, truth_uv)
    metrics.update(training_time_s=train_time, iterations=iterations,
                   parameters=sum(p.numel() for p in task.model.parameters()),
                   frames=frames.shape[0], height=frames.shape[1], width=frames.shape[2],
                   layers=task.model.n_layers, objects=list(task.video.object_names),
                   atlas_size=atlas_size, fps=fps, meta=dict(meta))
    # Serialised before the slow part, so a meta that is not JSON fails early.
    metrics_text = json.dumps(metrics, indent=2, allow_nan=False) + "\n"
    atlases = atlas_images(task, rendered, atlas_size)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}{_PARTIAL_TAG}*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out_dir.with_name(f".{out_dir.name}{_PARTIAL_TAG}{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir()
        _write_outputs(tmp, frames, rendered, atlases, fps)
        # Written last: its presence marks the folder as a finished evaluation.
        (tmp / METRICS_NAME).write_text(metrics_text)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log.info("evaluation in %s: PSNR %s dB (%s dB without residual), SSIM %.4f",
              out_dir, metrics["psnr"], metrics["psnr_no_residual"], metrics["ssim"])
    return metrics


def _training_summary(training: TrainResult | Sequence[Mapping[str, float]]) -> tuple[int, float]:
    """(iterations, training time in s) from a TrainResult or the rows of log.csv."""
    if isinstance(training, TrainResult):
        return training.iterations, training.wall_time_s
    if not training:
        raise InputError("the training log has no rows: train the model before evaluating it")
    last = training[-1]
    return int(last["iteration"]), float(last["wall_time_s"])


def _truth_masks(task: DecompositionTask, truth: Mapping[str, Any] | None) -> Tensor | None:
    """The ground-truth object masks as bool [K-1,T,H,W], or None without ground truth."""
    if truth is None:
        return None
    if "masks" not in truth:
        raise InputError(f"ground truth has no 'masks' (keys: {sorted(truth)})")
    masks = torch.as_tensor(np.asarray(truth["masks"])) > 0.5
    t_count, h, w = task.video.shape
    expected = (task.model.n_layers - 1, t_count, h, w)
    if tuple(masks.shape) != expected:
        raise InputError(f"ground-truth masks have shape {tuple(masks.shape)}, the decomposition needs "
                         f"{expected} (objects, frames, height, width)")
    return masks


def alpha_iou(alpha: Tensor, masks: Tensor) -> list[float]:
    """IoU of (alpha_k > 0.5) with object k's mask over all frames, per object.

    alpha [K,T,H,W] (objects first, background last), masks bool [K-1,T,H,W]. An object that
    is absent from both counts as a perfect match (1.0).
    """
    out = []
    for k in range(masks.shape[0]):
        pred = alpha[k] > 0.5
        union = (pred | masks[k]).sum().item()
        out.append((pred & masks[k]).sum().item() / union if union else 1.0)
    return out


def mark_tracking_error(uv: Tensor, alpha: Tensor, truth_uv: Tensor, truth_masks: Tensor,
                        visible_within: float = 1.0) -> list[float | None]:
    """How far a mark painted on each object's atlas lands from where it should, in px.

    For object k, the atlas point under the centre of its true mask in the first frame where
    it shows is "painted". In every frame where the true uv map still shows that point
    (some pixel's true uv within ``visible_within`` atlas px), the mark should be at that
    pixel; the decomposition puts it at the pixel of the object layer (alpha > 0.5) whose
    predicted uv is nearest to the painted point. Returns the mean distance per object
    (None when the object never shows).

    uv [K,T,H,W,2] and alpha [K,T,H,W] predicted; truth_uv [K,T,H,W,2] (atlas px) and
    truth_masks bool [K-1,T,H,W] from the scene.
    """
    k_objects, t_count, h, w = truth_masks.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pixels = torch.stack([xs, ys], -1).reshape(-1, 2).float()
    errors: list[float | None] = []
    for k in range(k_objects):
        shown = [t for t in range(t_count) if truth_masks[k, t].any()]
        if not shown:
            errors.append(None)
            continue
        t0 = shown[0]
        inside = truth_masks[k, t0].reshape(-1)
        centre = pixels[inside].mean(0)
        p0 = torch.where(inside)[0][torch.argmin((pixels[inside] - centre).norm(dim=1))]
        painted_pred, painted_true = uv[k, t0].reshape(-1, 2)[p0], truth_uv[k, t0].reshape(-1, 2)[p0]
        dists = []
        for t in shown:
            true_d = (truth_uv[k, t].reshape(-1, 2) - painted_true).norm(dim=1)
            true_d[~truth_masks[k, t].reshape(-1)] = float("inf")
            if true_d.min() > visible_within:
                continue
            layer = (alpha[k, t] > 0.5).reshape(-1)
            if not layer.any():
                continue
            pred_d = (uv[k, t].reshape(-1, 2) - painted_pred).norm(dim=1)
            pred_d[~layer] = float("inf")
            dists.append((pixels[torch.argmin(pred_d)] - pixels[torch.argmin(true_d)]).norm().item())
        errors.append(sum(dists) / len(dists) if dists else None)
    return errors


def _metrics(task: DecompositionTask, rendered: Mapping[str, Tensor], frames: Tensor,
             lpips_weights: str | None, masks: Tensor | None, truth_uv: Tensor | None = None) -> dict[str, Any]:
    """Quality figures of the rendered video against the input frames [T,H,W,3]."""
    # Clamped like the written videos: values outside [0,1] cannot be shown.
    rec = rendered["rgb"].clamp(0, 1)
    rec_no_residual = rendered["rgb_no_residual"].clamp(0, 1)
    per_frame = psnr_per_frame(rec, frames)
    per_frame_no_residual = psnr_per_frame(rec_no_residual, frames)
    lpips = lpips_metric(lpips_weights, task.video.frames.device)
    if lpips is not None and min(frames.shape[1:3]) < _LPIPS_MIN_SIDE:
        warnings.warn(f"frames of {frames.shape[2]}x{frames.shape[1]} are too small for LPIPS (at least "
                      f"{_LPIPS_MIN_SIDE} px per side); lpips is left out (null)", stacklevel=3)
        lpips = None
    return {
        "psnr": _finite(per_frame.mean().item()),
        "psnr_no_residual": _finite(per_frame_no_residual.mean().item()),
        "ssim": ssim(rec, frames),
        "lpips": None if lpips is None else lpips(rec, frames),
        "psnr_per_frame": [_finite(v) for v in per_frame.tolist()],
        "psnr_no_residual_per_frame": [_finite(v) for v in per_frame_no_residual.tolist()],
        "alpha_iou": None if masks is None else alpha_iou(rendered["alpha"], masks),
        "mark_tracking_error_px": None if truth_uv is None else mark_tracking_error(
            rendered["uv"], rendered["alpha"], truth_uv, masks),
    }


def _finite(value: float) -> float | None:
    """``value``, or None when it is not finite (a frame reproduced exactly has PSNR inf),
    so that metrics.json stays strict JSON."""
    return value if math.isfinite(value) else None


def _write_outputs(folder: Path, frames: Tensor, rendered: Mapping[str, Tensor],
                   atlases: list[np.ndarray], fps: float) -> None:
    """Atlas PNGs and every video of the evaluation into ``folder``."""

    def video(name: str, clip: Iterator[Tensor] | Tensor) -> None:
        """clip: [T,H,W,3] in [0,1] (or an iterator of [H,W,3] frames)."""
        write_video(folder / name, (_to_uint8(frame) for frame in clip), fps)

    for i, image in enumerate(atlases):
        Image.fromarray(image).save(folder / f"tex{i}.png")  # uint8 [S,S,4]: RGBA
    rec = rendered["rgb"].clamp(0, 1)
    rec_no_residual = rendered["rgb_no_residual"].clamp(0, 1)
    video("rec.mp4", rec)
    video("rec_no_residual.mp4", rec_no_residual)
    for i in range(len(atlases)):
        video(f"alpha{i}.mp4", rendered["alpha"][i][..., None].expand(*rendered["alpha"][i].shape, 3))
        video(f"residual{i}.mp4", (rendered["residual"][i] / 2).clamp(0, 1))
    overlay = _alpha_overlay(frames, rendered["alpha"])
    video("comparison.mp4", (torch.cat([torch.cat([f, r], dim=1), torch.cat([n, o], dim=1)], dim=0)
                             for f, r, n, o in zip(frames, rec, rec_no_residual, overlay)))
    original = {k: torch.from_numpy(image[..., :3]).float() / 255 for k, image in enumerate(atlases)}
    size = atlases[0].shape[0]
    board = torch.cat([checkerboard(size), torch.ones(size, size, 1)], dim=-1)
    for i in range(len(atlases)):
        video(f"checkerboard{i}.mp4", _render_edit(frames, rendered, original, {i: board}, "replace"))


def _alpha_overlay(frames: Tensor, alpha: Tensor) -> Tensor:
    """Half the input [T,H,W,3] plus half of each object's colour times its alpha [K,T,H,W]."""
    tint = torch.zeros_like(frames)
    for k in range(alpha.shape[0] - 1):  # the background (last) stays untinted
        colour = torch.tensor(_OBJECT_COLOURS[k % len(_OBJECT_COLOURS)])
        tint += alpha[k][..., None] * colour
    return 0.5 * frames + 0.5 * tint


def _replace_dir(new: Path, target: Path) -> None:
    """Rename the finished folder ``new`` onto ``target``, removing an older ``target``."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old)
    else:
        new.rename(target)


# ---------------------------------------------------------------------------- editing


def edited_frames(
    task: DecompositionTask,
    atlas_dir: str | os.PathLike,
    edits: Mapping[int | str, str | os.PathLike],
    *,
    mode: str = "add",
    rendered: Mapping[str, Tensor] | None = None,
) -> Tensor:
    """The video with edited atlases: float [T,H,W,3] in [0,1] (what ``edit`` encodes).

    ``atlas_dir`` holds the ``tex{i}.png`` written by ``evaluate``; ``edits`` maps a layer
    index (int, or its decimal string) to its edited image (RGB = fully opaque, or RGBA whose
    alpha blends the edit over the original). Add mode adds alpha * residual * (edited - tex{i}.png) at each pixel's uv
    to the input frames, so an unmodified atlas gives back the input video; replace mode
    renders sum_k alpha_k * residual_k * atlas_k(uv_k) (see ``nvd.atlas.propagate_edit``).
    ``rendered`` (from ``render_video``) saves rendering the video again.

    Raises InputError (before any rendering) naming the layer or file for: a layer index
    outside 0..K-1, a missing or malformed tex{i}.png, an unreadable edit image or one that
    is not RGB/RGBA. An edit image of another size than the atlas is resampled to it, with
    a warning; ConfigError for an unknown mode.
    """
    if mode not in EDIT_MODES:
        raise ConfigError(f"edit mode must be one of {', '.join(EDIT_MODES)}, got '{mode}'")
    if not edits:
        raise InputError("no edited atlas images given")
    n_layers = task.model.n_layers
    indices = {key: _layer_index(key, n_layers) for key in edits}
    bad = [repr(key) for key, k in indices.items() if k is None]
    if bad:
        raise InputError(f"no layer {', '.join(bad)} to edit; valid layers: {_layer_names(task)}")
    paths = {indices[key]: path for key, path in edits.items()}
    original = load_atlases(atlas_dir, range(n_layers) if mode == "replace" else sorted(paths))
    size = next(iter(original.values())).shape[0]
    edited = {k: load_edit_image(paths[k], size, k) for k in sorted(paths)}
    rendered = rendered if rendered is not None else render_video(task)
    return _render_edit(task.video.frames.detach().cpu(), rendered, original, edited, mode)


def edit(
    task: DecompositionTask,
    atlas_dir: str | os.PathLike,
    edits: Mapping[int | str, str | os.PathLike],
    out_path: str | os.PathLike,
    *,
    fps: float,
    mode: str = "add",
    rendered: Mapping[str, Tensor] | None = None,
) -> Path:
    """Render edited atlases through the video and write it as H.264 to ``out_path``
    (custom_edit.mp4). Arguments and errors as in ``edited_frames``; returns the path."""
    frames = edited_frames(task, atlas_dir, edits, mode=mode, rendered=rendered)
    return write_video(out_path, (_to_uint8(frame) for frame in frames), fps)


def _layer_index(key: object, n_layers: int) -> int | None:
    """``key`` as a layer index in 0..n_layers-1, else None. Decimal strings count: edits read
    from a config file may have them as keys."""
    try:
        k = int(key) if isinstance(key, str) else operator.index(key)
    except (TypeError, ValueError):
        return None
    return k if 0 <= k < n_layers else None


def _layer_names(task: DecompositionTask) -> str:
    """'0 (name), 1 (name), ..., K-1 (background)' for error messages."""
    k = task.model.n_layers
    names = list(task.video.object_names)
    objects = [f"{i} ({names[i]})" if i < len(names) else f"{i} (object)" for i in range(k - 1)]
    return ", ".join([*objects, f"{k - 1} (background)"])


def load_atlases(atlas_dir: str | os.PathLike, layers: Iterable[int]) -> dict[int, Tensor]:
    """The RGB of ``tex{i}.png`` in ``atlas_dir`` for each layer: float [S,S,3] in [0,1].

    InputError when a file is missing (run evaluate first), unreadable, not a square RGBA
    image, or of a different size than the other layers' atlases.
    """
    atlas_dir = Path(atlas_dir)
    out: dict[int, Tensor] = {}
    for k in layers:
        path = atlas_dir / f"tex{k}.png"
        if not path.is_file():
            raise InputError(f"{path}: atlas of layer {k} does not exist; run the evaluation first, "
                             "it writes the tex{i}.png atlases that edits are made on")
        image = _open_image(path, f"atlas of layer {k}")
        if image.mode != "RGBA" or image.width != image.height:
            raise InputError(f"{path}: a {image.width}x{image.height} {image.mode} image, not an atlas "
                             "written by the evaluation (square RGBA); run the evaluation again")
        if out and image.width != next(iter(out.values())).shape[0]:
            raise InputError(f"{path}: atlas is {image.width}x{image.height}, the other layers' atlases are "
                             f"{next(iter(out.values())).shape[0]} square; run the evaluation again")
        out[k] = torch.from_numpy(np.asarray(image, dtype=np.float32)[..., :3] / 255)
    return out


def load_edit_image(path: str | os.PathLike, size: int, layer: int) -> Tensor:
    """An edited atlas image as float RGBA [size,size,4] in [0,1] (RGB gets alpha 1).

    InputError naming the file and ``layer`` when it is missing, unreadable or not RGB/RGBA
    (grayscale, grayscale+alpha, CMYK...); palette images are expanded to RGBA. An image of
    another size is resampled (bilinear) to size x size with a warning.
    """
    path = Path(path)
    image = _open_image(path, f"edited atlas of layer {layer}")
    if image.mode == "P":  # a palette holds colours (and maybe transparency): expand it
        image = image.convert("RGBA")
    if image.mode not in ("RGB", "RGBA"):
        bands = len(image.getbands())
        raise InputError(f"{path}: edited atlas of layer {layer} has {bands} channel{'s' * (bands != 1)} "
                         f"(mode {image.mode}); it must be RGB or RGBA")
    image = image.convert("RGBA")
    if image.size != (size, size):
        warnings.warn(f"{path}: edited atlas of layer {layer} is {image.width}x{image.height}, the atlas is "
                      f"{size}x{size}; resampling it to {size}x{size}", stacklevel=2)
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)


def _open_image(path: Path, what: str) -> Image.Image:
    """Open and decode an image file; InputError saying ``what`` it was for."""
    if not path.is_file():
        raise InputError(f"{path}: {what} does not exist")
    try:
        with Image.open(path) as image:
            # A copy: closing the file releases the decoded data of the opened image.
            return image.copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: {what} is not a readable image ({exc})") from exc
