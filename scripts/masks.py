"""Snakemake adapter for rule `masks`: see nvd.data.masks.compute_masks."""

from nvd.core.progress import stage_log
from nvd.data.masks import MasksConfig, compute_masks
from nvd.data.weights import WeightsConfig

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    compute_masks(
        snakemake.input.frames,
        snakemake.output[0],
        MasksConfig(**snakemake.params.section),
        WeightsConfig(**snakemake.params.weights),
        annotations=snakemake.input.get("annotations"),
    )
