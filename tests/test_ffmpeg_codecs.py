"""The ffmpeg codec primitives (gray JPEG and HEVC for feature images, RGB video codecs) and
the decoder measurement they report."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import smooth_clip

from nvd.compression.ffmpeg import (
    CODECS,
    CodecError,
    codec_ffmpeg,
    decode_gray_hevc,
    decode_gray_jpeg,
    decode_rgb_video,
    decode_rgb_video_measured,
    encode_gray_hevc,
    encode_gray_jpeg,
    encode_rgb_video,
    encode_rgb_video_measured,
    ffmpeg_seconds,
)
from nvd.compression.measure import run_measured
from nvd.core.errors import ConfigError


def gray_clip(frames: int, height: int, width: int) -> np.ndarray:
    """uint8 [T, H, W]: the green channel of conftest's smooth clip."""
    return np.ascontiguousarray(smooth_clip(frames, height, width).numpy()[..., 1])


def abs_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2)))


# --------------------------------------------------------------------------- gray JPEG


def test_gray_jpeg_round_trip_is_close_and_smaller_at_a_coarser_qscale():
    image = gray_clip(1, 33, 47)[0]  # odd sizes: 4:2:0 chroma of half-pixels
    sizes = []
    for qscale in (2, 3, 8, 20):
        data = encode_gray_jpeg(image, qscale)
        assert data[:2] == b"\xff\xd8"  # a JPEG (SOI marker), no container around it
        decoded = decode_gray_jpeg(data, 33, 47)
        assert decoded.shape == (33, 47) and decoded.dtype == np.uint8
        sizes.append(len(data))
        if qscale == 2:  # the NVP paper's qscale for level 0; measured: max 1, mean 0.36
            assert abs_error(decoded, image).max() <= 2 and abs_error(decoded, image).mean() < 0.6
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (2, 40)])
def test_gray_jpeg_takes_any_size(shape):
    image = gray_clip(1, *shape)[0]
    decoded = decode_gray_jpeg(encode_gray_jpeg(image, 2), *shape)
    assert decoded.shape == shape and abs_error(decoded, image).max() <= 3  # measured: 1


def test_gray_jpeg_checks_its_arguments():
    with pytest.raises(ConfigError, match="qscale"):
        encode_gray_jpeg(gray_clip(1, 8, 8)[0], 0)
    with pytest.raises(ValueError, match=r"uint8 array \[H, W\]"):
        encode_gray_jpeg(np.zeros((8, 8), np.float32), 2)
    with pytest.raises(CodecError, match="gray JPEG decoding: ffmpeg failed"):
        decode_gray_jpeg(b"not a jpeg at all", 8, 8)


# --------------------------------------------------------------------------- gray HEVC


def test_gray_hevc_round_trip_is_close_deterministic_and_smaller_at_a_higher_crf():
    video = gray_clip(5, 33, 47)
    sizes = []
    for crf in (10, 21, 35):
        data = encode_gray_hevc(video, crf)
        assert data[:4] == b"\x00\x00\x00\x01"  # Annex B start code: a raw HEVC stream
        decoded = decode_gray_hevc(data, 5, 33, 47)
        assert decoded.shape == (5, 33, 47) and decoded.dtype == np.uint8
        sizes.append(len(data))
        if crf == 21:  # the NVP paper's setting; measured: max 2, mean 0.59
            assert abs_error(decoded, video).max() <= 4 and abs_error(decoded, video).mean() < 1.0
            assert np.array_equal(decode_gray_hevc(data, 5, 33, 47), decoded)
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (2, 16, 15), (1, 2, 40)])
def test_gray_hevc_takes_sizes_x265_refuses(shape):
    # x265 refuses frames under 16 px a side: they are padded and cropped back
    video = gray_clip(*shape)
    decoded = decode_gray_hevc(encode_gray_hevc(video, 21), *shape)
    assert decoded.shape == shape and abs_error(decoded, video).max() <= 8  # measured: 4


def test_gray_hevc_checks_settings_and_frame_counts():
    video = gray_clip(3, 16, 16)
    with pytest.raises(ConfigError, match="x265 takes a crf from 0 to 51"):
        encode_gray_hevc(video, 60)
    with pytest.raises(ConfigError, match="x265 has no preset 'quick'"):
        encode_gray_hevc(video, 21, preset="quick")
    with pytest.raises(CodecError, match="decoded 3 frames of 16x16, expected 4"):
        decode_gray_hevc(encode_gray_hevc(video, 21), 4, 16, 16)


# --------------------------------------------------------------------------- RGB videos


def test_yuv444_at_lossless_settings_loses_only_the_colour_conversion():
    clip = smooth_clip(4, 33, 47).numpy()
    decoded = decode_rgb_video(encode_rgb_video(clip, "x264", "ultrafast", 0, "yuv444p", 25), "x264", 4, 33, 47)
    # 8-bit limited-range Y'CbCr: at most 2 levels off in RGB (measured 52.1 dB, max 2)
    assert abs_error(decoded, clip).max() <= 2 and psnr(decoded, clip) > 51


