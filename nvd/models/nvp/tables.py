"""NVP's tables for one dataset, from the evaluation folders of its videos.

- ``nvp_encoding_<dataset>``: the paper's encoding-time table, one row per training budget
  (steps, and the training time they took): bpp, PSNR, MS-SSIM, FLIP, LPIPS of the 8-bit
  quantised model, mean +- std over the dataset's videos (std over one video is 0).
- ``nvp_superres_<dataset>``, ``nvp_interpolate_<dataset>``: per video and on average, NVP's
  PSNR and MS-SSIM on the held-out pixels or frames beside the baseline's (bicubic, linear
  blending) and the gain.

Each as CSV (full precision) and Markdown; missing figures (no LPIPS weights) are n/a.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nvd.core.publish import publish_text
from nvd.eval.table_format import as_number, csv_text, format_number, markdown_table, mean_std, plus_minus, read_metrics

ENCODING_FIGURES = (("bpp", 3), ("psnr", 2), ("ms_ssim", 4), ("flip", 4), ("lpips", 4))
RESAMPLING_FIGURES = ("psnr", "ms_ssim")


def encoding_rows(metrics: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per budget step shared by every video: {steps, n_videos, <figure>_mean/_std}."""
    by_step: dict[int, list[Mapping[str, Any]]] = {}
    for video in metrics.values():
        for row in video["budgets"]:
            by_step.setdefault(int(row["step"]), []).append(row)
    rows = []
    for step in sorted(s for s, found in by_step.items() if len(found) == len(metrics)):
        found = by_step[step]
        row: dict[str, Any] = {"steps": step, "videos": len(found)}
        for name in ("wall_time_s", *(f for f, _ in ENCODING_FIGURES)):
            row[f"{name}_mean"], row[f"{name}_std"] = mean_std([as_number(r.get(name)) for r in found])
        rows.append(row)
    return rows


def encoding_table(metrics: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
    rows = encoding_rows(metrics)
    columns = ["steps", "videos"] + [f"{n}_{k}" for n in ("wall_time_s", *(f for f, _ in ENCODING_FIGURES))
                                     for k in ("mean", "std")]
    header = ["steps", "encoding time (s)", "bpp", "PSNR (dB)", "MS-SSIM", "FLIP", "LPIPS"]
    cells = []
    for row in rows:
        spread = [plus_minus(row[f"{n}_mean"], row[f"{n}_std"], d) for n, d in (("wall_time_s", 1), *ENCODING_FIGURES)]
        cells.append([str(row["steps"]), *spread])
    return csv_text(columns, rows), markdown_table(header, cells)


def resampling_rows(metrics: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per video, then "mean": factor, NVP's and the baseline's figures and the PSNR gain."""
    rows = []
    for video, m in metrics.items():
        row: dict[str, Any] = {"video": video, "factor": m["factor"]}
        for name in RESAMPLING_FIGURES:
            row[f"nvp_{name}"] = as_number(m["nvp"].get(name))
            row[f"baseline_{name}"] = as_number(m["baseline"].get(name))
        row["psnr_gain"] = row["nvp_psnr"] - row["baseline_psnr"]
        rows.append(row)
    if rows:
        mean = {"video": "mean", "factor": rows[0]["factor"] if len({r["factor"] for r in rows}) == 1 else ""}
        for key in rows[0]:
            if key not in mean:
                mean[key] = mean_std([r[key] for r in rows])[0]
        rows.append(mean)
    return rows


def resampling_table(metrics: Mapping[str, Mapping[str, Any]], baseline: str) -> tuple[str, str]:
    rows = resampling_rows(metrics)
    columns = ["video", "factor"] + [f"{w}_{n}" for n in RESAMPLING_FIGURES for w in ("nvp", "baseline")] + ["psnr_gain"]
    header = ["video", "factor", "NVP PSNR", f"{baseline} PSNR", "NVP MS-SSIM", f"{baseline} MS-SSIM", "gain (dB)"]
    cells = [[str(r["video"]), str(r["factor"]), format_number(r["nvp_psnr"], 2), format_number(r["baseline_psnr"], 2),
              format_number(r["nvp_ms_ssim"], 4), format_number(r["baseline_ms_ssim"], 4),
              format_number(r["psnr_gain"], 2)] for r in rows]
    return csv_text(columns, [{k: r[k] for k in columns} for r in rows]), markdown_table(header, cells)


TABLE_BUILDERS = {"nvp_encoding": encoding_table,
                  "nvp_superres": lambda metrics: resampling_table(metrics, "bicubic"),
                  "nvp_interpolate": lambda metrics: resampling_table(metrics, "blend")}


def write_nvp_table(kind: str, evaluations: Mapping[str, str | Path], csv_path: str | Path,
                    markdown_path: str | Path) -> None:
    """The ``kind`` table (a key of TABLE_BUILDERS) from ``evaluations``: {video: eval folder}."""
    csv, markdown = TABLE_BUILDERS[kind]({video: read_metrics(folder) for video, folder in evaluations.items()})
    publish_text(csv_path, csv)
    publish_text(markdown_path, markdown)
