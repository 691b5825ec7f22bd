"""Snakemake adapter for rule `rd_plot`: see nvd.compression.benchmark.write_rd_plot."""

from nvd.compression.benchmark import write_rd_plot
from nvd.core.progress import stage_log

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_rd_plot(snakemake.wildcards.video, snakemake.params.folders, snakemake.output[0])  # noqa: F821
