"""Stage 1, frames: a video file, raw .yuv file or frame folder -> frames.zarr, uint8 [T,H,W,3].

Store layout (contract read by every later stage):
- array ``frames``: uint8 [T,H,W,3] RGB, dimension names (t, y, x, c), one chunk per frame.
- attrs: ``fps`` (float, or None for frame folders and raw files without ``frames.raw.fps``),
  ``source`` (str), ``source_fingerprint`` (sha256 hex of the bytes read: the whole file for
  video files, the selected images for frame folders, the selected frames' bytes, in order,
  for raw .yuv files), ``frame_indices`` (indices of the kept frames in the source
  sequence), ``source_frame_names`` (file names for folders, None for video and raw files),
  ``source_size`` [H0, W0], ``size`` [H, W], ``skipped_files`` (names of the non-image
  entries of a frame folder that were skipped; [] for video and raw files).

Raw ``.yuv`` files (any case; headerless planar YUV, as the UVG benchmark ships) are read
with the ``frames.raw`` setting (RawVideoConfig): frame size, pixel format, rate, and the
Y'CbCr matrix and range, BT.709 limited range by default (see
``nvd.data.video_io.yuv_to_rgb``). Only the selected frames are read, each by a seek.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import zarr

from nvd.core.config import section
from nvd.core.errors import ConfigError, InputError
from nvd.core.progress import progress
from nvd.core.versioning import code_version
from nvd.data.stores import new_array, open_store, write_store
from nvd.data.video_io import (
    RAW_PIX_FMTS,
    YUV_MATRICES,
    YUV_RANGES,
    decode_image_rgb,
    iter_video_frames,
    probe_video,
    raw_frame_bytes,
    scan_frame_folder,
    skipped_message,
    yuv_to_rgb,
)

RAW_SUFFIX = ".yuv"  # sources with this suffix (any case) are read as raw frames


@dataclass(frozen=True)
class RawVideoConfig:
    """How to read headerless ``.yuv`` sources (``frames.raw``): frame i is the i-th
    ``raw_frame_bytes(width, height, pix_fmt)`` bytes of the file, planes Y, U, V."""

    width: int  # frame width in pixels
    height: int  # frame height in pixels
    pix_fmt: str = "yuv420p"  # ffmpeg's name of the planar layout: a key of video_io.RAW_PIX_FMTS
    fps: float | None = None  # frame rate recorded in the store; None: no rate, as frame folders
    matrix: str = "bt709"  # Y'CbCr -> R'G'B' matrix: bt709 (HD, UVG), bt601 (SD) or bt2020
    range: str = "limited"  # limited (Y 16..235, C 16..240 at 8 bits; UVG) or full (0..255)

    def __post_init__(self) -> None:
        if isinstance(self.fps, int) and not isinstance(self.fps, bool):
            object.__setattr__(self, "fps", float(self.fps))


@dataclass(frozen=True)
class FramesConfig:
    """Frame extraction (``frames`` section)."""

    long_edge: int | None = 768  # resize (INTER_AREA) so max(H, W) <= long_edge; None keeps native
    max_frames: int | None = None  # keep at most this many frames after first_frame/step
    first_frame: int = 0  # index of the first source frame kept
    step: int = 1  # keep every step-th frame
    raw: RawVideoConfig | None = None  # how to read .yuv sources; None: a .yuv source is refused

    def __post_init__(self) -> None:
        # A config mapping (``frames: {raw: {...}}``, also as Snakemake params) becomes the
        # dataclass here: ``section`` only builds nested dataclasses of non-optional fields.
        if isinstance(self.raw, Mapping):
            object.__setattr__(self, "raw", _raw_config(self.raw))


def extract_frames(source: str | Path, out: str | Path, cfg: FramesConfig) -> Path:
    """Decode ``source`` (video file, raw .yuv file or frame folder) into the frames store at ``out``.

    Keeps source frames first_frame, first_frame+step, ... (at most max_frames), resized
    with INTER_AREA so max(H, W) <= long_edge, as uint8 [T,H,W,3] RGB; see the module
    docstring for the attrs. Frames are written one at a time, so memory holds one frame
    whatever the video length. Raises InputError naming the file or folder when the source
    is missing, unreadable, has frames of different sizes, or no frame is selected, or is a
    raw file whose size is not a whole number of frames; ConfigError when a .yuv source
    has no ``frames.raw``.
    """
    _check_config(cfg)
    source, out = Path(source), Path(out)
    if source.is_dir():
        reader: _Reader = _FolderReader(source, cfg)
    elif source.is_file() and source.suffix.lower() == RAW_SUFFIX:
        reader = _RawReader(source, cfg)
    elif source.is_file():
        reader = _VideoReader(source, cfg)
    else:
        raise InputError(f"{source}: input video file or frame folder does not exist")

    config = dataclasses.asdict(cfg)
    with write_store(out, "frames", config=config, code_version=code_version("frames")) as group:
        array: _GrowingFrames | None = None
        for frame in progress(reader.frames(), reader.expected, f"frames {source.name}"):
            if array is None:
                size = _target_size(frame.shape[:2], cfg.long_edge)
                array = _GrowingFrames(group, reader.expected, size)
            array.append(_resize(frame, array.size))
        assert array is not None, "readers raise InputError rather than yield no frame"
        array.finish()
        group.attrs.update(
            {
                "fps": reader.fps,
                "source": str(source),
                "source_fingerprint": reader.fingerprint.hexdigest(),
                "frame_indices": reader.indices,
                "source_frame_names": reader.names,
                "source_size": list(reader.source_size),
                "size": list(array.size),
                "skipped_files": reader.skipped,
            }
        )
    return out


def load_frames(store: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a finished frames store: (uint8 [T,H,W,3], attrs)."""
    group = open_store(store, "frames")
    return group["frames"][:], dict(group.attrs)


