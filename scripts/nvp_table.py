"""Snakemake adapter for rule `nvp_table`: see nvd.models.nvp.tables.write_nvp_table."""

from nvd.core.progress import stage_log
from nvd.models.nvp.tables import write_nvp_table

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    out = snakemake.output  # noqa: F821
    write_nvp_table(snakemake.wildcards.kind, snakemake.params.evaluations, out.csv, out.markdown)  # noqa: F821
