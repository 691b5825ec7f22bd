"""Ground-truth object masks from annotation images.

Two folder layouts are read:

(a) one subfolder per object, each holding binary masks (0/255 or 0/1; any nonzero pixel
    is the object). Objects are the subfolder names in sorted order.
(b) mask images directly in the folder, DAVIS style. Palette ('P' mode) PNGs (DAVIS 2017):
    index 0 is background and each nonzero index is one object; objects are the sorted
    nonzero indices found in the kept frames, named ``object_<id>``. Any other mode
    (grayscale/RGB, DAVIS 2016): one object, ``object_1``, any nonzero pixel.

Annotation files are ordered like frame folders (by the last integer in their name, no
gaps allowed: ``video_io.list_frame_files``); the i-th file annotates source frame i, and
the kept frames pick theirs through the frames store's ``frame_indices``. Masks are
resized to the frames' size with nearest neighbour only, so labels are never blended.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from nvd.core.errors import InputError
from nvd.data.video_io import IMAGE_SUFFIXES, list_frame_files

# Allowed relative difference of aspect ratio between annotations and frames (rounding of
# resized resolutions such as 854x480 vs 1920x1080); more means the wrong folder.
_ASPECT_TOLERANCE = 0.02


def read_annotations(
    folder: str | Path | None,
    frame_indices: Sequence[int],
    frame_names: Sequence[str] | None,
    size: tuple[int, int],
    objects: Sequence[str] | None = None,
) -> tuple[list[str], Iterator[np.ndarray]]:
    """Object names and per-frame masks of an annotation folder, aligned to the kept frames.

    ``frame_indices``/``frame_names`` are the frames store's attrs (source index and file
    name of each kept frame; names None for video files), ``size`` its (H, W). Returns
    (K names, iterator over the T kept frames of uint8 [K,H,W] 0/1 masks). With ``objects``
    given, the annotation must hold exactly that many objects and the names are
    ``objects``. Listing, alignment and object discovery happen before returning, so an
    InputError comes before any output is written.
    """
    if folder is None:
        raise InputError(
            "masks backend 'annotations' needs an annotation folder, but the video has no "
            "'annotations' entry in its dataset config"
        )
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"annotations folder '{folder}' does not exist")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    direct = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if subfolders and direct:
        raise InputError(
            f"annotations folder '{folder}' mixes mask files and subfolders; use either one "
            "subfolder of binary masks per object or mask files (DAVIS style) directly in it"
        )
    if subfolders:
        names = [p.name for p in subfolders]
        files = [_aligned_files(p, frame_indices, frame_names) for p in subfolders]
        per_frame = _binary_frames(files, size)
    else:
        names, per_frame = _label_frames(_aligned_files(folder, frame_indices, frame_names), size)
    if objects:
        if len(objects) != len(names):
            raise InputError(
                f"annotations folder '{folder}' holds {len(names)} object(s) {names} in the kept "
                f"frames, but config key 'masks.objects' lists {len(objects)}: {list(objects)}"
            )
        names = list(objects)
    return names, per_frame


def _aligned_files(folder: Path, frame_indices: Sequence[int], frame_names: Sequence[str] | None) -> list[Path]:
    """The annotation file of each kept frame: the ``frame_indices[t]``-th file of ``folder``.

    Alignment is by position; ``list_frame_files`` refuses gaps in the numbering, so a file
    missing in the middle cannot silently shift every later mask by one frame.
    """
    try:
        files = list_frame_files(folder)
    except InputError as exc:
        raise InputError(f"annotations: {exc}") from exc
    for t, index in enumerate(frame_indices):
        if index >= len(files):
            frame = frame_names[t] if frame_names else f"source frame {index}"
            raise InputError(
                f"annotations folder '{folder}' has {len(files)} mask files, so there is no "
                f"annotation for kept frame {t} ({frame}, source index {index})"
            )
    return [files[index] for index in frame_indices]


def _label_frames(files: list[Path], size: tuple[int, int]) -> tuple[list[str], Iterator[np.ndarray]]:
    """Layout (b): label maps with palette ids (or 0/1 for binary masks) -> names, masks."""
    labels = []
    palette = []
    for path in files:
        label, is_palette = _read_label_map(path)
        labels.append(_resize_nearest(label, size, path))
        palette.append(is_palette)
    if any(palette) and not all(palette):
        raise InputError(
            f"annotations folder '{files[0].parent}' mixes palette and binary masks "
            f"('{files[palette.index(True)].name}' is a palette PNG, '{files[palette.index(False)].name}' is not)"
        )
    stack = np.stack(labels)  # uint8 [T,H,W]
    ids = np.unique(stack)
    ids = ids[ids != 0]
    names = [f"object_{i}" for i in ids]
    return names, (np.equal(label[None], ids[:, None, None]).astype(np.uint8) for label in stack)


def _binary_frames(files: list[list[Path]], size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Layout (a): per frame, stack every object's binary mask -> uint8 [K,H,W]."""
    for frame_files in zip(*files):
        yield np.stack([(_resize_nearest(_read_label_map(p)[0], size, p) != 0).astype(np.uint8) for p in frame_files])


def _read_label_map(path: Path) -> tuple[np.ndarray, bool]:
    """(uint8 [h,w] label map, is_palette): palette indices, or 0/1 for any other mode."""
    try:
        with Image.open(path) as img:
            if img.mode == "P":
                return np.asarray(img, dtype=np.uint8), True
            array = np.asarray(img)
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"annotation file '{path}' cannot be read as an image ({exc})") from exc
    if array.ndim == 3:
        # Colour masks: any nonzero colour channel is the object; alpha says nothing.
        array = array[..., : 1 if array.shape[2] == 2 else 3].any(axis=2)
    return (array != 0).astype(np.uint8), False


def _resize_nearest(label: np.ndarray, size: tuple[int, int], path: Path) -> np.ndarray:
    """Resize a label map to ``size`` (H, W) by nearest neighbour (labels must not blend)."""
    height, width = size
    if label.shape == (height, width):
        return label
    h, w = label.shape
    if abs((w / h) / (width / height) - 1) > _ASPECT_TOLERANCE:
        raise InputError(
            f"annotation '{path}' is {w}x{h} but the frames are {width}x{height} (different "
            "aspect ratio): the annotations do not belong to this video"
        )
    return cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST)