def _check_config(cfg: FramesConfig) -> None:
    """Catch values the config schema rejects, for callers that bypass it."""
    if cfg.long_edge is not None and cfg.long_edge < 1:
        raise ConfigError(f"frames.long_edge must be >= 1 or null, got {cfg.long_edge}")
    if cfg.max_frames is not None and cfg.max_frames < 1:
        raise ConfigError(f"frames.max_frames must be >= 1 or null, got {cfg.max_frames}")
    if cfg.first_frame < 0:
        raise ConfigError(f"frames.first_frame must be >= 0, got {cfg.first_frame}")
    if cfg.step < 1:
        raise ConfigError(f"frames.step must be >= 1, got {cfg.step}")
    raw = cfg.raw
    if raw is None:
        return
    if not isinstance(raw, RawVideoConfig):
        raise ConfigError(f"frames.raw must be a mapping (width, height, pix_fmt, fps, ...) or null, got {raw!r}")
    for key in ("width", "height"):
        value = getattr(raw, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"frames.raw.{key} must be a positive integer, got {value!r}")
    choices = {"pix_fmt": RAW_PIX_FMTS, "matrix": YUV_MATRICES, "range": YUV_RANGES}
    for key, known in choices.items():
        if getattr(raw, key) not in known:
            raise ConfigError(f"frames.raw.{key} must be one of {', '.join(known)}; got {getattr(raw, key)!r}")
    if raw.fps is not None and not (isinstance(raw.fps, float) and raw.fps > 0):
        raise ConfigError(f"frames.raw.fps must be a number > 0 or null, got {raw.fps!r}")


def _raw_config(values: Mapping[str, Any]) -> RawVideoConfig:
    missing = [f.name for f in dataclasses.fields(RawVideoConfig)
               if f.default is dataclasses.MISSING and f.name not in values]
    if missing:
        raise ConfigError(f"config section 'frames.raw': missing required key(s) {missing}")
    return section(RawVideoConfig, values, "frames.raw")


def _target_size(size: tuple[int, int], long_edge: int | None) -> tuple[int, int]:
    """(H, W) scaled so max(H, W) <= long_edge, aspect kept, rounded; never upscaled."""
    height, width = size
    if long_edge is None or max(height, width) <= long_edge:
        return height, width
    scale = long_edge / max(height, width)
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frame.shape[:2] == size:
        return frame
    return cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)


class _GrowingFrames:
    """The ``frames`` array, filled frame by frame.

    Video lengths are only estimates until decoding ends, so the array starts at the
    expected length, doubles when a frame does not fit, and is cut to the frames written.
    """

    def __init__(self, group: zarr.Group, expected: int, size: tuple[int, int]) -> None:
        self.size = size
        self.count = 0
        self.array = new_array(
            group,
            "frames",
            (max(1, expected), *size, 3),
            "uint8",
            chunks=(1, *size, 3),
            dimension_names=("t", "y", "x", "c"),
        )

    def append(self, frame: np.ndarray) -> None:
        if self.count == self.array.shape[0]:
            self.array.resize((2 * self.count, *self.size, 3))
        self.array[self.count] = frame
        self.count += 1

    def finish(self) -> None:
        if self.count != self.array.shape[0]:
            self.array.resize((self.count, *self.size, 3))


