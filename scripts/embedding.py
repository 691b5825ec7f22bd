"""Snakemake adapter for rule `embedding`: see nvd.embedding.compute_embedding."""

from nvd.embedding import EmbeddingConfig, compute_embedding
from nvd.progress import stage_log
from nvd.weights import WeightsConfig

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    compute_embedding(
        snakemake.input.frames,
        snakemake.output[0],
        EmbeddingConfig(**snakemake.params.section),
        WeightsConfig(**snakemake.params.weights),
    )
