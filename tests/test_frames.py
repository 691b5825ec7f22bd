"""Stage 1 (frames): frame folders -> frames.zarr, bad input, interruption, and the
video_io helpers; the helpers here are shared with test_frames_video.py (video files) and
test_frames_raw.py (raw .yuv).

All inputs are small synthetic images and videos made here; H.264 files come from
``write_video``, so the same ffmpeg that decodes them also encodes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import zarr
from PIL import Image

from nvd.core.errors import ConfigError, InputError, StoreError
from nvd.core.publish import partial_paths
from nvd.core.versioning import code_version
from nvd.data.frames import FramesConfig, extract_frames, load_frames
from nvd.data.stores import new_array, open_store
from nvd.data.video_io import (
    ffmpeg_exe,
    iter_video_frames,
    list_frame_files,
    probe_video,
    read_image_rgb,
    write_video,
)

REPO = Path(__file__).resolve().parent.parent
NATIVE = FramesConfig(long_edge=None)


def indexed_frame(index: int, height: int = 40, width: int = 60) -> np.ndarray:
    """uint8 [H,W,3]: red = the frame index, green/blue = x/y ramps (to see geometry)."""
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = index
    frame[..., 1] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    frame[..., 2] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    return frame


def write_pngs(folder: Path, names: list[str], height: int = 40, width: int = 60) -> list[np.ndarray]:
    """Write names[i] as indexed_frame(i); returns the RGB frames."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = [indexed_frame(i, height, width) for i in range(len(names))]
    for name, frame in zip(names, frames):
        Image.fromarray(frame).save(folder / name)
    return frames


