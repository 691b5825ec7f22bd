"""Snakemake adapter for rule `decompose`: see nvd.models.hashing_nvd.run.decompose_video."""

from nvd.core.jobs import job_context
from nvd.models.hashing_nvd.run import decompose_video

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    decompose_video(snakemake.input, snakemake.params.sections, snakemake.params.work_dir,  # noqa: F821
                    snakemake.output.model)  # noqa: F821
