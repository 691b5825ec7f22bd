"""Where every result lives: the one place that names the files of the results tree.

::

    <results>/<dataset>/<video>/<stage>.zarr            frames, flow, masks, embedding
    <results>/<dataset>/<video>/<method>/model.pt       a trained model of the video
                                         log.csv        its training log
                                         work/          the rolling checkpoint (resume)
                                         eval/          evaluation outputs (metrics.json, ...)
                                         custom_edit.mp4
                                         snapshots/     models at fixed steps (NVP's budgets)
                                         compress/<point>/       one rate point of its codec:
                                                         stream.nvd (the file), metrics.json, rec.mp4
                                         compress_work/<point>/  that point's fine-tuning (resume)
    <results>/<dataset>/<video>/anchors/<anchor>/       a traditional codec's curve (metrics.json,
                                                        the bitstreams)
    <results>/<dataset>/<video>/hypernet_output.json    HyperNVD's output before finetuning
    <results>/hypernet/<dataset>/model.pt, log.csv, work/
    <results>/tables/                                   comparison tables and plots (the
                                                        benchmark: benchmark_<dataset>, bdrate_<dataset>,
                                                        rd_<dataset>/<video>.png; the papers' tables:
                                                        paper_<kind>_<dataset>.md)

``method`` is the model folder: ``decomposition`` (Hashing-NVD per video), ``finetune`` and
``scratch`` (HyperNVD's held-out videos), ``nvp``, ``nvp_superres`` and ``nvp_interpolate``
(nvd.models.METHODS). The rules, the CLI, ``nvd summary`` and the tables
code all build paths here; passing ``"{dataset}"``-style strings gives Snakemake patterns.
Torch-free (read when the DAG is built).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DATA_STAGES = ("frames", "flow", "masks", "embedding")
MODEL_NAME = "model.pt"
LOG_NAME = "log.csv"
WORK_DIR = "work"
EVAL_DIR = "eval"
METRICS_NAME = "metrics.json"
EDIT_NAME = "custom_edit.mp4"
HYPER_OUTPUT_NAME = "hypernet_output.json"
TABLES_DIR = "tables"
SNAPSHOTS_DIR = "snapshots"
COMPRESS_DIR = "compress"
COMPRESS_WORK_DIR = "compress_work"
STREAM_NAME = "stream.nvd"  # nvd.compression.container
ANCHORS_DIR = "anchors"
RUN_FILES = {"model": MODEL_NAME, "log": LOG_NAME, "work": WORK_DIR, "eval": EVAL_DIR, "edit": EDIT_NAME,
             "snapshots": SNAPSHOTS_DIR}

# HyperNVD's tables (nvd.models.hypernvd.tables) under <results>/tables/
COMPARISON_CSV = "hypernvd_comparison.csv"
COMPARISON_MD = "hypernvd_comparison.md"
GENERALISATION_CSV = "hypernvd_generalisation.csv"
GENERALISATION_MD = "hypernvd_generalisation.md"
MEAN_PLOT = "psnr_vs_time_mean.png"
# NVP's tables (nvd.models.nvp.tables), one set per dataset
NVP_TABLES = ("nvp_encoding", "nvp_superres", "nvp_interpolate")
# The NeRV family's (nvd.models.nerv.tables), one set per dataset; regression has a figure too
NERV_TABLES = ("nerv_regression", "nerv_inpaint", "nerv_interpolate")
# The codec benchmark's (nvd.compression.benchmark), one set per dataset
BENCHMARK_TABLES = ("benchmark", "bdrate")


def plot_stem(video: str) -> str:
    """A file-name-safe form of ``video`` (it may be a path or hold spaces)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", video).strip("._") or "video"


def plot_name(video: str) -> str:
    """The PSNR-vs-time plot of one video."""
    return f"psnr_vs_time_{plot_stem(video)}.png"


