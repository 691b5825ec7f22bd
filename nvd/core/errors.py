"""Exception types. Each carries one message meant for the person running the pipeline."""

from __future__ import annotations

import errno


class NvdError(Exception):
    """Base class: a problem the user can fix (bad input, bad config, missing weights)."""


class ConfigError(NvdError):
    """The configuration has a wrong key, type or value."""


class InputError(NvdError):
    """An input file or folder is missing, unreadable or inconsistent."""


class WeightsError(NvdError):
    """A model weight file named in the config is missing or does not fit the model."""


class StoreError(NvdError):
    """A Zarr store is missing, of the wrong stage, or incomplete."""


class BusyError(NvdError):
    """Another process is writing the same output right now (its lock is held)."""


def describe_os_error(exc: OSError) -> str:
    """``exc`` as one line for the person running the pipeline: the path(s), the cause and
    the errno name, e.g. ``results/x/frames.zarr: No space left on device (ENOSPC)``."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    code = errno.errorcode.get(exc.errno) if isinstance(exc.errno, int) else None
    if code:
        cause = f"{cause} ({code})"
    if exc.filename is None:
        return cause
    where = str(exc.filename)
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    return f"{where}: {cause}"
