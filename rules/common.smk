# Helpers shared by the rules: config validation, where inputs live, per-job params.
# All logic lives in the nvd package; this file only wires it into the DAG. Every path comes
# from nvd.core.layout (the results tree) and every default from the components' dataclasses.

import re
import sys

from snakemake.exceptions import WorkflowError

from nvd.compression.anchor_config import anchor_config, anchor_names, curve_section
from nvd.core.config import as_dict, results_layout, validate_config
from nvd.core.errors import NvdError
from nvd.core.layout import BENCHMARK_TABLES, COMPARISON_CSV, DATA_STAGES, ResultsLayout
from nvd.core.versioning import code_version
from nvd.data.datasets import all_videos, dataset_families, dataset_videos, hypernet_split, video_stages
from nvd.data.inputs import check_inputs
from nvd.data.demo import DEFAULT_DEMO_DIR, FOOTAGE_CLIPS, SYNTHETIC_CLIPS
from nvd.data.stages import backends_in_use, stage_config
from nvd.data.verify import quarantine_invalid_stores
from nvd.data.weights import BACKEND_WEIGHTS, check_weights, weights_from_config
from nvd.eval.paper_tables import PAPER_TABLES
from nvd.models import METHODS, NERV_MODEL_PATTERN, NERV_TASKS, family_methods, nerv_method, parse_nerv_model
from nvd.models.nerv.codec_config import cem_config, point_names as nerv_point_names, point_section as nerv_point_section
from nvd.models.nvp.codec_config import nvp_codec_config, point_section as nvp_point_section
from nvd.models.nerv.training import TASK_SECTIONS, run_sections, task_folders
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
    NERV_FOLDERS = {task: task_folders(config, task) for task in NERV_TASKS}  # task -> {nerv_model} values
    # the codecs' rate points and anchor curves ({point}, {anchor}); a section absent: none
    NVP_POINTS = nvp_codec_config(config["nvp_compress"]).point_names() if "nvp_compress" in config else []
    NERV_POINTS = nerv_point_names(cem_config(config["nerv_compress"])) if "nerv_compress" in config else []
    ANCHOR_CURVES = (anchor_names(anchor_config(config.get("codec_anchor")))
                     if "codec_anchor" in config or "benchmark" in config else [])
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
    point="|".join(re.escape(p) for p in (*NVP_POINTS, *NERV_POINTS)) or "(?!)",  # (?!): matches nothing
    anchor="|".join(re.escape(a) for a in ANCHOR_CURVES) or "(?!)",
    nerv_model=NERV_MODEL_PATTERN,  # a model, with its size when nerv.model_sizes lists several

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

# table kind -> the task whose model folders it reads
NERV_TABLE_TASKS = {"nerv_regression": "regression", "nerv_inpaint": "inpaint", "nerv_interpolate": "interpolate"}


def nerv_datasets():
    """The datasets of the default target that run the NeRV family."""
    return sorted({v.dataset for v in VIDEOS if "nerv" in FAMILIES[v.dataset]})


def nerv_model_folders(dataset, task="regression"):
    """The ``{nerv_model}`` values ``task`` trains on each video of ``dataset``: regression
    folder names, a model with its size when nerv.model_sizes lists several (hnerv_boost_3M),
    else the model's name; a task's own folder appends its suffix (nvd.models.nerv_method).
    Empty when the dataset does not run the NeRV family or the task is off
    (nvd.models.nerv.training.task_folders)."""
    return list(NERV_FOLDERS[task]) if "nerv" in FAMILIES.get(dataset, ()) else []


def nerv_table_kinds():
    return [kind for kind, task in NERV_TABLE_TASKS.items() if NERV_FOLDERS[task]]


def _nerv_videos(dataset):
    if "nerv" not in FAMILIES.get(dataset, ()):
        fail(f"dataset '{dataset}' does not run the NeRV family (add nerv to datasets.{dataset}.families)")
    return list(dataset_videos(config, dataset))


def nerv_runs(kind, dataset, key="eval"):
    """{model folder: {video: ``key`` of its task folder}} behind a table kind of a dataset."""
    task = NERV_TABLE_TASKS[kind]
    if kind not in nerv_table_kinds():
        fail(f"the {kind} table has no models to read: it needs the '{TASK_SECTIONS[task]}' section in the "
             "config" + (" and nerv.regression true" if task == "regression" else ""))
    videos = _nerv_videos(dataset)
    return {folder: {v: run_path(key, nerv_method(folder, task), dataset, v) for v in videos}
            for folder in nerv_model_folders(dataset, task)}


def nerv_params(*tasks):
    """Params function: the sections that shape the run of the job's model folder (its
    model's settings and size; nvd.models.nerv.training.run_sections), and those of ``tasks``."""

    def params(wildcards):
        try:
            return run_sections(config, wildcards.nerv_model, *tasks)
        except NvdError as exc:
            fail(str(exc))

    return params


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