class _Reader(Protocol):
    """A source's selected frames plus what the store records about them.

    ``frames()`` yields uint8 [H0,W0,3] RGB source frames; ``indices``, ``source_size``
    and ``fingerprint`` are complete once it is exhausted.
    """

    fps: float | None
    expected: int  # number of frames frames() should yield (an estimate for videos)
    indices: list[int]
    names: list[str] | None
    skipped: list[str]  # non-image entries of a frame folder, not read
    source_size: tuple[int, int]
    fingerprint: Any  # hashlib sha256 object

    def frames(self) -> Iterator[np.ndarray]: ...


class _FolderReader:
    def __init__(self, folder: Path, cfg: FramesConfig) -> None:
        files, self.skipped = scan_frame_folder(folder)
        if self.skipped:
            _warn(skipped_message(folder, self.skipped))
        selected = list(range(cfg.first_frame, len(files), cfg.step))[: cfg.max_frames]
        if not selected:
            raise InputError(
                f"{folder}: no frames selected: first_frame={cfg.first_frame} but the folder has "
                f"{len(files)} frames"
            )
        self.folder = folder
        self.files = [files[i] for i in selected]
        self.fps: float | None = None
        self.expected = len(selected)
        self.indices = selected
        self.names: list[str] | None = [f.name for f in self.files]
        self.source_size: tuple[int, int]  # set from the first frame read
        self.fingerprint = hashlib.sha256()

    def frames(self) -> Iterator[np.ndarray]:
        for k, path in enumerate(self.files):
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InputError(f"{path}: cannot read frame image ({exc.strerror})") from exc
            self.fingerprint.update(data)
            frame = decode_image_rgb(data, path)
            if k == 0:
                self.source_size = (frame.shape[0], frame.shape[1])
            elif frame.shape[:2] != self.source_size:
                raise InputError(
                    f"{path}: frame is {_hw(frame.shape[:2])} but earlier frames of {self.folder} are "
                    f"{_hw(self.source_size)} (all frames must have one size)"
                )
            yield frame


class _VideoReader:
    def __init__(self, path: Path, cfg: FramesConfig) -> None:
        self.path = path
        self.cfg = cfg
        self.info = probe_video(path)
        self.fps: float | None = self.info["fps"]
        self.source_size: tuple[int, int] = (self.info["height"], self.info["width"])
        total = self.info["frames"]
        # Only sizes the first allocation; _GrowingFrames corrects a wrong guess.
        selectable = len(range(cfg.first_frame, total, cfg.step)) if total else 1
        self.expected = min(selectable, cfg.max_frames or selectable)
        self.indices: list[int] = []
        self.names: list[str] | None = None
        self.skipped: list[str] = []
        self.fingerprint = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                self.fingerprint.update(block)

    def frames(self) -> Iterator[np.ndarray]:
        cfg = self.cfg
        decoded = iter_video_frames(
            self.path, cfg.first_frame, cfg.step, cfg.max_frames, info=self.info
        )
        for k, frame in enumerate(decoded):
            self.indices.append(cfg.first_frame + k * cfg.step)
            yield frame


