"""Stage 3, object masks: frames.zarr (+ annotations) -> masks.zarr.

Store layout (contract):
- ``masks``: uint8 [K,T,H,W] with values 0/1, dimension names (object, t, y, x); K >= 0.
- attrs ``objects``: K object names in channel order (stable: sorted folder names, sorted
  palette ids, or the configured object list), ``backend``.
Backends: ``annotations`` (DAVIS palette PNGs or one binary PNG folder per object),
``maskrcnn`` (torchvision Mask R-CNN, weights from config), ``detectron2`` (only when
importable), ``none`` (K = 0).

Masks are at the frames store's size [H,W]. Model backends (maskrcnn, detectron2) detect
per frame without tracking: the n-th configured object of a class is the n-th most
confident instance of that class in each frame (see ``select_instances``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from nvd.core.errors import ConfigError
from nvd.core.progress import progress
from nvd.core.versioning import code_version
from nvd.data.stores import new_array, open_store, write_store
from nvd.data.weights import BACKEND_WEIGHTS, WeightsConfig

MASK_BACKENDS = ("annotations", "maskrcnn", "detectron2", "none")


@dataclass(frozen=True)
class MasksConfig:
    """Object masks (``masks`` section)."""

    backend: Literal["annotations", "maskrcnn", "detectron2", "none"] = "none"
    # maskrcnn/detectron2: one COCO class name (or "anything") per object, in layer order.
    # annotations: optional names; when given, the annotation must hold exactly this many objects.
    objects: tuple[str, ...] | None = None
    score_threshold: float = 0.5
    min_size: int = 800  # Mask R-CNN internal resize of the shorter side
    device: str = "auto"


def compute_masks(
    frames_store: str | Path,
    out: str | Path,
    cfg: MasksConfig,
    weights: WeightsConfig,
    annotations: str | Path | None = None,
) -> Path:
    """Write the masks store for a video (annotations needed for the annotations backend).

    Reads the frames store at ``frames_store`` (uint8 [T,H,W,3] plus its ``frame_indices``
    and ``source_frame_names`` attrs) and writes ``masks`` uint8 [K,T,H,W] (0/1) with attrs
    ``objects`` and ``backend`` to ``out``. Returns ``out`` as a Path.

    Errors: ConfigError (unknown backend, bad ``masks.objects``, detectron2 missing),
    InputError (annotation folder missing or inconsistent with the frames), WeightsError
    (model weights missing or not fitting the model).
    """
    out = Path(out)
    group = open_store(frames_store, "frames")
    frames = group["frames"]
    n_frames, height, width = frames.shape[:3]

    # Each backend validates its inputs before returning, so bad config or inputs fail
    # before the store is created; the per-frame masks are then produced lazily.
    names: list[str]
    per_frame: Iterable[np.ndarray]
    if cfg.backend == "none":
        names, per_frame = [], ()
    elif cfg.backend == "annotations":
        from nvd.data.masks.annotations import read_annotations

        names, per_frame = read_annotations(
            annotations,
            frame_indices=[int(i) for i in group.attrs["frame_indices"]],
            frame_names=group.attrs.get("source_frame_names"),
            size=(height, width),
            objects=cfg.objects,
        )
    elif cfg.backend == "maskrcnn":
        from nvd.data.masks.maskrcnn import maskrcnn_masks

        names, per_frame = maskrcnn_masks(frames, cfg, weights)
    elif cfg.backend == "detectron2":
        from nvd.data.masks.detectron2 import detectron2_masks

        names, per_frame = detectron2_masks(frames, cfg, weights)
    else:
        raise ConfigError(f"config key 'masks.backend': unknown backend '{cfg.backend}'; known: {list(MASK_BACKENDS)}")

    used_weights = {key: getattr(weights, key) for key in BACKEND_WEIGHTS.get(("masks", cfg.backend), ())}
    config = {
        "masks": asdict(cfg),
        "weights": used_weights,
        "annotations": str(annotations) if cfg.backend == "annotations" else None,
    }
    with write_store(out, "masks", config=config, code_version=code_version("masks")) as store:
        shape = (len(names), n_frames, height, width)
        array = new_array(store, "masks", shape, "uint8", (1, 1, height, width), ("object", "t", "y", "x"))
        if names:  # K = 0 leaves an empty array; nothing to compute or write
            for t, masks in enumerate(progress(per_frame, n_frames, f"masks ({cfg.backend})")):
                array[:, t] = masks
        store.attrs["objects"] = list(names)
        store.attrs["backend"] = cfg.backend
    return out


def load_masks(store: str | Path) -> tuple[np.ndarray, list[str]]:
    """Read a finished masks store: (uint8 [K,T,H,W] with values 0/1, K object names)."""
    group = open_store(store, "masks")
    return np.asarray(group["masks"][...]), list(group.attrs["objects"])
