"""The context every Snakemake job that runs torch starts in (its script adapter's ``with``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nvd.core.devices import use_cpu_threads
from nvd.core.progress import stage_log


@contextmanager
def job_context(snakemake: Any) -> Iterator[None]:
    """``stage_log`` to the job's log file, with torch on the job's ``threads``."""
    with stage_log(snakemake.log[0]):
        use_cpu_threads(snakemake.threads)
        yield
