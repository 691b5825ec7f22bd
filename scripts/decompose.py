"""Snakemake adapter for rule `decompose`: see nvd.decompose.train_decomposition."""

from nvd.config import section
from nvd.decompose import train_decomposition
from nvd.decomposition_training import DecompositionTrainConfig
from nvd.devices import use_cpu_threads
from nvd.progress import stage_log

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    use_cpu_threads(snakemake.threads)  # noqa: F821
    train_decomposition(
        snakemake.input.frames,
        snakemake.input.flow,
        snakemake.input.masks,
        snakemake.params.work_dir,
        snakemake.output.model,
        section(DecompositionTrainConfig, snakemake.params.section, "decomposition"),
        # Snakemake reruns this job only when its inputs, config or code changed: a
        # checkpoint left by an older run is stale, not resumable.
        restart_on_mismatch=True,
    )
