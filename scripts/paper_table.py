"""Snakemake adapter for rule `paper_table`: see nvd.eval.paper_tables.write_paper_table."""

from nvd.core.progress import stage_log
from nvd.eval.paper_tables import write_paper_table

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    wildcards = snakemake.wildcards  # noqa: F821
    write_paper_table(wildcards.kind, snakemake.input[0], wildcards.dataset, snakemake.output[0])  # noqa: F821
