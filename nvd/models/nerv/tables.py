"""The NeRV family's tables for one dataset, from its models' evaluation folders and logs.

- ``nerv_regression_<dataset>``: per model folder (a model, with its size when the config has
  several: ``hnerv_boost_3M``), the target size, counted parameters, epochs, training time, PSNR
  and MS-SSIM (mean +- std over the videos), then for each boosted model whose plain model ran
  too at the same size the gain in dB at equal size and epochs; plus ``nerv_psnr_vs_time_<dataset>.png``, the
  paper's figure: PSNR against training time, one curve per model, one panel per video.
- ``nerv_inpaint_<dataset>``: per model, PSNR on the full frame and inside the holes, beside the
  input with its holes.
- ``nerv_interpolate_<dataset>``: per model, PSNR and MS-SSIM of the held-out odd frames, beside
  linear blending of their neighbours.

CSV at full precision and Markdown; a figure not measured is n/a.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nvd.core.publish import publish_text, publish_with
from nvd.eval.table_format import as_number, csv_text, format_number, markdown_table, mean_std, plus_minus, read_metrics
from nvd.models import nerv_model_folder, parse_nerv_model
from nvd.train.logs import read_log

# {model folder: {video: eval folder}} is what every table reads (the regression folder's name
# for every task: nvd.models.nerv_method).
Evaluations = Mapping[str, Mapping[str, str | Path]]


def _figure(metrics: Mapping[str, Any], path: tuple[str, ...]) -> float:
    value: Any = metrics
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return as_number(value)


def _summaries(evaluations: Evaluations, columns: Mapping[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    """Per model: the mean and std over videos of each column (a path into metrics.json)."""
    rows = []
    for model, folders in evaluations.items():
        metrics = [read_metrics(folder) for folder in folders.values()]
        row: dict[str, Any] = {"model": model, "videos": len(metrics)}
        for name, path in columns.items():
            row[f"{name}_mean"], row[f"{name}_std"] = mean_std([_figure(m, path) for m in metrics])
        rows.append(row)
    return rows


REGRESSION = {"model_size": ("model_size",), "parameters": ("parameters",), "epochs": ("epochs",),
              "train_time_s": ("train_time_s",), "psnr": ("psnr",), "ms_ssim": ("ms_ssim",)}
INPAINT = {"psnr": ("output", "psnr"), "psnr_holes": ("output", "psnr_holes"), "input_psnr": ("input", "psnr"),
           "input_psnr_holes": ("input", "psnr_holes")}
INTERPOLATE = {"psnr": ("output", "psnr"), "ms_ssim": ("output", "ms_ssim"), "blend_psnr": ("baseline", "psnr"),
               "blend_ms_ssim": ("baseline", "ms_ssim")}


def _columns(figures: Mapping[str, tuple[str, ...]]) -> list[str]:
    return ["model", "videos"] + [f"{name}_{k}" for name in figures for k in ("mean", "std")]


def _plain_folder(folder: str) -> str | None:
    """The folder of the plain model of the same size as boosted model folder ``folder``."""
    model, size = parse_nerv_model(folder)
    return nerv_model_folder(model.removesuffix("_boost"), size) if model.endswith("_boost") else None


def boost_gains(rows: list[dict[str, Any]]) -> dict[str, float]:
    """{boosted model folder: its mean PSNR minus its plain model's at the same size}, where
    both ran."""
    psnr = {row["model"]: row["psnr_mean"] for row in rows}
    plain = {name: _plain_folder(name) for name in psnr}
    return {name: psnr[name] - psnr[plain[name]] for name in psnr if plain[name] in psnr}


def regression_table(evaluations: Evaluations) -> tuple[str, str]:
    rows = _summaries(evaluations, REGRESSION)
    header = ["model", "target size (M)", "parameters", "epochs", "training time (s)", "PSNR (dB)", "MS-SSIM"]
    cells = [[r["model"], f"{r['model_size_mean']:g}", f"{r['parameters_mean']:,.0f}", f"{r['epochs_mean']:.0f}",
              plus_minus(r["train_time_s_mean"], r["train_time_s_std"], 0),
              plus_minus(r["psnr_mean"], r["psnr_std"], 2), plus_minus(r["ms_ssim_mean"], r["ms_ssim_std"], 4)]
             for r in rows]
    gains = boost_gains(rows)
    markdown = markdown_table(header, cells)
    if gains:
        markdown += "\n" + markdown_table(["boosted model", "PSNR gain over its plain model (dB)"],
                                          [[name, f"{gain:+.2f}"] for name, gain in gains.items()])
    return csv_text(_columns(REGRESSION), rows), markdown


def inpaint_table(evaluations: Evaluations) -> tuple[str, str]:
    rows = _summaries(evaluations, INPAINT)
    header = ["model", "PSNR full frame", "PSNR in the holes", "input full frame", "input in the holes"]
    cells = [[r["model"], *(plus_minus(r[f"{n}_mean"], r[f"{n}_std"], 2) for n in INPAINT)] for r in rows]
    return csv_text(_columns(INPAINT), rows), markdown_table(header, cells)


def interpolate_table(evaluations: Evaluations) -> tuple[str, str]:
    rows = _summaries(evaluations, INTERPOLATE)
    header = ["model", "PSNR held-out", "MS-SSIM held-out", "blend PSNR", "blend MS-SSIM", "gain (dB)"]
    cells = [[r["model"], plus_minus(r["psnr_mean"], r["psnr_std"], 2),
              plus_minus(r["ms_ssim_mean"], r["ms_ssim_std"], 4), plus_minus(r["blend_psnr_mean"], r["blend_psnr_std"], 2),
              plus_minus(r["blend_ms_ssim_mean"], r["blend_ms_ssim_std"], 4),
              format_number(r["psnr_mean"] - r["blend_psnr_mean"], 2)] for r in rows]
    return csv_text(_columns(INTERPOLATE), rows), markdown_table(header, cells)


TABLE_BUILDERS = {"nerv_regression": regression_table, "nerv_inpaint": inpaint_table,
                  "nerv_interpolate": interpolate_table}


def plot_psnr_vs_time(path: str | Path, logs: Mapping[str, Mapping[str, str | Path]]) -> Path:
    """PSNR against training time, one curve per model, one panel per video: ``logs``
    {model: {video: log.csv}}."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on the cluster nodes
    import matplotlib.pyplot as plt

    videos = sorted({video for per_video in logs.values() for video in per_video})
    fig, axes = plt.subplots(1, len(videos), figsize=(6 * len(videos), 4), dpi=100, squeeze=False)
    try:
        for ax, video in zip(axes[0], videos):
            for model, per_video in logs.items():
                if video in per_video:
                    rows = read_log(Path(per_video[video]).parent)
                    ax.plot([r["wall_time_s"] for r in rows], [r["psnr"] for r in rows], label=model,
                            linestyle="-" if model.endswith("_boost") else "--")
            ax.set_xlabel("training time (s)")
            ax.set_ylabel("PSNR (dB)")
            ax.set_title(video)
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right")
        fig.tight_layout()
        return publish_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def write_nerv_table(kind: str, evaluations: Evaluations, csv_path: str | Path, markdown_path: str | Path) -> None:
    """The ``kind`` table (a key of TABLE_BUILDERS) from ``evaluations``."""
    csv, markdown = TABLE_BUILDERS[kind](evaluations)
    publish_text(csv_path, csv)
    publish_text(markdown_path, markdown)
