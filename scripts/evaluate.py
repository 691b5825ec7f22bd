"""Snakemake adapter for rule `evaluate`: see nvd.decomposition_eval.evaluate."""

from nvd.config import section
from nvd.decompose import EvaluationConfig, load_decomposition, load_truth, training_log, video_fps
from nvd.decomposition_eval import evaluate
from nvd.devices import use_cpu_threads
from nvd.progress import stage_log

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    use_cpu_threads(snakemake.threads)  # noqa: F821
    inputs = snakemake.input  # noqa: F821
    cfg = section(EvaluationConfig, snakemake.params.section, "evaluation")  # noqa: F821
    task, meta = load_decomposition(inputs.model, inputs.frames, inputs.flow, inputs.masks)
    evaluate(
        task,
        snakemake.output[0],  # noqa: F821
        fps=video_fps(inputs.frames),
        training=training_log(inputs.model),
        meta=meta,
        atlas_size=cfg.atlas_size,
        lpips_weights=snakemake.params.lpips,  # noqa: F821
        truth=load_truth(inputs.truth, inputs.frames) if "truth" in inputs.keys() else None,
    )
