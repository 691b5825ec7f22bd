"""Atomic publishing (nvd.core.publish): complete or absent, never another writer's loss."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nvd.core.errors import BusyError, NvdError
from nvd.core.publish import lock_path, partial_paths, publish_copy, publish_text, publishing


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


def test_a_second_writer_of_the_same_path_is_refused_and_the_first_publishes_whole(tmp_path):
    out = tmp_path / "model.pt"
    with publishing(out) as first:
        first.write_text("first")
        with pytest.raises(BusyError, match=r"model\.pt: another process is writing this output") as info:
            with publishing(out):
                pass  # pragma: no cover - never entered
        assert isinstance(info.value, NvdError) and str(lock_path(out)) in str(info.value)
        assert lock_path(out).exists() and partial_paths(out) == [first]  # the first's work is untouched
    assert out.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no lock file, no temporary left
    publish_text(out, "second")  # free again once the first is done
    assert out.read_text() == "second"


def test_a_lock_file_left_by_a_killed_writer_does_not_block(tmp_path):
    out = tmp_path / "frames.zarr"
    lock_path(out).write_text("")  # SIGKILLed writer: the file stays, the kernel dropped its lock
    with publishing(out, folder=True) as tmp:
        (tmp / "a").write_text("1")
    assert (out / "a").read_text() == "1" and not lock_path(out).exists()


def test_the_lock_is_held_across_processes(tmp_path):
    out = tmp_path / "frames.zarr"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from nvd.core.publish import publishing\n"
         "with publishing(sys.argv[1], folder=True):\n"
         "    print('writing', flush=True)\n"
         "    sys.stdin.readline()\n",
         str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "writing\n"
        with pytest.raises(BusyError, match="frames.zarr"):
            with publishing(out, folder=True):
                pass  # pragma: no cover
        assert len(partial_paths(out)) == 1  # the holder's temporary was left alone
    finally:
        holder.communicate("done\n", timeout=60)
    assert holder.returncode == 0 and out.is_dir() and partial_paths(out) == []
    assert not lock_path(out).exists()


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


def test_a_lock_file_removed_by_its_last_holder_meanwhile_is_not_trusted(tmp_path, monkeypatch):
    """We opened the lock file, its holder then finished and removed it, and our flock
    succeeded on the removed file: that lock protects nothing, so a new file is locked."""
    import fcntl

    out = tmp_path / "model.pt"
    real_flock, calls = fcntl.flock, []

    def flock(fd, op):
        calls.append(os.fstat(fd).st_ino)
        if len(calls) == 1:
            lock_path(out).unlink()  # the previous holder's cleanup, between our open and flock
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    with publishing(out) as tmp:
        tmp.write_text("x")
        assert lock_path(out).exists() and os.stat(lock_path(out)).st_ino == calls[-1]
    assert len(calls) == 2 and out.read_text() == "x" and not lock_path(out).exists()


def test_a_file_system_without_locks_still_publishes(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with caplog.at_level("WARNING", logger="nvd"):
        publish_text(tmp_path / "a.txt", "a")
    assert (tmp_path / "a.txt").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    assert "does not support locks" in caplog.text
