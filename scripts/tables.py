"""Snakemake adapter for rule `tables`: see nvd.comparison.write_tables."""

from pathlib import Path

from nvd.comparison import TablesConfig, write_tables
from nvd.config import section
from nvd.progress import stage_log

with stage_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    inputs, output = snakemake.input, snakemake.output  # noqa: F821
    cfg = section(TablesConfig, snakemake.params.sections["tables"], "tables")  # noqa: F821
    hyper = snakemake.params.sections["hypernet"]  # noqa: F821
    runs = {v: (inputs[f"scratch_{v}"], inputs[f"finetune_{v}"]) for v in hyper.get("heldout_videos") or ()}
    outputs = {v: inputs[f"output_{v}"] for v in (*hyper["train_videos"], *(hyper.get("heldout_videos") or ()))}
    written = write_tables(Path(output.generalisation_csv).parent, runs, outputs, cfg)
    missing = sorted(set(map(str, output)) - {str(p) for p in written.values()})
    if missing:
        raise RuntimeError(f"the tables rule expects {missing}, which nvd.comparison did not write")
