"""Snakemake adapter for rule `codec_anchor`: see nvd.compression.anchors.codec_anchor_job."""

from nvd.compression.anchors import codec_anchor_job
from nvd.core.jobs import job_context

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    codec_anchor_job(snakemake.input.frames, snakemake.output[0], snakemake.wildcards.anchor,  # noqa: F821
                     params.sections, params.lpips)
