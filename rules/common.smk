# Helpers shared by the rules: config validation, where inputs live, per-stage params.
# All logic lives in the nvd package; this file only wires it into the DAG.

from snakemake.exceptions import WorkflowError

from nvd.config import as_dict, validate_config
from nvd.datasets import all_videos, dataset_videos
from nvd.demo import FOOTAGE_CLIPS, SYNTHETIC_CLIPS
from nvd.errors import NvdError
from nvd.stages import STAGE_CONFIGS, backends_in_use, stage_config
from nvd.versioning import code_version
from nvd.weights import BACKEND_WEIGHTS, check_weights, weights_from_config

RESULTS = config.get("results_dir", "results")
DEMO_DIR = config.get("demo_dir", "data/demo")
STORES = {stage: f"{RESULTS}/{{dataset}}/{{video}}/{stage}.zarr" for stage in STAGE_CONFIGS}
_DECOMPOSITION_DIR = f"{RESULTS}/{{dataset}}/{{video}}/decomposition"
DECOMPOSITION = {
    "model": f"{_DECOMPOSITION_DIR}/model.pt",
    "log": f"{_DECOMPOSITION_DIR}/log.csv",
    "work": f"{_DECOMPOSITION_DIR}/work",
    "eval": f"{_DECOMPOSITION_DIR}/eval",
    "edit": f"{_DECOMPOSITION_DIR}/custom_edit.mp4",
}


try:
    validate_config(config)
    WEIGHTS = weights_from_config(config)
    VIDEOS = all_videos(config)
    check_weights(WEIGHTS, backends_in_use(config))
except NvdError as exc:
    raise WorkflowError(str(exc)) from None


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    video=r"[A-Za-z0-9_.-]+",
    layer=r"\d+",


def store_path(stage, dataset, video):
    return STORES[stage].format(dataset=dataset, video=video)


def all_stores():
    return [
        store_path(stage, v.dataset, v.name)
        for v in VIDEOS
        for stage in ("frames", "flow", "masks", "embedding")
    ]


def _decomposed(video):
    """Videos get a decomposition when the config has a `decomposition` section, unless
    their dataset says `decompose: false`."""
    spec = config["datasets"][video.dataset]
    return "decomposition" in config and spec.get("decompose", True)


def all_decompositions():
    targets = []
    for v in VIDEOS:
        if not _decomposed(v):
            continue
        targets.append(DECOMPOSITION["eval"].format(dataset=v.dataset, video=v.name))
        if v.name in config.get("edits", {}).get(v.dataset, {}):
            targets.append(DECOMPOSITION["edit"].format(dataset=v.dataset, video=v.name))
    return targets


def video_stores(wildcards):
    return {stage: store_path(stage, wildcards.dataset, wildcards.video) for stage in ("frames", "flow", "masks")}


def decomposition_params(wildcards):
    """The `decomposition` section as written (defaults are applied inside the job)."""
    return config.get("decomposition") or {}


def evaluation_params(wildcards):
    return config.get("evaluation") or {}


def training_gpus(wildcards):
    """A GPU for training unless the config pins it to the CPU (the laptop demo)."""
    device = (config.get("decomposition") or {}).get("train", {}).get("device", "auto")
    return 0 if device == "cpu" else 1


def evaluate_inputs(wildcards):
    inputs = video_stores(wildcards)
    inputs["model"] = DECOMPOSITION["model"].format(**wildcards)
    inputs["log"] = DECOMPOSITION["log"].format(**wildcards)
    truth = video_source(wildcards).ground_truth
    if truth is not None:
        inputs["truth"] = str(truth)
    return inputs


def _edit_spec(wildcards):
    try:
        return config["edits"][wildcards.dataset][wildcards.video]
    except KeyError:
        raise WorkflowError(
            f"no edit configured for {wildcards.dataset}/{wildcards.video} (config key edits)"
        ) from None


def edit_inputs(wildcards):
    inputs = video_stores(wildcards)
    inputs["model"] = DECOMPOSITION["model"].format(**wildcards)
    inputs["eval"] = DECOMPOSITION["eval"].format(**wildcards)
    inputs.update({f"layer{k}": path for k, path in _edit_spec(wildcards)["atlases"].items()})
    return inputs


def edit_params(wildcards):
    spec = _edit_spec(wildcards)
    return {"mode": spec.get("mode", "add"), "atlases": {int(k): v for k, v in spec["atlases"].items()}}


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
    if stage_config(config, "masks", wildcards.dataset).backend == "annotations":
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
        return as_dict(stage_config(config, stage, wildcards.dataset))

    return params


def weight_params(stage):
    """Params function: the weight paths the stage's backend reads (tracked for reruns)."""

    def params(wildcards):
        backend = stage_config(config, stage, wildcards.dataset).backend
        return {k: getattr(WEIGHTS, k) for k in BACKEND_WEIGHTS.get((stage, backend), ())}

    return params


def gpus_for(stage):
    """Resource function: 1 GPU for backends that run a neural network, else 0."""

    def gpus(wildcards):
        backend = stage_config(config, stage, wildcards.dataset).backend
        return 1 if (stage, backend) in BACKEND_WEIGHTS else 0

    return gpus
