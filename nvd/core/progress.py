"""Progress reporting: a bar on a terminal, plain log lines under Snakemake or in a pipe."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("nvd")


def progress(items: Iterable[T], total: int, desc: str, every_s: float = 5.0) -> Iterator[T]:
    """Yield ``items`` while reporting "desc: done/total".

    On an interactive terminal this is a tqdm bar. Otherwise (Snakemake rule logs, pipes)
    it writes a plain line at most every ``every_s`` seconds plus one at the end, so logs
    stay readable and short.
    """
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(items, total=total, desc=desc, unit="frame")
        return
    last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every_s and done < total:
            log.info("%s: %d/%d", desc, done, total)
            last = now
    log.info("%s: %d/%d done", desc, done, total)


def configure_logging(log_path: str | None = None) -> None:
    """Send nvd's log lines to stderr, or to ``log_path`` (a Snakemake rule log)."""
    handler: logging.Handler
    handler = logging.FileHandler(log_path) if log_path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("nvd")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").handlers[:] = [handler]


class stage_log:
    """Context manager for Snakemake script adapters: log to the rule's log file.

    A user-fixable NvdError is written to the log as one line and ends the process with
    status 1 (no traceback to scare anyone). An OSError (disk full, permission denied, a
    file where a folder should be...) ends it the same way with one line naming the rule, the
    path and the cause; its traceback goes to the job log only, under that line. Any other
    exception is logged with its traceback and re-raised.
    """

    def __init__(self, log_path: str | None, stage: str | None = None) -> None:
        self.log_path = log_path
        self.stage = stage

    def __enter__(self) -> "stage_log":
        configure_logging(self.log_path)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        from nvd.core.errors import NvdError, describe_os_error

        if exc is None:
            return False
        if isinstance(exc, NvdError):
            log.error("%s", exc)
            print(f"nvd error: {exc}", file=sys.stderr)
            raise SystemExit(1)
        if isinstance(exc, OSError):
            stage = self.stage or _snakemake_rule()
            line = f"{stage}: {describe_os_error(exc)}" if stage else describe_os_error(exc)
            log.error("%s", line)
            if self.log_path:  # the job log keeps the traceback; stderr gets the line only
                log.error("traceback of the error above:", exc_info=(exc_type, exc, tb))
            _flush_file_handlers()
            print(f"nvd error: {line}", file=sys.stderr)
            raise SystemExit(1)
        log.exception("stage failed")
        return False


def _snakemake_rule() -> str | None:
    """The rule a Snakemake ``script:`` runs for (its preamble defines ``snakemake`` in
    ``__main__``), else None."""
    rule = getattr(getattr(sys.modules.get("__main__"), "snakemake", None), "rule", None)
    return f"rule {rule}" if isinstance(rule, str) and rule else None


def _flush_file_handlers() -> None:
    for handler in logging.getLogger("nvd").handlers:
        handler.flush()
