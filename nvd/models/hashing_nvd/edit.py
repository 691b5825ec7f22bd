"""Texture editing: user-edited atlas images rendered through the video (custom_edit.mp4).

The edited images are painted over the ``tex{i}.png`` atlases ``evaluate`` writes. Layers
are ordered as in the model: objects first (mask order), background last.
"""

from __future__ import annotations

import operator
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from nvd.core.errors import ConfigError, InputError
from nvd.eval.outputs import video_fps, write_clip
from nvd.models.hashing_nvd.objective import DecompositionTask
from nvd.models.hashing_nvd.render import render_edit, render_video
from nvd.models.hashing_nvd.run import load_decomposition

EDIT_MODES = ("add", "replace")


@dataclass(frozen=True)
class EditConfig:
    """One video's edit (``edits.<dataset>.<video>`` section): edited atlas per layer index."""

    atlases: Mapping[int, str] = field(default_factory=dict)  # layer index -> edited image
    mode: str = "add"  # "add" (edit over the input frames) or "replace" (re-render the layers)


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
    renders sum_k alpha_k * residual_k * atlas_k(uv_k) (see ``nvd.models.hashing_nvd.atlas.propagate_edit``).
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
    return render_edit(task.video.frames.detach().cpu(), rendered, original, edited, mode)


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
    return write_clip(out_path, frames, fps)


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


def edit_model(model: str | os.PathLike, frames: str | os.PathLike, flow: str | os.PathLike,
               masks: str | os.PathLike, atlas_dir: str | os.PathLike, cfg: EditConfig,
               out_path: str | os.PathLike, device: str = "auto") -> Path:
    """Render ``cfg``'s edited atlases through a trained model's video: the ``edit`` rule and
    ``nvd edit``. ``atlas_dir`` is the model's evaluation folder (its ``tex{i}.png``)."""
    task, _ = load_decomposition(model, frames, flow, masks, device)
    return edit(task, atlas_dir, dict(cfg.atlases), out_path, fps=video_fps(frames), mode=cfg.mode)
