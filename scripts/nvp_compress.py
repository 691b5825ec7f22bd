"""Snakemake adapter for rule `nvp_compress`: see nvd.models.nvp.compress.nvp_compress_job."""

from nvd.core.jobs import job_context
from nvd.models.nvp.compress import nvp_compress_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    nvp_compress_job(snakemake.input, snakemake.output[0], params.sections, snakemake.wildcards.point,  # noqa: F821
                     params.lpips, params.device)
