"""Snakemake adapter for rule `nerv_regression_plot`: see nvd.models.nerv.tables.plot_psnr_vs_time."""

from nvd.core.progress import stage_log
from nvd.models.nerv.tables import plot_psnr_vs_time

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    plot_psnr_vs_time(snakemake.output[0], snakemake.params.logs)  # noqa: F821