@pytest.mark.parametrize("codec, pix_fmt", [(c, p) for c in CODECS for p in CODECS[c].pix_fmts])
def test_every_codec_round_trips_an_odd_sized_clip(codec, pix_fmt):
    clip = smooth_clip(5, 35, 49).numpy()  # odd sizes: 4:2:0 is padded and cropped back
    preset = {"svtav1": "12", "aom": "8"}.get(codec, "ultrafast")
    crf = {"svtav1": 20, "aom": 20}.get(codec, 18)
    data, encoding = encode_rgb_video_measured(clip, codec, preset, crf, pix_fmt, 25)
    decoded, decoding = decode_rgb_video_measured(data, codec, 5, 35, 49)
    assert decoded.shape == (5, 35, 49, 3) and decoded.dtype == np.uint8
    assert psnr(decoded, clip) > 38  # measured 40-45 dB on this smooth clip
    assert np.array_equal(decode_rgb_video(data, codec, 5, 35, 49), decoded)  # decoding is deterministic
    assert encoding.seconds > 0 and encoding.stdout == b"" and decoding.stdout == b""
    assert 0 < ffmpeg_seconds(decoding) < decoding.seconds  # ffmpeg's own time: its start-up left out
    # the ffmpeg process alone (tens of MB), not this test process's memory
    assert 5 < decoding.peak_rss_mb < 400


def test_bytes_fall_as_crf_rises():
    clip = smooth_clip(6, 32, 48).numpy()
    for codec in ("x264", "x265"):
        sizes = [len(encode_rgb_video(clip, codec, "ultrafast", crf, "yuv420p", 25)) for crf in (10, 25, 40)]
        assert sizes[0] > sizes[1] > sizes[2], (codec, sizes)


def test_streams_carry_no_encoder_comment():
    # x264 and x265 write their version and settings as SEI by default: left out
    clip = smooth_clip(3, 16, 16).numpy()
    for codec in ("x264", "x265"):
        data = encode_rgb_video(clip, codec, "medium", 20, "yuv420p", 25)
        assert b"options:" not in data and b"x26" not in data, codec


def test_unsupported_settings_are_config_errors():
    clip = smooth_clip(3, 32, 32).numpy()
    with pytest.raises(ConfigError, match=r"svtav1 encodes yuv420p only, not 'yuv444p'"):
        encode_rgb_video(clip, "svtav1", "8", 30, "yuv444p", 25)
    with pytest.raises(ConfigError, match="svtav1 needs frames of at least 16x16"):
        encode_rgb_video(smooth_clip(3, 8, 8).numpy(), "svtav1", "8", 30, "yuv420p", 25)
    with pytest.raises(ConfigError, match="unknown video codec 'vp9'"):
        encode_rgb_video(clip, "vp9", "medium", 30, "yuv420p", 25)
    with pytest.raises(ConfigError, match="whole-number crf"):
        encode_rgb_video(clip, "aom", "8", 30.5, "yuv420p", 25)
    with pytest.raises(ConfigError, match="svtav1 takes a crf from 1 to 63"):
        encode_rgb_video(clip, "svtav1", "8", 0, "yuv420p", 25)


def test_a_damaged_stream_is_a_codec_error_with_ffmpegs_words():
    data = encode_rgb_video(smooth_clip(4, 32, 32).numpy(), "x265", "ultrafast", 25, "yuv420p", 25)
    with pytest.raises(CodecError, match="x265 decoding") as caught:
        decode_rgb_video(data[: len(data) // 3], "x265", 4, 32, 32)
    message = str(caught.value)
    assert ("expected 4" in message or "ffmpeg failed" in message) and "[info]" not in message


# --------------------------------------------------------------------------- measurement


def test_run_measured_reports_the_commands_own_memory_time_and_output():
    held = np.ones(300 * 2**20, np.uint8)  # this process: 300 MB more, which must not count
    small = run_measured([sys.executable, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])"],
                         b"abc")
    big = run_measured([sys.executable, "-c", "b = bytearray(200 * 2**20); import time; time.sleep(0.2)"])
    assert small.stdout == b"cba" and small.returncode == 0
    assert small.peak_rss_mb < 100 < 200 < big.peak_rss_mb < 300
    assert big.seconds >= 0.2
    failed = run_measured([sys.executable, "-c", "import sys; sys.stderr.write('bad thing'); sys.exit(3)"])
    assert failed.returncode == 3 and failed.stderr_tail() == "bad thing"
    missing = run_measured(["/nonexistent/decoder"])
    assert missing.returncode == 127 and "cannot run /nonexistent/decoder" in missing.stderr_tail()
    assert held[-1] == 1


def test_the_bitstream_files_are_plain_streams_ffmpeg_recognises(tmp_path):
    clip = smooth_clip(3, 32, 32).numpy()
    for codec in ("x264", "x265", "svtav1"):
        path = tmp_path / f"stream.{CODECS[codec].suffix}"
        path.write_bytes(encode_rgb_video(clip, codec, {"svtav1": "12"}.get(codec, "ultrafast"), 20, "yuv420p", 25))
        # no -f: ffmpeg finds the format from the file, as a user's `ffmpeg -i` or player does
        proc = subprocess.run([codec_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                               "-"], capture_output=True)
        assert proc.returncode == 0 and len(proc.stdout) == clip.nbytes, (codec, proc.stderr[-300:])
