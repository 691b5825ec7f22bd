# Helpers shared by the rules: config validation, where inputs live, per-job params.
# All logic lives in the nvd package; this file only wires it into the DAG. Every path comes
# from nvd.core.layout (the results tree) and every default from the components' dataclasses.

import sys

from snakemake.exceptions import WorkflowError

from nvd.core.config import as_dict, results_layout, validate_config
from nvd.core.errors import NvdError
from nvd.core.layout import DATA_STAGES, ResultsLayout
from nvd.core.versioning import code_version
from nvd.data.datasets import all_videos, dataset_families, dataset_videos, hypernet_split, video_stages
from nvd.data.inputs import check_inputs
from nvd.data.demo import DEFAULT_DEMO_DIR, FOOTAGE_CLIPS, SYNTHETIC_CLIPS
from nvd.data.stages import backends_in_use, stage_config
from nvd.data.verify import quarantine_invalid_stores
from nvd.data.weights import BACKEND_WEIGHTS, check_weights, weights_from_config
from nvd.models import METHODS, NERV_MODELS, family_methods, nerv_method
from nvd.train.config import TrainConfig

try:
    validate_config(config)
    LAYOUT = results_layout(config)
    WEIGHTS = weights_from_config(config)
    VIDEOS = all_videos(config)
    FAMILIES = {name: dataset_families(config, name) for name in config["datasets"]}
    check_inputs(config)
    check_weights(WEIGHTS, backends_in_use(config))
    HYPER_SPLIT = hypernet_split(config)
except NvdError as exc:
    raise WorkflowError(str(exc)) from None

DEMO_DIR = config.get("demo_dir", DEFAULT_DEMO_DIR)
# Snakemake patterns of the results tree
STORES = LAYOUT.stores("{dataset}", "{video}")
RUN = LAYOUT.run_files("{method}")
HYPERNET = LAYOUT.hypernet_files()
HYPER_OUTPUT = LAYOUT.hyper_output()


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    video=r"[A-Za-z0-9_.-]+",
    layer=r"\d+",
    method="|".join(METHODS),
    nerv_model="|".join(NERV_MODELS),

# The model folders the layered-decomposition rules (evaluate, edit) serve.
DECOMPOSITION_METHODS = "|".join(family_methods("hashing_nvd", "hypernvd"))


def fail(message):
    raise WorkflowError(message)


# ---------------------------------------------------------------------------- data stages


def all_stores():
    """The stores each video's families read (nvd.data.datasets.video_stages)."""
    return [LAYOUT.store(stage, v.dataset, v.name) for v in VIDEOS
            for stage in video_stages(config, v.dataset, DATA_STAGES)]


# A store that fails its cheap check (no completion mark, no manifest, a chunk missing or of
# another size: nvd.data.verify) is moved aside before the DAG is built, so it is rebuilt with
# everything downstream. Only in the main process (not in cluster jobs) and not for --lint.
if workflow.is_main_process and workflow.check_envvars:
    for store, moved, reason in quarantine_invalid_stores(all_stores()):
        print(f"nvd: {store} fails its check ({reason}); moved aside to {moved.name}, it will be rebuilt",
              file=sys.stderr)


def video_source(wildcards):
    try:
        return dataset_videos(config, wildcards.dataset)[wildcards.video]
    except KeyError:
        fail(f"video '{wildcards.video}' is not listed in dataset '{wildcards.dataset}'")


def frames_source(wildcards):
    return str(video_source(wildcards).frames)


