"""Snakemake adapter for rule `demo_edit_atlas`: see nvd.data.demo.paint_mark."""

from pathlib import Path

from nvd.core.progress import stage_log
from nvd.data.demo import paint_mark

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    layer = snakemake.wildcards.layer  # noqa: F821
    paint_mark(Path(snakemake.input[0]) / f"tex{layer}.png", snakemake.output[0])  # noqa: F821
