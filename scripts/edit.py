"""Snakemake adapter for rule `edit`: see nvd.decomposition_eval.edit."""

from nvd.decompose import load_decomposition, video_fps
from nvd.decomposition_eval import edit
from nvd.devices import use_cpu_threads
from nvd.progress import stage_log

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    use_cpu_threads(snakemake.threads)  # noqa: F821
    inputs = snakemake.input  # noqa: F821
    spec = snakemake.params.edits  # noqa: F821
    task, _ = load_decomposition(inputs.model, inputs.frames, inputs.flow, inputs.masks)
    edit(task, inputs.eval, spec["atlases"], snakemake.output[0], fps=video_fps(inputs.frames), mode=spec["mode"])  # noqa: F821
