"""Object masks from a detectron2 COCO instance-segmentation model (when detectron2 is installed).

Same object semantics as the maskrcnn backend (``select_instances``); detectron2's 80
contiguous class ids are mapped to COCO class names in COCO order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from nvd.core.devices import resolve_device
from nvd.core.errors import ConfigError, WeightsError
from nvd.data.masks.maskrcnn import check_objects, coco_class_names, select_instances
from nvd.data.weights import WeightsConfig, weight_path

if TYPE_CHECKING:
    import zarr

    from nvd.data.masks import MasksConfig


def detectron2_masks(
    frames: "zarr.Array", cfg: "MasksConfig", weights: WeightsConfig
) -> tuple[list[str], Iterator[np.ndarray]]:
    """Object names and per-frame masks (uint8 [K,H,W]) for frames uint8 [T,H,W,3].

    The model is ``DefaultPredictor`` built from ``weights.detectron2_config`` with the
    checkpoint ``weights.detectron2``; ``masks.min_size`` sets its test-time shorter side.
    """
    try:
        from detectron2.config import get_cfg
        from detectron2.engine import DefaultPredictor
    except ImportError as exc:
        raise ConfigError(
            "config key 'masks.backend' is 'detectron2', but detectron2 is not installed in this "
            "environment: use backend 'maskrcnn' (torchvision Mask R-CNN R50-FPN, the same model "
            f"family) or install detectron2 ({exc})"
        ) from exc

    objects = check_objects(cfg.objects, "detectron2")
    model_cfg = get_cfg()
    model_cfg.merge_from_file(str(weight_path(weights, "detectron2_config")))
    model_cfg.MODEL.WEIGHTS = str(weight_path(weights, "detectron2"))
    model_cfg.MODEL.DEVICE = str(resolve_device(cfg.device))
    model_cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = cfg.score_threshold
    model_cfg.INPUT.MIN_SIZE_TEST = cfg.min_size
    classes = coco_class_names()
    if model_cfg.MODEL.ROI_HEADS.NUM_CLASSES != len(classes):
        raise WeightsError(
            f"config key 'weights.detectron2_config': the model has "
            f"{model_cfg.MODEL.ROI_HEADS.NUM_CLASSES} classes, expected the {len(classes)} COCO classes"
        )
    predictor = DefaultPredictor(model_cfg)

    def per_frame() -> Iterator[np.ndarray]:
        for t in range(frames.shape[0]):
            # DefaultPredictor takes BGR and converts to the model's input format itself.
            instances = predictor(np.ascontiguousarray(frames[t][..., ::-1]))["instances"].to("cpu")
            yield select_instances(
                [classes[i] for i in instances.pred_classes.tolist()],
                instances.scores.numpy(),
                instances.pred_masks.numpy(),
                objects,
                cfg.score_threshold,
            )

    return objects, per_frame()
