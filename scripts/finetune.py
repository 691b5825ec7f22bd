"""Snakemake adapter for rules `finetune` and `scratch`: see nvd.hypernvd.finetune and
nvd.hypernvd.train_scratch (the finetune settings from random weights, with the warm-ups of
the `scratch` section)."""

from nvd.devices import use_cpu_threads
from nvd.hypernvd import VideoStores, finetune, finetune_config, scratch_config, train_scratch
from nvd.progress import stage_log

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    use_cpu_threads(snakemake.threads)  # noqa: F821
    inputs, params = snakemake.input, snakemake.params  # noqa: F821
    cfg = finetune_config(params.sections, check_split=False)
    stores = VideoStores(inputs.frames, inputs.flow, inputs.masks, getattr(inputs, "embedding", None))
    if snakemake.rule == "finetune":  # noqa: F821
        finetune(inputs.hypernet, stores, params.work_dir, snakemake.output.model, cfg,  # noqa: F821
                 restart_on_mismatch=True)
    else:
        train_scratch(stores, params.work_dir, snakemake.output.model, cfg,  # noqa: F821
                      scratch_config(params.sections), restart_on_mismatch=True)