@dataclass(frozen=True)
class ResultsLayout:
    """The results tree under ``root`` (the config's ``results_dir``)."""

    root: str = "results"

    def video_dir(self, dataset: str, video: str) -> str:
        return f"{self.root}/{dataset}/{video}"

    def store(self, stage: str, dataset: str, video: str) -> str:
        """A data stage's Zarr store of one video."""
        if stage not in DATA_STAGES:
            raise KeyError(f"unknown data stage '{stage}'; known: {list(DATA_STAGES)}")
        return f"{self.video_dir(dataset, video)}/{stage}.zarr"

    def stores(self, dataset: str, video: str, stages: tuple[str, ...] = DATA_STAGES) -> dict[str, str]:
        """{stage: store} of one video for ``stages``."""
        return {stage: self.store(stage, dataset, video) for stage in stages}

    def run_dir(self, method: str, dataset: str, video: str) -> str:
        """The folder of one trained model of a video."""
        return f"{self.video_dir(dataset, video)}/{method}"

    def run_file(self, key: str, method: str, dataset: str, video: str) -> str:
        """``key`` of RUN_FILES (model, log, work, eval, edit) in a model folder."""
        return f"{self.run_dir(method, dataset, video)}/{RUN_FILES[key]}"

    def run_files(self, method: str, dataset: str = "{dataset}", video: str = "{video}") -> dict[str, str]:
        """Every RUN_FILES path of a model folder (Snakemake patterns by default)."""
        return {key: self.run_file(key, method, dataset, video) for key in RUN_FILES}

    def hypernet_files(self, dataset: str = "{dataset}") -> dict[str, str]:
        """The hypernetwork of a dataset: model, log, work."""
        base = f"{self.root}/hypernet/{dataset}"
        return {"model": f"{base}/{MODEL_NAME}", "log": f"{base}/{LOG_NAME}", "work": f"{base}/{WORK_DIR}"}

    def hyper_output(self, dataset: str = "{dataset}", video: str = "{video}") -> str:
        return f"{self.video_dir(dataset, video)}/{HYPER_OUTPUT_NAME}"

    def tables_dir(self) -> str:
        return f"{self.root}/{TABLES_DIR}"

    def table(self, name: str) -> str:
        return f"{self.tables_dir()}/{name}"

    def hypernvd_tables(self, heldout: tuple[str, ...] | list[str]) -> dict[str, str]:
        """HyperNVD's tables and plots (keys as nvd.models.hypernvd.tables.write_tables
        returns them): the generalisation table always, the comparison with held-out videos."""
        files = {"generalisation_csv": GENERALISATION_CSV, "generalisation_markdown": GENERALISATION_MD}
        if heldout:
            files.update(csv=COMPARISON_CSV, markdown=COMPARISON_MD, mean_plot=MEAN_PLOT)
            files.update({f"plot_{video}": plot_name(video) for video in heldout})
        return {key: self.table(name) for key, name in files.items()}

    def family_table(self, kind: str = "{kind}", dataset: str = "{dataset}") -> dict[str, str]:
        """One of NVP's or the NeRV family's tables (NVP_TABLES, NERV_TABLES) of a dataset:
        {"csv": ..., "markdown": ...}."""
        return {"csv": self.table(f"{kind}_{dataset}.csv"), "markdown": self.table(f"{kind}_{dataset}.md")}

    def compressed(self, method: str, point: str = "{point}", dataset: str = "{dataset}",
                   video: str = "{video}") -> str:
        """The folder of one rate point of a model's codec: stream.nvd, metrics.json, rec.mp4."""
        return f"{self.run_dir(method, dataset, video)}/{COMPRESS_DIR}/{point}"

    def compress_work(self, method: str, point: str = "{point}", dataset: str = "{dataset}",
                      video: str = "{video}") -> str:
        """The work folder (checkpoint, log) of a rate point's fine-tuning."""
        return f"{self.run_dir(method, dataset, video)}/{COMPRESS_WORK_DIR}/{point}"

    def anchor(self, anchor: str = "{anchor}", dataset: str = "{dataset}", video: str = "{video}") -> str:
        """The folder of one traditional codec's curve on a video: metrics.json, bitstreams."""
        return f"{self.video_dir(dataset, video)}/{ANCHORS_DIR}/{anchor}"

    def rd_plot(self, dataset: str = "{dataset}", video: str = "{video}") -> str:
        """The rate-distortion plot of one video (every method of its dataset)."""
        return self.table(f"rd_{dataset}/{video}.png")

    def paper_table(self, kind: str = "{kind}", dataset: str = "{dataset}") -> str:
        """A paper's table in its own layout with our figures (nvd.eval.paper_tables)."""
        return self.table(f"paper_{kind}_{dataset}.md")

    def nerv_plot(self, dataset: str = "{dataset}") -> str:
        """The NeRV family's PSNR-vs-training-time figure of a dataset."""
        return self.table(f"nerv_psnr_vs_time_{dataset}.png")


def model_log(model_path: str | Path) -> Path:
    """The training log published beside a model."""
    return Path(model_path).with_name(LOG_NAME)
