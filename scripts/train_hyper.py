"""Snakemake adapter for rule `train_hyper`: see nvd.hypernvd.train_hypernet."""

from nvd.config import section
from nvd.devices import use_cpu_threads
from nvd.hyper_training import HyperTrainConfig
from nvd.hypernvd import VideoStores, train_hypernet
from nvd.progress import stage_log

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    use_cpu_threads(snakemake.threads)  # noqa: F821
    cfg = section(HyperTrainConfig, snakemake.params.sections["hypernet"], "hypernet")  # noqa: F821
    inputs = snakemake.input  # noqa: F821
    videos = {
        video: VideoStores(*(inputs[f"{stage}_{video}"] for stage in ("frames", "flow", "masks", "embedding")))
        for video in cfg.train_videos
    }
    # Snakemake reruns this job only when its inputs, config or code changed: a checkpoint
    # left by an older run is stale, not resumable.
    train_hypernet(videos, snakemake.params.work_dir, snakemake.output.model, cfg,  # noqa: F821
                   restart_on_mismatch=True)
