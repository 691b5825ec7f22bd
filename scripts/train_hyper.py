"""Snakemake adapter for rule `train_hyper`: see nvd.models.hypernvd.run.train_hypernet_job."""

from nvd.core.jobs import job_context
from nvd.models.hypernvd.run import train_hypernet_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    train_hypernet_job(params.videos, params.sections, params.work_dir, snakemake.output.model)  # noqa: F821
