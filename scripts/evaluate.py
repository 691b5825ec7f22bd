"""Snakemake adapter for rule `evaluate`: see nvd.models.hashing_nvd.evaluate.evaluate_model."""

from nvd.core.config import section
from nvd.core.jobs import job_context
from nvd.models.hashing_nvd.evaluate import EvaluationConfig, evaluate_model

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    inputs, params = snakemake.input, snakemake.params  # noqa: F821
    evaluate_model(inputs.model, inputs.frames, inputs.flow, inputs.masks, snakemake.output[0],  # noqa: F821
                   section(EvaluationConfig, params.sections["evaluation"], "evaluation"),
                   lpips_weights=params.lpips, truth=inputs.get("truth"), device=params.device)
