"""The codec benchmark of one dataset: every neural method and every anchor, side by side.

Inputs: per video, the metrics.json of every compressed folder (nvd.compression.outputs:
each method's rate points; a neural method has one folder per point, an anchor one folder
per curve). Outputs, under results/tables/:

- ``benchmark_<dataset>.{csv,md}``: one row per method and rate point, the figures (bpp,
  PSNR, MS-SSIM, LPIPS, FLIP, encoding time, decoding frames/s, decoder peak memory) as the
  mean over the dataset's videos;
- ``bdrate_<dataset>.{csv,md}``: each method's Bjontegaard deltas against the reference
  anchor (x265 by default): the delta rate on PSNR and on MS-SSIM, and BD-PSNR (the PSNR
  difference at equal rate), per video and averaged over the videos where each exists (a
  curve that shares no quality range with the reference has no BD-rate, one that shares no
  rate range no BD-PSNR);
- ``rd_<dataset>/<video>.png``: PSNR and MS-SSIM against bpp, one curve per method (neural
  methods solid, anchors dashed).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nvd.compression.bdrate import bd_quality, bd_rate
from nvd.core.config import section
from nvd.core.errors import ConfigError, InputError
from nvd.core.layout import METRICS_NAME
from nvd.core.publish import publish_text
from nvd.eval.plots import pyplot, save_figure
from nvd.eval.table_format import as_number, csv_text, format_number, markdown_table, nanmean

FIGURES = ("bpp", "psnr", "ms_ssim", "lpips", "flip", "encode_time_s", "decode_fps", "decode_peak_mb")
QUALITY = {"psnr": "PSNR (dB)", "ms_ssim": "MS-SSIM"}
# Bjontegaard deltas against the reference: name -> (function, quality it is measured on)
DELTAS = {"bd_rate_psnr": (bd_rate, "psnr"), "bd_rate_ms_ssim": (bd_rate, "ms_ssim"), "bd_psnr": (bd_quality, "psnr")}


@dataclass(frozen=True)
class BenchmarkConfig:
    """The benchmark (config section ``benchmark``): the anchor every BD-rate is measured
    against and the interpolation of the Bjontegaard integral (nvd.compression.bdrate)."""

    reference: str = "x265_medium_yuv420p"
    bd_method: str = "pchip"

    def __post_init__(self) -> None:
        if self.bd_method not in ("pchip", "cubic"):
            raise ConfigError(f"benchmark.bd_method must be pchip or cubic, got {self.bd_method!r}")


def benchmark_config(values: Mapping[str, Any] | None) -> BenchmarkConfig:
    return section(BenchmarkConfig, values, "benchmark")


@dataclass
class Curve:
    """One method's rate points on one video, by increasing bpp."""

    method: str
    kind: str  # "neural" or "anchor"
    points: list[dict[str, Any]] = field(default_factory=list)

    def pairs(self, quality: str) -> list[tuple[float, float]]:
        """(bpp, quality) of the points where both are measured."""
        return [(p["bpp"], p[quality]) for p in self.points if p.get(quality) is not None and p.get("bpp")]


def _point_name(metrics: Mapping[str, Any], point: Mapping[str, Any]) -> str:
    return str(point.get("point", metrics.get("point", f"crf{point.get('crf')}")))


def load_curves(folders: Sequence[str | os.PathLike]) -> dict[str, Curve]:
    """{method: Curve} of one video from its compressed folders (any order)."""
    curves: dict[str, Curve] = {}
    for folder in folders:
        path = Path(folder) / METRICS_NAME
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable compression result ({exc})") from None
        curve = curves.setdefault(metrics["method"], Curve(metrics["method"], metrics["kind"]))
        curve.points += [{**p, "point": _point_name(metrics, p)} for p in metrics["points"]]
    for curve in curves.values():
        curve.points.sort(key=lambda p: p["bpp"])
    return curves


