"""The frames stage on raw .yuv files (UVG as distributed): conversion against ffmpeg and
hand-made BT.709 codes, frame selection, fingerprints and bad files."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from test_frames import assert_no_store, extract, names_path, smooth_video

from nvd.core.config import SCHEMA_PATH, as_dict, section, validate_config
from nvd.core.errors import ConfigError, InputError
from nvd.data.frames import FramesConfig, RawVideoConfig, extract_frames
from nvd.data.stages import stage_config
from nvd.data.video_io import (
    RAW_PIX_FMTS,
    YUV_MATRICES,
    YUV_RANGES,
    ffmpeg_exe,
    raw_frame_bytes,
    yuv_to_rgb,
)

RAW_H, RAW_W = 36, 64
RAW = RawVideoConfig(width=RAW_W, height=RAW_H, pix_fmt="yuv420p", fps=120)


def raw_cfg(raw: RawVideoConfig = RAW, **frames: object) -> FramesConfig:
    return FramesConfig(**{"long_edge": None, **frames}, raw=raw)


def ffmpeg_yuv(frames: np.ndarray, pix_fmt: str) -> bytes:
    """RGB frames [T,H,W,3] -> raw planar YUV bytes by ffmpeg: BT.709, limited range, the
    area-averaging chroma it uses with full_chroma_int (the reference conversion)."""
    height, width = frames.shape[1:3]
    cmd = [ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
           "-i", "-", "-vf", f"scale=out_color_matrix=bt709:out_range=tv:flags=accurate_rnd+full_chroma_int,"
           f"format={pix_fmt}", "-f", "rawvideo", "-"]
    data = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=True).stdout
    assert len(data) == len(frames) * raw_frame_bytes(width, height, pix_fmt)
    return data


def ffmpeg_rgb(data: bytes, width: int, height: int, pix_fmt: str) -> np.ndarray:
    """ffmpeg's own YUV -> RGB of raw bytes (BT.709 limited, bilinear full chroma)."""
    cmd = [ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{width}x{height}",
           "-i", "-", "-vf", "scale=in_color_matrix=bt709:in_range=tv:"
           "flags=bilinear+accurate_rnd+full_chroma_int+full_chroma_inp,format=rgb24", "-f", "rawvideo", "-"]
    out = subprocess.run(cmd, input=data, capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)


def yuv_file(path: Path, frames: np.ndarray, pix_fmt: str = "yuv420p") -> Path:
    path.write_bytes(ffmpeg_yuv(frames, pix_fmt))
    return path


