"""Snakemake adapter for rule `nerv_table`: see nvd.models.nerv.tables.write_nerv_table."""

from nvd.core.progress import stage_log
from nvd.models.nerv.tables import write_nerv_table

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    out = snakemake.output  # noqa: F821
    write_nerv_table(snakemake.wildcards.kind, snakemake.params.evaluations, out.csv, out.markdown)  # noqa: F821
