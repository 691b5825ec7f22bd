"""Snakemake adapter for rule `frames`: see nvd.data.frames.extract_frames."""

from nvd.core.progress import stage_log
from nvd.data.frames import FramesConfig, extract_frames

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    extract_frames(snakemake.input.source, snakemake.output[0], FramesConfig(**snakemake.params.section))
