"""Snakemake adapter for rule `hyper_output`: see nvd.models.hypernvd.run.hyper_output_job."""

from nvd.core.jobs import job_context
from nvd.models.hypernvd.run import hyper_output_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    hyper_output_job(snakemake.input, params.sections, params.split, snakemake.output[0])  # noqa: F821
