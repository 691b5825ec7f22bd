"""A short table of what the workflow produced (`nvd summary`, printed by `make demo`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from nvd.core.errors import StoreError
from nvd.core.layout import COMPARISON_MD, DATA_STAGES, EVAL_DIR, METRICS_NAME, MODEL_NAME, ResultsLayout
from nvd.data.datasets import VideoSource
from nvd.data.stores import open_store
from nvd.data.verify import store_problems
from nvd.models import is_nerv_model_folder


def describe_store(path: Path, stage: str, verify: bool = False) -> str:
    """One cell: the store's key figures, or why it is not usable (with ``verify``, every
    chunk's checksum is checked too; else presence and size, as every reader does)."""
    if not path.exists():
        return "missing"
    problems = store_problems(path, stage, full=verify)
    if problems:
        if problems[0].startswith("store is incomplete"):
            return "incomplete (no completion mark)"
        more = f"; +{len(problems) - 1} more" if len(problems) > 1 else ""
        return f"damaged ({problems[0]}{more})"
    try:
        return _figures(open_store(path, stage), stage)
    except StoreError as exc:  # a chunk that does not decode
        return f"damaged ({exc})"


def _figures(group: Any, stage: str) -> str:
    if stage == "frames":
        t, h, w, _ = group["frames"].shape
        skipped = group.attrs.get("skipped_files") or []
        return f"{t} x {h}x{w}" + (f", {len(skipped)} non-image file(s) skipped" if skipped else "")
    if stage == "flow":
        valid = np.asarray(group["forward_valid"][:]).mean() if group["forward_valid"].size else 0.0
        return f"{group['forward'].dtype}, {100 * valid:.0f}% consistent"
    if stage == "masks":
        return f"{group['masks'].shape[0]} object(s)"
    return f"{group['video'].shape[0]}-d, {group['windows'].shape[0]} window(s)"


def describe_decomposition(folder: Path) -> str:
    """One cell: the evaluated decomposition's PSNR (and alpha IoU), or what is missing."""
    metrics = folder / EVAL_DIR / METRICS_NAME
    if not metrics.is_file():
        return "trained, not evaluated" if (folder / MODEL_NAME).is_file() else "-"
    m = json.loads(metrics.read_text())
    text = f"{m['psnr']:.2f} dB" if m.get("psnr") is not None else "PSNR n/a"
    if m.get("alpha_iou"):
        text += ", IoU " + "/".join(f"{v:.2f}" for v in m["alpha_iou"])
    return text


def describe_nvp(folder: Path) -> str | None:
    """NVP's quantised PSNR and bpp, None when the video has no NVP model."""
    metrics = folder / EVAL_DIR / METRICS_NAME
    if not metrics.is_file():
        return "nvp trained, not evaluated" if (folder / MODEL_NAME).is_file() else None
    m = json.loads(metrics.read_text())
    psnr = f"{m['psnr']:.2f} dB" if m.get("psnr") is not None else "PSNR n/a"
    return f"nvp {psnr} at {m['bpp']:.2f} bpp"


def describe_nerv(layout: ResultsLayout, dataset: str, video: str) -> str | None:
    """The NeRV family's evaluated regression models (every size): their count and the best PSNR."""
    psnr = {}
    video_dir = Path(layout.video_dir(dataset, video))
    folders = sorted(d.name for d in video_dir.iterdir() if is_nerv_model_folder(d.name)) if video_dir.is_dir() else []
    for model in folders:
        metrics = Path(layout.run_dir(model, dataset, video)) / EVAL_DIR / METRICS_NAME
        if metrics.is_file() and json.loads(metrics.read_text()).get("psnr") is not None:
            psnr[model] = json.loads(metrics.read_text())["psnr"]
    if not psnr:
        return None
    best = max(psnr, key=psnr.get)
    return f"nerv family: {len(psnr)} model(s), best {best} {psnr[best]:.2f} dB"


def describe_models(layout: ResultsLayout, dataset: str, video: str) -> str:
    """One cell: the per-video decomposition or HyperNVD's finetuned vs scratch models, and NVP."""
    finetune, scratch = (Path(layout.run_dir(m, dataset, video)) for m in ("finetune", "scratch"))
    decomposition = Path(layout.run_dir("decomposition", dataset, video))
    cells = []
    if finetune.is_dir() or scratch.is_dir():
        cells.append(f"finetune {describe_decomposition(finetune)}; scratch {describe_decomposition(scratch)}")
    elif decomposition.is_dir():
        cells.append(describe_decomposition(decomposition))
    nvp = describe_nvp(Path(layout.run_dir("nvp", dataset, video)))
    nerv = describe_nerv(layout, dataset, video)
    cells += [cell for cell in (nvp, nerv) if cell is not None]
    return "; ".join(cells) or "-"


def format_summary(layout: ResultsLayout, videos: Iterable[VideoSource], verify: bool = False,
                   stages: Callable[[str], tuple[str, ...]] | None = None) -> str:
    """Table of every video's stores in ``layout`` with their key figures, and the HyperNVD
    tables when they exist. With ``verify`` every store's chunks are checked against their
    checksums (``nvd verify``). ``stages(dataset)``: the stores a dataset computes (others
    show "-"); default every data stage."""
    rows = [("dataset", "video", *DATA_STAGES, "models")]
    for v in videos:
        needed = stages(v.dataset) if stages is not None else DATA_STAGES
        rows.append((v.dataset, v.name,
                     *(describe_store(Path(layout.store(s, v.dataset, v.name)), s, verify) if s in needed else "-"
                       for s in DATA_STAGES),
                     describe_models(layout, v.dataset, v.name)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    header = f"nvd: stores under {Path(layout.root).resolve()}/<dataset>/<video>/<stage>.zarr"
    tables = Path(layout.table(COMPARISON_MD))
    footer = [f"HyperNVD tables: {tables.parent.resolve()}/ ({COMPARISON_MD}, plots)"] if tables.is_file() else []
    benchmarks = sorted(tables.parent.glob("benchmark_*.md"))
    if benchmarks:
        footer.append(f"Codec benchmark: {tables.parent.resolve()}/ ("
                      + ", ".join(f"{b.name}, bdrate_{b.stem.removeprefix('benchmark_')}.md" for b in benchmarks)
                      + ", rd_<dataset>/<video>.png)")
    return "\n".join([header, *lines, *footer])