@pytest.mark.parametrize(
    "pix_fmt, mean_limit, max_limit",
    [("yuv420p", 0.5, 4), ("yuv444p", 0.5, 2), ("yuv422p", 0.5, 4), ("yuv420p10le", 0.25, 4)],
)
def test_raw_yuv_round_trip(tmp_path: Path, pix_fmt: str, mean_limit: float, max_limit: int) -> None:
    frames = smooth_video(5, RAW_H, RAW_W)
    path = yuv_file(tmp_path / "clip.yuv", frames, pix_fmt)
    raw = dataclasses.replace(RAW, pix_fmt=pix_fmt)
    video, attrs = extract(path, tmp_path / "frames.zarr", raw_cfg(raw))
    assert video.shape == frames.shape and video.dtype == np.uint8
    # Measured: 0.36 / 0.40 / 0.36 / 0.12 levels on average, at most 3 / 2 / 3 / 3 (8-bit
    # YUV quantisation, and chroma subsampling on the sharpest colour slopes). A wrong
    # matrix (BT.601), range or plane order, or a frame shift, is off by tens of levels.
    error = np.abs(video.astype(int) - frames)
    assert error.mean() < mean_limit and error.max() <= max_limit, (error.mean(), error.max())
    # ffmpeg's own decode with the same matrix, range and chroma filter agrees to one level.
    reference = ffmpeg_rgb(path.read_bytes(), RAW_W, RAW_H, pix_fmt)
    assert np.abs(video.astype(int) - reference).max() <= 1
    assert attrs["fps"] == 120.0
    assert attrs["frame_indices"] == list(range(5))
    assert attrs["source"] == str(path)
    assert attrs["source_size"] == [RAW_H, RAW_W] and attrs["size"] == [RAW_H, RAW_W]
    assert attrs["source_frame_names"] is None and attrs["skipped_files"] == []
    assert attrs["source_fingerprint"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert attrs["nvd"]["config"]["raw"] == dataclasses.asdict(raw)


def bt709_codes(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """8-bit limited-range BT.709 Y, Cb, Cr of an R'G'B' colour in 0..1 (unrounded)."""
    kr, kb = 0.2126, 0.0722
    r, g, b = rgb
    y = kr * r + (1 - kr - kb) * g + kb * b
    return 16 + 219 * y, 128 + 224 * (b - y) / (2 - 2 * kb), 128 + 224 * (r - y) / (2 - 2 * kr)


def uniform_frames(codes: list[tuple[float, float, float]], pix_fmt: str, scale: float = 1.0) -> bytes:
    """Raw frames of one YUV code triple each (8-bit codes times ``scale``), made by hand."""
    (h, w), (ch, cw) = (RAW_H, RAW_W), (RAW_H // 2, RAW_W // 2)
    if pix_fmt.startswith("yuv444"):
        ch, cw = h, w
    dtype = np.uint8 if RAW_PIX_FMTS[pix_fmt][2] == 8 else np.dtype("<u2")
    out = b""
    for y, u, v in codes:
        planes = [np.full(h * w, y), np.full(ch * cw, u), np.full(ch * cw, v)]
        out += b"".join((np.rint(p * scale)).astype(dtype).tobytes() for p in planes)
    return out


PRIMARIES = [(1, 1, 1), (0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.25, 0.75)]


@pytest.mark.parametrize("pix_fmt, scale", [("yuv420p", 1), ("yuv444p", 1), ("yuv420p10le", 4)])
def test_raw_yuv_bt709_limited_range_codes(tmp_path: Path, pix_fmt: str, scale: int) -> None:
    """Hand-made BT.709 limited-range codes (white Y=235, black Y=16, ...) decode to their
    colours within rounding, and 10-bit codes (times 4) to the same colours."""
    path = tmp_path / "colours.yuv"
    path.write_bytes(uniform_frames([bt709_codes(c) for c in PRIMARIES], pix_fmt, scale))
    video, _ = extract(path, tmp_path / "frames.zarr", raw_cfg(dataclasses.replace(RAW, pix_fmt=pix_fmt)))
    expected = np.array(PRIMARIES) * 255
    got = video.reshape(len(PRIMARIES), -1, 3)
    assert (got == got[:, :1]).all()  # uniform frames stay uniform
    np.testing.assert_allclose(got[:, 0], expected, atol=1.5)


def test_raw_yuv_matrix_and_range_settings(tmp_path: Path) -> None:
    red = bt709_codes((1, 0, 0))
    path = tmp_path / "red.yuv"
    path.write_bytes(uniform_frames([red, (16, 128, 128), (235, 128, 128)], "yuv444p"))
    raw = dataclasses.replace(RAW, pix_fmt="yuv444p")
    bt709, _ = extract(path, tmp_path / "a.zarr", raw_cfg(raw))
    bt601, _ = extract(path, tmp_path / "b.zarr", raw_cfg(dataclasses.replace(raw, matrix="bt601")))
    full, _ = extract(path, tmp_path / "c.zarr", raw_cfg(dataclasses.replace(raw, range="full")))
    assert np.abs(bt709[0, 0, 0].astype(int) - (255, 0, 0)).max() <= 1
    assert bt601[0, 0, 0, 0] < 240  # BT.709 red read with BT.601 loses a tenth of its red
    assert bt709[1, 0, 0].tolist() == [0, 0, 0] and bt709[2, 0, 0].tolist() == [255, 255, 255]
    # Full range: Y=16 and Y=235 are dark and light grays, not black and white.
    assert full[1, 0, 0].tolist() == [16, 16, 16] and full[2, 0, 0].tolist() == [235, 235, 235]


def test_raw_yuv_upper_case_suffix_and_odd_size(tmp_path: Path) -> None:
    frames = smooth_video(2, 35, 63)
    path = yuv_file(tmp_path / "CLIP.YUV", frames, "yuv420p")
    raw = RawVideoConfig(width=63, height=35)
    video, attrs = extract(path, tmp_path / "frames.zarr", raw_cfg(raw))
    assert video.shape == (2, 35, 63, 3) and attrs["fps"] is None
    assert np.abs(video.astype(int) - frames).mean() < 1.5


def test_raw_yuv_selection_resize_and_fingerprint(tmp_path: Path) -> None:
    frames = smooth_video(7, RAW_H, RAW_W)
    path = yuv_file(tmp_path / "clip.yuv", frames)
    native, _ = extract(path, tmp_path / "all.zarr", raw_cfg())
    assert all((native[i] != native[i + 1]).any() for i in range(6))  # every frame differs
    n = raw_frame_bytes(RAW_W, RAW_H, "yuv420p")
    assert n == RAW_W * RAW_H * 3 // 2
    cases = {
        (2, 1, None): [2, 3, 4, 5, 6],
        (1, 2, None): [1, 3, 5],
        (1, 2, 2): [1, 3],
        (0, 3, None): [0, 3, 6],
        (6, 5, None): [6],
    }
    for (first, step, most), expected in cases.items():
        cfg = raw_cfg(first_frame=first, step=step, max_frames=most)
        video, attrs = extract(path, tmp_path / "frames.zarr", cfg)
        assert attrs["frame_indices"] == expected
        np.testing.assert_array_equal(video, native[expected])
        data = path.read_bytes()
        selected = b"".join(data[i * n : (i + 1) * n] for i in expected)
        assert attrs["source_fingerprint"] == hashlib.sha256(selected).hexdigest()

    cfg = raw_cfg(long_edge=32, first_frame=1, step=2)
    video, attrs = extract(path, tmp_path / "small.zarr", cfg)
    assert video.shape == (3, 18, 32, 3)
    assert attrs["size"] == [18, 32] and attrs["source_size"] == [RAW_H, RAW_W]
    for k, i in enumerate([1, 3, 5]):
        np.testing.assert_array_equal(video[k], cv2.resize(native[i], (32, 18), interpolation=cv2.INTER_AREA))

    # Bytes of a frame that is not selected are not read; those of a selected one are.
    fingerprint = attrs["source_fingerprint"]
    data = bytearray(path.read_bytes())
    data[2 * n + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    assert extract(path, tmp_path / "small.zarr", cfg)[1]["source_fingerprint"] == fingerprint
    data[3 * n + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    assert extract(path, tmp_path / "small.zarr", cfg)[1]["source_fingerprint"] != fingerprint


def test_raw_yuv_reads_only_the_selected_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = yuv_file(tmp_path / "clip.yuv", smooth_video(6, RAW_H, RAW_W))
    n = raw_frame_bytes(RAW_W, RAW_H, "yuv420p")
    reads: list[int] = []
    real_open = Path.open

    def recording_open(self: Path, *args, **kwargs):
        fh = real_open(self, *args, **kwargs)
        if self == path:
            real_read = fh.read

            def read(size: int = -1) -> bytes:
                reads.append(size)
                return real_read(size)

            return _ReadProxy(fh, read)
        return fh

    monkeypatch.setattr(Path, "open", recording_open)
    extract(path, tmp_path / "frames.zarr", raw_cfg(first_frame=1, step=4))
    assert reads == [n, n]  # frames 1 and 5, one frame-sized read each


class _ReadProxy:
    def __init__(self, fh, read) -> None:
        self._fh, self.read = fh, read

    def __getattr__(self, name: str):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()


def test_raw_yuv_truncated_file(tmp_path: Path) -> None:
    path = yuv_file(tmp_path / "clip.yuv", smooth_video(5, RAW_H, RAW_W))
    n = raw_frame_bytes(RAW_W, RAW_H, "yuv420p")
    path.write_bytes(path.read_bytes()[: 4 * n + 1000])
    size = 4 * n + 1000
    message = (rf"file size {size} bytes is not a whole number of 64x36 \(WxH\) yuv420p frames of {n} bytes "
               rf"each \(4 frames and 1000 bytes left over\).*frames\.raw\.width/height/pix_fmt")
    with pytest.raises(InputError, match=names_path(path, message)):
        extract_frames(path, tmp_path / "frames.zarr", raw_cfg())
    # The same file read as 4:4:4 is not whole frames either.
    with pytest.raises(InputError, match=names_path(path, "not a whole number")):
        extract_frames(path, tmp_path / "frames.zarr", raw_cfg(dataclasses.replace(RAW, pix_fmt="yuv444p")))
    assert_no_store(tmp_path / "frames.zarr")


def test_raw_yuv_without_raw_config(tmp_path: Path) -> None:
    path = yuv_file(tmp_path / "Beauty_64x36_120fps_420_8bit_YUV.yuv", smooth_video(2, RAW_H, RAW_W))
    with pytest.raises(ConfigError, match=names_path(path, r"set frames\.raw\.width/height/pix_fmt")) as info:
        extract_frames(path, tmp_path / "frames.zarr", FramesConfig())
    # The UVG-style name's values are offered as the setting to write.
    assert "frames: {raw: {width: 64, height: 36, pix_fmt: yuv420p, fps: 120}}" in str(info.value)
    assert_no_store(tmp_path / "frames.zarr")


def test_raw_yuv_empty_file_and_first_frame_beyond_the_end(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yuv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=names_path(empty, r"empty \(0 bytes\)")):
        extract_frames(empty, tmp_path / "frames.zarr", raw_cfg())
    path = yuv_file(tmp_path / "clip.yuv", smooth_video(3, RAW_H, RAW_W))
    with pytest.raises(InputError, match=names_path(path, "first_frame=3 but the file has 3 64x36")):
        extract_frames(path, tmp_path / "frames.zarr", raw_cfg(first_frame=3))
    assert_no_store(tmp_path / "frames.zarr")


def test_raw_yuv_name_contradicting_the_config_warns(tmp_path: Path) -> None:
    # A 128x72 frame is four 64x36 ones: the size check cannot catch this mistake.
    path = yuv_file(tmp_path / "Beauty_128x72_120fps_420_8bit_YUV.yuv", smooth_video(1, 72, 128))
    with pytest.warns(UserWarning, match=r"name suggests \{width: 128, height: 72\} but frames\.raw has "
                                         r"\{width: 64, height: 36\}"):
        video, _ = extract(path, tmp_path / "frames.zarr", raw_cfg())
    assert len(video) == 4


def test_yuv_to_rgb_refuses_a_wrong_length() -> None:
    with pytest.raises(ValueError, match="needs 3456 bytes, got 3455"):
        yuv_to_rgb(bytes(3455), RAW_W, RAW_H, "yuv420p")


def test_raw_config_sections(tmp_path: Path) -> None:
    """frames.raw from a config mapping, globally or per dataset, becomes RawVideoConfig."""
    config = {
        "frames": {"long_edge": 512, "raw": {"width": 64, "height": 36}},
        "datasets": {
            "uvg": {"videos": {"beauty": "Beauty.yuv"},
                    "frames": {"raw": {"width": 1920, "height": 1080, "pix_fmt": "yuv420p", "fps": 120}}},
            "mine": {"videos": {"clip": "clip.mp4"}},
        },
    }
    validate_config(config)
    uvg = stage_config(config, "frames", "uvg")
    assert uvg.raw == RawVideoConfig(width=1920, height=1080, pix_fmt="yuv420p", fps=120.0)
    assert uvg.long_edge == 512 and isinstance(uvg.raw.fps, float)
    assert stage_config(config, "frames", "mine").raw == RawVideoConfig(width=64, height=36)
    # The Snakemake params route: the section as a plain dict, then FramesConfig(**params).
    assert FramesConfig(**as_dict(uvg)) == uvg
    assert FramesConfig().raw is None
    with pytest.raises(ConfigError, match=r"frames\.raw': unknown key\(s\) \['depth'\]"):
        section(FramesConfig, {"raw": {"width": 4, "height": 4, "depth": 8}}, "frames")
    with pytest.raises(ConfigError, match=r"frames\.raw': missing required key\(s\) \['height'\]"):
        FramesConfig(raw={"width": 4})
    for raw, key in [(RawVideoConfig(0, 4), "width"), (RawVideoConfig(4, 4, pix_fmt="nv12"), "pix_fmt"),
                     (RawVideoConfig(4, 4, fps=0), "fps"), (RawVideoConfig(4, 4, matrix="srgb"), "matrix")]:
        with pytest.raises(ConfigError, match=rf"frames\.raw\.{key}"):
            extract_frames(tmp_path / "x.yuv", tmp_path / "frames.zarr", FramesConfig(raw=raw))


def test_raw_schema_block() -> None:
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    raw_schema = next(alt for alt in schema["$defs"]["frames"]["properties"]["raw"]["anyOf"]
                      if alt.get("type") == "object")
    assert set(raw_schema["properties"]) == {f.name for f in dataclasses.fields(RawVideoConfig)}
    assert raw_schema["properties"]["pix_fmt"]["enum"] == list(RAW_PIX_FMTS)
    assert raw_schema["properties"]["matrix"]["enum"] == list(YUV_MATRICES)
    assert raw_schema["properties"]["range"]["enum"] == list(YUV_RANGES)
    assert raw_schema["additionalProperties"] is False

    def config(raw: object, where: str) -> dict:
        frames = {"raw": raw}
        dataset = {"videos": {"beauty": "Beauty.yuv"}, **({"frames": frames} if where == "dataset" else {})}
        return {"datasets": {"uvg": dataset}, **({"frames": frames} if where == "global" else {})}

    good = {"width": 1920, "height": 1080, "pix_fmt": "yuv420p10le", "fps": 119.88, "matrix": "bt709",
            "range": "limited"}
    for where, prefix in [("global", "frames.raw"), ("dataset", "datasets.uvg.frames.raw")]:
        validate_config(config(good, where))
        validate_config(config(None, where))
        bad = [
            ({**good, "bit_depth": 10}, rf"'{prefix}': unknown key\(s\) \['bit_depth'\]"),
            ({"width": 1920}, rf"'{prefix}': missing required key\(s\) \['height'\]"),
            ({**good, "pix_fmt": "nv12"}, rf"'{prefix}\.pix_fmt': expected one of 'yuv420p'"),
            ({**good, "fps": 0}, rf"'{prefix}\.fps': expected a number > 0 or null"),
            ({**good, "width": 0}, rf"'{prefix}\.width': expected a positive integer"),
            ("1920x1080", rf"'{prefix}': expected a mapping or null"),
        ]
        for raw, message in bad:
            with pytest.raises(ConfigError, match=message):
                validate_config(config(raw, where))