def smooth_video(n: int, height: int = 64, width: int = 96) -> np.ndarray:
    """uint8 [T,H,W,3] slowly moving low-frequency colour waves: content H.264 keeps well."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.arange(n, dtype=np.float32)[:, None, None]
    r = 128 + 90 * np.sin(x / 17 + t / 6)
    g = 128 + 90 * np.cos(y / 13 - t / 9)
    b = 128 + 90 * np.sin((x + y) / 29 + t / 11)
    return np.stack([r, g, b], axis=-1).round().astype(np.uint8)


def gray_level_video(path: Path, n: int) -> Path:
    """Frame i is uniform gray 20 + 8 i, so the source index survives H.264 coding."""
    frames = np.stack([np.full((32, 48, 3), 20 + 8 * i, np.uint8) for i in range(n)])
    return write_video(path, frames, fps=25)


def decoded_index(frame: np.ndarray) -> int:
    return round((float(frame.mean()) - 20) / 8)


def extract(source: Path, out: Path, cfg: FramesConfig = NATIVE) -> tuple[np.ndarray, dict]:
    """extract_frames then load_frames: (uint8 [T,H,W,3], attrs)."""
    return load_frames(extract_frames(source, out, cfg))


def names_path(path: Path, then: str = "") -> str:
    """A pytest.raises match: the message names ``path``, followed later by ``then``."""
    return re.escape(str(path)) + (".*" + then if then else "")


# --------------------------------------------------------------------------- frame folders


def test_unpadded_numbers_sort_numerically(tmp_path: Path) -> None:
    names = [f"{i}.png" for i in range(1, 13)]
    frames = write_pngs(tmp_path / "seq", names)
    files = list_frame_files(tmp_path / "seq")
    assert [f.name for f in files] == names  # 2.png before 10.png, though "10" < "2" as text

    video, attrs = extract(tmp_path / "seq", tmp_path / "frames.zarr")
    assert video.shape == (12, 40, 60, 3) and video.dtype == np.uint8
    np.testing.assert_array_equal(video, np.stack(frames))
    assert attrs["source_frame_names"] == names
    assert attrs["frame_indices"] == list(range(12))
    assert attrs["fps"] is None


@pytest.mark.parametrize(
    "pattern, start",
    [("f{:05d}.png", 1), ("frame_{}.png", 0), ("{:05d}.PNG", 0), ("img{:03d}.jpeg", 7)],
    ids=["uvg", "frame_n", "upper-suffix", "jpeg-from-7"],
)
def test_frame_name_patterns(tmp_path: Path, pattern: str, start: int) -> None:
    names = [pattern.format(start + i) for i in range(11)]
    write_pngs(tmp_path / "seq", names)
    assert [f.name for f in list_frame_files(tmp_path / "seq")] == names


def test_davis_layout(tmp_path: Path) -> None:
    seq = tmp_path / "DAVIS" / "JPEGImages" / "480p" / "bear"
    seq.mkdir(parents=True)
    frames = [indexed_frame(40 * i) for i in range(5)]
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(seq / f"{i:05d}.jpg", quality=95)

    video, attrs = extract(seq, tmp_path / "bear" / "frames.zarr", FramesConfig())
    assert video.shape == (5, 40, 60, 3)
    assert attrs["source_frame_names"] == [f"{i:05d}.jpg" for i in range(5)]
    # JPEG at quality 95 on smooth ramps is within a few levels on average.
    assert np.abs(video.astype(int) - np.stack(frames)).mean() < 2


def test_first_frame_step_max_frames_select_source_indices(tmp_path: Path) -> None:
    write_pngs(tmp_path / "seq", [f"{i:03d}.png" for i in range(20)])
    cases = {
        FramesConfig(long_edge=None, first_frame=3, step=4): [3, 7, 11, 15, 19],
        FramesConfig(long_edge=None, first_frame=3, step=4, max_frames=2): [3, 7],
        FramesConfig(long_edge=None, step=7): [0, 7, 14],
        FramesConfig(long_edge=None, first_frame=19): [19],
    }
    for cfg, expected in cases.items():
        video, attrs = extract(tmp_path / "seq", tmp_path / "frames.zarr", cfg)
        assert attrs["frame_indices"] == expected, cfg
        assert video[:, 0, 0, 0].tolist() == expected, cfg  # red channel holds the index
        assert attrs["source_frame_names"] == [f"{i:03d}.png" for i in expected]


@pytest.mark.parametrize(
    "source_hw, long_edge, expected_hw",
    [
        ((40, 60), 30, (20, 30)),  # landscape halves exactly
        ((60, 40), 30, (30, 20)),  # portrait: the long edge is the height
        ((71, 100), 50, (36, 50)),  # 35.5 rounds to nearest (up)
        ((40, 60), 1000, (40, 60)),  # never upscaled
        ((40, 60), 60, (40, 60)),  # already at the limit
        ((40, 60), None, (40, 60)),  # native
    ],
)
def test_long_edge_resize(
    tmp_path: Path, source_hw: tuple[int, int], long_edge: int | None, expected_hw: tuple[int, int]
) -> None:
    write_pngs(tmp_path / "seq", ["0.png", "1.png"], *source_hw)
    video, attrs = extract(tmp_path / "seq", tmp_path / "f.zarr", FramesConfig(long_edge=long_edge))
    assert video.shape == (2, *expected_hw, 3)
    assert attrs["size"] == list(expected_hw)
    assert attrs["source_size"] == list(source_hw)
    assert max(video.shape[1:3]) <= (long_edge or max(source_hw))
    # INTER_AREA keeps a constant channel constant and a ramp monotonic.
    assert (video[1, ..., 0] == 1).all()
    assert (np.diff(video[0, 0, :, 1].astype(int)) >= 0).all()


def test_store_attrs_and_fingerprint(tmp_path: Path) -> None:
    seq = tmp_path / "seq"
    write_pngs(seq, [f"{i}.png" for i in range(6)])
    cfg = FramesConfig(long_edge=30, step=2)
    out = tmp_path / "frames.zarr"
    _, attrs = extract(seq, out, cfg)
    selected = b"".join((seq / f"{i}.png").read_bytes() for i in (0, 2, 4))
    assert attrs["source_fingerprint"] == hashlib.sha256(selected).hexdigest()
    assert attrs["source"] == str(seq)
    assert attrs["size"] == [20, 30] and attrs["source_size"] == [40, 60]
    assert attrs["source_frame_names"] == ["0.png", "2.png", "4.png"]
    assert attrs["nvd"]["stage"] == "frames"
    assert attrs["nvd"]["config"] == dataclasses.asdict(cfg)
    assert attrs["nvd"]["code_version"] == code_version("frames")
    group = open_store(out, "frames")
    assert group["frames"].metadata.dimension_names == ("t", "y", "x", "c")
    assert group["frames"].chunks == (1, 20, 30, 3)

    # A frame that is not selected is not read, so it does not change the fingerprint ...
    Image.fromarray(indexed_frame(99)).save(seq / "3.png")
    assert extract(seq, out, cfg)[1]["source_fingerprint"] == attrs["source_fingerprint"]
    # ... a selected one does.
    Image.fromarray(indexed_frame(99)).save(seq / "2.png")
    assert extract(seq, out, cfg)[1]["source_fingerprint"] != attrs["source_fingerprint"]


def test_read_image_rgb_converts_modes(tmp_path: Path) -> None:
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[..., 3] = 7  # alpha is dropped, not composited
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((4, 5), 77, np.uint8), "L").save(tmp_path / "gray.png")
    palette = Image.new("P", (5, 4))
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    palette.putpixel((1, 2), 1)
    palette.save(tmp_path / "palette.png")

    assert (read_image_rgb(tmp_path / "rgba.png") == (10, 20, 30)).all()
    assert (read_image_rgb(tmp_path / "gray.png") == 77).all()
    pal = read_image_rgb(tmp_path / "palette.png")
    assert pal.shape == (4, 5, 3) and pal.dtype == np.uint8
    assert pal[2, 1].tolist() == [200, 100, 50] and pal[0, 0].tolist() == [0, 0, 0]


# --------------------------------------------------------------------------- bad input


def test_bad_config_values(tmp_path: Path) -> None:
    write_pngs(tmp_path / "seq", ["0.png"])
    for cfg, key in [(FramesConfig(step=0), "step"), (FramesConfig(long_edge=0), "long_edge")]:
        with pytest.raises(ConfigError, match=f"frames.{key}"):
            extract_frames(tmp_path / "seq", tmp_path / "frames.zarr", cfg)


def assert_no_store(out: Path) -> None:
    assert not out.exists()
    assert partial_paths(out) == []


def test_missing_source(tmp_path: Path) -> None:
    for missing in (tmp_path / "nope.mp4", tmp_path / "nope"):
        with pytest.raises(InputError, match=names_path(missing)):
            extract_frames(missing, tmp_path / "frames.zarr", FramesConfig())
    with pytest.raises(InputError, match=names_path(tmp_path / "nope.mp4")):
        probe_video(tmp_path / "nope.mp4")
    assert_no_store(tmp_path / "frames.zarr")


def test_mp4_truncated_before_moov_is_refused(tmp_path: Path) -> None:
    # write_video leaves the moov atom (the index) at the end of the file, as ffmpeg does by
    # default, so the first 30% holds frame data that nothing can locate.
    path = write_video(tmp_path / "clip.mp4", smooth_video(40), fps=25)
    data = path.read_bytes()
    path.write_bytes(data[: int(0.3 * len(data))])
    with pytest.raises(InputError, match=names_path(path, "moov atom not found")):
        extract_frames(path, tmp_path / "frames.zarr", FramesConfig())
    assert_no_store(tmp_path / "frames.zarr")


def test_truncated_but_readable_video_is_refused(tmp_path: Path) -> None:
    # Matroska needs no trailing index, so ffmpeg decodes a cut file up to the cut (here
    # half of it: 30% would end inside the large first keyframe and decode nothing). The
    # last frames it yields can be error-concealed garbage (B-frames that reference the
    # cut packet), which is why extraction refuses the file instead of keeping fewer frames.
    path = write_video(tmp_path / "clip.mkv", smooth_video(40), fps=25)
    data = path.read_bytes()
    path.write_bytes(data[: int(0.5 * len(data))])
    decoded = []
    with pytest.raises(InputError, match=names_path(path, "damaged or truncated")):
        for frame in iter_video_frames(path):
            decoded.append(frame)
    assert 0 < len(decoded) < 40  # the generator got part of the video before refusing
    with pytest.raises(InputError, match=names_path(path, "damaged or truncated")):
        extract_frames(path, tmp_path / "frames.zarr", FramesConfig())
    assert_no_store(tmp_path / "frames.zarr")


def make_zero_frame_mp4(path: Path) -> Path:
    cmd = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48"]
    cmd += ["-frames:v", "0", "-c:v", "libx264", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def make_audio_only(path: Path) -> Path:
    cmd = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.5", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def make_text_as_mp4(path: Path) -> Path:
    path.write_text("this is not a video\n")
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (make_text_as_mp4, "ffmpeg cannot open the file"),
        (make_zero_frame_mp4, "no video stream"),
        (make_audio_only, "no video stream"),
    ],
    ids=["text-file", "zero-frames", "audio-only"],
)
def test_not_a_video(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path / ("input.m4a" if make is make_audio_only else "input.mp4"))
    with pytest.raises(InputError, match=names_path(path, message)):
        extract_frames(path, tmp_path / "frames.zarr", FramesConfig())
    assert_no_store(tmp_path / "frames.zarr")


def test_first_frame_beyond_the_end(tmp_path: Path) -> None:
    video = gray_level_video(tmp_path / "gray.mp4", 10)
    with pytest.raises(InputError, match=names_path(video, "frames decoded at or after frame 10")):
        extract_frames(video, tmp_path / "frames.zarr", FramesConfig(first_frame=10))
    write_pngs(tmp_path / "seq", ["0.png", "1.png"])
    with pytest.raises(InputError, match=names_path(tmp_path / "seq", "no frames selected")):
        extract_frames(tmp_path / "seq", tmp_path / "frames.zarr", FramesConfig(first_frame=2))
    assert_no_store(tmp_path / "frames.zarr")


def test_non_image_files_are_ignored_with_a_warning_and_hidden_ones_silently(tmp_path: Path) -> None:
    seq = tmp_path / "seq"
    frames = write_pngs(seq, ["0.png", "1.png", "2.png"])
    (seq / "notes.txt").write_text("shot on a phone")
    (seq / ".DS_Store").write_bytes(b"\0")
    (seq / "thumbs").mkdir()
    (seq / ".snakemake_timestamp").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"ignoring non-image entries: notes\.txt, thumbs$"):
        video, attrs = extract(seq, tmp_path / "frames.zarr")
    np.testing.assert_array_equal(video, np.stack(frames))
    assert attrs["source_frame_names"] == ["0.png", "1.png", "2.png"]
    assert attrs["skipped_files"] == ["notes.txt", "thumbs"]  # hidden files are never frames: not listed


def test_mixed_frame_sizes(tmp_path: Path) -> None:
    seq = tmp_path / "seq"
    write_pngs(seq, ["0.png", "1.png"], 40, 60)
    write_pngs(seq / "other", ["x.png"], 30, 60)
    (seq / "other" / "x.png").rename(seq / "2.png")
    (seq / "other").rmdir()
    with pytest.raises(InputError, match=names_path(seq / "2.png", r"frame is 60x30 .* are 60x40")):
        extract_frames(seq, tmp_path / "frames.zarr", FramesConfig())
    assert_no_store(tmp_path / "frames.zarr")


def test_gaps_in_numbering(tmp_path: Path) -> None:
    seq = tmp_path / "seq"
    write_pngs(seq, ["0.png", "1.png", "3.png", "4.png", "7.png"])
    with pytest.raises(InputError, match=names_path(seq, r"must be consecutive.*: 2, 5, 6$")):
        extract_frames(seq, tmp_path / "frames.zarr", FramesConfig())
    assert_no_store(tmp_path / "frames.zarr")


def test_duplicate_numbers_empty_folder_and_unreadable_image(tmp_path: Path) -> None:
    dup = tmp_path / "dup"
    write_pngs(dup, ["1.png", "01.png"])
    with pytest.raises(InputError, match=names_path(dup, "both have frame number 1")):
        list_frame_files(dup)

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=names_path(tmp_path / "empty", "no frame images")):
        extract_frames(tmp_path / "empty", tmp_path / "frames.zarr", FramesConfig())

    bad = tmp_path / "bad"
    write_pngs(bad, ["0.png"])
    (bad / "1.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=names_path(bad / "1.png", "not a readable image")):
        extract_frames(bad, tmp_path / "frames.zarr", FramesConfig())
    assert_no_store(tmp_path / "frames.zarr")


# --------------------------------------------------------------------------- interruption


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 noisy 320x240 PNGs (~65 MB): extraction takes about a second, and noise keeps
    PNG and Blosc from making it faster."""
    folder = tmp_path_factory.mktemp("big") / "seq"
    folder.mkdir()
    base = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for i in range(300):
        cv2.imwrite(str(folder / f"{i:05d}.png"), np.roll(base, i, axis=1))
    return folder


