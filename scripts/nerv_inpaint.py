"""Snakemake adapter for rule `nerv_inpaint`: see nvd.models.nerv.evaluate.nerv_inpaint_job."""

from nvd.core.jobs import job_context
from nvd.models.nerv.evaluate import nerv_inpaint_job

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    out, params = snakemake.output, snakemake.params  # noqa: F821
    nerv_inpaint_job(snakemake.input.frames, params.sections, snakemake.wildcards.nerv_model,  # noqa: F821
                     {"work": params.work_dir, "model": out.model}, out.eval, params.lpips)
