"""HyperNVD vs scratch comparison tables and plots.

HyperNVD finetunes a decomposition model initialised by the hypernetwork; the baseline
trains the same model from scratch. Both runs write ``log.csv`` (see
``nvd.training.read_log``). This module turns a pair of logs per held-out video into:

- ``VideoComparison`` (``compare_runs``): PSNR at equal wall-clock budgets and at equal
  iteration counts, and the training time each run needs to reach a target PSNR;
- ``write_comparison``: a CSV and a Markdown table over videos (plus a mean row) and
  PSNR-vs-time plots per video and averaged over videos;
- ``write_generalisation``: how good the hypernetwork's output is before any finetuning,
  on training and held-out videos.

Every budget is relative to the scratch run (its total training time, its final iteration,
its final PSNR), so the question answered is always "how much of the scratch run's effort
does HyperNVD need for the same quality".
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, InputError
from .training import psnr_at_time

COMPARISON_CSV = "hypernvd_comparison.csv"
COMPARISON_MD = "hypernvd_comparison.md"
GENERALISATION_CSV = "hypernvd_generalisation.csv"
GENERALISATION_MD = "hypernvd_generalisation.md"
MEAN_PLOT = "psnr_vs_time_mean.png"
SPLITS = ("train", "heldout")
CURVE_POINTS = 200  # samples on the common time grid of the mean curve

_REQUIRED_LOG_KEYS = ("iteration", "wall_time_s", "psnr")
_GENERALISATION_KEYS = ("video", "split", "psnr", "psnr_no_residual")

Curve = list[tuple[float, float]]


# ---------------------------------------------------------------------------- config


def _fractions(name: str, value: Any) -> tuple[float, ...]:
    """``value`` as a tuple of distinct fractions in (0, 1], or a ConfigError naming ``name``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"{name} must be a list of fractions in (0, 1], got {value!r}")
    if len(value) == 0:
        raise ConfigError(f"{name} must not be empty")
    out = []
    for item in value:
        # bool is an int subclass; True would silently mean 100 %
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not 0 < item <= 1:
            raise ConfigError(f"{name} must hold fractions in (0, 1], got {item!r}")
        out.append(float(item))
    if len(set(out)) != len(out):
        # duplicates would give duplicate CSV columns
        raise ConfigError(f"{name} must not repeat a fraction, got {list(value)!r}")
    return tuple(out)


@dataclass(frozen=True)
class TablesConfig:
    """What the comparison tables report; the single source of their defaults.

    ``budgets``: wall-clock budgets as fractions of the scratch run's total training time.
    ``iteration_fractions``: equal-iteration checkpoints as fractions of the scratch run's
    final iteration. ``target_psnr``: the PSNR (dB) both runs race to; None means the
    scratch run's final logged PSNR, i.e. "how long does HyperNVD take to match scratch".
    """

    budgets: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    iteration_fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    target_psnr: float | None = None

    def __post_init__(self) -> None:
        # lists (e.g. from YAML) are accepted and frozen into tuples
        object.__setattr__(self, "budgets", _fractions("tables.budgets", self.budgets))
        object.__setattr__(
            self, "iteration_fractions", _fractions("tables.iteration_fractions", self.iteration_fractions)
        )
        target = self.target_psnr
        if target is not None:
            if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target):
                raise ConfigError(f"tables.target_psnr must be a finite number (dB) or null, got {target!r}")
            object.__setattr__(self, "target_psnr", float(target))


# ---------------------------------------------------------------------------- one video


