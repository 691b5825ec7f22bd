"""Formatting of result tables: CSV that reads back exactly, GitHub Markdown, missing figures."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nvd.core.layout import METRICS_NAME


def nanmean(values: Sequence[float]) -> float:
    """Mean of the non-NaN values, NaN (without numpy's warning) if there are none."""
    kept = [float(v) for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def read_metrics(eval_dir: str | os.PathLike) -> dict[str, Any]:
    """The metrics.json of an evaluation folder (nvd.eval.outputs writes it)."""
    return json.loads((Path(eval_dir) / METRICS_NAME).read_text())


def as_number(value: Any) -> float:
    """A figure read from metrics.json: None (not measured) becomes NaN."""
    return math.nan if value is None else float(value)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std of the non-NaN values (NaN, NaN when there are none)."""
    kept = [float(v) for v in values if not math.isnan(v)]
    if not kept:
        return math.nan, math.nan
    mean = sum(kept) / len(kept)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in kept) / len(kept))


def plus_minus(mean: float, std: float, digits: int) -> str:
    """"mean ± std" with ``digits`` decimals, n/a for a missing figure."""
    return "n/a" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _csv_cell(value: Any) -> Any:
    # repr keeps every digit so the CSV reads back exactly; ints stay ints
    return repr(value) if isinstance(value, float) else value


def csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """A CSV (header ``columns``, one line per row, "\\n" endings) with floats at full precision."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buf.getvalue()


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def format_number(value: float, digits: int, unit: str = "", nan: str = "n/a") -> str:
    """``value`` with ``digits`` decimals and ``unit``, or ``nan`` for a missing figure."""
    return nan if math.isnan(value) else f"{value:.{digits}f}{unit}"
