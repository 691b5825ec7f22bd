"""Snakemake adapter for rule `embedding`: see nvd.data.embedding.compute_embedding."""

from nvd.core.progress import stage_log
from nvd.data.embedding import EmbeddingConfig, compute_embedding
from nvd.data.weights import WeightsConfig

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    compute_embedding(
        snakemake.input.frames,
        snakemake.output[0],
        EmbeddingConfig(**snakemake.params.section),
        WeightsConfig(**snakemake.params.weights),
    )
