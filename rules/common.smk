# Helpers shared by the rules: config validation, where inputs live, per-stage params.
# All logic lives in the nvd package; this file only wires it into the DAG.

from snakemake.exceptions import WorkflowError

from nvd.config import as_dict, section, stage_section, validate_config
from nvd.datasets import all_videos, dataset_videos
from nvd.demo import FOOTAGE_CLIPS, SYNTHETIC_CLIPS
from nvd.embedding import EmbeddingConfig
from nvd.errors import NvdError
from nvd.flow import FlowConfig
from nvd.frames import FramesConfig
from nvd.masks import MasksConfig
from nvd.versioning import code_version
from nvd.weights import BACKEND_WEIGHTS, check_weights, weights_from_config

STAGE_CONFIGS = {
    "frames": FramesConfig,
    "flow": FlowConfig,
    "masks": MasksConfig,
    "embedding": EmbeddingConfig,
}
RESULTS = config.get("results_dir", "results")
DEMO_DIR = config.get("demo_dir", "data/demo")
STORES = {stage: f"{RESULTS}/{{dataset}}/{{video}}/{stage}.zarr" for stage in STAGE_CONFIGS}


def _effective(stage, dataset):
    """The dataclass config of ``stage`` for ``dataset`` (global section + overrides)."""
    return section(STAGE_CONFIGS[stage], stage_section(config, stage, dataset), stage)


def _backends_in_use():
    datasets = config.get("run_datasets") or list(config["datasets"])
    return {
        stage: {_effective(stage, d).backend for d in datasets}
        for stage in ("flow", "masks", "embedding")
    }


try:
    validate_config(config)
    WEIGHTS = weights_from_config(config)
    VIDEOS = all_videos(config)
    check_weights(WEIGHTS, _backends_in_use())
except NvdError as exc:
    raise WorkflowError(str(exc)) from None


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    video=r"[A-Za-z0-9_.-]+",


def store_path(stage, dataset, video):
    return STORES[stage].format(dataset=dataset, video=video)


def all_stores():
    return [
        store_path(stage, v.dataset, v.name)
        for v in VIDEOS
        for stage in ("frames", "flow", "masks", "embedding")
    ]


def video_source(wildcards):
    try:
        return dataset_videos(config, wildcards.dataset)[wildcards.video]
    except KeyError:
        raise WorkflowError(
            f"video '{wildcards.video}' is not listed in dataset '{wildcards.dataset}'"
        ) from None


def frames_source(wildcards):
    return str(video_source(wildcards).frames)


def masks_inputs(wildcards):
    inputs = {"frames": store_path("frames", wildcards.dataset, wildcards.video)}
    if _effective("masks", wildcards.dataset).backend == "annotations":
        annotations = video_source(wildcards).annotations
        if annotations is None:
            raise WorkflowError(
                f"masks backend 'annotations' needs an annotations folder for video "
                f"'{wildcards.video}' of dataset '{wildcards.dataset}' (config key "
                f"datasets.{wildcards.dataset}.videos.{wildcards.video}.annotations)"
            )
        inputs["annotations"] = str(annotations)
    return inputs


def stage_params(stage):
    """Params function: the stage's effective config section as a plain dict."""

    def params(wildcards):
        return as_dict(_effective(stage, wildcards.dataset))

    return params


def weight_params(stage):
    """Params function: the weight paths the stage's backend reads (tracked for reruns)."""

    def params(wildcards):
        backend = _effective(stage, wildcards.dataset).backend
        return {k: getattr(WEIGHTS, k) for k in BACKEND_WEIGHTS.get((stage, backend), ())}

    return params


def gpus_for(stage):
    """Resource function: 1 GPU for backends that run a neural network, else 0."""

    def gpus(wildcards):
        backend = _effective(stage, wildcards.dataset).backend
        return 1 if (stage, backend) in BACKEND_WEIGHTS else 0

    return gpus
