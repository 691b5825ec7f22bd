"""Measuring a decoder: run a command, time it, and read its peak memory from the kernel.

``run_measured(cmd, input)`` runs ``cmd`` with ``input`` on its stdin and returns a
``Measured``: wall time in seconds from the start of the process to its exit (start-up
included, as a user decoding a file waits for it), its peak resident memory in MiB
(ru_maxrss of ``os.wait4``: KiB on Linux, bytes on macOS), its whole stdout and stderr, and
its exit status. Nothing is raised for a failing command: the caller reads ``returncode``
and ``stderr``.

Why a launcher: Linux counts in a process's ru_maxrss the memory of the process it was
forked from, up to its exec, so a command started straight from this process (a Python
holding torch and a video: hundreds of MB) would report at least that. ``cmd`` is started
instead by a small Python (``python -S``, about 10 MB) that times it and reports its
rusage through a pipe; a figure under ~10 MB reads as ~10 MB.

The anchors (nvd.compression.anchors) measure ffmpeg's decoding with it, and
``measure_decode`` the neural codecs' ``nvd decode`` in a new process, so every method's
decoding memory is measured the same way. Decoding speed leaves start-up out on both sides:
ffmpeg's own timer from the stream opened (nvd.compression.ffmpeg.ffmpeg_seconds), and
``nvd decode --stats``'s from reading the file to the last frame, after Python's imports.
The neural decoders' peak memory includes the Python runtime and torch: what decoding the
file really needs here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nvd.core.errors import NvdError

# ru_maxrss is in KiB on Linux and in bytes on macOS (getrusage(2) of each).
_MAXRSS_PER_MB = 1024 * 1024 if sys.platform == "darwin" else 1024

# argv: the report pipe's fd, then the command. Reports "seconds maxrss returncode".
_LAUNCHER = """\
import os, sys, time
report = int(sys.argv[1])
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.close(report)
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as exc:
        os.write(2, ("cannot run %s: %s\\n" % (sys.argv[2], exc.strerror)).encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
os.write(report, ("%r %d %d" % (seconds, usage.ru_maxrss, os.waitstatus_to_exitcode(status))).encode())
"""


@dataclass(frozen=True)
class Measured:
    """One finished command: what it printed and what it cost."""

    seconds: float  # wall time, start to exit
    peak_rss_mb: float  # maximum resident set size, MiB
    stdout: bytes
    stderr: bytes
    returncode: int  # negative: killed by that signal

    def stderr_tail(self, lines: int = 5) -> str:
        """The last ``lines`` non-empty lines of stderr, joined with " / " (for messages)."""
        kept = [line.strip() for line in self.stderr.decode(errors="replace").splitlines() if line.strip()]
        return " / ".join(kept[-lines:]) if kept else "no message"


def _drain(pipe: IO[bytes], into: list[bytes]) -> None:
    into.append(pipe.read())
    pipe.close()


def run_measured(cmd: Sequence[str], input: bytes | None = None,
                 env: Mapping[str, str] | None = None) -> Measured:
    """Run ``cmd`` with ``input`` on stdin (none when None) and measure it (see the module
    docstring). ``env``: the command's whole environment (default: this process's).

    stdout and stderr are read by threads while stdin is written, so a command that writes
    before it has read all of its input (ffmpeg does) cannot block on a full pipe. When this
    call is interrupted the command is killed.
    """
    if not cmd:
        raise ValueError("run_measured: empty command")
    report_read, report_write = os.pipe()
    try:
        # its own session: killing the group on interruption reaches the command too
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report_write), *cmd],
                                stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(report_write,),
                                env=None if env is None else dict(env), start_new_session=True)
    except BaseException:
        os.close(report_read)
        raise
    finally:
        os.close(report_write)
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True)]
    try:
        with os.fdopen(report_read, "rb") as report_pipe:
            for reader in readers:
                reader.start()
            if input is not None:
                # a command that exits early closes the pipe: its status and stderr say why
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(input)  # type: ignore[union-attr]
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()  # type: ignore[union-attr]
            for reader in readers:
                reader.join()
            launcher_status = proc.wait()
            report = report_pipe.read().split()
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if len(report) != 3:  # the launcher itself failed: its own status and message
        return Measured(0.0, 0.0, b"".join(out), b"".join(err), launcher_status or 1)
    seconds, maxrss, returncode = float(report[0]), int(report[1]), int(report[2])
    return Measured(seconds=seconds, peak_rss_mb=maxrss / _MAXRSS_PER_MB, stdout=b"".join(out),
                    stderr=b"".join(err), returncode=returncode)


@dataclass(frozen=True)
class DecodeStats:
    """What decoding one compressed file with ``nvd decode`` cost."""

    frames: int
    seconds: float  # reading the file to the last frame, in the decoding process
    peak_rss_mb: float  # the decoding process's maximum resident set

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def measure_decode(path: str | Path, device: str = "cpu") -> DecodeStats:
    """Decode ``path`` with ``nvd decode --stats`` in a new process (module docstring)."""
    result = run_measured([sys.executable, "-m", "nvd.cli", "decode", "--stats", "--device", device, str(path)])
    if result.returncode != 0:
        raise NvdError(f"nvd decode {path} failed: {result.stderr_tail()}")
    stats = json.loads(result.stdout.decode().strip().splitlines()[-1])
    return DecodeStats(int(stats["frames"]), float(stats["seconds"]), result.peak_rss_mb)
