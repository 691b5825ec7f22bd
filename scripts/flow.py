"""Snakemake adapter for rule `flow`: see nvd.data.flow.compute_flow."""

from nvd.core.progress import stage_log
from nvd.data.flow import FlowConfig, compute_flow
from nvd.data.weights import WeightsConfig

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    compute_flow(
        snakemake.input.frames,
        snakemake.output[0],
        FlowConfig(**snakemake.params.section),
        WeightsConfig(**snakemake.params.weights),
    )
