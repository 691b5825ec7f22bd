"""HyperNVD's tables (the ``tables`` rule): finetune vs scratch, and the hypernetwork's quality.

HyperNVD finetunes a decomposition model initialised by the hypernetwork; the baseline
trains the same model from scratch. ``write_tables`` writes into one folder (names from
nvd.core.layout):

- ``hypernvd_comparison.csv`` / ``.md``: per held-out video and on average, PSNR at equal
  training time and iterations and the time to reach the scratch run's PSNR
  (nvd.eval.comparison, with the methods ``SCRATCH_VS_FINETUNE``);
- ``psnr_vs_time_<video>.png`` per held-out video and ``psnr_vs_time_mean.png``;
- ``hypernvd_generalisation.csv`` / ``.md`` (``write_generalisation``): how good the
  hypernetwork's output is before any finetuning, on training and held-out videos.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nvd.core.errors import InputError
from nvd.core.layout import (
    COMPARISON_CSV,
    COMPARISON_MD,
    GENERALISATION_CSV,
    GENERALISATION_MD,
    MEAN_PLOT,
    plot_name,
)
from nvd.core.publish import publish_text
from nvd.eval.comparison import ComparisonFiles, Methods, TablesConfig, compare_runs, write_comparison
from nvd.eval.table_format import csv_text, format_number, markdown_table, nanmean

SPLITS = ("train", "heldout")

# the keys are the model folders' names (nvd.core.layout), and name the CSV columns
SCRATCH_VS_FINETUNE = Methods(
    baseline="scratch",
    candidate="finetune",
    baseline_label="scratch",
    candidate_label="HyperNVD",
    baseline_plot_label="scratch",
    candidate_plot_label="HyperNVD finetune",
    title="HyperNVD finetune vs training from scratch",
    same_work_per_iteration=True,  # the same decomposition model, only initialised differently
)
COMPARISON_FILES = ComparisonFiles(csv=COMPARISON_CSV, markdown=COMPARISON_MD, mean_plot=MEAN_PLOT, plot=plot_name)

_GENERALISATION_KEYS = ("video", "split", "psnr", "psnr_no_residual")


def _check_generalisation(rows: list[dict]) -> None:
    if not rows:
        raise InputError("no generalisation rows to write")
    for i, row in enumerate(rows):
        missing = [key for key in _GENERALISATION_KEYS if key not in row]
        if missing:
            raise InputError(f"generalisation row {i} ({row.get('video', '?')}) lacks {', '.join(missing)}")
        if row["split"] not in SPLITS:
            raise InputError(
                f"generalisation row {i} ({row['video']}): split must be one of {', '.join(SPLITS)}, "
                f"got {row['split']!r}"
            )


def generalisation_rows(rows: list[dict]) -> list[dict[str, Any]]:
    """``rows`` (in split order, train first) followed by one ``mean (split)`` row per split present."""
    _check_generalisation(rows)
    ordered = sorted(rows, key=lambda r: SPLITS.index(r["split"]))  # stable: keeps video order
    out: list[dict[str, Any]] = [
        {"video": r["video"], "split": r["split"], "psnr": float(r["psnr"]),
         "psnr_no_residual": float(r["psnr_no_residual"])}
        for r in ordered
    ]
    for split in SPLITS:
        members = [r for r in out if r["split"] == split]
        if members:
            out.append({
                "video": f"mean ({split})",
                "split": split,
                "psnr": nanmean([r["psnr"] for r in members]),
                "psnr_no_residual": nanmean([r["psnr_no_residual"] for r in members]),
            })
    return out


def write_generalisation(out_dir: str | os.PathLike, rows: list[dict]) -> dict[str, Path]:
    """Write the hypernetwork's pre-finetuning quality per video and per split.

    ``rows``: ``{"video", "split" ("train" | "heldout"), "psnr", "psnr_no_residual"}`` (dB).
    Writes GENERALISATION_CSV (rows, then a ``mean (split)`` row per split) and
    GENERALISATION_MD; returns ``{"csv": ..., "markdown": ...}``.
    """
    table = generalisation_rows(rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / GENERALISATION_CSV, "markdown": out / GENERALISATION_MD}
    publish_text(paths["csv"], csv_text(list(_GENERALISATION_KEYS), table))

    per_video, means = table[: len(rows)], table[len(rows) :]
    summary = [
        [m["split"], str(sum(r["split"] == m["split"] for r in per_video)),
         format_number(m["psnr"], 2), format_number(m["psnr_no_residual"], 2)]
        for m in means
    ]
    text = "\n".join([
        "# HyperNVD generalisation (hypernetwork output, before finetuning)\n",
        "PSNR (dB) of the decomposition the hypernetwork predicts for each video; `train` videos "
        "were seen when training the hypernetwork, `heldout` ones were not.\n",
        "## Per video\n",
        markdown_table(
            ["video", "split", "PSNR (dB)", "PSNR without residual (dB)"],
            [[r["video"], r["split"], format_number(r["psnr"], 2), format_number(r["psnr_no_residual"], 2)]
             for r in per_video],
        ),
        "## Per split\n",
        markdown_table(["split", "videos", "mean PSNR (dB)", "mean PSNR without residual (dB)"], summary),
    ])
    publish_text(paths["markdown"], text)
    return paths


def write_tables(out_dir: str | os.PathLike, runs: Mapping[str, tuple[str | os.PathLike, str | os.PathLike]],
                 outputs: Mapping[str, str | os.PathLike], cfg: TablesConfig = TablesConfig()) -> dict[str, Path]:
    """All HyperNVD tables and plots from the files the runs leave (the ``tables`` rule).

    ``runs``: held-out video -> (scratch log.csv, finetune log.csv); ``outputs``: video ->
    hypernet_output.json (see nvd.models.hypernvd.run.hypernet_output_quality, holding its
    split). Returns name -> path: ``csv``, ``markdown``, ``mean_plot``, ``plot_<video>``
    (only when ``runs`` is not empty), ``generalisation_csv``, ``generalisation_markdown``.
    """
    from nvd.train.logs import read_log

    paths: dict[str, Path] = {}
    if runs:
        comparisons = [
            compare_runs(video, read_log(Path(scratch).parent), read_log(Path(finetune).parent), cfg,
                         SCRATCH_VS_FINETUNE)
            for video, (scratch, finetune) in runs.items()
        ]
        paths.update(write_comparison(out_dir, comparisons, SCRATCH_VS_FINETUNE, COMPARISON_FILES))
    rows = []
    for video, path in outputs.items():
        quality = json.loads(Path(path).read_text())
        rows.append({"video": video, "split": quality["split"], "psnr": quality["psnr"],
                     "psnr_no_residual": quality["psnr_no_residual"]})
    paths.update({f"generalisation_{k}": v for k, v in write_generalisation(out_dir, rows).items()})
    return paths


def tables_job(runs: Mapping[str, tuple[str, str]], outputs: Mapping[str, str], tables: Mapping[str, Any] | None,
               expected: list[str]) -> dict[str, Path]:
    """The ``tables`` job, writing beside its ``expected`` files (the rule's outputs, from
    ``ResultsLayout.hypernvd_tables``); RuntimeError when it wrote other ones."""
    from nvd.core.config import section

    written = write_tables(Path(expected[0]).parent, runs, outputs, section(TablesConfig, tables, "tables"))
    missing = sorted(set(map(str, expected)) - {str(p) for p in written.values()})
    if missing:
        raise RuntimeError(f"the tables rule expects {missing}, which write_tables did not write")
    return written
