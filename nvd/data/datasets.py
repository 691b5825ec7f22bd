"""Where each video of a dataset lives on disk, for the supported layouts.

- ``files``: ``videos`` maps a name to a video file or frame folder, or to
  ``{frames: ..., annotations: ...}``.
- ``davis``: ``root/JPEGImages/<resolution>/<video>`` with annotations in
  ``root/Annotations/<resolution>/<video>`` (DAVIS 2016 and 2017).
- ``folders``: one frame folder per video, ``root/<video>`` (UVG png export); optional
  ``annotations_root/<video>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from nvd.core.errors import ConfigError

# The workflow's wildcard constraints (rules/common.smk) and the config schema's name patterns.
# A name is a folder under results_dir (and, for layouts davis and folders, under the dataset
# root), so it has no '/' and no leading '.': '.' and '..' would leave their folder.
DATASET_NAME = re.compile(r"[A-Za-z0-9_-]+")
VIDEO_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
DATASET_NAMES = "letters, digits, '_' and '-'"
VIDEO_NAMES = "letters, digits, '_', '-' and '.', not starting with '.'"


@dataclass(frozen=True)
class VideoSource:
    """One video's inputs: a video file or frame folder, and optional mask annotations."""

    dataset: str
    name: str
    frames: Path
    annotations: Path | None = None
    ground_truth: Path | None = None  # ground_truth.npz of a synthetic clip


def dataset_videos(config: Mapping[str, Any], dataset: str) -> dict[str, VideoSource]:
    """All videos of ``dataset`` in config order, keyed by video name."""
    try:
        spec = config["datasets"][dataset]
    except KeyError as exc:
        raise ConfigError(f"dataset '{dataset}' is not in the config's 'datasets'") from exc
    check_names(dataset, spec.get("videos") or ())
    layout = spec.get("layout", "files")
    if layout == "files":
        return {name: _file_entry(dataset, name, entry) for name, entry in spec["videos"].items()}
    root = Path(spec["root"]) if spec.get("root") else None
    if root is None:
        raise ConfigError(f"config key 'datasets.{dataset}.root' is required for layout '{layout}'")
    if layout == "davis":
        res = spec.get("resolution", "480p")
        return {
            v: VideoSource(dataset, v, root / "JPEGImages" / res / v, root / "Annotations" / res / v)
            for v in spec["videos"]
        }
    if layout == "folders":
        ann_root = Path(spec["annotations_root"]) if spec.get("annotations_root") else None
        return {
            v: VideoSource(dataset, v, root / v, ann_root / v if ann_root else None) for v in spec["videos"]
        }
    raise ConfigError(f"config key 'datasets.{dataset}.layout': unknown layout '{layout}'")


def all_videos(config: Mapping[str, Any]) -> list[VideoSource]:
    """Every video of every dataset listed in ``run_datasets`` (default: all datasets)."""
    names = config.get("run_datasets") or list(config.get("datasets", {}))
    return [src for d in names for src in dataset_videos(config, d).values()]


def check_names(dataset: str, videos: Iterable[str]) -> None:
    """ConfigError naming the config key unless ``dataset`` and every video name are names
    the workflow accepts (DATASET_NAMES, VIDEO_NAMES)."""
    if not DATASET_NAME.fullmatch(str(dataset)):
        raise ConfigError(f"config key 'datasets': dataset name {str(dataset)!r} is not allowed; "
                          f"dataset names are {DATASET_NAMES}")
    bad = [str(v) for v in videos if not VIDEO_NAME.fullmatch(str(v))]
    if bad:
        raise ConfigError(f"config key 'datasets.{dataset}.videos': video name(s) {bad} not allowed; "
                          f"video names are {VIDEO_NAMES}")


