"""Every input path a config names, checked before any job runs (the workflow and
``nvd check-config``), except those a workflow rule produces (the demo clips)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Mapping

from nvd.core.errors import InputError
from nvd.data.datasets import dataset_videos

Producible = Callable[[Path], bool]


def check_inputs(config: Mapping[str, Any], producible: Producible | None = None,
                 directory: str | os.PathLike | None = None) -> None:
    """InputError listing every configured input path that does not exist, each with its
    config key, unless ``producible(path)`` says a workflow rule writes it.

    Checked: the frames, annotations and ground truth of every video of the datasets the
    workflow runs (``run_datasets``, default all, plus ``hypernet.dataset``): for layout
    ``files`` the paths given (``datasets.<d>.videos.<v>[.frames|.annotations|.ground_truth]``),
    for ``davis`` and ``folders`` ``datasets.<d>.root`` (and ``annotations_root``) and each
    video's folder under it (annotation folders only where the dataset's masks backend is
    ``annotations``); and every edited atlas (``edits.<d>.<v>.atlases.<k>``) of those
    datasets. Relative paths are taken from ``directory`` (default: the current folder),
    where the workflow runs. ``producible`` defaults to ``demo_producible`` of the config's
    ``demo_dir``: the demo clips and edit atlases the demo rules generate.
    """
    base = Path(directory) if directory is not None else Path.cwd()
    if producible is None:
        from nvd.data.demo import DEFAULT_DEMO_DIR

        producible = demo_producible(base / config.get("demo_dir", DEFAULT_DEMO_DIR))
    missing: list[str] = []

    def need(key: str, path: str | os.PathLike | None, kind: str) -> bool:
        """Whether ``path`` is there (or will be); a missing one is listed under ``key``."""
        if path is None:
            return True
        full = base / path
        if full.exists() or producible(Path(os.path.abspath(full))):
            return True
        missing.append(f"{key}: {kind} {path} does not exist")
        return False

    datasets = config.get("datasets") or {}
    names = list(config.get("run_datasets") or datasets)
    hyper = (config.get("hypernet") or {}).get("dataset")
    if hyper and hyper not in names:
        names.append(hyper)
    for dataset in names:
        spec = datasets.get(dataset)
        if spec is None:
            continue  # dataset_videos names an unknown dataset
        key = f"datasets.{dataset}"
        layout = spec.get("layout", "files")
        annotated = _masks_backend(config, dataset) == "annotations"
        if layout == "files":
            for video, entry in (spec.get("videos") or {}).items():
                if isinstance(entry, str):
                    need(f"{key}.videos.{video}", entry, "video file or frame folder")
                    continue
                need(f"{key}.videos.{video}.frames", entry.get("frames"), "video file or frame folder")
                need(f"{key}.videos.{video}.annotations", entry.get("annotations"), "annotation folder")
                need(f"{key}.videos.{video}.ground_truth", entry.get("ground_truth"), "ground truth file")
            continue
        if not spec.get("root") or not need(f"{key}.root", spec["root"], "dataset root"):
            continue
        ann_root = spec.get("annotations_root")
        ann_ok = ann_root is None or need(f"{key}.annotations_root", ann_root, "annotation root")
        for video, src in dataset_videos(config, dataset).items():
            need(f"{key}.videos ({video})", src.frames, "frame folder")
            if annotated and ann_ok and src.annotations is not None:
                need(f"{key}.videos ({video}, annotations)", src.annotations, "annotation folder")
    edits = config.get("edits") or {}
    for dataset in names:
        for video, spec in (edits.get(dataset) or {}).items():
            for layer, path in (spec.get("atlases") or {}).items():
                need(f"edits.{dataset}.{video}.atlases.{layer}", path, "edited atlas image")
    if missing:
        raise InputError(f"{len(missing)} configured input path(s) missing "
                         f"(relative paths are taken from {base}):\n  " + "\n  ".join(missing))


def demo_producible(demo_dir: str | os.PathLike) -> Producible:
    """``producible`` for ``check_inputs``: true for the paths the demo rules (rules/demo.smk)
    write under ``demo_dir``: ``<clip>/frames``, ``<clip>/masks``, ``<clip>/ground_truth.npz``
    of a synthetic clip, ``<clip>/video.mp4`` of a footage clip, and
    ``edits/<dataset>/<video>/layer<k>.png``."""
    from nvd.data.demo import FOOTAGE_CLIPS, SYNTHETIC_CLIPS

    root = Path(os.path.abspath(demo_dir))

    def producible(path: Path) -> bool:
        try:
            parts = Path(os.path.abspath(path)).relative_to(root).parts
        except ValueError:
            return False
        if len(parts) == 2 and parts[0] in SYNTHETIC_CLIPS:
            return parts[1] in ("frames", "masks", "ground_truth.npz")
        if len(parts) == 2 and parts[0] in FOOTAGE_CLIPS:
            return parts[1] == "video.mp4"
        return len(parts) == 4 and parts[0] == "edits" and re.fullmatch(r"layer\d+\.png", parts[3]) is not None

    return producible


def _masks_backend(config: Mapping[str, Any], dataset: str) -> str | None:
    """The dataset's masks backend as configured (None: the default, not ``annotations``)."""
    from nvd.core.config import stage_section

    return stage_section(config, "masks", dataset).get("backend")
