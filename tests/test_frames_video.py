"""Stage 1 (frames) from video files: round trips, frame selection and resizing, videos
without a frame count, rotation metadata, and write_video's padding and failures. H.264 files
come from ``write_video``, so the same ffmpeg that decodes them also encodes them."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_frames import decoded_index, extract, gray_level_video, names_path, smooth_video

import nvd.data.frames
from nvd.core.errors import NvdError
from nvd.data.frames import FramesConfig
from nvd.data.stores import open_store
from nvd.data.video_io import ffmpeg_exe, iter_video_frames, probe_video, write_video


@pytest.mark.parametrize("suffix, fps", [(".mp4", 25.0), (".mkv", 30000 / 1001)])
def test_video_round_trip(tmp_path: Path, suffix: str, fps: float) -> None:
    frames = smooth_video(30)
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=fps)
    assert list(tmp_path.iterdir()) == [path]  # the temporary name was renamed away

    video, attrs = extract(path, tmp_path / "frames.zarr")
    assert video.shape == frames.shape
    assert attrs["fps"] == pytest.approx(fps, rel=1e-9)  # 29.97 as printed snaps back to 30000/1001
    assert attrs["frame_indices"] == list(range(30))
    assert attrs["source_frame_names"] is None
    assert attrs["source_fingerprint"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # CRF 18 on smooth waves loses about one level on average (4:2:0 chroma included); a
    # wrong frame order, channel swap or off-by-one frame gives tens of levels.
    error = np.abs(video.astype(int) - frames).mean(axis=(1, 2, 3))
    assert error.max() < 3, error


def test_video_selection_and_resize(tmp_path: Path) -> None:
    path = gray_level_video(tmp_path / "gray.mp4", 30)
    cfg = FramesConfig(long_edge=24, first_frame=4, step=3, max_frames=5)
    video, attrs = extract(path, tmp_path / "frames.zarr", cfg)
    assert attrs["frame_indices"] == [4, 7, 10, 13, 16]
    assert [decoded_index(f) for f in video] == attrs["frame_indices"]
    assert video.shape == (5, 16, 24, 3) and attrs["source_size"] == [32, 48]

    _, attrs = extract(path, tmp_path / "frames.zarr", FramesConfig(first_frame=25, step=2))
    assert attrs["frame_indices"] == [25, 27, 29]


def test_video_without_frame_count_grows_the_array(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = gray_level_video(tmp_path / "gray.mkv", 30)
    expected, _ = extract(path, tmp_path / "a.zarr")

    def probe_without_count(p: Path) -> dict:
        return {**probe_video(p), "frames": None}

    monkeypatch.setattr(nvd.data.frames, "probe_video", probe_without_count)
    video, _ = extract(path, tmp_path / "b.zarr")
    np.testing.assert_array_equal(video, expected)
    assert open_store(tmp_path / "b.zarr")["frames"].shape == (30, 32, 48, 3)


def test_rotated_video_is_decoded_upright(tmp_path: Path) -> None:
    frames = smooth_video(4, 32, 48)
    plain = write_video(tmp_path / "plain.mp4", frames, fps=25)
    rotated = tmp_path / "rotated.mp4"
    cmd = [ffmpeg_exe(), "-v", "error", "-display_rotation", "90", "-i", str(plain)]
    cmd += ["-c", "copy", str(rotated)]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        pytest.skip("this ffmpeg has no -display_rotation (before 6.1)")
    assert probe_video(rotated)["width"] == 32 and probe_video(rotated)["height"] == 48
    video, attrs = extract(rotated, tmp_path / "frames.zarr")
    assert video.shape == (4, 48, 32, 3) and attrs["source_size"] == [48, 32]
    upright, _ = extract(plain, tmp_path / "plain.zarr")
    np.testing.assert_array_equal(video, np.rot90(upright, k=1, axes=(1, 2)))


def test_write_video_pads_odd_sizes(tmp_path: Path) -> None:
    frames = smooth_video(3, 31, 45)
    path = write_video(tmp_path / "odd.mp4", frames, fps=10)
    info = probe_video(path)
    assert (info["height"], info["width"], info["fps"]) == (32, 46, 10.0)
    decoded = np.stack(list(iter_video_frames(path)))
    # The repeated last row/column keeps the edge as accurate as the rest (see round trip).
    assert np.abs(decoded[:, :31, :45].astype(int) - frames).mean() < 3
    np.testing.assert_allclose(decoded[:, 31, :45], decoded[:, 30, :45], atol=8)


def test_write_video_failure_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "clip.notaformat"  # ffmpeg picks no muxer for this suffix
    with pytest.raises(NvdError, match=names_path(target, "ffmpeg failed to write")):
        write_video(target, smooth_video(3), fps=25)
    assert list(tmp_path.iterdir()) == []
