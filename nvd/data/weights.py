"""Model weight files: where they come from, and one clear error when one is missing.

Nothing is downloaded at run time. Each weight is a local path in the config's ``weights``
section; ``check_weights`` runs when the workflow is built, before any job starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from nvd.core.errors import WeightsError


@dataclass(frozen=True)
class WeightsConfig:
    """Local paths of pretrained weights (``weights`` section)."""

    raft: str | None = None
    maskrcnn: str | None = None
    videomae: str | None = None
    detectron2_config: str | None = None
    detectron2: str | None = None
    lpips: str | None = None


@dataclass(frozen=True)
class WeightSpec:
    what: str
    upstream: str
    is_dir: bool = False


WEIGHT_SPECS: dict[str, WeightSpec] = {
    "raft": WeightSpec(
        "a state dict (.pth) for torchvision.models.optical_flow.raft_large",
        "torchvision Raft_Large_Weights.C_T_SKHT_V2 (RAFT trained on FlyingChairs+Things, "
        "file raft_large_C_T_SKHT_V2-ff5fadd5.pth)",
    ),
    "maskrcnn": WeightSpec(
        "a state dict (.pth) for torchvision.models.detection.maskrcnn_resnet50_fpn",
        "torchvision MaskRCNN_ResNet50_FPN_Weights.COCO_V1 (file maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth)",
    ),
    "videomae": WeightSpec(
        "a folder written by save_pretrained (config.json, model weights, preprocessor_config.json)",
        "Hugging Face MCG-NJU/videomae-base (VideoMAE ViT-B, 16 frames, 224 px)",
        is_dir=True,
    ),
    "detectron2_config": WeightSpec(
        "a detectron2 model-zoo config (.yaml)",
        "detectron2 COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
    ),
    "detectron2": WeightSpec(
        "a detectron2 checkpoint (.pkl or .pth)",
        "detectron2 model zoo mask_rcnn_R_50_FPN_3x model_final_f10217.pkl",
    ),
    "lpips": WeightSpec(
        "one state dict with torchvision AlexNet `features.*` and the LPIPS `lin0..lin4` layers "
        "(see nvd.eval.metrics.lpips_metric)",
        "LPIPS v0.1 AlexNet (`torch.save(lpips.LPIPS(net='alex').state_dict(), path)`)",
    ),
}

# Which weights each stage backend needs.
BACKEND_WEIGHTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("flow", "raft"): ("raft",),
    ("masks", "maskrcnn"): ("maskrcnn",),
    ("masks", "detectron2"): ("detectron2_config", "detectron2"),
    ("embedding", "videomae"): ("videomae",),
}


def weight_path(weights: WeightsConfig, key: str) -> Path:
    """The checked path for weight ``key``; WeightsError names the key, file and upstream."""
    spec = WEIGHT_SPECS[key]
    value = getattr(weights, key)
    if not value:
        raise WeightsError(
            f"config key 'weights.{key}' is not set: put {spec.what} on disk and give its path "
            f"there (upstream model: {spec.upstream}). Nothing is downloaded at run time."
        )
    path = Path(value).expanduser()
    ok = path.is_dir() if spec.is_dir else path.is_file()
    if not ok:
        kind = "folder" if spec.is_dir else "file"
        raise WeightsError(
            f"config key 'weights.{key}': expected {kind} '{path}' does not exist; it must hold "
            f"{spec.what} (upstream model: {spec.upstream}). Nothing is downloaded at run time."
        )
    return path


def needed_weights(stage_backends: Mapping[str, set[str]]) -> list[str]:
    """Weight keys needed by the backends in use, e.g. {"flow": {"raft"}} -> ["raft"]."""
    keys: list[str] = []
    for stage, backends in stage_backends.items():
        for backend in sorted(backends):
            for key in BACKEND_WEIGHTS.get((stage, backend), ()):
                if key not in keys:
                    keys.append(key)
    return keys


# Weights a job reads when they are set and does without otherwise (LPIPS is then null).
OPTIONAL_WEIGHTS = ("lpips",)


def check_weights(weights: WeightsConfig, stage_backends: Mapping[str, set[str]]) -> None:
    """Raise one WeightsError listing every missing weight the configured backends need, and
    every optional weight that is set but not on disk."""
    problems = []
    optional = [key for key in OPTIONAL_WEIGHTS if getattr(weights, key)]
    for key in [*needed_weights(stage_backends), *optional]:
        try:
            weight_path(weights, key)
        except WeightsError as exc:
            problems.append(str(exc))
    if problems:
        raise WeightsError("missing model weights:\n  - " + "\n  - ".join(problems))


def weights_from_config(config: Mapping[str, Any]) -> WeightsConfig:
    from nvd.core.config import section

    return section(WeightsConfig, config.get("weights"), "weights")
