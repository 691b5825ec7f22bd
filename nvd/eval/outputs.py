"""The evaluation outputs every family writes: one folder with videos, images and metrics.json.

``publish_evaluation`` builds the folder under a temporary name and moves it into place
(nvd.core.publish), metrics.json last, so an interrupted evaluation never leaves a
complete-looking folder. The metrics are strict JSON (a non-finite figure becomes null).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nvd.core.errors import InputError
from nvd.core.layout import METRICS_NAME
from nvd.core.publish import publishing
from nvd.data.stores import open_store
from nvd.data.video_io import write_video
from nvd.train.logs import read_log
from nvd.train.loop import TrainResult


def to_uint8(x: Tensor) -> np.ndarray:
    """Values in [0,1] (clamped) -> uint8 array of the same shape, rounded."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def write_clip(path: str | os.PathLike, clip: Iterable[Tensor], fps: float) -> Path:
    """An H.264 video of ``clip``: [T,H,W,3] in [0,1], or an iterable of [H,W,3] frames."""
    return write_video(path, (to_uint8(frame) for frame in clip), fps)


def finite(value: float) -> float | None:
    """``value``, or None when it is not finite (a frame reproduced exactly has PSNR inf),
    so that metrics.json stays strict JSON."""
    return value if math.isfinite(value) else None


def training_summary(training: TrainResult | Sequence[Mapping[str, float]]) -> tuple[int, float]:
    """(iterations, training time in s) from a TrainResult or the rows of log.csv."""
    if isinstance(training, TrainResult):
        return training.iterations, training.wall_time_s
    if not training:
        raise InputError("the training log has no rows: train the model before evaluating it")
    last = training[-1]
    return int(last["iteration"]), float(last["wall_time_s"])


def training_log(model_path: str | os.PathLike) -> list[dict[str, float]]:
    """The training log rows published beside a model (see nvd.train.logs.read_log)."""
    return read_log(Path(model_path).parent)


def video_fps(frames_store: str | os.PathLike, default: float = 25.0) -> float:
    """Frame rate of the source video; ``default`` for frame folders, which have none."""
    fps = open_store(frames_store, "frames").attrs.get("fps")
    return float(fps) if fps else default


def check_replaceable(out_dir: str | os.PathLike) -> None:
    """InputError unless ``out_dir`` is new, empty or an earlier evaluation (has metrics.json):
    an evaluation never deletes anything else. Called before the slow part too."""
    out_dir = Path(out_dir)
    replaceable = out_dir.is_dir() and (not any(out_dir.iterdir()) or (out_dir / METRICS_NAME).is_file())
    if out_dir.exists() and not replaceable:
        raise InputError(f"{out_dir}: exists and is not an earlier evaluation; "
                         "choose an empty or new output folder for the evaluation")


def publish_evaluation(out_dir: str | os.PathLike, metrics: Mapping[str, Any],
                       write_outputs: Callable[[Path], None]) -> Path:
    """Write an evaluation folder: ``write_outputs(folder)`` fills it, then metrics.json.

    ``out_dir`` must be replaceable (``check_replaceable``). The metrics are serialised
    first, so metrics that are not JSON fail before the outputs are written.
    """
    check_replaceable(out_dir)
    metrics_text = json.dumps(metrics, indent=2, allow_nan=False) + "\n"
    with publishing(out_dir, folder=True) as tmp:
        write_outputs(tmp)
        # Written last: its presence marks the folder as a finished evaluation.
        (tmp / METRICS_NAME).write_text(metrics_text)
    return out_dir
