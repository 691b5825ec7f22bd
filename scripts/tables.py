"""Snakemake adapter for rule `tables`: see nvd.models.hypernvd.tables.tables_job."""

from nvd.core.progress import stage_log
from nvd.models.hypernvd.tables import tables_job

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    tables_job(params.runs, params.outputs, params.sections["tables"], list(snakemake.output))  # noqa: F821
