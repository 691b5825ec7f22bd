"""Run safety (issue 11): concurrent writers of one output, a full disk while publishing,
and OS errors reported as one line by the CLI and the Snakemake script adapters."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nvd.core.errors import describe_os_error
from nvd.core.progress import stage_log
from nvd.core.publish import lock_path, partial_paths, publish_copy, publish_text
from nvd.data.stores import open_store

REPO = Path(__file__).resolve().parent.parent
NVD = [sys.executable, "-m", "nvd.cli"]


def write_frames(folder: Path, count: int, height: int = 32, width: int = 48, noise: bool = False) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        if noise:  # incompressible, to fill a small disk
            frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        else:
            frame = np.full((height, width, 3), i, np.uint8)
        Image.fromarray(frame).save(folder / f"{i:04d}.png")


def nvd_frames(source: Path, out: Path, *extra: str) -> list[str]:
    return [*NVD, *extra, "frames", str(source), str(out), "--long-edge", "64"]


def error_lines(stderr: str) -> list[str]:
    """stderr without nvd's timestamped log lines."""
    return [line for line in stderr.splitlines() if line and not line[:4].isdigit()]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 64 KiB tmpfs, to fill for real; skipped where mounting is not permitted."""
    mnt = tmp_path / "small_disk"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a small tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ----------------------------------------------------------------- concurrent writers (item 3)


def test_a_second_nvd_frames_on_the_same_output_is_refused_while_the_first_writes(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write_frames(source, 150)
    out = tmp_path / "clip" / "frames.zarr"
    first = subprocess.Popen(nvd_frames(source, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until the first is inside its write (its temporary exists), then freeze it there.
        deadline = time.monotonic() + 120
        while not partial_paths(out):
            assert first.poll() is None, "the first writer ended before it was seen writing"
            assert time.monotonic() < deadline, "the first writer never started writing"
            time.sleep(0.002)
        first.send_signal(signal.SIGSTOP)
        work_in_progress = partial_paths(out)
        second = subprocess.run(nvd_frames(source, out), capture_output=True, text=True, timeout=300)
        assert second.returncode == 1, second.stderr
        assert error_lines(second.stderr) == [
            f"nvd frames: error: {out}: another process is writing this output right now "
            f"(it holds the lock {lock_path(out)}); wait for it to finish or stop it, then run again"
        ]
        assert partial_paths(out) == work_in_progress  # the first's work was left alone
        assert not out.exists()
    finally:
        first.send_signal(signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    frames = open_store(out, "frames")["frames"]
    assert frames.shape == (150, 32, 48, 3)
    assert frames[149, 0, 0, 0] == 149
    assert sorted(p.name for p in out.parent.iterdir()) == ["frames.zarr"]  # no lock, no temporary


def test_two_nvd_frames_started_together_never_publish_a_broken_store(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write_frames(source, 60)
    out = tmp_path / "frames.zarr"
    runs = [subprocess.Popen(nvd_frames(source, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.wait(timeout=300), run.communicate()[1]) for run in runs]
    codes = sorted(code for code, _ in results)
    # Either they overlapped (one refused with the message) or one ran after the other.
    assert codes in ([0, 1], [0, 0]), results
    for code, stderr in results:
        if code == 1:
            assert "another process is writing this output right now" in stderr
            assert "Traceback" not in stderr
    assert open_store(out, "frames")["frames"].shape == (60, 32, 48, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.zarr", "src"]


# --------------------------------------------------------------- full disk while publishing (item 6)


def test_a_model_copy_failing_half_way_leaves_the_old_model_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = tmp_path / "work" / "checkpoint.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"new model " * 1000)
    model = tmp_path / "models" / "model.pt"
    publish_text(model, "old model")

    def half_then_enospc(src, dst, *args, **kwargs):
        with open(dst, "wb") as f:
            f.write(Path(src).read_bytes()[:5000])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(shutil, "copyfile", half_then_enospc)
    with pytest.raises(OSError) as info:
        publish_copy(checkpoint, model)
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(model)  # names the output, not the removed temporary
    assert model.read_text() == "old model"
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.pt"]  # no temporary, no lock


def test_publishing_onto_a_really_full_disk_cleans_up(tmp_path: Path, small_disk: Path) -> None:
    model = small_disk / "model.pt"
    publish_text(model, "old model")
    big = tmp_path / "checkpoint.pt"
    big.write_bytes(os.urandom(200_000))
    with pytest.raises(OSError) as info:
        publish_copy(big, model)
    assert info.value.errno == errno.ENOSPC
    assert model.read_text() == "old model"
    assert sorted(p.name for p in small_disk.iterdir()) == ["model.pt"]
    # the disk is usable again: nothing of the failed copy takes space
    publish_text(small_disk / "small.txt", "x" * 30_000)


# ------------------------------------------------------------------ OS errors, one line (item 7)


def test_describe_os_error() -> None:
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device", "out/a.zarr")) == (
        "out/a.zarr: No space left on device (ENOSPC)"
    )
    assert describe_os_error(OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b")) == (
        "a -> b: Invalid cross-device link (EXDEV)"
    )
    assert describe_os_error(OSError("odd")) == "odd"


def test_cli_os_error_is_one_line_naming_the_stage_path_and_cause(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write_frames(source, 3)
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    out = blocker / "frames.zarr"

    plain = subprocess.run(nvd_frames(source, out), capture_output=True, text=True, timeout=300)
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert error_lines(plain.stderr) == [f"nvd frames: error: {blocker}: Not a directory (ENOTDIR)"]

    debug = subprocess.run(nvd_frames(source, out, "--debug"), capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr and "NotADirectoryError" in debug.stderr
    assert debug.stderr.rstrip().endswith(f"nvd frames: error: {blocker}: Not a directory (ENOTDIR)")


def test_cli_on_a_full_disk_names_the_output(tmp_path: Path, small_disk: Path) -> None:
    source = tmp_path / "noise"
    write_frames(source, 20, 64, 64, noise=True)  # ~240 KB of frames for a 64 KiB disk
    out = small_disk / "frames.zarr"
    done = subprocess.run(nvd_frames(source, out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"nvd frames: error: {out}"), done.stderr
    assert lines[0].endswith("No space left on device (ENOSPC)")
    assert list(small_disk.iterdir()) == []  # the partial store was removed


@pytest.fixture
def restore_nvd_logging():
    loggers = [logging.getLogger("nvd"), logging.getLogger("py.warnings")]
    saved = [(lg.handlers[:], lg.level) for lg in loggers]
    yield
    for lg, (handlers, level) in zip(loggers, saved):
        for handler in lg.handlers:
            if handler not in handlers:
                handler.close()
        lg.handlers[:] = handlers
        lg.setLevel(level)
    logging.captureWarnings(False)


def test_stage_log_turns_an_os_error_into_one_line_and_keeps_the_traceback_in_the_job_log(
    tmp_path: Path, capsys: pytest.CaptureFixture, restore_nvd_logging
) -> None:
    job_log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as info:
        with stage_log(str(job_log), stage="rule flow"):
            raise PermissionError(errno.EACCES, "Permission denied", "results/x/flow.zarr")
    assert info.value.code == 1
    line = "rule flow: results/x/flow.zarr: Permission denied (EACCES)"
    assert capsys.readouterr().err == f"nvd error: {line}\n"
    text = job_log.read_text()
    assert line in text and "Traceback (most recent call last)" in text and "PermissionError" in text


def test_stage_log_names_the_snakemake_rule(tmp_path: Path) -> None:
    """As a Snakemake ``script:`` runs: the preamble puts ``snakemake`` in ``__main__``."""
    job_log = tmp_path / "job.log"
    script = textwrap.dedent(f"""
        import errno, types
        snakemake = types.SimpleNamespace(rule="frames", log=[{str(job_log)!r}])
        from nvd.core.progress import stage_log
        with stage_log(snakemake.log[0]):
            raise OSError(errno.ENOSPC, "No space left on device", "results/demo/clip/frames.zarr")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 1
    line = "rule frames: results/demo/clip/frames.zarr: No space left on device (ENOSPC)"
    assert done.stderr == f"nvd error: {line}\n"
    assert line in job_log.read_text() and "Traceback" in job_log.read_text()


def test_debug_is_accepted_before_and_after_the_command() -> None:
    from nvd.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--debug", "frames", "a", "b"]).debug
    assert parser.parse_args(["frames", "a", "b", "--debug"]).debug
    assert not parser.parse_args(["frames", "a", "b"]).debug