class _RawReader:
    """A headerless planar YUV file: frame i is bytes [i * n, (i + 1) * n) for the frame size
    n of ``frames.raw``; only the selected frames are read (a seek each) and fingerprinted."""

    def __init__(self, path: Path, cfg: FramesConfig) -> None:
        raw = cfg.raw
        if raw is None:
            raise ConfigError(
                f"{path}: a raw .yuv file has no header giving its frame size and pixel format; set "
                f"frames.raw.width/height/pix_fmt (and fps) in the config, in the global frames section "
                f"or the dataset's, e.g. frames: {{raw: {_raw_example(_UVG_EXAMPLE | _name_hints(path))}}}"
            )
        hints = _name_hints(path)
        contradicted = {k: v for k, v in hints.items() if getattr(raw, k) != v}
        if contradicted:
            _warn(f"{path}: the file name suggests {_raw_example(contradicted)} but frames.raw has "
                  f"{_raw_example({k: getattr(raw, k) for k in contradicted})}; the frames are read "
                  "with frames.raw (a wrong size or format decodes to garbage)")
        self.path = path
        self.raw = raw
        self.frame_bytes = raw_frame_bytes(raw.width, raw.height, raw.pix_fmt)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"{path}: cannot read raw video ({exc.strerror})") from exc
        layout = f"{raw.width}x{raw.height} (WxH) {raw.pix_fmt}"
        if size == 0:
            raise InputError(f"{path}: the file is empty (0 bytes), not a raw video")
        total, remainder = divmod(size, self.frame_bytes)
        if remainder:
            raise InputError(
                f"{path}: file size {size} bytes is not a whole number of {layout} frames of "
                f"{self.frame_bytes} bytes each ({total} frames and {remainder} bytes left over); check "
                "frames.raw.width/height/pix_fmt, or whether the file is truncated"
            )
        selected = list(range(cfg.first_frame, total, cfg.step))[: cfg.max_frames]
        if not selected:
            raise InputError(
                f"{path}: no frames selected: first_frame={cfg.first_frame} but the file has {total} "
                f"{layout} frames"
            )
        self.fps: float | None = raw.fps
        self.expected = len(selected)
        self.indices = selected
        self.names: list[str] | None = None
        self.skipped: list[str] = []
        self.source_size: tuple[int, int] = (raw.height, raw.width)
        self.fingerprint = hashlib.sha256()

    def frames(self) -> Iterator[np.ndarray]:
        raw = self.raw
        try:
            with self.path.open("rb") as fh:
                for index in self.indices:
                    fh.seek(index * self.frame_bytes)
                    data = fh.read(self.frame_bytes)
                    if len(data) != self.frame_bytes:
                        raise InputError(f"{self.path}: the file ended inside frame {index} (it changed "
                                         "while being read)")
                    self.fingerprint.update(data)
                    yield yuv_to_rgb(data, raw.width, raw.height, raw.pix_fmt, raw.matrix, raw.range)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read raw video ({exc.strerror})") from exc


# UVG-style names: Beauty_1920x1080_120fps_420_8bit_YUV.yuv
_NAME_SIZE = re.compile(r"(?<![0-9])([1-9][0-9]{1,4})x([1-9][0-9]{1,4})(?![0-9])")
_NAME_FPS = re.compile(r"(?<![0-9.])([0-9]+(?:\.[0-9]+)?) ?fps", re.IGNORECASE)
_NAME_FORMAT = re.compile(r"(?<![0-9])(420|422|444)(?![0-9])")
_NAME_BITS = re.compile(r"(?<![0-9])(8|10) ?bit", re.IGNORECASE)
_UVG_EXAMPLE = {"width": 1920, "height": 1080, "pix_fmt": "yuv420p", "fps": 120.0}


def _name_hints(path: Path) -> dict[str, Any]:
    """frames.raw values a UVG-style file name states (``..._1920x1080_120fps_420_8bit...``)."""
    hints: dict[str, Any] = {}
    name = path.stem
    if match := _NAME_SIZE.search(name):
        hints["width"], hints["height"] = int(match.group(1)), int(match.group(2))
        name = _NAME_SIZE.sub("_", name)
    if match := _NAME_FPS.search(name):
        hints["fps"] = float(match.group(1))
        name = _NAME_FPS.sub("_", name)
    chroma, bits = _NAME_FORMAT.search(name), _NAME_BITS.search(name)
    if chroma and bits:  # "420" alone does not say the depth
        hints["pix_fmt"] = f"yuv{chroma.group(1)}p" + ("10le" if bits.group(1) == "10" else "")
    return hints


def _raw_example(values: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{k}: {_yaml_value(v)}" for k, v in values.items())
    return "{" + shown + "}"


def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _warn(message: str) -> None:
    """A UserWarning, also printed to stderr when warnings go to a log file only (under
    Snakemake, nvd.core.progress.stage_log sends them to the rule's log): a skipped file
    the user did not mean to skip is then seen on the console."""
    warnings.warn(message, stacklevel=3)
    handlers = logging.getLogger("py.warnings").handlers
    if handlers and all(isinstance(h, logging.FileHandler) for h in handlers):
        print(f"nvd warning: {message}", file=sys.stderr)


def _hw(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]} (WxH)"