def masks_inputs(wildcards):
    inputs = {"frames": LAYOUT.store("frames", wildcards.dataset, wildcards.video)}
    if stage_config(config, "masks", wildcards.dataset).backend == "annotations":
        annotations = video_source(wildcards).annotations
        if annotations is None:
            fail(
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


# ---------------------------------------------------------------------------- trained models


def section_params(*sections):
    """Params function: the config sections a job reads, as written (defaults are applied
    inside the job); only those, so changing another section does not rerun it."""

    def params(wildcards):
        return {name: config.get(name) or {} for name in sections}

    return params


def train_device(section):
    """The device a section's training runs on (``<section>.train.device``)."""
    return (config.get(section) or {}).get("train", {}).get("device", TrainConfig().device)


def section_gpus(section):
    """Resource function: a GPU unless the section's training runs on the CPU."""
    return lambda wildcards: 0 if train_device(section) == "cpu" else 1


def method_device(wildcards):
    """Params function: the device of the training section of the model being evaluated."""
    return train_device(METHODS[wildcards.method].section)


def method_gpus(wildcards):
    return 0 if method_device(wildcards) == "cpu" else 1


def video_stores(wildcards, stages=("frames", "flow", "masks")):
    return LAYOUT.stores(wildcards.dataset, wildcards.video, stages)


def decomposition_inputs(wildcards):
    """The stores of a video whose dataset runs the per-video decomposition."""
    if "decomposition" not in FAMILIES.get(wildcards.dataset, ()):
        fail(f"dataset '{wildcards.dataset}' does not run the decomposition (its families: "
             f"{list(FAMILIES.get(wildcards.dataset, ()))}; add decomposition to datasets.{wildcards.dataset}.families)")
    return video_stores(wildcards)


def run_path(key, method, dataset, video):
    return LAYOUT.run_file(key, method, dataset, video)


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
        fail(f"no edit configured for {wildcards.dataset}/{wildcards.video} (config key edits)")


def edit_inputs(wildcards):
    inputs = video_stores(wildcards)
    inputs["model"] = RUN["model"].format(**wildcards)
    inputs["eval"] = RUN["eval"].format(**wildcards)
    inputs.update({f"layer{k}": path for k, path in _edit_spec(wildcards)["atlases"].items()})
    return inputs


def edit_params(wildcards):
    """The video's ``edits`` entry as written (nvd.models.hashing_nvd.edit.EditConfig)."""
    return _edit_spec(wildcards)


def all_decompositions():
    """Evaluation (and edit) of every video whose dataset runs the decomposition family and
    the config has a `decomposition` section."""
    targets = []
    if "decomposition" not in config:
        return targets
    for v in VIDEOS:
        if "decomposition" not in FAMILIES[v.dataset]:
            continue
        targets.append(run_path("eval", "decomposition", v.dataset, v.name))
        if v.name in config.get("edits", {}).get(v.dataset, {}):
            targets.append(run_path("edit", "decomposition", v.dataset, v.name))
    return targets


# ---------------------------------------------------------------------------- HyperNVD


def _hyper_split(wildcards):
    if HYPER_SPLIT is None or wildcards.dataset != HYPER_SPLIT.dataset:
        fail(f"no hypernetwork for dataset '{wildcards.dataset}' (config key hypernet.dataset)")
    return HYPER_SPLIT


def hyper_training_stores(wildcards):
    """{video: {stage: store}} of the training split."""
    split = _hyper_split(wildcards)
    return {video: LAYOUT.stores(split.dataset, video) for video in split.train}


def hypernet_inputs(wildcards):
    """Every store of every training video."""
    return [path for stores in hyper_training_stores(wildcards).values() for path in stores.values()]


def hyper_split_of(wildcards):
    split = _hyper_split(wildcards)
    if wildcards.video in split.train:
        return "train"
    if wildcards.video in split.heldout:
        return "heldout"
    fail(f"video '{wildcards.video}' is in neither hypernet.train_videos nor hypernet.heldout_videos")


def hyper_video_inputs(wildcards):
    """A video's stores and the hypernetwork of its dataset (finetune, hypernet output)."""
    hyper_split_of(wildcards)
    inputs = video_stores(wildcards, DATA_STAGES)
    inputs["hypernet"] = HYPERNET["model"].format(dataset=wildcards.dataset)
    return inputs


def scratch_inputs(wildcards):
    if hyper_split_of(wildcards) != "heldout":
        fail(f"the scratch baseline runs on held-out videos; '{wildcards.video}' is a training video")
    return video_stores(wildcards)


def _tables_split():
    if HYPER_SPLIT is None:
        fail("the HyperNVD tables need a 'hypernet' section in the config")
    return HYPER_SPLIT


def table_runs(wildcards=None):
    """{held-out video: [scratch log.csv, finetune log.csv]} for the tables."""
    split = _tables_split()
    return {v: [run_path("log", m, split.dataset, v) for m in ("scratch", "finetune")] for v in split.heldout}


def table_outputs(wildcards=None):
    """{video: hypernet_output.json} of both splits, for the generalisation table."""
    split = _tables_split()
    return {v: LAYOUT.hyper_output(split.dataset, v) for v in (*split.train, *split.heldout)}


def tables_inputs(wildcards):
    return [path for logs in table_runs().values() for path in logs] + list(table_outputs().values())


def tables_files():
    """The files the tables rule writes (nvd.models.hypernvd.tables.write_tables)."""
    return LAYOUT.hypernvd_tables(HYPER_SPLIT.heldout if HYPER_SPLIT is not None else ())


def all_hypernvd():
    """Tables, plus the evaluation of every finetuned and scratch model."""
    if HYPER_SPLIT is None:
        return []
    targets = list(tables_files().values())
    for video in HYPER_SPLIT.heldout:
        targets += [run_path("eval", method, HYPER_SPLIT.dataset, video) for method in ("finetune", "scratch")]
    return targets


# ---------------------------------------------------------------------------- NVP


def nvp_datasets():
    """The datasets of the default target that run NVP."""
    return sorted({v.dataset for v in VIDEOS if "nvp" in FAMILIES[v.dataset]})


def _nvp_videos(dataset):
    if "nvp" not in FAMILIES.get(dataset, ()):
        fail(f"dataset '{dataset}' does not run NVP (add nvp to datasets.{dataset}.families)")
    return list(dataset_videos(config, dataset))


# table kind -> the model folder it reads; the resampling tables when their section is set
NVP_TABLE_RUNS = {"nvp_encoding": "nvp", "nvp_superres": "nvp_superres", "nvp_interpolate": "nvp_interpolate"}


def nvp_table_kinds():
    return [kind for kind, method in NVP_TABLE_RUNS.items() if method == "nvp" or method in config]


def nvp_table_evaluations(wildcards):
    """{video: eval folder} of the model folder a table kind reads, for every video."""
    if wildcards.kind not in nvp_table_kinds():
        fail(f"the {wildcards.kind} table needs a '{NVP_TABLE_RUNS[wildcards.kind]}' section in the config")
    method = NVP_TABLE_RUNS[wildcards.kind]
    return {v: run_path("eval", method, wildcards.dataset, v) for v in _nvp_videos(wildcards.dataset)}


def all_nvp():
    """NVP's tables for every dataset that runs it (they pull every NVP job of its videos)."""
    return [path for dataset in nvp_datasets() for kind in nvp_table_kinds()
            for path in LAYOUT.family_table(kind, dataset).values()]


# ---------------------------------------------------------------------------- NeRV family

# table kind -> (the task whose model folders it reads, the config section that turns it on)
NERV_TABLE_TASKS = {"nerv_regression": ("regression", "nerv"), "nerv_inpaint": ("inpaint", "nerv_inpaint"),
                    "nerv_interpolate": ("interpolate", "nerv_interpolate")}


def nerv_datasets():
    """The datasets of the default target that run the NeRV family."""
    return sorted({v.dataset for v in VIDEOS if "nerv" in FAMILIES[v.dataset]})


def nerv_models(task):
    """The models a task trains: its section's ``models``, else nerv.models, else all six."""
    section = NERV_TABLE_TASKS[f"nerv_{task}"][1]
    return list((config.get(section) or {}).get("models") or (config.get("nerv") or {}).get("models") or NERV_MODELS)


def nerv_table_kinds():
    return [kind for kind, (_, section) in NERV_TABLE_TASKS.items() if section in config]


def _nerv_videos(dataset):
    if "nerv" not in FAMILIES.get(dataset, ()):
        fail(f"dataset '{dataset}' does not run the NeRV family (add nerv to datasets.{dataset}.families)")
    return list(dataset_videos(config, dataset))


def nerv_runs(kind, dataset, key="eval"):
    """{model: {video: ``key`` of its model folder}} behind a table kind of a dataset."""
    if kind not in nerv_table_kinds():
        fail(f"the {kind} table needs a '{NERV_TABLE_TASKS[kind][1]}' section in the config")
    task = NERV_TABLE_TASKS[kind][0]
    videos = _nerv_videos(dataset)
    return {m: {v: run_path(key, nerv_method(m, task), dataset, v) for v in videos} for m in nerv_models(task)}


def nerv_table_runs(wildcards):
    return nerv_runs(wildcards.kind, wildcards.dataset)


def nerv_table_inputs(wildcards):
    return [path for per_video in nerv_table_runs(wildcards).values() for path in per_video.values()]


def nerv_regression_logs(wildcards):
    """{model: {video: log.csv}} of a dataset's regression runs, for the PSNR-vs-time figure."""
    return nerv_runs("nerv_regression", wildcards.dataset, "log")


def nerv_regression_log_files(wildcards):
    return [path for per_video in nerv_regression_logs(wildcards).values() for path in per_video.values()]


def all_nerv():
    """The NeRV family's tables (and figure) for every dataset that runs it."""
    targets = []
    for dataset in nerv_datasets():
        for kind in nerv_table_kinds():
            targets += list(LAYOUT.family_table(kind, dataset).values())
        if "nerv_regression" in nerv_table_kinds():
            targets.append(LAYOUT.nerv_plot(dataset))
    return targets