def table_rows(videos: Mapping[str, Mapping[str, Curve]]) -> list[dict[str, Any]]:
    """One row per (method, point): each figure's mean over the videos that have it."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    kinds: dict[str, str] = {}
    for curves in videos.values():
        for curve in curves.values():
            kinds[curve.method] = curve.kind
            for point in curve.points:
                grouped[(curve.method, point["point"])].append(point)
    rows = []
    for (method, point), points in grouped.items():
        row: dict[str, Any] = {"method": method, "kind": kinds[method], "point": point, "videos": len(points)}
        row.update({name: nanmean([as_number(p.get(name)) for p in points]) for name in FIGURES})
        rows.append(row)
    # neural methods first, then anchors; each by name, its points by rate
    return sorted(rows, key=lambda r: (r["kind"] != "neural", r["method"], r["bpp"]))


def bd_rows(videos: Mapping[str, Mapping[str, Curve]], cfg: BenchmarkConfig) -> list[dict[str, Any]]:
    """Per method, against cfg.reference: each of DELTAS per video (``<delta>_<video>``), its
    mean over the videos where it exists (``<delta>``) and their count (``videos_<delta>``)."""
    methods = sorted({(c.kind != "neural", name) for curves in videos.values() for name, c in curves.items()
                      if name != cfg.reference})
    rows = []
    for _, method in methods:
        row: dict[str, Any] = {"method": method, "reference": cfg.reference}
        for delta, (function, quality) in DELTAS.items():
            values = []
            for video, curves in sorted(videos.items()):
                value = None
                if method in curves and cfg.reference in curves:
                    value = function(curves[cfg.reference].pairs(quality), curves[method].pairs(quality),
                                     method=cfg.bd_method)
                row[f"{delta}_{video}"] = math.nan if value is None else value
                values.append(as_number(value))
            row[delta] = nanmean(values)
            row[f"videos_{delta}"] = sum(not math.isnan(v) for v in values)
        rows.append(row)
    return rows


def bd_columns(videos: Sequence[str]) -> list[str]:
    return ["method", "reference"] + [c for d in DELTAS for c in (d, f"videos_{d}", *(f"{d}_{v}" for v in videos))]


def _table_markdown(rows: list[dict[str, Any]]) -> str:
    header = ["method", "point", "bpp", "PSNR (dB)", "MS-SSIM", "LPIPS", "FLIP", "encoding time (s)",
              "decoding (frames/s)", "decoder peak memory (MB)"]
    cells = [[r["method"], r["point"], format_number(r["bpp"], 4), format_number(r["psnr"], 2),
              format_number(r["ms_ssim"], 4), format_number(r["lpips"], 3), format_number(r["flip"], 3),
              format_number(r["encode_time_s"], 1), format_number(r["decode_fps"], 1),
              format_number(r["decode_peak_mb"], 0)] for r in rows]
    return markdown_table(header, cells)


def _bd_markdown(rows: list[dict[str, Any]], cfg: BenchmarkConfig) -> str:
    header = ["method", f"BD-rate vs {cfg.reference}, PSNR", "BD-rate, MS-SSIM", "BD-PSNR (dB)", "videos"]
    cells = [[r["method"], format_number(r["bd_rate_psnr"], 1, "%", nan="no overlap"),
              format_number(r["bd_rate_ms_ssim"], 1, "%", nan="no overlap"),
              format_number(r["bd_psnr"], 2, nan="no overlap"),
              " / ".join(str(r[f"videos_{d}"]) for d in DELTAS)] for r in rows]
    note = ("\nBD-rate: the rate difference at equal quality over the quality range both curves cover "
            "(negative: fewer bits than the reference); BD-PSNR: the PSNR difference at equal rate over the "
            f"rate range both cover (positive: better). Bjontegaard with {cfg.bd_method} interpolation; "
            "'no overlap': the curves share no such range; videos: where each of the three exists.\n")
    return markdown_table(header, cells) + note


def plot_rd(path: str | os.PathLike, video: str, curves: Mapping[str, Curve]) -> Path:
    """PSNR and MS-SSIM against bpp, one line per method (neural solid, anchors dashed)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    ordered = sorted(curves.items(), key=lambda kv: (kv[1].kind != "neural", kv[0]))
    colours = plt.get_cmap("tab20").colors  # 20 colours: a method each, up to 20, before any repeats
    for ax, (quality, label) in zip(axes, QUALITY.items()):
        for i, (name, curve) in enumerate(ordered):
            pairs = curve.pairs(quality)
            if pairs:
                neural = curve.kind == "neural"
                ax.plot(*zip(*pairs), marker="o" if neural else "s", markersize=3, label=name,
                        color=colours[i % len(colours)], linestyle="-" if neural else "--")
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.set_title(f"{video}: {label} against rate")
        ax.grid(alpha=0.3, which="both")
    axes[1].legend(loc="lower right", fontsize=7)
    return save_figure(fig, path)


def write_benchmark(inputs: Mapping[str, Sequence[str | os.PathLike]], outputs: Mapping[str, str | os.PathLike],
                    cfg: BenchmarkConfig) -> None:
    """The tables of one dataset: ``inputs`` {video: compressed folders}; ``outputs``
    {"csv", "markdown", "bd_csv", "bd_markdown"}."""
    videos = {video: load_curves(folders) for video, folders in inputs.items()}
    missing = [video for video, curves in videos.items() if cfg.reference not in curves]
    if missing:
        raise InputError(f"benchmark: the reference anchor {cfg.reference!r} (config key benchmark.reference) "
                         f"has no results for {missing}; it must be one of codec_anchor's curves")
    rows = table_rows(videos)
    publish_text(outputs["csv"], csv_text(["method", "kind", "point", "videos", *FIGURES], rows))
    publish_text(outputs["markdown"], _table_markdown(rows))
    bd = bd_rows(videos, cfg)
    publish_text(outputs["bd_csv"], csv_text(bd_columns(sorted(videos)), bd))
    publish_text(outputs["bd_markdown"], _bd_markdown(bd, cfg))


def write_rd_plot(video: str, folders: Sequence[str | os.PathLike], path: str | os.PathLike) -> Path:
    """The rate-distortion plot of one video from its compressed folders."""
    return plot_rd(path, video, load_curves(folders))