@dataclass(frozen=True)
class VideoComparison:
    """Scratch vs HyperNVD finetune on one held-out video (times in training seconds).

    ``at_time``: (budget seconds, scratch PSNR, finetune PSNR) per budget fraction;
    ``at_iteration``: (iteration, scratch PSNR, finetune PSNR) per iteration fraction.
    ``time_ratio`` is finetune / scratch time to target (the demo aims at <= 1/3),
    ``speedup`` its inverse; both NaN when either run never reaches the target.
    ``iteration_ratio`` is the same ratio in iterations: both runs do the same work per
    iteration, so it says what the time ratio says without the machine's timing noise.
    """

    video: str
    target_psnr: float
    scratch_final_psnr: float
    finetune_final_psnr: float
    scratch_time_s: float
    finetune_time_s: float
    at_time: list[tuple[float, float, float]]
    at_iteration: list[tuple[int, float, float]]
    time_to_target_scratch: float
    time_to_target_finetune: float
    time_ratio: float
    speedup: float
    iterations_to_target_scratch: float
    iterations_to_target_finetune: float
    iteration_ratio: float
    scratch_curve: Curve = field(repr=False)
    finetune_curve: Curve = field(repr=False)
    budget_fractions: tuple[float, ...] = TablesConfig().budgets
    iteration_fractions: tuple[float, ...] = TablesConfig().iteration_fractions


def _check_log(video: str, which: str, rows: list[dict]) -> None:
    """InputError unless ``rows`` is a non-empty log with the columns and order we rely on."""
    if not rows:
        raise InputError(f"{video}: the {which} training log is empty (did the run write log.csv?)")
    for i, row in enumerate(rows):
        missing = [key for key in _REQUIRED_LOG_KEYS if key not in row]
        if missing:
            raise InputError(f"{video}: row {i} of the {which} training log lacks {', '.join(missing)}")
    # psnr_at_time and the iteration look-up stop at the first row past the query
    for key in ("iteration", "wall_time_s"):
        values = [row[key] for row in rows]
        if any(b < a for a, b in zip(values, values[1:])):
            raise InputError(f"{video}: the {which} training log's {key} is not non-decreasing")


def psnr_at_iteration(rows: list[dict], iteration: int) -> float:
    """The last logged PSNR at or before ``iteration``, NaN if none yet (cf. ``psnr_at_time``)."""
    value = math.nan
    for row in rows:
        if row["iteration"] > iteration:
            break
        value = float(row["psnr"])
    return value


def time_to_target(rows: list[dict], target: float, key: str = "wall_time_s") -> float:
    """The first logged ``key`` (training time, or ``iteration``) at which PSNR >= ``target``,
    NaN if never."""
    for row in rows:
        if row["psnr"] >= target:  # NaN PSNR or target compares False: not reached
            return float(row[key])
    return math.nan


def _ratio(num: float, den: float) -> float:
    """``num / den``, NaN if either is NaN; a zero denominator gives inf (or NaN for 0/0)."""
    if math.isnan(num) or math.isnan(den):
        return math.nan
    if den == 0:
        return math.inf if num > 0 else math.nan
    return num / den


def compare_runs(
    video: str, scratch: list[dict], finetune: list[dict], cfg: TablesConfig = TablesConfig()
) -> VideoComparison:
    """Compare the scratch and HyperNVD finetune logs (``read_log`` rows) of one video."""
    _check_log(video, "scratch", scratch)
    _check_log(video, "finetune", finetune)
    scratch_time = float(scratch[-1]["wall_time_s"])
    scratch_iters = int(scratch[-1]["iteration"])
    target = float(scratch[-1]["psnr"]) if cfg.target_psnr is None else cfg.target_psnr

    at_time = []
    for fraction in cfg.budgets:
        seconds = fraction * scratch_time
        at_time.append((seconds, psnr_at_time(scratch, seconds), psnr_at_time(finetune, seconds)))
    at_iteration = []
    for fraction in cfg.iteration_fractions:
        # round, not floor: 0.57 * 100 is 56.99999999999999
        iteration = round(fraction * scratch_iters)
        at_iteration.append((iteration, psnr_at_iteration(scratch, iteration), psnr_at_iteration(finetune, iteration)))

    tts_scratch = time_to_target(scratch, target)
    tts_finetune = time_to_target(finetune, target)
    its_scratch = time_to_target(scratch, target, "iteration")
    its_finetune = time_to_target(finetune, target, "iteration")
    return VideoComparison(
        video=video,
        target_psnr=target,
        scratch_final_psnr=float(scratch[-1]["psnr"]),
        finetune_final_psnr=float(finetune[-1]["psnr"]),
        scratch_time_s=scratch_time,
        finetune_time_s=float(finetune[-1]["wall_time_s"]),
        at_time=at_time,
        at_iteration=at_iteration,
        time_to_target_scratch=tts_scratch,
        time_to_target_finetune=tts_finetune,
        time_ratio=_ratio(tts_finetune, tts_scratch),
        speedup=_ratio(tts_scratch, tts_finetune),
        iterations_to_target_scratch=its_scratch,
        iterations_to_target_finetune=its_finetune,
        iteration_ratio=_ratio(its_finetune, its_scratch),
        scratch_curve=[(float(r["wall_time_s"]), float(r["psnr"])) for r in scratch],
        finetune_curve=[(float(r["wall_time_s"]), float(r["psnr"])) for r in finetune],
        budget_fractions=cfg.budgets,
        iteration_fractions=cfg.iteration_fractions,
    )


