# Helpers shared by the rules: config validation, where inputs live, per-stage params.
# All logic lives in the nvd package; this file only wires it into the DAG.

from snakemake.exceptions import WorkflowError

from nvd.config import as_dict, validate_config
from nvd.datasets import all_videos, dataset_videos, hypernet_split
from nvd.demo import FOOTAGE_CLIPS, SYNTHETIC_CLIPS
from nvd.errors import NvdError
from nvd.stages import STAGE_CONFIGS, backends_in_use, stage_config
from nvd.versioning import code_version
from nvd.weights import BACKEND_WEIGHTS, check_weights, weights_from_config

RESULTS = config.get("results_dir", "results")
DEMO_DIR = config.get("demo_dir", "data/demo")
STORES = {stage: f"{RESULTS}/{{dataset}}/{{video}}/{stage}.zarr" for stage in STAGE_CONFIGS}
# One folder per trained model of a video: `decomposition` (per-video Hashing-NVD), and for
# HyperNVD's held-out videos `finetune` (from the hypernetwork) and `scratch` (the baseline).
METHODS = ("decomposition", "finetune", "scratch")
_RUN_DIR = f"{RESULTS}/{{dataset}}/{{video}}/{{method}}"
RUN = {
    "model": f"{_RUN_DIR}/model.pt",
    "log": f"{_RUN_DIR}/log.csv",
    "work": f"{_RUN_DIR}/work",
    "eval": f"{_RUN_DIR}/eval",
    "edit": f"{_RUN_DIR}/custom_edit.mp4",
}
HYPERNET_DIR = f"{RESULTS}/hypernet/{{dataset}}"
HYPERNET = {"model": f"{HYPERNET_DIR}/model.pt", "log": f"{HYPERNET_DIR}/log.csv", "work": f"{HYPERNET_DIR}/work"}
HYPER_OUTPUT = f"{RESULTS}/{{dataset}}/{{video}}/hypernet_output.json"
TABLES_DIR = f"{RESULTS}/tables"


def run_files(method):
    """RUN's paths with the method filled in (dataset and video stay wildcards)."""
    return {key: path.replace("{method}", method) for key, path in RUN.items()}


def run_path(key, method, dataset, video):
    return RUN[key].format(method=method, dataset=dataset, video=video)


try:
    validate_config(config)
    WEIGHTS = weights_from_config(config)
    VIDEOS = all_videos(config)
    check_weights(WEIGHTS, backends_in_use(config))
    HYPER_SPLIT = hypernet_split(config)
except NvdError as exc:
    raise WorkflowError(str(exc)) from None


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    video=r"[A-Za-z0-9_.-]+",
    layer=r"\d+",
    method="|".join(METHODS),


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
        targets.append(run_path("eval", "decomposition", v.dataset, v.name))
        if v.name in config.get("edits", {}).get(v.dataset, {}):
            targets.append(run_path("edit", "decomposition", v.dataset, v.name))
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
    inputs["model"] = RUN["model"].format(**wildcards)
    inputs["log"] = RUN["log"].format(**wildcards)
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
    inputs["model"] = RUN["model"].format(**wildcards)
    inputs["eval"] = RUN["eval"].format(**wildcards)
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


# ---------------------------------------------------------------------------- HyperNVD


def _hyper_dataset(wildcards):
    if HYPER_SPLIT is None or wildcards.dataset != HYPER_SPLIT.dataset:
        raise WorkflowError(
            f"no hypernetwork for dataset '{wildcards.dataset}' (config key hypernet.dataset)"
        )
    return HYPER_SPLIT


def _hyper_stores(dataset, video):
    return {stage: store_path(stage, dataset, video) for stage in ("frames", "flow", "masks", "embedding")}


def hypernet_inputs(wildcards):
    """Every store of every training video."""
    split = _hyper_dataset(wildcards)
    return {f"{stage}_{video}": path for video in split.train
            for stage, path in _hyper_stores(split.dataset, video).items()}


def hyper_split_of(wildcards):
    split = _hyper_dataset(wildcards)
    if wildcards.video in split.train:
        return "train"
    if wildcards.video in split.heldout:
        return "heldout"
    raise WorkflowError(
        f"video '{wildcards.video}' is in neither hypernet.train_videos nor hypernet.heldout_videos"
    )


def hyper_video_inputs(wildcards):
    """A video's stores and the hypernetwork of its dataset (finetune, hypernet output)."""
    hyper_split_of(wildcards)
    inputs = _hyper_stores(wildcards.dataset, wildcards.video)
    inputs["hypernet"] = HYPERNET["model"].format(dataset=wildcards.dataset)
    return inputs


def scratch_inputs(wildcards):
    if hyper_split_of(wildcards) != "heldout":
        raise WorkflowError(f"the scratch baseline runs on held-out videos; '{wildcards.video}' is a training video")
    return video_stores(wildcards)


def hyper_params(*keys):
    """The config sections a HyperNVD job reads, as written (defaults are applied inside the
    job); only those, so changing another section does not rerun it."""
    return {key: config.get(key) or {} for key in keys}


def hyper_gpus(section):
    """Resource function: a GPU unless the section's training runs on the CPU."""

    def gpus(wildcards):
        device = (config.get(section) or {}).get("train", {}).get("device", "auto")
        return 0 if device == "cpu" else 1

    return gpus


def tables_inputs(wildcards):
    split = HYPER_SPLIT
    inputs = {}
    for video in split.heldout:
        for method in ("scratch", "finetune"):
            inputs[f"{method}_{video}"] = run_path("log", method, split.dataset, video)
    for video in (*split.train, *split.heldout):
        inputs[f"output_{video}"] = HYPER_OUTPUT.format(dataset=split.dataset, video=video)
    return inputs


def tables_outputs():
    """The files the tables rule writes (names from nvd.comparison)."""
    if HYPER_SPLIT is None:
        return {}
    outputs = {
        "generalisation_csv": f"{TABLES_DIR}/hypernvd_generalisation.csv",
        "generalisation_md": f"{TABLES_DIR}/hypernvd_generalisation.md",
    }
    if HYPER_SPLIT.heldout:
        outputs.update({
            "csv": f"{TABLES_DIR}/hypernvd_comparison.csv",
            "markdown": f"{TABLES_DIR}/hypernvd_comparison.md",
            "mean_plot": f"{TABLES_DIR}/psnr_vs_time_mean.png",
        })
        outputs.update({f"plot_{v}": f"{TABLES_DIR}/psnr_vs_time_{v}.png" for v in HYPER_SPLIT.heldout})
    return outputs


def all_hypernvd():
    """Tables, plus the evaluation of every finetuned and scratch model."""
    if HYPER_SPLIT is None:
        return []
    targets = list(tables_outputs().values())
    for video in HYPER_SPLIT.heldout:
        targets += [run_path("eval", method, HYPER_SPLIT.dataset, video) for method in ("finetune", "scratch")]
    return targets
