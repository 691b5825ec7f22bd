"""Snakemake adapter for rule `nerv_evaluate`: see nvd.models.nerv.evaluate.nerv_evaluate_job."""

from nvd.core.jobs import job_context
from nvd.models.nerv.evaluate import nerv_evaluate_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    nerv_evaluate_job(snakemake.input, snakemake.output[0], params.lpips, params.device)  # noqa: F821