# ---------------------------------------------------------------------------- helpers


def _pct(fraction: float) -> str:
    """0.25 -> "25", 0.125 -> "12.5": the label used in column names."""
    return f"{100 * fraction:g}"


def _nanmean(values: Sequence[float]) -> float:
    """Mean of the non-NaN values, NaN (without numpy's warning) if there are none."""
    kept = [float(v) for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def _csv_cell(value: Any) -> Any:
    # repr keeps every digit so the CSV reads back exactly; ints stay ints
    return repr(value) if isinstance(value, float) else value


def _csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buf.getvalue()


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then move it into place.

    A reader (or a killed run) never sees a half-written table or image.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    _write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _fmt(value: float, digits: int, unit: str = "", nan: str = "n/a") -> str:
    return nan if math.isnan(value) else f"{value:.{digits}f}{unit}"


def _plot_stem(video: str) -> str:
    """A file-name-safe form of ``video`` (it may be a path or hold spaces)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", video).strip("._") or "video"


# ---------------------------------------------------------------------------- comparison


def comparison_rows(comparisons: list[VideoComparison]) -> tuple[list[str], list[dict[str, Any]]]:
    """The CSV columns and rows: one row per video, then a ``mean`` row.

    The mean row averages every numeric column over videos, ignoring NaN (a video that
    never reaches the target does not make the mean time NaN). ``time_ratio`` and
    ``speedup`` in it are means of the per-video ratios, not ratios of mean times.
    """
    first = comparisons[0]
    columns = ["video", "target_psnr", "scratch_final_psnr", "finetune_final_psnr", "scratch_time_s", "finetune_time_s"]
    for fraction in first.budget_fractions:
        p = _pct(fraction)
        columns += [f"budget_{p}pct_s", f"scratch_psnr_at_{p}pct_time", f"finetune_psnr_at_{p}pct_time"]
    for fraction in first.iteration_fractions:
        p = _pct(fraction)
        columns += [f"iteration_{p}pct", f"scratch_psnr_at_{p}pct_iters", f"finetune_psnr_at_{p}pct_iters"]
    columns += ["time_to_target_scratch_s", "time_to_target_finetune_s", "time_ratio", "speedup",
                "iterations_to_target_scratch", "iterations_to_target_finetune", "iteration_ratio"]

    rows: list[dict[str, Any]] = []
    for c in comparisons:
        row: dict[str, Any] = {
            "video": c.video,
            "target_psnr": c.target_psnr,
            "scratch_final_psnr": c.scratch_final_psnr,
            "finetune_final_psnr": c.finetune_final_psnr,
            "scratch_time_s": c.scratch_time_s,
            "finetune_time_s": c.finetune_time_s,
        }
        for fraction, (seconds, s, f) in zip(c.budget_fractions, c.at_time):
            p = _pct(fraction)
            row[f"budget_{p}pct_s"] = seconds
            row[f"scratch_psnr_at_{p}pct_time"], row[f"finetune_psnr_at_{p}pct_time"] = s, f
        for fraction, (iteration, s, f) in zip(c.iteration_fractions, c.at_iteration):
            p = _pct(fraction)
            row[f"iteration_{p}pct"] = iteration
            row[f"scratch_psnr_at_{p}pct_iters"], row[f"finetune_psnr_at_{p}pct_iters"] = s, f
        row.update({
            "time_to_target_scratch_s": c.time_to_target_scratch,
            "time_to_target_finetune_s": c.time_to_target_finetune,
            "time_ratio": c.time_ratio,
            "speedup": c.speedup,
            "iterations_to_target_scratch": c.iterations_to_target_scratch,
            "iterations_to_target_finetune": c.iterations_to_target_finetune,
            "iteration_ratio": c.iteration_ratio,
        })
        rows.append(row)
    mean: dict[str, Any] = {"video": "mean"}
    for column in columns[1:]:
        # iteration counts differ per video, so their mean is a float like every other
        mean[column] = _nanmean([float(row[column]) for row in rows])
    return columns, rows + [mean]


def comparison_markdown(comparisons: list[VideoComparison]) -> str:
    """Three narrow GitHub tables: equal time, equal iterations, time to target."""
    _, rows = comparison_rows(comparisons)
    first = comparisons[0]
    budgets = ", ".join(f"{_pct(f)}%" for f in first.budget_fractions)
    iters = ", ".join(f"{_pct(f)}%" for f in first.iteration_fractions)
    out = [
        "# HyperNVD finetune vs training from scratch\n",
        "Each cell is `scratch / HyperNVD` PSNR (dB). Budgets are fractions of the scratch run's "
        f"total training time ({budgets}) or of its final iteration ({iters}); the PSNR at a budget "
        "is the last one logged at or before it. The target PSNR is the one both runs race to "
        "(by default the scratch run's final PSNR); time ratio = HyperNVD / scratch time to target, "
        "speedup = its inverse; the iteration ratio is the same in iterations (both runs do the "
        "same work per iteration, so it is free of the machine's timing noise). The mean row "
        "averages each column over videos, skipping a video where the value is missing (e.g. "
        "never reached the target); its ratios are means of the per-video ratios.\n",
    ]

    def pair(row: dict[str, Any], a: str, b: str) -> str:
        return f"{_fmt(row[a], 2)} / {_fmt(row[b], 2)}"

    header = ["video", "target (dB)"] + [f"{_pct(f)}% time" for f in first.budget_fractions]
    body = []
    for row in rows:
        cells = [str(row["video"]), _fmt(row["target_psnr"], 2)]
        for fraction in first.budget_fractions:
            p = _pct(fraction)
            cells.append(pair(row, f"scratch_psnr_at_{p}pct_time", f"finetune_psnr_at_{p}pct_time"))
        body.append(cells)
    out += ["## PSNR at equal training time\n", _md_table(header, body)]

    header = ["video"] + [f"{_pct(f)}% iters" for f in first.iteration_fractions]
    body = []
    for row in rows:
        cells = [str(row["video"])]
        for fraction in first.iteration_fractions:
            p = _pct(fraction)
            cells.append(pair(row, f"scratch_psnr_at_{p}pct_iters", f"finetune_psnr_at_{p}pct_iters"))
        body.append(cells)
    out += ["## PSNR at equal iterations\n", _md_table(header, body)]

    header = ["video", "target (dB)", "scratch time", "HyperNVD time", "time ratio", "speedup",
              "scratch iters", "HyperNVD iters", "iteration ratio"]
    body = [
        [
            str(row["video"]),
            _fmt(row["target_psnr"], 2),
            _fmt(row["time_to_target_scratch_s"], 1, " s", nan="not reached"),
            _fmt(row["time_to_target_finetune_s"], 1, " s", nan="not reached"),
            _fmt(row["time_ratio"], 2),
            _fmt(row["speedup"], 2),
            _fmt(row["iterations_to_target_scratch"], 0, nan="not reached"),
            _fmt(row["iterations_to_target_finetune"], 0, nan="not reached"),
            _fmt(row["iteration_ratio"], 2),
        ]
        for row in rows
    ]
    out += ["## Training time to reach the target PSNR\n", _md_table(header, body)]
    return "\n".join(out)


def mean_curves(
    comparisons: list[VideoComparison], points: int = CURVE_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time grid, mean scratch PSNR, mean finetune PSNR) over videos.

    Each run is sampled with ``psnr_at_time`` on a grid from 0 to the longest scratch run
    (a run that ended earlier holds its last PSNR). A grid point is averaged only where
    every video has a logged PSNR, else it is NaN: otherwise the mean would jump when a
    slow video's first log row arrives.
    """
    grid = np.linspace(0.0, max(c.scratch_time_s for c in comparisons), points)

    def mean_of(curves: list[Curve]) -> np.ndarray:
        logs = [[{"wall_time_s": t, "psnr": p} for t, p in curve] for curve in curves]  # psnr_at_time's rows
        sampled = np.array([[psnr_at_time(rows, s) for s in grid] for rows in logs])
        mean = np.full(points, np.nan)
        complete = ~np.isnan(sampled).any(axis=0)
        mean[complete] = sampled[:, complete].mean(axis=0)
        return mean

    return grid, mean_of([c.scratch_curve for c in comparisons]), mean_of([c.finetune_curve for c in comparisons])


def _plot_curves(path: Path, title: str, scratch: Curve, finetune: Curve, target: float) -> None:
    """PSNR vs training time for both methods, saved as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on the cluster nodes
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        for curve, label, color in ((scratch, "scratch", "tab:blue"), (finetune, "HyperNVD finetune", "tab:orange")):
            ax.plot([t for t, _ in curve], [p for _, p in curve], label=label, color=color)
        if math.isfinite(target):
            ax.axhline(target, color="gray", linestyle="--", linewidth=1, label=f"target {target:.2f} dB")
        ax.set_xlabel("training time (s)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        _write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def write_comparison(out_dir: str | os.PathLike, comparisons: list[VideoComparison]) -> dict[str, Path]:
    """Write the comparison CSV, Markdown and PNG plots into ``out_dir`` (created).

    Returns name -> path: ``csv``, ``markdown``, ``mean_plot`` and ``plot_{video}`` per video.
    See ``comparison_rows`` for how the mean row is formed.
    """
    if not comparisons:
        raise InputError("no videos to compare: the list of comparisons is empty")
    first = comparisons[0]
    for c in comparisons:
        if (c.budget_fractions, c.iteration_fractions) != (first.budget_fractions, first.iteration_fractions):
            raise InputError(
                f"{c.video}: compared with other budgets than {first.video}; use one TablesConfig for all videos"
            )
    stems = [_plot_stem(c.video) for c in comparisons]
    if len({c.video for c in comparisons}) != len(comparisons) or len(set(stems)) != len(stems) or "mean" in stems:
        raise InputError(
            "video names must be distinct, differ after making them file-name safe, and not be 'mean': "
            f"{[c.video for c in comparisons]}"
        )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / COMPARISON_CSV, "markdown": out / COMPARISON_MD, "mean_plot": out / MEAN_PLOT}
    columns, rows = comparison_rows(comparisons)
    _write_text(paths["csv"], _csv_text(columns, rows))
    _write_text(paths["markdown"], comparison_markdown(comparisons))

    for c, stem in zip(comparisons, stems):
        path = out / f"psnr_vs_time_{stem}.png"
        _plot_curves(path, f"{c.video}: PSNR vs training time", c.scratch_curve, c.finetune_curve, c.target_psnr)
        paths[f"plot_{c.video}"] = path
    grid, scratch_mean, finetune_mean = mean_curves(comparisons)
    targets = [c.target_psnr for c in comparisons]
    _plot_curves(
        paths["mean_plot"], f"mean over {len(comparisons)} video(s): PSNR vs training time",
        list(zip(grid.tolist(), scratch_mean.tolist())), list(zip(grid.tolist(), finetune_mean.tolist())),
        _nanmean(targets),
    )
    return paths


# ---------------------------------------------------------------------------- generalisation


def _check_generalisation(rows: list[dict]) -> None:
    if not rows:
        raise InputError("no generalisation rows to write")
    for i, row in enumerate(rows):
        missing = [key for key in _GENERALISATION_KEYS if key not in row]
        if missing:
            raise InputError(f"generalisation row {i} ({row.get('video', '?')}) lacks {', '.join(missing)}")
        if row["split"] not in SPLITS:
            raise InputError(
                f"generalisation row {i} ({row['video']}): split must be one of {', '.join(SPLITS)}, "
                f"got {row['split']!r}"
            )


def generalisation_rows(rows: list[dict]) -> list[dict[str, Any]]:
    """``rows`` (in split order, train first) followed by one ``mean (split)`` row per split present."""
    _check_generalisation(rows)
    ordered = sorted(rows, key=lambda r: SPLITS.index(r["split"]))  # stable: keeps video order
    out: list[dict[str, Any]] = [
        {"video": r["video"], "split": r["split"], "psnr": float(r["psnr"]),
         "psnr_no_residual": float(r["psnr_no_residual"])}
        for r in ordered
    ]
    for split in SPLITS:
        members = [r for r in out if r["split"] == split]
        if members:
            out.append({
                "video": f"mean ({split})",
                "split": split,
                "psnr": _nanmean([r["psnr"] for r in members]),
                "psnr_no_residual": _nanmean([r["psnr_no_residual"] for r in members]),
            })
    return out


def write_generalisation(out_dir: str | os.PathLike, rows: list[dict]) -> dict[str, Path]:
    """Write the hypernetwork's pre-finetuning quality per video and per split.

    ``rows``: ``{"video", "split" ("train" | "heldout"), "psnr", "psnr_no_residual"}``.
    Writes ``hypernvd_generalisation.csv`` (rows, then a ``mean (split)`` row per split)
    and ``.md``; returns ``{"csv": ..., "markdown": ...}``.
    """
    table = generalisation_rows(rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / GENERALISATION_CSV, "markdown": out / GENERALISATION_MD}
    _write_text(paths["csv"], _csv_text(list(_GENERALISATION_KEYS), table))

    per_video, means = table[: len(rows)], table[len(rows) :]
    summary = [
        [m["split"], str(sum(r["split"] == m["split"] for r in per_video)),
         _fmt(m["psnr"], 2), _fmt(m["psnr_no_residual"], 2)]
        for m in means
    ]
    text = "\n".join([
        "# HyperNVD generalisation (hypernetwork output, before finetuning)\n",
        "PSNR (dB) of the decomposition the hypernetwork predicts for each video; `train` videos "
        "were seen when training the hypernetwork, `heldout` ones were not.\n",
        "## Per video\n",
        _md_table(
            ["video", "split", "PSNR (dB)", "PSNR without residual (dB)"],
            [[r["video"], r["split"], _fmt(r["psnr"], 2), _fmt(r["psnr_no_residual"], 2)] for r in per_video],
        ),
        "## Per split\n",
        _md_table(["split", "videos", "mean PSNR (dB)", "mean PSNR without residual (dB)"], summary),
    ])
    _write_text(paths["markdown"], text)
    return paths


# ---------------------------------------------------------------------------- from run files


def write_tables(out_dir: str | os.PathLike, runs: Mapping[str, tuple[str | os.PathLike, str | os.PathLike]],
                 outputs: Mapping[str, str | os.PathLike], cfg: TablesConfig = TablesConfig()) -> dict[str, Path]:
    """All HyperNVD tables and plots from the files the runs leave (the ``tables`` rule).

    ``runs``: held-out video -> (scratch log.csv, finetune log.csv); ``outputs``: video ->
    hypernet_output.json (see nvd.hypernvd.hypernet_output_quality, holding its split).
    """
    import json

    from .training import read_log

    paths: dict[str, Path] = {}
    if runs:
        comparisons = [compare_runs(video, read_log(Path(scratch).parent), read_log(Path(finetune).parent), cfg)
                       for video, (scratch, finetune) in runs.items()]
        paths.update(write_comparison(out_dir, comparisons))
    rows = []
    for video, path in outputs.items():
        quality = json.loads(Path(path).read_text())
        rows.append({"video": video, "split": quality["split"], "psnr": quality["psnr"],
                     "psnr_no_residual": quality["psnr_no_residual"]})
    paths.update({f"generalisation_{k}": v for k, v in write_generalisation(out_dir, rows).items()})
    return paths
