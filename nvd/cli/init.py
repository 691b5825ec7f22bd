"""``nvd init FOLDER``: write a workflow config for a folder of your own videos.

The folder's video files (.mp4, .mov, .avi, .mkv) and frame folders (sub-folders of numbered
.jpg/.png images) become the videos of one dataset of layout ``files``. Every path in the
written config is absolute, ``results_dir`` included, so the config means the same from any
working directory. The config is checked with the schema before it is written, and an
existing file is never overwritten. docs/own-videos.md is the guide.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from nvd.cli.common import Command
from nvd.core.errors import ConfigError, InputError
from nvd.data.datasets import DEFAULT_FAMILIES, FAMILY_STAGES

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv")
MASK_BACKENDS = ("none", "maskrcnn")
REPO = Path(__file__).resolve().parents[2]  # the checkout holding workflow/ and profiles/


def find_videos(folder: str | Path) -> dict[str, Path]:
    """{video name: absolute path} of the video files and frame folders in ``folder``
    (sorted by file name; hidden entries skipped), or {folder name: folder} when ``folder``
    is itself a frame folder. Names are the file stems made into valid video names."""
    from nvd.data.video_io import IMAGE_SUFFIXES

    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")

    def has_images(d: Path) -> bool:
        return any(f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir())

    found: list[tuple[str, Path]] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            found.append((entry.stem, entry))
        elif entry.is_dir() and has_images(entry):
            found.append((entry.name, entry))
    if not found and has_images(folder):
        found.append((folder.name, folder))
    if not found:
        raise InputError(f"{folder}: no video files ({', '.join(VIDEO_SUFFIXES)}) or frame folders "
                         f"(sub-folders of numbered .jpg/.png images) in the folder")
    videos: dict[str, Path] = {}
    for stem, path in found:
        name = base = _name(stem, allow_dot=True)
        n = 2
        while name in videos:
            name, n = f"{base}_{n}", n + 1
        videos[name] = path
    return videos


def init_config(folder: str | Path, results_dir: str | Path, masks: str = "none",
                families: Sequence[str] = DEFAULT_FAMILIES) -> tuple[dict[str, Any], str]:
    """The config for ``folder`` as (dict, YAML text with comments); validated. ``families``:
    the model families the dataset runs (FAMILY_STAGES); none: the data stages only."""
    from nvd.core.config import validate_config
    from nvd.data.datasets import check_names

    if masks not in MASK_BACKENDS:
        raise ConfigError(f"--masks: expected one of {list(MASK_BACKENDS)}, got {masks!r}")
    folder = Path(folder).resolve()
    videos = find_videos(folder)
    dataset = _name(folder.name, allow_dot=False)
    check_names(dataset, videos)
    results = str(Path(results_dir).resolve())

    def block(comment: str, data: dict[str, Any]) -> str:
        lines = [f"# {line}" if line else "#" for line in comment.splitlines()]
        return "\n".join([*lines, yaml.safe_dump(data, sort_keys=False, width=120).rstrip()]) + "\n"

    config: dict[str, Any] = {"results_dir": results}
    parts = [
        f"# nvd workflow config for the videos in {folder}, written by `nvd init`.\n"
        f"# Run it from any folder (docs/own-videos.md):\n"
        f"#   snakemake -s {REPO}/workflow/Snakefile --directory . \\\n"
        f"#     --profile {REPO}/profiles/local --configfile {{this file}}\n"
        f"# Every path below is absolute; relative paths in a config would be taken from the\n"
        f"# folder Snakemake runs in (--directory), not from this file's folder.\n",
        block("Stores and models: <results_dir>/<dataset>/<video>/...", {"results_dir": results}),
    ]
    families = list(dict.fromkeys(families))
    unknown = sorted(set(families) - set(FAMILY_STAGES))
    if unknown:
        raise ConfigError(f"--families: unknown {unknown}; known: {sorted(FAMILY_STAGES)}")
    datasets = {dataset: {"layout": "files", "videos": {k: str(v) for k, v in videos.items()},
                          "families": families}}
    config["datasets"] = datasets
    parts.append(block("Video name -> video file or frame folder. Names: letters, digits, '_', '-', '.'\n"
                       "(not first); a frame folder may also be {frames: ..., annotations: mask folder}.\n"
                       "families: the models each video gets (decomposition, nvp, nerv); [] runs the data\n"
                       "stages only; the data stages each family needs follow from it.",
                       {"datasets": datasets}))
    sections: list[tuple[str, dict[str, Any]]] = [
        ("Frames: resized so the long edge is at most long_edge px; max_frames: null keeps all.",
         {"frames": {"long_edge": 768, "max_frames": None}}),
        ("Optical flow: dis needs no weights; raft (better on large motion) needs weights.raft.",
         {"flow": {"backend": "dis"}}),
    ]
    if masks == "none":
        sections.append((
            "Masks: none = one background layer and no foreground layer, so moving objects\n"
            "(people, cars) are not separated and vanish from the reconstruction's atlas.\n"
            "maskrcnn (needs weights.maskrcnn) gives a foreground layer per detected object.",
            {"masks": {"backend": "none"}}))
    else:
        sections.append((
            "Masks: Mask R-CNN (needs weights.maskrcnn below). One foreground layer per entry of\n"
            "objects (a COCO class name, or \"anything\"): the n-th entry of a class is the n-th most\n"
            "confident detection of that class in each frame.",
            {"masks": {"backend": "maskrcnn", "objects": ["person"]}}))
    sections.append(("Video embeddings: stats needs no weights; videomae needs weights.videomae.",
                     {"embedding": {"backend": "stats"}}))
    if "decomposition" in families:
        sections.append((
            "Per-video layered decomposition with the paper's settings (50,000 iterations: use a\n"
            "GPU; config.yaml in the repository has a small CPU-sized one).",
            {"decomposition": {}}))
    if "nerv" in families:
        sections.append((
            "The NeRV family with the paper's settings: all six models at 3M parameters, 300\n"
            "epochs each (use a GPU; config.yaml in the repository has a small CPU-sized one).",
            {"nerv": {}}))
    if "nvp" in families:
        sections.append((
            "NVP-S with the paper's settings (100,000 steps of 1.2M samples: use a GPU;\n"
            "config.yaml in the repository has a small CPU-sized one).",
            {"nvp": {}}))
    weights = {"raft": None, "maskrcnn": None, "videomae": None}
    sections.append((
        "Weight files (nothing is downloaded): set the path of each one a backend above needs;\n"
        "the README's Configuration section says which file goes where.",
        {"weights": weights}))
    for comment, data in sections:
        config.update(data)
        parts.append(block(comment, data))
    text = "\n".join(parts)
    reread = yaml.safe_load(text)
    validate_config(reread, source="nvd init")
    assert reread == config, "the commented YAML must read back as the config"
    return config, text


def write_init_config(folder: str | Path, out: str | Path = "config.yaml", masks: str = "none",
                      families: Sequence[str] = DEFAULT_FAMILIES, results_dir: str | Path | None = None) -> Path:
    """Write ``init_config`` to ``out`` (never over an existing file); returns ``out``.
    ``results_dir`` defaults to ``results`` next to ``out``."""
    out = Path(out).resolve()
    results = Path(results_dir) if results_dir is not None else out.parent / "results"
    _, text = init_config(folder, results, masks, families)
    try:
        with out.open("x") as fh:
            fh.write(text)
    except FileExistsError:
        raise ConfigError(f"{out} exists already; nvd init does not overwrite it: remove it or "
                          f"pass --out another.yaml") from None
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write the config ({exc.strerror})") from None
    return out


def _cmd_init(args: argparse.Namespace) -> None:
    out = write_init_config(args.folder, args.out, args.masks, args.families, args.results_dir)
    with out.open() as fh:
        videos = yaml.safe_load(fh)["datasets"]
    (dataset, spec), = videos.items()
    print(f"{out}: {len(spec['videos'])} video(s) in dataset '{dataset}': {', '.join(spec['videos'])}")
    print(f"check it:  nvd check-config {out}")
    print(f"run it:    snakemake -s {REPO}/workflow/Snakefile --directory {out.parent} "
          f"--profile {REPO}/profiles/local --configfile {out}")


def register(command: Command) -> None:
    p = command("init", _cmd_init, "Write a workflow config for a folder of your own videos.")
    p.add_argument("folder", help="folder of video files (mp4/mov/avi/mkv) and/or frame folders")
    p.add_argument("--out", default="config.yaml", help="config file to write (default: config.yaml; "
                   "never overwritten)")
    p.add_argument("--masks", choices=MASK_BACKENDS, default="none",
                   help="none: one background layer, moving objects vanish; maskrcnn: a foreground "
                        "layer for the most confident person (needs weights.maskrcnn) (default: none)")
    p.add_argument("--families", nargs="*", choices=sorted(FAMILY_STAGES), default=list(DEFAULT_FAMILIES),
                   metavar="FAMILY", help=f"model families to run on every video, of {sorted(FAMILY_STAGES)} "
                   f"(default: {' '.join(DEFAULT_FAMILIES)}); --families alone: the data stages only")
    p.add_argument("--results-dir", default=None,
                   help="where the stores go (default: results/ next to the config file)")


def _name(stem: str, allow_dot: bool) -> str:
    """``stem`` made into a dataset name (no '.') or video name (no leading '.')."""
    name = re.sub(r"[^A-Za-z0-9_.-]" if allow_dot else r"[^A-Za-z0-9_-]", "_", stem).lstrip(".")
    return name or ("video" if allow_dot else "videos")

