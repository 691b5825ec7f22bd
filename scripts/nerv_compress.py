"""Snakemake adapter for rule `nerv_compress`: see nvd.models.nerv.compress.nerv_compress_job."""

from nvd.core.jobs import job_context
from nvd.models.nerv.compress import nerv_compress_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    wildcards = snakemake.wildcards  # noqa: F821
    nerv_compress_job(snakemake.input, snakemake.output[0], params.work_dir, params.sections,  # noqa: F821
                      wildcards.point, params.lpips, params.device, method=wildcards.nerv_model)
