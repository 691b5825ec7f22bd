"""Snakemake adapter for rule `nerv_train`: see nvd.models.nerv.run.nerv_train_job."""

from nvd.core.jobs import job_context
from nvd.models.nerv.run import nerv_train_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    out, params = snakemake.output, snakemake.params  # noqa: F821
    nerv_train_job(snakemake.input.frames, params.sections, snakemake.wildcards.nerv_model,  # noqa: F821
                   params.work_dir, out.model)
