"""Formatting of result tables: CSV that reads back exactly, GitHub Markdown, missing figures."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any


def nanmean(values: Sequence[float]) -> float:
    """Mean of the non-NaN values, NaN (without numpy's warning) if there are none."""
    kept = [float(v) for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


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