def _file_entry(dataset: str, name: str, entry: Any) -> VideoSource:
    if isinstance(entry, str):
        return VideoSource(dataset, name, Path(entry))
    ann, truth = entry.get("annotations"), entry.get("ground_truth")
    return VideoSource(dataset, name, Path(entry["frames"]), Path(ann) if ann else None,
                       Path(truth) if truth else None)


@dataclass(frozen=True)
class HyperSplit:
    """HyperNVD's videos: the dataset, its training split and its held-out split."""

    dataset: str
    train: tuple[str, ...]
    heldout: tuple[str, ...]


def check_split(dataset: str, train: tuple[str, ...], heldout: tuple[str, ...],
                known: Mapping[str, Any] | None = None) -> None:
    """ConfigError (naming the ``hypernet`` key) unless the splits are usable: a dataset is
    named, a training video is listed, no video is in both splits or twice in one, and, with
    ``known`` (the dataset's videos), every video is one of them."""
    if not dataset:
        raise ConfigError("hypernet.dataset: name the dataset whose videos the splits list")
    for key, names in (("train_videos", train), ("heldout_videos", heldout)):
        missing = [v for v in names if known is not None and v not in known]
        if missing:
            raise ConfigError(f"hypernet.{key}: {missing} not listed in dataset '{dataset}' (it has {sorted(known)})")
        if len(set(names)) != len(names):
            raise ConfigError(f"hypernet.{key} lists a video twice: {list(names)}")
    both = sorted(set(train) & set(heldout))
    if both:
        raise ConfigError(f"hypernet: videos {both} are in both train_videos and heldout_videos")
    if not train:
        raise ConfigError("hypernet.train_videos: list at least one training video")


def hypernet_split(config: Mapping[str, Any]) -> HyperSplit | None:
    """The ``hypernet`` section's splits, checked against the dataset (None without one);
    ConfigError as in ``check_split``."""
    section = config.get("hypernet")
    if section is None:
        return None
    dataset = section.get("dataset")
    if not dataset:
        check_split("", (), ())
    known = dataset_videos(config, dataset)
    train, heldout = tuple(section.get("train_videos") or ()), tuple(section.get("heldout_videos") or ())
    check_split(dataset, train, heldout, known)
    return HyperSplit(dataset, train, heldout)


# --------------------------------------------------------------------------- input paths


# --------------------------------------------------------------------------- families


# The per-video model families a dataset can run (its ``families`` key) and the data stages
# each reads. HyperNVD is not listed: the hypernet section names its dataset, whose videos
# get every data stage (the embedding conditions the hypernetwork).
FAMILY_STAGES: dict[str, tuple[str, ...]] = {
    "decomposition": ("frames", "flow", "masks"),
    "nvp": ("frames",),
    "nerv": ("frames",),
}
DEFAULT_FAMILIES = ("decomposition",)


def dataset_families(config: Mapping[str, Any], dataset: str) -> tuple[str, ...]:
    """The families ``dataset`` runs (``datasets.<dataset>.families``, default decomposition)."""
    families = tuple(config["datasets"][dataset].get("families", DEFAULT_FAMILIES))
    unknown = sorted(set(families) - set(FAMILY_STAGES))
    if unknown:
        raise ConfigError(f"datasets.{dataset}.families: unknown famil{'ies' if len(unknown) > 1 else 'y'} "
                          f"{unknown}; known: {sorted(FAMILY_STAGES)}")
    return families


def video_stages(config: Mapping[str, Any], dataset: str, all_stages: tuple[str, ...]) -> tuple[str, ...]:
    """The data stages the default target computes for a video of ``dataset``: those its
    families read, every stage for the hypernetwork's dataset, and every stage for a dataset
    that runs no family (``families: []``: data preparation only). In ``all_stages`` order."""
    families = dataset_families(config, dataset)
    hyper = (config.get("hypernet") or {}).get("dataset") == dataset
    if hyper or not families:
        return all_stages
    needed = {stage for family in families for stage in FAMILY_STAGES[family]}
    return tuple(stage for stage in all_stages if stage in needed)
