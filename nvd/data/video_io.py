"""Reading frame folders, video files and raw YUV frames, and writing H.264 videos.

Videos go through the ``ffmpeg`` binary (via ffmpeg-python): the one on PATH when there
is one, else the static build shipped with imageio-ffmpeg. That build has no ffprobe, so
``probe_video`` parses the stream summary ``ffmpeg -i`` prints instead. Raw YUV frames
(headerless ``.yuv`` files such as the UVG benchmark's) are converted to RGB here, in
numpy (``yuv_to_rgb``), with the matrix and range the caller names.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import re
import shutil
import subprocess
import threading
import warnings
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import ffmpeg
import numpy as np

from nvd.core.errors import InputError, NvdError
from nvd.core.publish import publishing

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_NUMBER = re.compile(r"\d+")
# ffmpeg prints rates with 4 significant digits; these are the NTSC rates it rounds.
_NTSC_RATES = tuple(n * 1000 / 1001 for n in (24, 30, 48, 60, 120))
_LOG_PREFIX = re.compile(r"^\[[^\]]*@ 0x[0-9a-f]+\] ")  # "[in#0 @ 0x55d8...] ": noise in messages


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: the system one on PATH, else imageio-ffmpeg's."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


# --------------------------------------------------------------------------- frame folders


def list_frame_files(folder: Path) -> list[Path]:
    """The frame images of ``folder`` in frame order.

    Images are files ending in .jpg/.jpeg/.png (any case), ordered by the last integer in
    their stem, so ``2.png`` comes before ``10.png`` and ``00000.jpg``, ``f00001.png`` and
    ``frame_10.png`` all work. Other entries are skipped with a warning. Raises InputError
    naming the folder when it holds no images, when an image name has no number, when two
    images share a number, or when numbers are missing between the first and the last.
    """
    files, skipped = scan_frame_folder(folder)
    if skipped:
        warnings.warn(skipped_message(folder, skipped), stacklevel=2)
    return files


def skipped_message(folder: str | os.PathLike, skipped: list[str]) -> str:
    """The warning about the non-image entries ``scan_frame_folder`` skipped."""
    shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
    return f"{folder}: ignoring non-image entries: {shown}"


def scan_frame_folder(folder: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """``list_frame_files`` without the warning: (frame images in order, names of the
    entries skipped as not being images). Hidden entries (a leading dot) are passed over."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: frame folder does not exist")
    numbered: dict[int, Path] = {}
    ignored: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):  # .DS_Store, Snakemake's .snakemake_timestamp: never frames, not worth a word
            continue
        if not (entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES):
            ignored.append(entry.name)
            continue
        numbers = _NUMBER.findall(entry.stem)
        if not numbers:
            raise InputError(f"{entry}: frame image name has no frame number")
        number = int(numbers[-1])
        if number in numbered:
            raise InputError(
                f"{folder}: frame images {numbered[number].name} and {entry.name} "
                f"both have frame number {number}"
            )
        numbered[number] = entry
    if not numbered:
        raise InputError(f"{folder}: no frame images (.jpg, .jpeg, .png) in the folder")
    first, last = min(numbered), max(numbered)
    missing = sorted(set(range(first, last + 1)) - set(numbered))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise InputError(
            f"{folder}: frame numbers must be consecutive; {len(missing)} missing between "
            f"{first} and {last}: {shown}"
        )
    return [numbered[n] for n in range(first, last + 1)], ignored


def decode_image_rgb(data: bytes, name: str | os.PathLike) -> np.ndarray:
    """Decode encoded image bytes to uint8 [H,W,3] RGB; ``name`` labels errors.

    Gray, palette and 16-bit images are converted to 8-bit RGB and an alpha channel is
    dropped. JPEG EXIF orientation is applied, as image viewers do.
    """
    # imdecode asserts on an empty buffer instead of returning None.
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
    if not data:
        raise InputError(f"{name}: the file is empty (0 bytes), not an image")
    if image is None:
        raise InputError(f"{name}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 [H,W,3] RGB (see ``decode_image_rgb``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read image ({exc.strerror})") from exc
    return decode_image_rgb(data, path)


