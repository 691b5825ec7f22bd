"""Snakemake adapter for rule `nerv_interpolate`: see nvd.models.nerv.evaluate.nerv_interpolate_job."""

from nvd.core.jobs import job_context
from nvd.models.nerv.evaluate import nerv_interpolate_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    out, params = snakemake.output, snakemake.params  # noqa: F821
    nerv_interpolate_job(snakemake.input.frames, params.sections, snakemake.wildcards.nerv_model,  # noqa: F821
                     {"work": params.work_dir, "model": out.model}, out.eval, params.lpips)
