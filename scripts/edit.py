"""Snakemake adapter for rule `edit`: see nvd.models.hashing_nvd.edit.edit_model."""

from nvd.core.config import section
from nvd.core.jobs import job_context
from nvd.models.hashing_nvd.edit import EditConfig, edit_model

with job_context(snakemake):  # noqa: F821 - injected by Snakemake
    inputs, params = snakemake.input, snakemake.params  # noqa: F821
    edit_model(inputs.model, inputs.frames, inputs.flow, inputs.masks, inputs.eval,
               section(EditConfig, params.edit, "edits"), snakemake.output[0], params.device)  # noqa: F821
