"""Codec primitives over the ffmpeg binary the project ships: arrays in, bytes out, and back.

Everything goes through pipes (no temporary files): raw frames on ffmpeg's stdin, the coded
stream on its stdout, and the other way round for decoding. Sizes are in pixels, frames
uint8 arrays.

Gray feature images (NVP's codec):

- ``encode_gray_jpeg`` / ``decode_gray_jpeg``: one [H, W] image as a baseline JPEG (mjpeg,
  quality ``qscale`` 1..31, lower is better). mjpeg has no gray format: the image is coded
  as full-range 4:2:0 (Y = the gray value, chroma constant 128) and only Y is decoded.
- ``encode_gray_hevc`` / ``decode_gray_hevc``: [T, H, W] as a 4:0:0 HEVC elementary stream
  (libx265, Annex B; no container, so no container bytes count).

RGB videos (the traditional anchors), codecs ``CODECS``: ``x264`` (libx264, Annex B
H.264), ``x265`` (libx265, Annex B HEVC), ``svtav1`` (libsvtav1) and ``aom`` (libaom-av1),
both AV1 as a low-overhead OBU stream (smaller than IVF, which adds 12 bytes a frame):

- ``encode_rgb_video(_measured)`` / ``decode_rgb_video(_measured)``: [T, H, W, 3] RGB <->
  Y'CbCr ``yuv420p`` or ``yuv444p``, BT.709 matrix, limited range, both ways with the same
  swscale settings (``SWS_FLAGS``); the stream is tagged BT.709 so players convert it back
  the same way. The ``_measured`` forms also return the ffmpeg run's ``Measured`` (wall
  time, peak memory: nvd.compression.measure); ``ffmpeg_seconds`` of a decoding's is
  ffmpeg's own decoding time, start-up left out.

Sizes: yuv420p needs even sizes and x265 at least 16 x 16 pixels, so frames are padded by
edge replication before encoding and cropped back after decoding; any H, W >= 1 round-trips
(except SVT-AV1, which crashes below 16 x 16 and is refused there with ConfigError).
Informational headers the encoders add by default and decoders ignore (x264's and x265's
version-and-settings SEI, 0.6-2 KB a stream) are left out: they are not needed to decode.

Decoding is deterministic: the same bytes give the same arrays. Errors: ConfigError for
settings a codec does not support, CodecError (with ffmpeg's first and last error lines:
the cause and the outcome) when ffmpeg fails or decodes a number of frames other than the
one expected; ValueError for arrays of the wrong type or shape.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from nvd.compression.measure import Measured, run_measured
from nvd.core.errors import ConfigError, NvdError

# Lanczos for the chroma resampling of 4:2:0 (down when encoding, up when decoding): on a
# natural image coded losslessly it keeps 38.5 dB of RGB PSNR where swscale's default
# bicubic keeps 37.6 and bilinear 34.7, so the 4:2:0 anchors are not capped by the colour
# conversion. accurate_rnd: exact rounding; full_chroma_int/inp: no chroma shortcuts.
SWS_FLAGS = "lanczos+accurate_rnd+full_chroma_int+full_chroma_inp"
_COLOUR_TAGS = ("-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
                "-color_range", "tv")
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")


class CodecError(NvdError):
    """ffmpeg failed to encode or decode (its message included)."""


@dataclass(frozen=True)
class VideoCodec:
    """One encoder of the ffmpeg binary and how the project drives it."""

    name: str  # the project's name: x264, x265, svtav1, aom
    encoder: str  # ffmpeg's encoder
    stream_format: str  # ffmpeg's muxer and demuxer of the raw elementary stream
    suffix: str  # of a bitstream file ffmpeg recognises
    pix_fmts: tuple[str, ...]
    crf_range: tuple[float, float]
    integer_crf: bool
    presets: tuple[str, ...]
    preset_option: str
    options: tuple[str, ...] = ()  # passed on every encode
    pad_to: int = 1  # smaller frames are padded up to this many pixels a side
    min_side: int = 1  # smaller frames are refused

    def problem(self, preset: str | None = None, crf: float | None = None,
                pix_fmt: str | None = None) -> str | None:
        """What is wrong with these settings for this codec, or None."""
        if preset is not None and str(preset) not in self.presets:
            return f"{self.name} has no preset {preset!r}; its presets: {list(self.presets)}"
        if crf is not None:
            low, high = self.crf_range
            if isinstance(crf, bool) or not isinstance(crf, (int, float)) or not low <= crf <= high:
                return f"{self.name} takes a crf from {low:g} to {high:g}, got {crf!r}"
            if self.integer_crf and crf != int(crf):
                return f"{self.name} takes a whole-number crf, got {crf!r}"
        if pix_fmt is not None and pix_fmt not in self.pix_fmts:
            only = " only" if len(self.pix_fmts) == 1 else ""
            return f"{self.name} encodes {', '.join(self.pix_fmts)}{only}, not {pix_fmt!r}"
        return None


CODECS: dict[str, VideoCodec] = {
    # x264 writes a version-and-settings SEI (NAL type 6) it has no switch for: filtered out.
    "x264": VideoCodec("x264", "libx264", "h264", "h264", ("yuv420p", "yuv444p"), (0, 51), False, X26X_PRESETS,
                       "-preset", ("-bsf:v", "filter_units=remove_types=6")),
    # x265 refuses frames under 16 px a side ("Image size is too small").
    "x265": VideoCodec("x265", "libx265", "hevc", "hevc", ("yuv420p", "yuv444p"), (0, 51), False, X26X_PRESETS,
                       "-preset", ("-x265-params", "info=0:log-level=error"), pad_to=16),
    # libsvtav1 takes 4:2:0 only and corrupts its heap on 8 x 8 frames; ffmpeg reads crf 0
    # as "not set" (SVT-AV1's default, 35), so the range starts at 1.
    "svtav1": VideoCodec("svtav1", "libsvtav1", "obu", "obu", ("yuv420p",), (1, 63), True,
                         tuple(str(p) for p in range(-2, 14)), "-preset", min_side=16),
    # -b:v 0: constant quality from the crf alone (older ffmpeg otherwise caps the bitrate).
    "aom": VideoCodec("aom", "libaom-av1", "obu", "obu", ("yuv420p", "yuv444p"), (0, 63), True,
                      tuple(str(p) for p in range(9)), "-cpu-used", ("-b:v", "0")),
}


def video_codec(name: str) -> VideoCodec:
    """The codec called ``name``; ConfigError listing the known ones otherwise."""
    try:
        return CODECS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown video codec {name!r}; known: {list(CODECS)}") from None


def check_video_settings(codec: str, preset: str, crf: float, pix_fmt: str, where: str = "ffmpeg") -> VideoCodec:
    """The codec, after checking the settings; ConfigError prefixed with ``where``."""
    found = video_codec(codec)
    problem = found.problem(preset, crf, pix_fmt)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return found


@cache
def codec_ffmpeg() -> str:
    """The ffmpeg binary shipped with imageio-ffmpeg (or the one IMAGEIO_FFMPEG_EXE names).

    Not the ffmpeg on PATH that nvd.data.video_io prefers for reading videos: a stream's
    size depends on the encoder's version, so the codecs always use the pinned build, which
    has every encoder listed in CODECS.
    """
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@cache
def ffmpeg_version() -> str:
    """The first line of ``ffmpeg -version`` of ``codec_ffmpeg()``."""
    out = subprocess.run([codec_ffmpeg(), "-version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def _ffmpeg(args: Sequence[str], data: bytes, what: str, timed: bool = False) -> Measured:
    """Run ffmpeg with ``args`` on ``data``; CodecError with its explanation (``_message``).
    ``timed``: ffmpeg also reports its own time (``-benchmark``, read by ``ffmpeg_seconds``),
    which it prints at the info level, so every line is tagged with its level."""
    logging = ["-loglevel", "level+info", "-nostats", "-benchmark"] if timed else ["-loglevel", "error"]
    # SVT_LOG=1: SVT-AV1 prints its whole configuration to stderr unless told errors only
    env = {**os.environ, "SVT_LOG": "1"}
    measured = run_measured([codec_ffmpeg(), "-hide_banner", "-nostdin", *logging, *args], data, env)
    if measured.returncode != 0:
        raise CodecError(f"{what}: ffmpeg failed (exit status {measured.returncode}): "
                         f"{_message(measured) or 'no message from ffmpeg'}")
    return measured


_TAGS = re.compile(r"^(?:\[[^\]]*\] ?)+")  # "[h264 @ 0x55d8...] [error] ": source and level


def _message(measured: Measured) -> str:
    """ffmpeg's explanation: its first error line (the cause) and its last (the outcome),
    without information and warning lines or the tags naming the component that printed
    them; "" when it printed none."""
    kept: list[str] = []
    for raw in measured.stderr.decode(errors="replace").splitlines():
        line = raw.strip()
        match = _TAGS.match(line)
        tags = match.group(0) if match else ""
        text = line[len(tags):].strip()
        if text and "[info]" not in tags and "[warning]" not in tags and text not in kept:
            kept.append(text)
    if not kept:
        return ""
    return kept[0] if len(kept) == 1 else f"{kept[0]} / {kept[-1]}"


_BENCHMARK = re.compile(rb"bench: utime=\S+ stime=\S+ rtime=([0-9.]+)s")


def ffmpeg_seconds(measured: Measured) -> float:
    """ffmpeg's own time of a ``timed`` run: from its input opened to its last frame out,
    its start-up (about 25 ms for this static build) left out, as the neural decoders'
    times leave out Python's; the process's wall time when ffmpeg did not report it."""
    found = _BENCHMARK.findall(measured.stderr)
    return float(found[-1]) if found else measured.seconds


def _raw_input(pix_fmt: str, height: int, width: int, fps: float) -> list[str]:
    return ["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{width}x{height}", "-framerate", f"{fps:g}",
            "-i", "pipe:0"]


def _raw_output(pix_fmt: str, height: int, width: int) -> list[str]:
    """Decoded frames cropped to height x width (the top-left corner: padding is bottom-right)."""
    return ["-vf", f"format={pix_fmt},crop={width}:{height}:0:0", "-pix_fmt", pix_fmt, "-fps_mode", "passthrough",
            "-f", "rawvideo", "pipe:1"]


def _check_array(array: np.ndarray, shape: str, ndim: int, what: str) -> None:
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != ndim or 0 in array.shape:
        got = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        raise ValueError(f"{what}: needs a non-empty uint8 array {shape}, got {got}")
    if ndim == 4 and array.shape[-1] != 3:
        raise ValueError(f"{what}: needs RGB frames {shape}, got {array.shape}")


def _padded(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """[T, h, w, ...] padded to [T, height, width, ...] by repeating the last row and column
    (unlike a black border, that keeps the chroma shared by the edge pixels true)."""
    extra = (height - frames.shape[1], width - frames.shape[2])
    if extra == (0, 0):
        return np.ascontiguousarray(frames)
    pad = [(0, 0), (0, extra[0]), (0, extra[1])] + [(0, 0)] * (frames.ndim - 3)
    return np.pad(frames, pad, mode="edge")


def _coded_size(height: int, width: int, pad_to: int, even: bool) -> tuple[int, int]:
    def side(n: int) -> int:
        n = max(n, pad_to)
        return n + n % 2 if even else n

    return side(height), side(width)


def _frames(measured: Measured, shape: tuple[int, ...], what: str) -> np.ndarray:
    """ffmpeg's raw output as a writable uint8 array of ``shape``; CodecError when it holds
    another number of frames."""
    per_frame = int(np.prod(shape[1:]))
    if len(measured.stdout) != per_frame * shape[0]:
        found = len(measured.stdout) / per_frame
        said = _message(measured)
        raise CodecError(f"{what}: decoded {found:g} frames of {shape[2]}x{shape[1]}, expected {shape[0]}"
                         + (f" (ffmpeg: {said})" if said else ""))
    return np.frombuffer(measured.stdout, np.uint8).reshape(shape).copy()


# --------------------------------------------------------------------------- gray images


def encode_gray_jpeg(image: np.ndarray, qscale: int) -> bytes:
    """uint8 [H, W] -> JPEG bytes; ``qscale`` 1 (best) .. 31 (ffmpeg's ``-q:v``)."""
    _check_array(image, "[H, W]", 2, "gray JPEG")
    if isinstance(qscale, bool) or not isinstance(qscale, (int, np.integer)) or not 1 <= qscale <= 31:
        raise ConfigError(f"JPEG qscale must be a whole number from 1 to 31, got {qscale!r}")
    height, width = image.shape
    # -qmin 1: ffmpeg's default floor of 2 would silently turn qscale 1 into 2.
    args = [*_raw_input("gray", height, width, 25), "-vf", "scale=out_range=pc,format=yuv420p",
            "-color_range", "pc", "-c:v", "mjpeg", "-qmin", "1", "-q:v", str(int(qscale)), "-frames:v", "1",
            "-f", "mjpeg", "pipe:1"]
    return _ffmpeg(args, np.ascontiguousarray(image).tobytes(), "gray JPEG encoding").stdout


def decode_gray_jpeg(data: bytes, height: int, width: int) -> np.ndarray:
    """JPEG bytes of a height x width image -> uint8 [H, W] (its luma, full range)."""
    measured = _ffmpeg(["-f", "mjpeg", "-i", "pipe:0", "-frames:v", "1", *_raw_output("gray", height, width)],
                       bytes(data), "gray JPEG decoding")
    return _frames(measured, (1, height, width), "gray JPEG decoding")[0]


def encode_gray_hevc(frames: np.ndarray, crf: float, preset: str = "slow", fps: float = 25,
                     bframes: int = 0) -> bytes:
    """uint8 [T, H, W] -> a 4:0:0 HEVC Annex B stream (libx265 at ``crf``, ``preset``)."""
    _check_array(frames, "[T, H, W]", 3, "gray HEVC")
    codec = CODECS["x265"]
    problem = codec.problem(preset, crf)
    if problem:
        raise ConfigError(f"gray HEVC: {problem}")
    if isinstance(bframes, bool) or not isinstance(bframes, (int, np.integer)) or not 0 <= bframes <= 16:
        raise ConfigError(f"gray HEVC: bframes must be a whole number from 0 to 16, got {bframes!r}")
    height, width = _coded_size(*frames.shape[1:3], codec.pad_to, even=False)
    params = f"bframes={int(bframes)}:info=0:log-level=error"
    args = [*_raw_input("gray", height, width, fps), "-c:v", codec.encoder, "-preset", str(preset),
            "-crf", f"{crf:g}", "-x265-params", params, "-pix_fmt", "gray", "-f", "hevc", "pipe:1"]
    return _ffmpeg(args, _padded(frames, height, width).tobytes(), "gray HEVC encoding").stdout


def decode_gray_hevc(data: bytes, frames: int, height: int, width: int) -> np.ndarray:
    """An ``encode_gray_hevc`` stream -> uint8 [T, H, W]."""
    measured = _ffmpeg(["-f", "hevc", "-i", "pipe:0", *_raw_output("gray", height, width)], bytes(data),
                       "gray HEVC decoding")
    return _frames(measured, (frames, height, width), "gray HEVC decoding")


# --------------------------------------------------------------------------- RGB videos


def encode_rgb_video_measured(frames: np.ndarray, codec: str, preset: str, crf: float, pix_fmt: str,
                              fps: float) -> tuple[bytes, Measured]:
    """``encode_rgb_video`` and its ffmpeg run (``Measured.stdout`` is emptied: it is the stream)."""
    _check_array(frames, "[T, H, W, 3]", 4, f"{codec} encoding")
    found = check_video_settings(codec, str(preset), crf, pix_fmt, codec)
    if min(frames.shape[1:3]) < found.min_side:
        raise ConfigError(f"{codec} needs frames of at least {found.min_side}x{found.min_side} pixels, got "
                          f"{frames.shape[2]}x{frames.shape[1]}; use another codec for such small frames")
    height, width = _coded_size(*frames.shape[1:3], found.pad_to, even=pix_fmt == "yuv420p")
    crf_text = str(int(crf)) if found.integer_crf else f"{crf:g}"
    args = [*_raw_input("rgb24", height, width, fps),
            "-vf", f"scale=out_color_matrix=bt709:out_range=tv:flags={SWS_FLAGS},format={pix_fmt}",
            *_COLOUR_TAGS, "-c:v", found.encoder, found.preset_option, str(preset), "-crf", crf_text,
            *found.options, "-f", found.stream_format, "pipe:1"]
    measured = _ffmpeg(args, _padded(frames, height, width).tobytes(), f"{codec} encoding")
    return measured.stdout, dataclasses.replace(measured, stdout=b"")


def encode_rgb_video(frames: np.ndarray, codec: str, preset: str, crf: float, pix_fmt: str, fps: float) -> bytes:
    """uint8 [T, H, W, 3] RGB -> the codec's elementary stream (see the module docstring).

    ``codec``: a key of CODECS; ``preset``: x264/x265 preset name, SVT-AV1 preset number or
    aom cpu-used (as text or number); ``crf``: the codec's constant-quality value;
    ``pix_fmt``: yuv420p or yuv444p; ``fps``: the frame rate written in the stream.
    """
    return encode_rgb_video_measured(frames, codec, preset, crf, pix_fmt, fps)[0]


def decode_rgb_video_measured(data: bytes, codec: str, frames: int, height: int,
                              width: int) -> tuple[np.ndarray, Measured]:
    """``decode_rgb_video`` and its ffmpeg run: the process's wall time and peak memory, and
    ffmpeg's own decoding time, the conversion to RGB included (``ffmpeg_seconds``).
    ``Measured.stdout`` is emptied: it is the frames."""
    found = video_codec(codec)
    args = ["-f", found.stream_format, "-i", "pipe:0",
            "-vf", f"scale=in_color_matrix=bt709:in_range=tv:flags={SWS_FLAGS},format=rgb24,"
                   f"crop={width}:{height}:0:0",
            "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1"]
    measured = _ffmpeg(args, bytes(data), f"{codec} decoding", timed=True)
    decoded = _frames(measured, (frames, height, width, 3), f"{codec} decoding")
    return decoded, dataclasses.replace(measured, stdout=b"")


def decode_rgb_video(data: bytes, codec: str, frames: int, height: int, width: int) -> np.ndarray:
    """A stream of ``encode_rgb_video`` -> uint8 [T, H, W, 3] RGB (``frames`` x ``height`` x
    ``width``: the size given to the encoder; its padding is cropped off)."""
    return decode_rgb_video_measured(data, codec, frames, height, width)[0]
