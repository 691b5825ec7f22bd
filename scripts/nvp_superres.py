"""Snakemake adapter for rule `nvp_superres`: see nvd.models.nvp.resampling.superres_job."""

from nvd.core.jobs import job_context
from nvd.models.nvp.resampling import superres_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    out, params = snakemake.output, snakemake.params  # noqa: F821
    superres_job(snakemake.input.frames, params.sections, {"work": params.work_dir, "model": out.model},  # noqa: F821
                out.eval, params.lpips)