# --------------------------------------------------------------------------- video files


def probe_video(path: str | os.PathLike) -> dict[str, Any]:
    """Describe the first video stream of ``path``.

    Returns ``width`` and ``height`` of the decoded frames (display rotation applied, as
    the decoder applies it), ``fps`` (float or None when the container gives no rate),
    ``frames`` (int estimate from duration x fps, or None) and ``stream`` (index of the
    stream in the file). Raises InputError naming the file when it is missing, empty, not a
    media file ffmpeg can open, or holds no video stream.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: video file does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes), not a video")
    # Without an output file ffmpeg prints the input summary and exits with status 1.
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
    )
    lines = proc.stderr.splitlines()
    if not any(line.startswith("Input #0") for line in lines):
        raise InputError(f"{path}: not a video file ffmpeg can read (ffmpeg cannot open the file: "
                         f"{_ffmpeg_message(lines, path)})")
    for i, line in enumerate(lines):
        match = re.match(r"\s*Stream #0:(\d+)\S*: Video: (.*)", line)
        if not match or "(attached pic)" in line:
            continue
        size = re.search(r"(?:^|, )(\d+)x(\d+)(?=[ ,]|$)", match.group(2))
        if size is None:
            raise InputError(f"{path}: video stream has no frame size: {line.strip()}")
        width, height = int(size.group(1)), int(size.group(2))
        if abs(_rotation(lines[i + 1 :])) % 180 == 90:
            width, height = height, width
        fps = _rate(match.group(2))
        duration = _duration(lines)
        frames = round(duration * fps) if fps and duration is not None else None
        stream = int(match.group(1))
        return {"width": width, "height": height, "fps": fps, "frames": frames, "stream": stream}
    raise InputError(f"{path}: no video stream in the file")


def iter_video_frames(
    path: str | os.PathLike,
    first_frame: int = 0,
    step: int = 1,
    max_frames: int | None = None,
    info: dict[str, Any] | None = None,
) -> Iterator[np.ndarray]:
    """Decode video frames first_frame, first_frame+step, ... (at most max_frames).

    Yields uint8 [H,W,3] RGB frames at the size ``probe_video`` reports (``info`` is its
    result when the caller already has it). Indices count decoded frames: frames are
    passed through as stored, never duplicated or dropped to reach a constant rate.
    Raises InputError naming the file and quoting ffmpeg when ffmpeg cannot open it, when
    no frame is decoded, or, after yielding the frames it got, when decoding reported an
    error (a truncated or damaged file: the last frames yielded may be garbage).
    """
    path = Path(path)
    info = info or probe_video(path)
    width, height = info["width"], info["height"]
    stream: Any = ffmpeg.input(str(path))[str(info["stream"])]
    if first_frame:
        stream = stream.filter("trim", start_frame=first_frame)
    if step > 1:
        stream = stream.filter("framestep", step=step)
    out_args: dict[str, Any] = {"format": "rawvideo", "pix_fmt": "rgb24", **_passthrough_arg()}
    if max_frames is not None:
        out_args["frames:v"] = max_frames
    proc = (
        stream.output("pipe:", **out_args)
        .global_args("-hide_banner", "-nostdin", "-loglevel", "error")
        .run_async(cmd=ffmpeg_exe(), pipe_stdout=True, pipe_stderr=True)
    )
    # Drain stderr on the side: a damaged file can log more than a pipe buffer holds,
    # which would block ffmpeg while this side blocks reading stdout.
    errors = _StderrTail(proc.stderr)
    frame_bytes = width * height * 3
    count = 0
    short_read = False
    try:
        while True:
            data = proc.stdout.read(frame_bytes)
            if len(data) < frame_bytes:
                short_read = bool(data)
                break
            count += 1
            yield np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
        proc.wait()
    finally:
        if proc.poll() is None:  # the consumer stopped early
            proc.kill()
            proc.wait()
        proc.stdout.close()
        errors.join()
    if count == 0:
        where = f" at or after frame {first_frame}" if first_frame else ""
        length = f" (the video has about {info['frames']} frames)" if info["frames"] is not None else ""
        cause = f": {_ffmpeg_message(errors.lines)}" if errors.lines else ""
        raise InputError(f"{path}: no video frames decoded{where}{length}{cause}")
    if proc.returncode != 0 or errors.lines or short_read:
        # The frames just before damage are often error-concealed garbage that nothing
        # downstream could detect, so a damaged file is refused rather than cut short.
        raise InputError(
            f"{path}: video is damaged or truncated (ffmpeg reported an error after {count} "
            f"frames: {_ffmpeg_message(errors.lines)}); repair or re-encode the file"
        )


def write_video(
    path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, crf: int = 18
) -> Path:
    """Encode uint8 RGB frames ([T,H,W,3] array or iterable of [H,W,3]) as H.264 video.

    libx264, yuv420p (plays everywhere), CRF ``crf``; the container follows the suffix
    (.mp4 for H.264 mp4). yuv420p needs even sizes, so an odd height or width gets its
    last row or column repeated once: unlike a black border, that keeps the chroma shared
    by the edge pixels true. The file is written under a temporary name and moved into
    place (nvd.core.publish), so ``path`` is never a partial video.
    """
    path = Path(path)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
        raise ValueError(f"{path}: needs uint8 [H,W,3] frames, got {first.shape} {first.dtype}")
    height, width = first.shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    size = f"{width + width % 2}x{height + height % 2}"
    with publishing(path) as tmp:
        _encode(tmp, itertools.chain([first], it), first, pad, size, fps, crf, path)
    return path


def _encode(tmp: Path, frames: Iterator[np.ndarray], first: np.ndarray, pad: tuple, size: str, fps: float,
            crf: int, path: Path) -> None:
    """Pipe ``frames`` through ffmpeg into ``tmp``; errors name ``path``."""
    proc = (
        ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=size, framerate=fps)
        .output(str(tmp), vcodec="libx264", pix_fmt="yuv420p", crf=crf)
        .global_args("-hide_banner", "-nostdin", "-loglevel", "error")
        .run_async(cmd=ffmpeg_exe(), pipe_stdin=True, pipe_stderr=True, overwrite_output=True)
    )
    errors = _StderrTail(proc.stderr)
    try:
        for frame in frames:
            if frame.shape != first.shape or frame.dtype != np.uint8:
                raise ValueError(
                    f"{path}: frame of shape {frame.shape} {frame.dtype}, expected {first.shape} uint8"
                )
            try:
                proc.stdin.write(np.pad(frame, pad, mode="edge").tobytes())
            except BrokenPipeError:  # ffmpeg gave up; its stderr, reported below, says why
                break
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        proc.wait()
        errors.join()
        if proc.returncode != 0:
            raise NvdError(f"{path}: ffmpeg failed to write the video: {_ffmpeg_message(errors.lines)}")
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise


# --------------------------------------------------------------------------- raw YUV frames

# Planar YUV layouts of headerless .yuv files (ffmpeg's names): pix_fmt -> (horizontal and
# vertical chroma subsampling, bits per sample). 8-bit samples are one byte; higher depths
# are little-endian 16-bit words holding the value in their low bits.
RAW_PIX_FMTS: dict[str, tuple[int, int, int]] = {
    "yuv420p": (2, 2, 8),
    "yuv422p": (2, 1, 8),
    "yuv444p": (1, 1, 8),
    "yuv420p10le": (2, 2, 10),
    "yuv422p10le": (2, 1, 10),
    "yuv444p10le": (1, 1, 10),
}
# Y'CbCr matrices: name -> (Kr, Kb) (Kg = 1 - Kr - Kb). bt2020 is the non-constant-luminance one.
YUV_MATRICES: dict[str, tuple[float, float]] = {
    "bt709": (0.2126, 0.0722),
    "bt601": (0.299, 0.114),
    "bt2020": (0.2627, 0.0593),
}
YUV_RANGES = ("limited", "full")


def raw_plane_sizes(width: int, height: int, pix_fmt: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """((H, W) of the luma plane, (H, W) of each chroma plane) of one raw frame; an odd
    size rounds the subsampled chroma size up, as ffmpeg does."""
    sub_x, sub_y, _ = RAW_PIX_FMTS[pix_fmt]
    return (height, width), (-(-height // sub_y), -(-width // sub_x))


def raw_frame_bytes(width: int, height: int, pix_fmt: str) -> int:
    """Bytes of one frame of a headerless planar YUV file (Y plane, then U, then V)."""
    (h, w), (ch, cw) = raw_plane_sizes(width, height, pix_fmt)
    sample_bytes = 1 if RAW_PIX_FMTS[pix_fmt][2] == 8 else 2
    return (h * w + 2 * ch * cw) * sample_bytes


def yuv_to_rgb(
    data: bytes, width: int, height: int, pix_fmt: str, matrix: str = "bt709", color_range: str = "limited"
) -> np.ndarray:
    """One raw planar YUV frame (``raw_frame_bytes`` long) -> uint8 [H,W,3] RGB.

    ``matrix`` is the Y'CbCr matrix (``YUV_MATRICES``; BT.709 for HD video such as UVG's),
    ``color_range`` ``limited`` (8-bit Y in 16..235 and Cb/Cr in 16..240, scaled by 2^(n-8)
    at n bits: the broadcast and UVG convention) or ``full`` (0..2^n-1). Subsampled chroma
    is upsampled bilinearly, sited at the centre of the luma samples it covers, before the
    matrix is applied in float32; RGB is rounded to nearest and clipped to 0..255. No
    transfer function is applied: the R'G'B' values are stored as they are, as video
    players and ffmpeg's ``rgb24`` output do.
    """
    (h, w), (ch, cw) = raw_plane_sizes(width, height, pix_fmt)
    sub_x, sub_y, bits = RAW_PIX_FMTS[pix_fmt]
    samples = np.frombuffer(data, dtype=np.uint8 if bits == 8 else np.dtype("<u2"))
    if samples.size != h * w + 2 * ch * cw:
        raise ValueError(f"raw {width}x{height} {pix_fmt} frame needs {raw_frame_bytes(width, height, pix_fmt)} "
                         f"bytes, got {len(data)}")
    luma = samples[: h * w].reshape(h, w).astype(np.float32)
    cb, cr = (samples[h * w + k * ch * cw : h * w + (k + 1) * ch * cw].reshape(ch, cw).astype(np.float32)
              for k in (0, 1))
    if color_range == "limited":
        scale = float(1 << (bits - 8))  # 10-bit limited range is the 8-bit one times 4
        luma = (luma - 16 * scale) * (1 / (219 * scale))
        cb, cr = ((c - 128 * scale) * (1 / (224 * scale)) for c in (cb, cr))
    elif color_range == "full":
        peak, mid = float((1 << bits) - 1), float(1 << (bits - 1))
        luma = luma * (1 / peak)
        cb, cr = ((c - mid) * (1 / peak) for c in (cb, cr))
    else:
        raise ValueError(f"unknown YUV range {color_range!r}; known: {list(YUV_RANGES)}")
    if (sub_x, sub_y) != (1, 1):
        cb, cr = (_upsample_chroma(c, sub_x, sub_y, h, w) for c in (cb, cr))
    kr, kb = YUV_MATRICES[matrix]
    kg = 1 - kr - kb
    rgb = np.empty((h, w, 3), np.float32)
    rgb[..., 0] = luma + (2 - 2 * kr) * cr
    rgb[..., 1] = luma - (2 * kb * (1 - kb) / kg) * cb - (2 * kr * (1 - kr) / kg) * cr
    rgb[..., 2] = luma + (2 - 2 * kb) * cb
    rgb *= 255
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _upsample_chroma(plane: np.ndarray, sub_x: int, sub_y: int, height: int, width: int) -> np.ndarray:
    """Bilinear, centre-sited upsampling of a chroma plane to the luma size (cv2's
    INTER_LINEAR maps pixel centres onto pixel centres, edges replicated); an odd luma size
    keeps the first ``height`` x ``width`` of the doubled plane, as its last chroma sample
    covers one luma sample only."""
    rows, cols = plane.shape
    up = cv2.resize(plane, (cols * sub_x, rows * sub_y), interpolation=cv2.INTER_LINEAR)
    return up[:height, :width]


# --------------------------------------------------------------------------- helpers


class _StderrTail(threading.Thread):
    """Reads a process's stderr to the end, keeping its first line (usually the cause of an
    error) and its last ``keep`` lines in ``lines``."""

    def __init__(self, pipe: Any, keep: int = 20) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.first: list[str] = []
        self.tail: collections.deque[str] = collections.deque(maxlen=keep)
        self.start()

    def run(self) -> None:
        for raw in self.pipe:
            line = raw.decode(errors="replace").strip()
            if line:
                self.first = self.first or [line]
                self.tail.append(line)
        self.pipe.close()

    @property
    def lines(self) -> list[str]:
        tail = list(self.tail)
        return tail if self.first == tail[:1] else self.first + tail


def _ffmpeg_message(lines: Iterable[str], path: str | os.PathLike | None = None) -> str:
    """ffmpeg's explanation: its first error line (the cause) and its last (the outcome),
    without the file name ``path`` the caller names already."""
    kept = [_LOG_PREFIX.sub("", line.strip()) for line in lines]
    if path is not None:
        kept = [line.removeprefix(f"{path}: ") for line in kept]
    # "Format mov,mp4,... detected only with low score of 1, misdetection possible!": a guess
    # from the file name, not the cause
    kept = [line for line in kept if line and not line.startswith("At least one output file")
            and "misdetection possible" not in line]
    if not kept:
        return "no message from ffmpeg"
    return kept[0] if len(kept) == 1 else f"{kept[0]} / {kept[-1]}"


@cache
def _passthrough_arg() -> dict[str, str]:
    """Output option that keeps every decoded frame (-fps_mode since ffmpeg 5.1, else -vsync)."""
    out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True).stdout
    match = re.match(r"ffmpeg version n?(\d+)\.(\d+)", out)
    if match and (int(match.group(1)), int(match.group(2))) < (5, 1):
        return {"vsync": "passthrough"}
    return {"fps_mode": "passthrough"}


def _rate(stream_desc: str) -> float | None:
    """Frame rate from a stream line ("25 fps", "29.97 fps", "1k tbr")."""
    for unit in ("fps", "tbr"):
        match = re.search(rf"([\d.]+)(k?) {unit}", stream_desc)
        if match:
            rate = float(match.group(1)) * (1000 if match.group(2) else 1)
            if rate <= 0:
                continue
            return next((r for r in _NTSC_RATES if abs(r - rate) < 0.006), rate)
    return None


def _duration(lines: list[str]) -> float | None:
    for line in lines:
        match = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", line)
        if match:
            h, m, s = match.groups()
            return int(h) * 3600 + int(m) * 60 + float(s)
    return None


def _rotation(lines_after_stream: list[str]) -> float:
    """Display rotation in degrees from the side data printed under a stream line."""
    for line in lines_after_stream:
        if re.match(r"\s*Stream #", line):
            break
        match = re.search(r"rotation of (-?[\d.]+) degrees", line)
        if match:
            return float(match.group(1))
    return 0.0
