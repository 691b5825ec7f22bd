"""Snakemake adapter for rule `benchmark`: see nvd.compression.benchmark.write_benchmark."""

from nvd.compression.benchmark import benchmark_config, write_benchmark
from nvd.core.progress import stage_log

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    write_benchmark(params.folders, snakemake.output, benchmark_config(params.sections.get("benchmark")))  # noqa: F821
