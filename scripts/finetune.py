"""Snakemake adapter for rule `finetune`: see nvd.models.hypernvd.run.finetune_job."""

from nvd.core.jobs import job_context
from nvd.models.hypernvd.run import finetune_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    finetune_job(snakemake.input, params.sections, params.work_dir, snakemake.output.model)  # noqa: F821
