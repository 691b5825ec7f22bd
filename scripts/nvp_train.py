"""Snakemake adapter for rule `nvp_train`: see nvd.models.nvp.run.nvp_train_job."""

from nvd.core.jobs import job_context
from nvd.models.nvp.run import nvp_train_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    out, params = snakemake.output, snakemake.params  # noqa: F821
    nvp_train_job(snakemake.input.frames, params.sections, params.work_dir, out.model, out.snapshots)  # noqa: F821
