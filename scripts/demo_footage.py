"""Snakemake adapter for rule `demo_footage`: see nvd.demo.write_footage_clip."""

from nvd.demo import write_footage_clip
from nvd.progress import stage_log

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_footage_clip(snakemake.wildcards.clip, snakemake.output[0])
