"""Snakemake adapter for rule `demo_synthetic`: see nvd.data.demo.write_synthetic_clip."""

from nvd.core.progress import stage_log
from nvd.data.demo import write_synthetic_clip

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_synthetic_clip(snakemake.wildcards.clip, snakemake.params.clip_dir)
