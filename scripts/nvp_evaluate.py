"""Snakemake adapter for rule `nvp_evaluate`: see nvd.models.nvp.evaluate.nvp_evaluate_job."""

from nvd.core.jobs import job_context
from nvd.models.nvp.evaluate import nvp_evaluate_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    nvp_evaluate_job(snakemake.input, snakemake.output[0], params.lpips, params.device)  # noqa: F821
