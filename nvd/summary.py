"""A short table of what the workflow produced (`nvd summary`, printed by `make demo`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .datasets import VideoSource
from .errors import StoreError
from .stores import open_store

STAGES = ("frames", "flow", "masks", "embedding")


def describe_store(path: Path, stage: str) -> str:
    """One cell: the store's key figures, or why it is not usable."""
    try:
        group = open_store(path, stage)
    except StoreError as exc:
        return "missing" if not path.exists() else f"incomplete ({exc.__class__.__name__})"
    if stage == "frames":
        t, h, w, _ = group["frames"].shape
        return f"{t} x {h}x{w}"
    if stage == "flow":
        valid = np.asarray(group["forward_valid"][:]).mean() if group["forward_valid"].size else 0.0
        return f"{group['forward'].dtype}, {100 * valid:.0f}% consistent"
    if stage == "masks":
        return f"{group['masks'].shape[0]} object(s)"
    return f"{group['video'].shape[0]}-d, {group['windows'].shape[0]} window(s)"


def describe_decomposition(folder: Path) -> str:
    """One cell: the evaluated decomposition's PSNR (and alpha IoU), or what is missing."""
    metrics = folder / "eval" / "metrics.json"
    if not metrics.is_file():
        return "trained, not evaluated" if (folder / "model.pt").is_file() else "-"
    m = json.loads(metrics.read_text())
    text = f"{m['psnr']:.2f} dB" if m.get("psnr") is not None else "PSNR n/a"
    if m.get("alpha_iou"):
        text += ", IoU " + "/".join(f"{v:.2f}" for v in m["alpha_iou"])
    return text


def describe_models(base: Path) -> str:
    """One cell: the per-video decomposition, or HyperNVD's finetuned vs scratch models."""
    if (base / "finetune").is_dir() or (base / "scratch").is_dir():
        return f"finetune {describe_decomposition(base / 'finetune')}; scratch {describe_decomposition(base / 'scratch')}"
    return describe_decomposition(base / "decomposition")


def format_summary(results_dir: str | Path, videos: Iterable[VideoSource]) -> str:
    """Table of every video's stores under ``results_dir`` with their key figures, and the
    HyperNVD tables when they exist."""
    results_dir = Path(results_dir)
    rows = [("dataset", "video", *STAGES, "decomposition")]
    for v in videos:
        base = results_dir / v.dataset / v.name
        rows.append((v.dataset, v.name, *(describe_store(base / f"{s}.zarr", s) for s in STAGES),
                     describe_models(base)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    header = f"nvd: stores under {results_dir.resolve()}/<dataset>/<video>/<stage>.zarr"
    tables = results_dir / "tables" / "hypernvd_comparison.md"
    footer = [f"HyperNVD tables: {tables.parent.resolve()}/ (hypernvd_comparison.md, plots)"] if tables.is_file() else []
    return "\n".join([header, *lines, *footer])
