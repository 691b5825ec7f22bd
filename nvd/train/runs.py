"""Train, then publish: the step every family's training job ends with.

A run trains into its work folder (rolling checkpoint and log.csv, which survive a killed
job so the next attempt resumes), then its final checkpoint is published as the model file
with its log beside it, each atomically (nvd.core.publish).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from nvd.core.layout import model_log
from nvd.core.publish import publish_copy
from nvd.data.stores import content_fingerprint
from nvd.train.loop import CHECKPOINT_NAME, LOG_NAME, CheckpointError, TrainResult

log = logging.getLogger("nvd")
T = TypeVar("T")


def discarding_stale(attempt: Callable[[], T], work_dir: str | Path) -> T:
    """``attempt()``; when it finds a checkpoint of another run in ``work_dir`` (CheckpointError:
    the workflow reran the job because its inputs, config or code changed, so that checkpoint
    is stale), remove the folder and attempt again from scratch."""
    try:
        return attempt()
    except CheckpointError as exc:
        log.warning("discarding the stale checkpoint in %s: %s", work_dir, exc)
        shutil.rmtree(work_dir)
        return attempt()


def train_and_publish(attempt: Callable[[], TrainResult], work_dir: str | Path, model_path: str | Path,
                      restart_on_mismatch: bool) -> TrainResult:
    """Run ``attempt`` (a ``train`` call into ``work_dir``), then publish the final checkpoint
    as ``model_path`` with ``log.csv`` beside it.

    With ``restart_on_mismatch`` a checkpoint of a different run in ``work_dir`` (the workflow
    decided it is stale) is discarded and ``attempt`` runs again from scratch; without it the
    CheckpointError propagates.
    """
    work_dir = Path(work_dir)
    result = discarding_stale(attempt, work_dir) if restart_on_mismatch else attempt()
    publish_copy(work_dir / CHECKPOINT_NAME, model_path)
    publish_copy(work_dir / LOG_NAME, model_log(model_path))
    return result


def input_fingerprints(stores: Mapping[str, str | Path]) -> dict[str, str]:
    """{stage: content fingerprint} of a run's input stores (``stage`` names the store kind:
    frames, flow, masks, embedding), as each recorded it when written (nvd.data.verify). A
    run identity holding them resumes a checkpoint only on exactly the data it trained on."""
    return {stage: content_fingerprint(path, stage) for stage, path in sorted(stores.items())}


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (a run started from another run's model holds its digest)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
