"""Object masks from torchvision's Mask R-CNN (ResNet-50 FPN, COCO classes).

Each configured object is a COCO class name or ``"anything"``. Frames are processed
independently (no tracking): see ``select_instances`` for how detections become layers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nvd.core.devices import resolve_device
from nvd.core.errors import ConfigError, WeightsError
from nvd.data.weights import WeightsConfig, weight_path

if TYPE_CHECKING:
    import torch
    import zarr

    from nvd.data.masks import MasksConfig

ANYTHING = "anything"
# Frames per forward pass: enough to keep a GPU busy at 800 px without running out of memory.
BATCH_FRAMES = 4
_NOT_A_CLASS = ("__background__", "N/A")


@cache
def coco_categories() -> tuple[str, ...]:
    """torchvision's 91 COCO category names, indexed by Mask R-CNN label id.

    Comes from the weights enum's metadata; nothing is downloaded. Ids that COCO leaves
    unused are "N/A" and id 0 is "__background__".
    """
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    return tuple(MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])


def coco_class_names() -> list[str]:
    """The 80 COCO class names a configured object may be, in COCO order."""
    return [name for name in coco_categories() if name not in _NOT_A_CLASS]


def check_objects(objects: Sequence[str] | None, backend: str) -> list[str]:
    """Validate ``masks.objects`` for a detector backend: COCO class names or "anything"."""
    if not objects:
        raise ConfigError(
            f"config key 'masks.objects' must list the objects to segment for masks backend "
            f"'{backend}': one COCO class name (e.g. person, car, dog) or '{ANYTHING}' per object"
        )
    valid = coco_class_names()
    unknown = [name for name in objects if name != ANYTHING and name not in valid]
    if unknown:
        raise ConfigError(
            f"config key 'masks.objects': unknown class name(s) {unknown}; valid are "
            f"'{ANYTHING}' and the COCO classes {valid}"
        )
    return list(objects)


def select_instances(
    labels: Sequence[str],
    scores: np.ndarray,
    masks: np.ndarray,
    objects: Sequence[str],
    threshold: float,
) -> np.ndarray:
    """Turn one frame's detections into one mask per configured object.

    ``labels``: class name of each of N instances; ``scores``: float [N]; ``masks``: [N,H,W]
    mask probabilities (or bool), object where > 0.5. Only instances with score >=
    ``threshold`` count. The n-th object of a class takes the n-th highest-scoring instance
    of that class; then each "anything" object, in config order, takes the highest-scoring
    instance not taken yet. Named classes are served first so that an "anything" listed
    before them cannot take the instance they need. An object without an instance gets an
    all-zero mask. Returns uint8 [K,H,W] with values 0/1.
    """
    scores = np.asarray(scores, dtype=np.float64)
    masks = np.asarray(masks)
    out = np.zeros((len(objects), *masks.shape[1:]), dtype=np.uint8)
    ranked = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] >= threshold]
    taken: set[int] = set()
    seen: Counter[str] = Counter()
    for k, name in enumerate(objects):
        if name == ANYTHING:
            continue
        of_class = [i for i in ranked if labels[i] == name]
        if seen[name] < len(of_class):
            pick = of_class[seen[name]]
            taken.add(pick)
            out[k] = masks[pick] > 0.5
        seen[name] += 1
    free = iter([i for i in ranked if i not in taken])
    for k, name in enumerate(objects):
        if name == ANYTHING:
            pick = next(free, None)
            if pick is not None:
                out[k] = masks[pick] > 0.5
    return out


def load_maskrcnn(path: Path, min_size: int) -> "torch.nn.Module":
    """torchvision maskrcnn_resnet50_fpn (91 classes) with the state dict at ``path``, in eval mode."""
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    # weights=None: the architecture only; the weights come from the configured local file.
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, min_size=min_size)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # torch.load and load_state_dict raise many types for a bad file
        detail = " ".join(str(exc).split())
        raise WeightsError(
            f"config key 'weights.maskrcnn': '{path}' is not a state dict for torchvision "
            f"maskrcnn_resnet50_fpn with 91 COCO classes ({detail[:400]})"
        ) from exc
    return model.eval()


def maskrcnn_masks(
    frames: "zarr.Array", cfg: "MasksConfig", weights: WeightsConfig
) -> tuple[list[str], Iterator[np.ndarray]]:
    """Object names and per-frame masks (uint8 [K,H,W]) for frames uint8 [T,H,W,3].

    Config, weights and device are checked before returning; frames are read from the
    store ``BATCH_FRAMES`` at a time while the iterator is consumed.
    """
    import torch

    objects = check_objects(cfg.objects, "maskrcnn")
    model = load_maskrcnn(weight_path(weights, "maskrcnn"), cfg.min_size)
    device = resolve_device(cfg.device)
    model.to(device)
    categories = coco_categories()

    def per_frame() -> Iterator[np.ndarray]:
        for start in range(0, frames.shape[0], BATCH_FRAMES):
            batch = torch.from_numpy(np.asarray(frames[start : start + BATCH_FRAMES])).to(device)
            images = list(batch.permute(0, 3, 1, 2).float().div(255))  # RGB [3,H,W] in [0,1]
            with torch.inference_mode():
                outputs = model(images)
            for det in outputs:
                # Only instances above the threshold leave the device, as bool masks.
                keep = det["scores"] >= cfg.score_threshold
                labels = [categories[i] for i in det["labels"][keep].tolist()]
                yield select_instances(
                    labels,
                    det["scores"][keep].cpu().numpy(),
                    (det["masks"][keep, 0] > 0.5).cpu().numpy(),
                    objects,
                    cfg.score_threshold,
                )

    return objects, per_frame()
