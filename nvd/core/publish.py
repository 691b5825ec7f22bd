"""Atomic publishing: a file, a folder or a store appears complete at its path, or not at all.

Every output is written under a temporary sibling name and moved into place when complete.
The temporary name is unique per writer and says who wrote it (host and process id), so a
writer only ever removes its own temporaries or those of a dead process of this host, never
another live writer's work in progress. Temporaries are removed on any failure; a SIGKILLed
writer's are removed by the next writer of the same path.

One path has one writer at a time: ``publishing`` holds an exclusive lock (``flock``) on the
sibling ``.<name>.lock`` for the whole write, and a second writer of the same path, in this
process or another, is refused at once with BusyError. The lock file is empty and removed
when the write ends; one left by a killed writer is harmless (the kernel released its lock)
and is reused. Like the temporaries it is a dot-file beside the output, so readers and
Snakemake, which only look at the output path itself, never see it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nvd.core.errors import BusyError

PARTIAL_TAG = ".partial-"
LOCK_SUFFIX = ".lock"
_HOST = socket.gethostname().replace("-", "_")


def _temporary_sibling(path: Path) -> Path:
    # the suffix is kept, so writers that pick a format from it (ffmpeg, PIL, matplotlib) work
    return path.with_name(f".{path.name}{PARTIAL_TAG}{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}
_warned_no_locks: set[str] = set()


def _warn_no_locks(lock: Path, exc: OSError) -> None:
    folder = str(lock.parent)
    if folder not in _warned_no_locks:
        _warned_no_locks.add(folder)
        logging.getLogger("nvd").warning(
            "%s: the file system does not support locks (%s); concurrent writers of one output "
            "are not refused there, only kept apart by their temporary names", folder, exc.strerror)


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file a writer of ``path`` holds while it writes: ``.<name>.lock`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}{LOCK_SUFFIX}")


@contextmanager
def writer_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive writer lock of ``path`` (see the module docstring) for the block.

    Raises BusyError naming ``path`` when another writer holds it. The lock file is removed
    when the block ends, while still locked; a writer that opened the old file meanwhile
    sees that it is no longer the one at the lock path and takes the lock again on a new one.
    """
    path = Path(path)
    lock = lock_path(path)
    fd = _acquire(path, lock)
    try:
        yield lock
    finally:
        if fd is not None:
            try:
                lock.unlink(missing_ok=True)
            finally:
                os.close(fd)


def _acquire(path: Path, lock: Path) -> int | None:
    """The open, locked lock file of ``path``; None on a file system without locks."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            current = os.stat(lock)
            mine = os.fstat(fd)
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, FileNotFoundError):
                continue  # the holder removed it between our flock and stat: try a new one
            if not isinstance(exc, OSError):
                raise
            if exc.errno in _NO_LOCKS:  # a file system without locks: unique temporaries only
                _warn_no_locks(lock, exc)
                with contextlib.suppress(OSError):
                    lock.unlink()
                return None
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise BusyError(
                f"{path}: another process is writing this output right now (it holds the lock "
                f"{lock}); wait for it to finish or stop it, then run again"
            ) from None
        if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
            return fd
        os.close(fd)  # the previous holder removed this file after we opened it: lock the new one


def partial_paths(path: str | os.PathLike) -> list[Path]:
    """Temporaries of every writer of ``path`` (live or dead) that are still on disk."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}{PARTIAL_TAG}*"))


def _writer_is_dead(partial: Path, name: str) -> bool:
    """Whether ``partial`` belongs to a process of this host that no longer runs."""
    tag = partial.name[len(f".{name}{PARTIAL_TAG}"):]
    host, _, rest = tag.partition("-")
    pid = rest.partition("-")[0]
    if host != _HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_dead_partials(path: str | os.PathLike) -> None:
    """Remove temporaries of ``path`` left by dead writers of this host (a SIGKILLed job)."""
    path = Path(path)
    for partial in partial_paths(path):
        if _writer_is_dead(partial, path.name):
            _remove(partial)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path``; an existing folder there is swapped out first, then removed."""
    if path.is_dir() and not path.is_symlink():
        old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
        path.rename(old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def _make_parent(parent: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a file is where the output's folder should be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), exc.filename) from exc


def _name_the_output(exc: OSError, tmp: Path, path: Path) -> None:
    """Make an OSError about the (now removed) temporary name the output instead, e.g.
    ``.frames.zarr.partial-h-12-ab/frames/c/0`` becomes ``frames.zarr/frames/c/0``, and give
    one that names no file (a ``write`` on a full disk) the output's path, so the one-line
    message a user sees names a path they know."""
    if exc.filename is None:
        exc.filename = str(path)
        return
    forms = [(str(tmp), str(path)), (os.path.abspath(tmp), os.path.abspath(path))]
    for attr in ("filename", "filename2"):
        name = getattr(exc, attr)
        if not isinstance(name, str):
            continue
        for tmp_form, path_form in forms:
            if name == tmp_form or name.startswith(tmp_form + os.sep):
                setattr(exc, attr, path_form + name[len(tmp_form):])
                break


@contextmanager
def publishing(path: str | os.PathLike, *, folder: bool = False, create: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; move it to ``path`` when the block ends.

    With ``folder`` the temporary is a directory, made empty unless ``create`` is False (for
    writers that create it themselves, such as Zarr). When the block raises, or is
    interrupted, the temporary is removed and ``path`` is left as it was.

    The writer lock of ``path`` is held from before the temporary is made until it has been
    moved into place (or removed): a second writer of ``path`` meanwhile gets BusyError, and
    the one writing goes on undisturbed.
    """
    path = Path(path)
    _make_parent(path.parent)
    with writer_lock(path):
        remove_dead_partials(path)
        tmp = _temporary_sibling(path)
        if folder and create:
            tmp.mkdir()
        try:
            yield tmp
            _move_into_place(tmp, path)
        except BaseException as exc:
            _remove(tmp)
            if isinstance(exc, OSError):
                _name_the_output(exc, tmp, path)
            raise


def publish_with(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then move it into place."""
    with publishing(path) as tmp:
        write(tmp)
    return Path(path)


def publish_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return publish_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def publish_copy(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Copy the file ``source`` to ``path`` atomically."""
    return publish_with(path, lambda tmp: shutil.copyfile(source, tmp))
