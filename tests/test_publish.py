"""Atomic publishing (nvd.core.publish): complete or absent, never another writer's loss."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nvd.core.publish import partial_paths, publish_copy, publish_text, publishing


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "table.md"
    publish_text(out, "old\n")
    with pytest.raises(RuntimeError):
        with publishing(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert out.read_text() == "old\n"
    assert partial_paths(out) == []


def test_a_folder_replaces_the_old_one_whole(tmp_path):
    out = tmp_path / "eval"
    with publishing(out, folder=True) as tmp:
        (tmp / "a.txt").write_text("1")
        (tmp / "b.txt").write_text("1")
    with publishing(out, folder=True) as tmp:
        (tmp / "a.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"] and (out / "a.txt").read_text() == "2"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_concurrent_writers_get_their_own_temporaries(tmp_path):
    out = tmp_path / "model.pt"
    with publishing(out) as first, publishing(out) as second:
        assert first != second
        # the second writer started while the first was writing, and left its work alone
        first.write_text("first")
        second.write_text("second")
    assert out.read_text() == "first"  # the last to finish wins, whole


def test_a_live_writers_temporary_is_never_removed_but_a_dead_ones_is(tmp_path):
    out = tmp_path / "frames.zarr"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    try:
        with publishing(out, folder=True) as mine:
            host = mine.name.split(".partial-")[1].split("-")[0]
        live_tmp = tmp_path / f".frames.zarr.partial-{host}-{live.pid}-abcdef12"
        dead_tmp = tmp_path / f".frames.zarr.partial-{host}-{dead.stdout.strip()}-abcdef12"
        other_host = tmp_path / ".frames.zarr.partial-elsewhere-1-abcdef12"
        for folder in (live_tmp, dead_tmp, other_host):
            folder.mkdir()
        with publishing(out, folder=True):
            pass
        assert live_tmp.is_dir() and other_host.is_dir()
        assert not dead_tmp.exists()
    finally:
        live.kill()
        live.wait()


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        publish_text(tmp_path / "a.csv", "x\n")
        publish_copy(tmp_path / "a.csv", tmp_path / "b.csv")
        with publishing(tmp_path / "dir", folder=True):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b.csv").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "dir").stat().st_mode & 0o777 == 0o750


def test_the_temporary_keeps_the_suffix(tmp_path):
    """ffmpeg, PIL and matplotlib pick the format from the name."""
    with publishing(tmp_path / "rec.mp4") as tmp:
        assert tmp.suffix == ".mp4" and tmp.name.startswith(".rec.mp4.partial-")
        tmp.write_bytes(b"")