def test_sigkill_mid_write_leaves_no_store(big_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "v" / "frames.zarr"
    code = (
        "from nvd.data.frames import FramesConfig, extract_frames; "
        f"extract_frames({str(big_folder)!r}, {str(out)!r}, FramesConfig())"
    )
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=err)
    try:
        # Kill once a few frames are in the temporary store: mid-write by construction.
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            partial = partial_paths(out)
            chunks = partial[0] / "frames" / "c" if partial else None
            if chunks is not None and chunks.is_dir() and len(list(chunks.iterdir())) >= 5:
                break
            time.sleep(0.005)
        assert proc.poll() is None, f"extraction ended before it could be killed:\n{stderr.read_text()}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    assert not out.exists()
    leftovers = partial_paths(out)
    assert len(leftovers) == 1
    with pytest.raises(StoreError, match="incomplete"):
        open_store(leftovers[0], "frames")

    # A store whose writer never set the completion mark, made by hand.
    manual = tmp_path / "manual.zarr"
    group = zarr.open_group(store=str(manual), mode="w", zarr_format=3)
    dims = ("t", "y", "x", "c")
    new_array(group, "frames", (1, 2, 2, 3), "uint8", chunks=(1, 2, 2, 3), dimension_names=dims)
    with pytest.raises(StoreError, match=names_path(manual, "incomplete")):
        load_frames(manual)

    video, attrs = extract(big_folder, out, FramesConfig())
    assert video.shape == (300, 240, 320, 3)
    assert attrs["frame_indices"] == list(range(300))
    assert partial_paths(out) == []