# ---------------------------------------------------------------------------- codecs and the benchmark


def codec_datasets():
    """The datasets of the default target that run a video representation (NVP, NeRV family):
    the ones the codecs, the anchors and the benchmark serve."""
    return sorted({v.dataset for v in VIDEOS if {"nvp", "nerv"} & set(FAMILIES[v.dataset])})


def _codec_datasets_of(wildcards):
    if wildcards.dataset not in codec_datasets():
        fail(f"dataset '{wildcards.dataset}' runs neither NVP nor the NeRV family, so it has no codecs "
             f"(add nvp or nerv to datasets.{wildcards.dataset}.families)")
    return list(dataset_videos(config, wildcards.dataset))


def codec_section(section, narrow, wildcard="point"):
    """Params function: {section: the section as one rate point's (or anchor curve's) job reads
    it}, ``narrow(values, name)`` keeping that point alone, so changing another point does not
    rerun this one."""

    def params(wildcards):
        try:
            return {section: narrow(config.get(section), getattr(wildcards, wildcard))}
        except NvdError as exc:
            fail(str(exc))

    return params


def nerv_codec_folders(dataset):
    """The regression model folders of ``dataset`` that get coded: those of nerv_compress.models
    (every size of each), else every one trained."""
    models = (config.get("nerv_compress") or {}).get("models")
    return [folder for folder in nerv_model_folders(dataset) if models is None or parse_nerv_model(folder)[0] in models]


def compressed_folders(dataset, video):
    """Every compressed folder of a video: its NVP and NeRV-family rate points and anchors."""
    families = FAMILIES.get(dataset, ())
    folders = []
    if "nvp" in families:
        folders += [LAYOUT.compressed("nvp", p, dataset, video) for p in NVP_POINTS]
    if "nerv" in families:
        folders += [LAYOUT.compressed(m, p, dataset, video) for m in nerv_codec_folders(dataset) for p in NERV_POINTS]
    return folders + [LAYOUT.anchor(a, dataset, video) for a in ANCHOR_CURVES]


def benchmark_folders(wildcards):
    """{video: its compressed folders} of a dataset."""
    if "benchmark" not in config:
        fail("the benchmark tables need a 'benchmark' section in the config")
    return {v: compressed_folders(wildcards.dataset, v) for v in _codec_datasets_of(wildcards)}


def benchmark_input_folders(wildcards):
    return [path for folders in benchmark_folders(wildcards).values() for path in folders]


def rd_plot_folders(wildcards):
    """The compressed folders of one video, for its rate-distortion plot."""
    _codec_datasets_of(wildcards)
    return compressed_folders(wildcards.dataset, wildcards.video)


def all_codecs():
    """Every compressed folder of the codec datasets, and their benchmark when configured."""
    targets = []
    for dataset in codec_datasets():
        videos = list(dataset_videos(config, dataset))
        for video in videos:
            targets += compressed_folders(dataset, video)
        if "benchmark" in config:
            targets += [path for kind in BENCHMARK_TABLES for path in LAYOUT.family_table(kind, dataset).values()]
            targets += [LAYOUT.rd_plot(dataset, video) for video in videos]
    return targets


# ---------------------------------------------------------------------------- the papers' tables


def paper_table_source(wildcards):
    """Our table behind a paper table (nvd.eval.paper_tables)."""
    kind, dataset = wildcards.kind, wildcards.dataset
    if kind == "hypernvd":
        if HYPER_SPLIT is None or dataset != HYPER_SPLIT.dataset or not HYPER_SPLIT.heldout:
            fail(f"the HyperNVD paper table needs hypernet.dataset '{dataset}' with held-out videos")
        return LAYOUT.table(COMPARISON_CSV)
    table = {"nvp_encoding": "nvp_encoding", "nerv_regression": "nerv_regression", "nerv_rd": "benchmark"}[kind]
    return LAYOUT.family_table(table, dataset)["csv"]


def all_paper_tables():
    """Every paper table the config's runs can fill."""
    targets = []
    if HYPER_SPLIT is not None and HYPER_SPLIT.heldout:
        targets.append(LAYOUT.paper_table("hypernvd", HYPER_SPLIT.dataset))
    targets += [LAYOUT.paper_table("nvp_encoding", dataset) for dataset in nvp_datasets()]
    if "nerv_regression" in nerv_table_kinds():
        targets += [LAYOUT.paper_table("nerv_regression", dataset) for dataset in nerv_datasets()]
    if "benchmark" in config and "nerv_compress" in config:
        targets += [LAYOUT.paper_table("nerv_rd", dataset) for dataset in nerv_datasets()]
    return targets
