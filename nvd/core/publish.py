"""Atomic publishing: a file, a folder or a store appears complete at its path, or not at all.

Every output is written under a temporary sibling name and moved into place when complete.
The temporary name is unique per writer and says who wrote it (host and process id), so a
writer only ever removes its own temporaries or those of a dead process of this host, never
another live writer's work in progress. Temporaries are removed on any failure; a SIGKILLed
writer's are removed by the next writer of the same path.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL_TAG = ".partial-"
_HOST = socket.gethostname().replace("-", "_")


def _temporary_sibling(path: Path) -> Path:
    # the suffix is kept, so writers that pick a format from it (ffmpeg, PIL, matplotlib) work
    return path.with_name(f".{path.name}{PARTIAL_TAG}{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


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


@contextmanager
def publishing(path: str | os.PathLike, *, folder: bool = False, create: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; move it to ``path`` when the block ends.

    With ``folder`` the temporary is a directory, made empty unless ``create`` is False (for
    writers that create it themselves, such as Zarr). When the block raises, or is
    interrupted, the temporary is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_partials(path)
    tmp = _temporary_sibling(path)
    if folder and create:
        tmp.mkdir()
    try:
        yield tmp
        _move_into_place(tmp, path)
    except BaseException:
        _remove(tmp)
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
