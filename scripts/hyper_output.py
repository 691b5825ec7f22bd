"""Snakemake adapter for rule `hyper_output`: see nvd.hypernvd.hypernet_output_quality."""

from nvd.devices import use_cpu_threads
from nvd.hypernvd import VideoStores, finetune_config, hypernet_output_quality
from nvd.progress import stage_log

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    use_cpu_threads(snakemake.threads)  # noqa: F821
    inputs, params = snakemake.input, snakemake.params  # noqa: F821
    cfg = finetune_config(params.sections, check_split=False)
    stores = VideoStores(inputs.frames, inputs.flow, inputs.masks, inputs.embedding)
    hypernet_output_quality(inputs.hypernet, stores, cfg, out=snakemake.output[0], split=params.split)  # noqa: F821
