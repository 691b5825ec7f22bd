"""What a training run reports: ``log.csv`` (one row per logged iteration, read back as floats),
TensorBoard scalars when TensorBoard is installed, and progress lines."""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nvd.core.layout import LOG_NAME
from nvd.core.publish import publish_with

LEAD_COLUMNS = ("iteration", "wall_time_s", "loss")  # these, then the loss parts, then psnr
PSNR_COLUMN = "psnr"


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a log.csv as text; only lines that end in a newline count."""
    if not path.exists():
        return [], []
    text = path.read_text()
    text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def read_log(out_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of ``out_dir/log.csv`` in iteration order.

    Each row maps ``iteration`` (int), ``wall_time_s`` (cumulative training time, see
    nvd.train.loop.train), ``loss``, each loss part and ``psnr`` (floats) to its value; a part the task
    did not report at that iteration is absent from the row. An incomplete last line (a
    session killed while writing it) is ignored.
    """
    _, raw = read_csv(Path(out_dir) / LOG_NAME)
    return [{k: int(v) if k == "iteration" else float(v) for k, v in row.items() if v != ""} for row in raw]


def psnr_at_time(rows: list[dict[str, float]], seconds: float) -> float:
    """The last logged PSNR at or before ``seconds`` of training time, NaN if none yet.

    ``rows`` as from ``read_log``; used to compare methods at equal training time.
    """
    value = math.nan
    for row in rows:
        if row["wall_time_s"] > seconds:
            break
        value = row[PSNR_COLUMN]
    return value


class CsvLog:
    """``log.csv``: iteration, wall_time_s, loss, one column per loss part, psnr.

    Rows are appended; when a part appears that has no column yet, the file is rewritten
    (atomically) with the wider header, earlier rows leaving that cell empty.
    """

    def __init__(self, path: Path, keep_through: int) -> None:
        self.path = path
        columns, rows = read_csv(path) if keep_through else ([], [])
        rows = [r for r in rows if int(r["iteration"]) <= keep_through]
        self.parts = columns[len(LEAD_COLUMNS) : -1]
        if rows:
            self._rewrite(rows)
        else:
            path.unlink(missing_ok=True)  # a fresh run, or one killed before its first log row

    def _columns(self) -> list[str]:
        return [*LEAD_COLUMNS, *self.parts, PSNR_COLUMN]

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, self._columns(), restval="")
                writer.writeheader()
                writer.writerows(rows)

        publish_with(self.path, write)

    def append(self, row: Mapping[str, float]) -> None:
        new = [k for k in row if k not in (*LEAD_COLUMNS, PSNR_COLUMN, *self.parts)]
        if new or not self.path.exists():
            _, rows = read_csv(self.path)
            self.parts += new
            self._rewrite([*rows, row])
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self._columns(), restval="").writerow(row)


def report(log: logging.Logger, bar: Any, row: Mapping[str, float], total: int) -> None:
    if bar is not None:
        bar.set_postfix(loss=f"{row['loss']:.4g}", psnr=f"{row[PSNR_COLUMN]:.2f}")
        return
    parts = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in (*LEAD_COLUMNS, PSNR_COLUMN))
    log.info(
        "train %d/%d: loss %.4g (%s), PSNR %.2f dB, %.1f s",
        row["iteration"], total, row["loss"], parts, row[PSNR_COLUMN], row["wall_time_s"],
    )


def tensorboard(log_dir: Path, start: int) -> Any:
    """A SummaryWriter when TensorBoard is installed, else None. On resume, events after the
    checkpoint's iteration (from the interrupted session) are purged."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=start + 1 if start else None)


def board_row(board: Any, row: Mapping[str, float]) -> None:
    """One log row as scalars. The events carry the training time as their wall time, so
    TensorBoard's "relative" x axis shows what log.csv's wall_time_s holds."""
    step, walltime = int(row["iteration"]), float(row["wall_time_s"])
    for name, value in row.items():
        if name in ("iteration", "wall_time_s"):
            continue
        tag = name if name in ("loss", PSNR_COLUMN) else f"loss/{name}"
        board.add_scalar(tag, value, global_step=step, walltime=walltime)
    board.flush()
