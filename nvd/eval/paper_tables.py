"""The papers' tables in their own layout, our figure beside the published one in each cell.

Each table reads one of our tables (full-precision CSV) and writes Markdown, every cell
``ours / paper`` (nvd.eval.published; "n/a" where a side has no figure):

- ``hypernvd``: HyperNVD's finetuning-vs-scratch claims, from hypernvd_comparison.csv's mean
  row (the PSNR gap at the full scratch time, and the time to reach scratch's final PSNR);
- ``nvp_encoding``: NVP's encoding-time table on UVG, from nvp_encoding_<dataset>.csv, our
  budgets paired in order with the paper's rows (both by increasing encoding time);
- ``nerv_regression``: Boosting-NeRV's bunny figure as numbers: each model's final PSNR
  beside the last point of the paper's curve, and each boost's gain, from
  nerv_regression_<dataset>.csv;
- ``nerv_rd``: Boosting-NeRV's rate-distortion points (PSNR at 0.05 and 0.1 bpp, with its
  entropy coding), interpolated on our coded curves in log-rate from benchmark_<dataset>.csv
  (n/a outside the rates our curve spans).

With a paper config these are the paper's tables; with the demo config, the same tables at
demo scale (the note under each says which data and scale the figures come from).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from nvd.core.errors import InputError
from nvd.core.publish import publish_text
from nvd.eval import published
from nvd.eval.table_format import markdown_table
from nvd.models import nerv_model_folder, parse_nerv_model

PAPER_TABLES = ("hypernvd", "nvp_encoding", "nerv_regression", "nerv_rd")


def _rows(path: str | os.PathLike) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the table ({exc.strerror})") from None


def _number(row: Mapping[str, str], key: str) -> float:
    value = row.get(key, "")
    return math.nan if value in ("", "nan", "None") else float(value)


def pair(ours: float, paper: float | None, digits: int, unit: str = "", signed: bool = False) -> str:
    """``ours / paper`` with ``digits`` decimals; n/a for a missing side."""
    def show(value: float | None) -> str:
        if value is None or math.isnan(value):
            return "n/a"
        return f"{value:+.{digits}f}{unit}" if signed else f"{value:.{digits}f}{unit}"

    return f"{show(ours)} / {show(paper)}"


def hypernvd_table(comparison_csv: str | os.PathLike, dataset: str) -> str:
    rows = _rows(comparison_csv)
    mean = next((r for r in rows if r["video"] == "mean"), None)
    if mean is None:
        raise InputError(f"{comparison_csv}: no mean row")
    videos = len(rows) - 1
    gain = _number(mean, "finetune_psnr_at_100pct_time") - _number(mean, "scratch_psnr_at_100pct_time")
    ratio = _number(mean, "time_ratio")
    paper = published.HYPERNVD
    cells = [["finetuning above scratch at equal time (dB)", pair(gain, paper["psnr_gain_at_equal_time_db"], 2,
                                                                   signed=True)],
             ["time to scratch's final PSNR, finetuning / scratch", pair(ratio, paper["time_ratio"], 2)]]
    return ("# HyperNVD: finetuning vs training from scratch\n\n"
            + markdown_table(["", f"ours ({dataset}, {videos} held-out videos) / paper (DAVIS, 10 unseen)"], cells)
            + "\nOurs: hypernvd_comparison.csv, mean row (PSNR of the training logs at the scratch run's "
              "full time; time ratio = mean of the per-video ratios).\n")


def nvp_encoding_table(encoding_csv: str | os.PathLike, dataset: str) -> str:
    ours = _rows(encoding_csv)
    header = ["encoding time", "bpp", "PSNR (dB)", "FLIP", "LPIPS"]
    cells = []
    for i in range(max(len(ours), len(published.NVP_UVG))):
        mine = ours[i] if i < len(ours) else {}
        label, _, bpp, psnr, flip, lpips = published.NVP_UVG[i] if i < len(published.NVP_UVG) else ("n/a",) + (None,) * 5
        when = (f"{_number(mine, 'wall_time_s_mean'):.0f} s ({int(float(mine['steps'])):,} steps)" if mine
                else "n/a")
        cells.append([f"{when} / {label}", pair(_number(mine, "bpp_mean"), bpp, 3),
                      pair(_number(mine, "psnr_mean"), psnr, 2), pair(_number(mine, "flip_mean"), flip, 3),
                      pair(_number(mine, "lpips_mean"), lpips, 3)])
    return (f"# NVP: encoding time against quality (ours on {dataset} / paper on UVG-HD, one V100)\n\n"
            + markdown_table(header, cells)
            + "\nOurs: nvp_encoding table (8-bit quantised model, mean over the dataset's videos), our budgets "
              "in order beside the paper's rows; LPIPS is n/a without weights.lpips.\n")


def _by_model(folders: list[str]) -> dict[str, list[str]]:
    """{model: our folders of it} for the published models (a folder may carry its size:
    hnerv_boost_3M); a published model we did not run has no folders."""
    ours: dict[str, list[str]] = {model: [] for model in published.BOOSTING_BUNNY_PSNR}
    for folder in folders:
        try:
            model, _ = parse_nerv_model(folder)
        except ValueError:
            continue  # an anchor or another family
        ours.setdefault(model, []).append(folder)
    return ours


def nerv_regression_table(regression_csv: str | os.PathLike, dataset: str) -> str:
    ours = {r["model"]: r for r in _rows(regression_csv)}
    cells = []
    for model, folders in _by_model(sorted(ours)).items():
        last = published.BOOSTING_BUNNY_PSNR.get(model, (None, None))[1]
        plain = model.removesuffix("_boost")
        paper_gain = (last - published.BOOSTING_BUNNY_PSNR[plain][1]
                      if model.endswith("_boost") and last is not None and plain in published.BOOSTING_BUNNY_PSNR
                      else None)
        for folder in folders or [model]:
            mine = _number(ours.get(folder, {}), "psnr_mean")
            gain = ""
            if model.endswith("_boost"):
                _, size = parse_nerv_model(folder)
                mine_plain = _number(ours.get(nerv_model_folder(plain, size), {}), "psnr_mean")
                gain = pair(mine - mine_plain, paper_gain, 2, signed=True)
            cells.append([folder, pair(mine, last, 2), gain])
    return (f"# Boosting-NeRV: regression on bunny (ours on {dataset} / paper at 1280x720)\n\n"
            + markdown_table(["model", "PSNR (dB)", "boost gain (dB)"], cells)
            + "\nPaper: the last point of each curve of its PSNR-vs-encoding-time figure (HNeRV-Boost: "
              f"{published.BOOSTING_BUNNY_HOURS['hnerv_boost'][1]} h), the same for every size of ours. Ours: "
              "nerv_regression table, equal size and epochs; the figure is nerv_psnr_vs_time_<dataset>.png.\n")


def psnr_at_rate(points: list[tuple[float, float]], rate: float) -> float:
    """PSNR at ``rate`` bpp, linear in log-rate between the two points around it (NaN outside)."""
    points = sorted(points)
    for (r0, q0), (r1, q1) in zip(points, points[1:]):
        if r0 <= rate <= r1 and r1 > r0:
            return q0 + (q1 - q0) * (math.log(rate) - math.log(r0)) / (math.log(r1) - math.log(r0))
    return math.nan


def nerv_rd_table(benchmark_csv: str | os.PathLike, dataset: str) -> str:
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in _rows(benchmark_csv):
        if not math.isnan(_number(row, "psnr")):
            curves.setdefault(row["method"], []).append((_number(row, "bpp"), _number(row, "psnr")))
    rates = sorted(published.BOOSTING_BUNNY_RD)
    cells = []
    for model, folders in _by_model(sorted(curves)).items():
        paper = [published.BOOSTING_BUNNY_RD[rate].get(model) for rate in rates]
        if all(value is None for value in paper) and not folders:
            continue
        for folder in folders or [model]:
            points = curves.get(folder, [])
            span = f"{min(points)[0]:.3f}-{max(points)[0]:.3f}" if points else "n/a"
            cells.append([folder, *(pair(psnr_at_rate(points, rate), value, 2) for rate, value in zip(rates, paper)),
                          span])
    header = ["model", *(f"PSNR at {rate:g} bpp" for rate in rates), "our bpp range"]
    return (f"# Boosting-NeRV: rate-distortion with entropy coding (ours on {dataset} / paper on bunny 720p)\n\n"
            + markdown_table(header, cells)
            + "\nOurs: the file sizes of nerv_compress (quantisation-aware fine-tuning, ANS), PSNR interpolated "
              "in log-rate on each model's coded curve (benchmark table); n/a where our curve does not reach the "
              "rate. HNeRV's own UVG points (bpp, PSNR): "
              + ", ".join(f"{b:g} / {q:.2f}" for b, q in published.HNERV_UVG) + ".\n")


BUILDERS: dict[str, Callable[[str | os.PathLike, str], str]] = {
    "hypernvd": hypernvd_table, "nvp_encoding": nvp_encoding_table,
    "nerv_regression": nerv_regression_table, "nerv_rd": nerv_rd_table,
}


def write_paper_table(kind: str, source: str | os.PathLike, dataset: str, out: str | os.PathLike) -> Path:
    """The paper table ``kind`` (PAPER_TABLES) from our table ``source`` of ``dataset``."""
    if kind not in BUILDERS:
        raise InputError(f"unknown paper table {kind!r}; known: {list(PAPER_TABLES)}")
    return publish_text(out, BUILDERS[kind](source, dataset))

