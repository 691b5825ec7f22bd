"""Code versions per stage: a hash of exactly the source files a stage runs.

Snakemake does not see changes inside an imported package, so each rule passes
``code_version(stage)`` as a param: editing a stage's code reruns that stage and its
dependents and nothing else. The same hash is recorded in every store's provenance.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

# Modules every stage runs through (store writing, errors, logging).
_SHARED = ("__init__.py", "errors.py", "stores.py", "progress.py")

# Package-relative files or folders per stage, besides the shared ones.
STAGE_SOURCES: dict[str, tuple[str, ...]] = {
    "demo": ("demo/__init__.py", "demo/scenes.py", "demo/synthetic.py", "demo/textures.py", "demo/footage.py"),
    "demo_edit": ("demo/edits.py",),
    "frames": ("frames.py", "video_io.py"),
    "flow": ("flow", "devices.py", "weights.py", "frames.py"),
    "masks": ("masks", "devices.py", "weights.py", "video_io.py", "frames.py"),
    "embedding": ("embedding", "devices.py", "weights.py", "frames.py"),
    "decomposition": ("decomposition.py", "decomposition_training.py", "encodings.py", "losses.py",
                      "training.py", "video_data.py", "devices.py", "decompose.py", "config.py"),
    "hypernet": ("decomposition.py", "decomposition_training.py", "encodings.py", "losses.py",
                 "training.py", "video_data.py", "devices.py", "decompose.py", "config.py",
                 "hypernet.py", "hyper_training.py", "hypernvd.py", "decomposition_eval.py", "atlas.py",
                 "metrics.py", "video_io.py"),
    "tables": ("comparison.py", "training.py"),
    "evaluation": ("decomposition.py", "decomposition_training.py", "encodings.py", "losses.py",
                   "training.py", "video_data.py", "devices.py", "decompose.py", "config.py",
                   "decomposition_eval.py", "atlas.py", "metrics.py", "video_io.py"),
}


def stage_files(stage: str) -> list[Path]:
    """All source files hashed for ``stage``, sorted."""
    if stage not in STAGE_SOURCES:
        raise KeyError(f"unknown stage '{stage}'; known: {sorted(STAGE_SOURCES)}")
    files: set[Path] = set()
    for rel in (*_SHARED, *STAGE_SOURCES[stage]):
        target = PACKAGE_DIR / rel
        if target.is_dir():
            files.update(p for p in target.rglob("*.py"))
        elif target.exists():
            files.add(target)
    return sorted(files)


@cache
def code_version(stage: str) -> str:
    """Short sha256 over the names and contents of the files ``stage`` runs."""
    digest = hashlib.sha256()
    for path in stage_files(stage):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
