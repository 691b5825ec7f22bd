"""Snakemake adapter for rule `demo_footage`: see nvd.data.demo.write_footage_clip."""

from nvd.core.progress import stage_log
from nvd.data.demo import write_footage_clip

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_footage_clip(snakemake.wildcards.clip, snakemake.output[0])
