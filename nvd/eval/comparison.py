"""Baseline vs candidate: two training runs of the same video, compared at equal effort.

A comparison races two methods (``Methods``: e.g. training from scratch as the baseline, a
finetune of a predicted model as the candidate) that both write ``log.csv`` (see
``nvd.train.logs.read_log``). This module turns a pair of logs per video into:

- ``VideoComparison`` (``compare_runs``): PSNR at equal wall-clock budgets and at equal
  iteration counts, and the training time each run needs to reach a target PSNR;
- ``write_comparison``: a CSV and a Markdown table over videos (plus a mean row) and
  PSNR-vs-time plots per video and averaged over videos, under the caller's file names.

Every budget is relative to the baseline run (its total training time, its final iteration,
its final PSNR), so the question answered is always "how much of the baseline's effort does
the candidate need for the same quality". ``TablesConfig`` (the ``tables`` config section)
says which budgets are reported.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nvd.core.errors import ConfigError, InputError
from nvd.core.layout import MEAN_PLOT, plot_name, plot_stem
from nvd.core.publish import publish_text, publish_with
from nvd.eval.table_format import csv_text, format_number, markdown_table, nanmean
from nvd.train.logs import psnr_at_time

CURVE_POINTS = 200  # samples on the common time grid of the mean curve

_REQUIRED_LOG_KEYS = ("iteration", "wall_time_s", "psnr")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]*")  # no "_": column names split on it stay readable

Curve = list[tuple[float, float]]  # (training seconds, PSNR dB) per logged row


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

    ``budgets``: wall-clock budgets as fractions of the baseline run's total training time.
    ``iteration_fractions``: equal-iteration checkpoints as fractions of the baseline run's
    final iteration. ``target_psnr``: the PSNR (dB) both runs race to; None means the
    baseline run's final logged PSNR, i.e. "how long does the candidate take to match it".
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


@dataclass(frozen=True)
class Methods:
    """The two methods a comparison names, e.g. ``Methods("scratch", "finetune", ...)``.

    ``baseline`` / ``candidate``: keys in CSV column names and error messages (a letter,
    then letters or digits). ``baseline_label`` / ``candidate_label``: their names in the
    Markdown tables; ``baseline_plot_label`` / ``candidate_plot_label``: in plot legends.
    Labels default to the key (plot labels to the Markdown label). ``title``: the Markdown
    heading, by default "<candidate label> vs <baseline label>". ``same_work_per_iteration``:
    both methods do the same work per iteration (e.g. the same model trained two ways), so
    the Markdown may call the iteration ratio free of the machine's timing noise.
    """

    baseline: str = "baseline"
    candidate: str = "candidate"
    baseline_label: str = ""
    candidate_label: str = ""
    baseline_plot_label: str = ""
    candidate_plot_label: str = ""
    title: str = ""
    same_work_per_iteration: bool = False

    def __post_init__(self) -> None:
        for key in (self.baseline, self.candidate):
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                raise ValueError(f"a method key must be a letter followed by letters or digits, got {key!r}")
        if self.baseline == self.candidate:
            raise ValueError(f"the two methods need distinct keys, got {self.baseline!r} twice")

        def fill(name: str, default: str) -> None:
            # frozen: defaults that depend on other fields are filled in here
            if not getattr(self, name):
                object.__setattr__(self, name, default)

        fill("baseline_label", self.baseline)
        fill("candidate_label", self.candidate)
        fill("baseline_plot_label", self.baseline_label)
        fill("candidate_plot_label", self.candidate_label)
        fill("title", f"{self.candidate_label} vs {self.baseline_label}")


@dataclass(frozen=True)
class ComparisonFiles:
    """The file names ``write_comparison`` writes into its folder.

    ``plot`` maps a video's file-name-safe stem to its PSNR-vs-time plot's name.
    """

    csv: str
    markdown: str
    mean_plot: str = MEAN_PLOT
    plot: Callable[[str], str] = plot_name


# ---------------------------------------------------------------------------- one video


@dataclass(frozen=True)
class VideoComparison:
    """Baseline vs candidate on one video (times in training seconds, PSNR in dB).

    ``at_time``: (budget seconds, baseline PSNR, candidate PSNR) per budget fraction;
    ``at_iteration``: (iteration, baseline PSNR, candidate PSNR) per iteration fraction.
    ``time_ratio`` is candidate / baseline time to target, ``speedup`` its inverse; both
    NaN when either run never reaches the target. ``iteration_ratio`` is the same ratio in
    iterations. Curves are the logged (seconds, PSNR) points of each run.
    """

    video: str
    target_psnr: float
    baseline_final_psnr: float
    candidate_final_psnr: float
    baseline_time_s: float
    candidate_time_s: float
    at_time: list[tuple[float, float, float]]
    at_iteration: list[tuple[int, float, float]]
    time_to_target_baseline: float
    time_to_target_candidate: float
    time_ratio: float
    speedup: float
    iterations_to_target_baseline: float
    iterations_to_target_candidate: float
    iteration_ratio: float
    baseline_curve: Curve = field(repr=False)
    candidate_curve: Curve = field(repr=False)
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
    video: str, baseline: list[dict], candidate: list[dict], cfg: TablesConfig = TablesConfig(),
    methods: Methods = Methods(),
) -> VideoComparison:
    """Compare the baseline and candidate logs (``read_log`` rows) of one video.

    ``methods`` only names the runs in error messages.
    """
    _check_log(video, methods.baseline, baseline)
    _check_log(video, methods.candidate, candidate)
    baseline_time = float(baseline[-1]["wall_time_s"])
    baseline_iters = int(baseline[-1]["iteration"])
    target = float(baseline[-1]["psnr"]) if cfg.target_psnr is None else cfg.target_psnr

    seconds = [fraction * baseline_time for fraction in cfg.budgets]
    # round, not floor: 0.57 * 100 is 56.99999999999999
    iterations = [round(fraction * baseline_iters) for fraction in cfg.iteration_fractions]
    tts_baseline, tts_candidate = time_to_target(baseline, target), time_to_target(candidate, target)
    its_baseline = time_to_target(baseline, target, "iteration")
    its_candidate = time_to_target(candidate, target, "iteration")
    return VideoComparison(
        video=video,
        target_psnr=target,
        baseline_final_psnr=float(baseline[-1]["psnr"]),
        candidate_final_psnr=float(candidate[-1]["psnr"]),
        baseline_time_s=baseline_time,
        candidate_time_s=float(candidate[-1]["wall_time_s"]),
        at_time=[(s, psnr_at_time(baseline, s), psnr_at_time(candidate, s)) for s in seconds],
        at_iteration=[(i, psnr_at_iteration(baseline, i), psnr_at_iteration(candidate, i)) for i in iterations],
        time_to_target_baseline=tts_baseline,
        time_to_target_candidate=tts_candidate,
        time_ratio=_ratio(tts_candidate, tts_baseline),
        speedup=_ratio(tts_baseline, tts_candidate),
        iterations_to_target_baseline=its_baseline,
        iterations_to_target_candidate=its_candidate,
        iteration_ratio=_ratio(its_candidate, its_baseline),
        baseline_curve=[(float(r["wall_time_s"]), float(r["psnr"])) for r in baseline],
        candidate_curve=[(float(r["wall_time_s"]), float(r["psnr"])) for r in candidate],
        budget_fractions=cfg.budgets,
        iteration_fractions=cfg.iteration_fractions,
    )


# ---------------------------------------------------------------------------- table helpers


def _pct(fraction: float) -> str:
    """0.25 -> "25", 0.125 -> "12.5": the label used in column names."""
    return f"{100 * fraction:g}"


# ---------------------------------------------------------------------------- comparison


def comparison_rows(
    comparisons: list[VideoComparison], methods: Methods
) -> tuple[list[str], list[dict[str, Any]]]:
    """The CSV columns and rows: one row per video, then a ``mean`` row.

    Method-specific columns carry the method's key, e.g. ``{baseline}_psnr_at_25pct_time``.
    The mean row averages every numeric column over videos, ignoring NaN (a video that
    never reaches the target does not make the mean time NaN). ``time_ratio`` and
    ``speedup`` in it are means of the per-video ratios, not ratios of mean times.
    """
    b, c = methods.baseline, methods.candidate
    rows: list[dict[str, Any]] = []
    for comp in comparisons:
        row: dict[str, Any] = {
            "video": comp.video, "target_psnr": comp.target_psnr,
            f"{b}_final_psnr": comp.baseline_final_psnr, f"{c}_final_psnr": comp.candidate_final_psnr,
            f"{b}_time_s": comp.baseline_time_s, f"{c}_time_s": comp.candidate_time_s,
        }
        for fraction, (seconds, base, cand) in zip(comp.budget_fractions, comp.at_time):
            p = _pct(fraction)
            row[f"budget_{p}pct_s"] = seconds
            row[f"{b}_psnr_at_{p}pct_time"], row[f"{c}_psnr_at_{p}pct_time"] = base, cand
        for fraction, (iteration, base, cand) in zip(comp.iteration_fractions, comp.at_iteration):
            p = _pct(fraction)
            row[f"iteration_{p}pct"] = iteration
            row[f"{b}_psnr_at_{p}pct_iters"], row[f"{c}_psnr_at_{p}pct_iters"] = base, cand
        row.update({
            f"time_to_target_{b}_s": comp.time_to_target_baseline,
            f"time_to_target_{c}_s": comp.time_to_target_candidate,
            "time_ratio": comp.time_ratio,
            "speedup": comp.speedup,
            f"iterations_to_target_{b}": comp.iterations_to_target_baseline,
            f"iterations_to_target_{c}": comp.iterations_to_target_candidate,
            "iteration_ratio": comp.iteration_ratio,
        })
        rows.append(row)
    columns = list(rows[0])  # insertion order is the column order
    mean: dict[str, Any] = {"video": "mean"}
    for column in columns[1:]:
        # iteration counts differ per video, so their mean is a float like every other
        mean[column] = nanmean([float(row[column]) for row in rows])
    return columns, rows + [mean]


def comparison_markdown(comparisons: list[VideoComparison], methods: Methods) -> str:
    """Three narrow GitHub tables: equal time, equal iterations, time to target.

    Each PSNR cell is "<baseline> / <candidate>"; headers use the methods' labels.
    """
    _, rows = comparison_rows(comparisons, methods)
    b, c = methods.baseline, methods.candidate
    bl, cl = methods.baseline_label, methods.candidate_label
    first = comparisons[0]
    budgets = ", ".join(f"{_pct(f)}%" for f in first.budget_fractions)
    iters = ", ".join(f"{_pct(f)}%" for f in first.iteration_fractions)
    fair = (" (both runs do the same work per iteration, so it is free of the machine's timing noise)"
            if methods.same_work_per_iteration else "")
    out = [
        f"# {methods.title}\n",
        f"Each cell is `{bl} / {cl}` PSNR (dB). Budgets are fractions of the {bl} run's "
        f"total training time ({budgets}) or of its final iteration ({iters}); the PSNR at a budget "
        "is the last one logged at or before it. The target PSNR is the one both runs race to "
        f"(by default the {bl} run's final PSNR); time ratio = {cl} / {bl} time to target, "
        f"speedup = its inverse; the iteration ratio is the same in iterations{fair}. The mean row "
        "averages each column over videos, skipping a video where the value is missing (e.g. "
        "never reached the target); its ratios are means of the per-video ratios.\n",
    ]

    def pair(row: dict[str, Any], kind: str, p: str) -> str:
        return (f"{format_number(row[f'{b}_psnr_at_{p}pct_{kind}'], 2)} / "
                f"{format_number(row[f'{c}_psnr_at_{p}pct_{kind}'], 2)}")

    header = ["video", "target (dB)"] + [f"{_pct(f)}% time" for f in first.budget_fractions]
    body = [[str(row["video"]), format_number(row["target_psnr"], 2)]
            + [pair(row, "time", _pct(f)) for f in first.budget_fractions] for row in rows]
    out += ["## PSNR at equal training time\n", markdown_table(header, body)]

    header = ["video"] + [f"{_pct(f)}% iters" for f in first.iteration_fractions]
    body = [[str(row["video"])] + [pair(row, "iters", _pct(f)) for f in first.iteration_fractions] for row in rows]
    out += ["## PSNR at equal iterations\n", markdown_table(header, body)]

    header = ["video", "target (dB)", f"{bl} time", f"{cl} time", "time ratio", "speedup",
              f"{bl} iters", f"{cl} iters", "iteration ratio"]
    body = [
        [
            str(row["video"]),
            format_number(row["target_psnr"], 2),
            format_number(row[f"time_to_target_{b}_s"], 1, " s", nan="not reached"),
            format_number(row[f"time_to_target_{c}_s"], 1, " s", nan="not reached"),
            format_number(row["time_ratio"], 2),
            format_number(row["speedup"], 2),
            format_number(row[f"iterations_to_target_{b}"], 0, nan="not reached"),
            format_number(row[f"iterations_to_target_{c}"], 0, nan="not reached"),
            format_number(row["iteration_ratio"], 2),
        ]
        for row in rows
    ]
    out += ["## Training time to reach the target PSNR\n", markdown_table(header, body)]
    return "\n".join(out)


def mean_curves(
    comparisons: list[VideoComparison], points: int = CURVE_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time grid (s), mean baseline PSNR, mean candidate PSNR (dB)), each of shape (points,).

    Each run is sampled with ``psnr_at_time`` on a grid from 0 to the longest baseline run
    (a run that ended earlier holds its last PSNR). A grid point is averaged only where
    every video has a logged PSNR, else it is NaN: otherwise the mean would jump when a
    slow video's first log row arrives.
    """
    grid = np.linspace(0.0, max(c.baseline_time_s for c in comparisons), points)

    def mean_of(curves: list[Curve]) -> np.ndarray:
        logs = [[{"wall_time_s": t, "psnr": p} for t, p in curve] for curve in curves]  # psnr_at_time's rows
        sampled = np.array([[psnr_at_time(rows, s) for s in grid] for rows in logs])
        mean = np.full(points, np.nan)
        complete = ~np.isnan(sampled).any(axis=0)
        mean[complete] = sampled[:, complete].mean(axis=0)
        return mean

    return grid, mean_of([c.baseline_curve for c in comparisons]), mean_of([c.candidate_curve for c in comparisons])


def plot_curves(path: str | os.PathLike, title: str, baseline: Curve, candidate: Curve, target: float,
                methods: Methods) -> Path:
    """PSNR vs training time for both methods (legend: their plot labels), a PNG at ``path``.

    ``target`` (dB) is drawn as a dashed line unless it is NaN.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on the cluster nodes
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        for curve, label, color in ((baseline, methods.baseline_plot_label, "tab:blue"),
                                    (candidate, methods.candidate_plot_label, "tab:orange")):
            ax.plot([t for t, _ in curve], [p for _, p in curve], label=label, color=color)
        if math.isfinite(target):
            ax.axhline(target, color="gray", linestyle="--", linewidth=1, label=f"target {target:.2f} dB")
        ax.set_xlabel("training time (s)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        # format given: the temporary's name is not the one a reader would guess it from
        return publish_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def write_comparison(out_dir: str | os.PathLike, comparisons: list[VideoComparison], methods: Methods,
                     files: ComparisonFiles) -> dict[str, Path]:
    """Write the comparison CSV, Markdown and PNG plots into ``out_dir`` (created).

    Returns name -> path: ``csv``, ``markdown``, ``mean_plot`` and ``plot_{video}`` per video,
    named by ``files``. See ``comparison_rows`` for how the mean row is formed.
    """
    if not comparisons:
        raise InputError("no videos to compare: the list of comparisons is empty")
    first = comparisons[0]
    for c in comparisons:
        if (c.budget_fractions, c.iteration_fractions) != (first.budget_fractions, first.iteration_fractions):
            raise InputError(
                f"{c.video}: compared with other budgets than {first.video}; use one TablesConfig for all videos"
            )
    stems = [plot_stem(c.video) for c in comparisons]
    plots = [files.plot(stem) for stem in stems]
    # "mean" names the mean row; a plot must not overwrite another output
    if (len({c.video for c in comparisons}) != len(comparisons) or len(set(stems)) != len(stems)
            or "mean" in stems or set(plots) & {files.csv, files.markdown, files.mean_plot}):
        raise InputError(
            "video names must be distinct, differ after making them file-name safe, and not be 'mean': "
            f"{[c.video for c in comparisons]}"
        )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / files.csv, "markdown": out / files.markdown, "mean_plot": out / files.mean_plot}
    columns, rows = comparison_rows(comparisons, methods)
    publish_text(paths["csv"], csv_text(columns, rows))
    publish_text(paths["markdown"], comparison_markdown(comparisons, methods))

    for c, name in zip(comparisons, plots):
        paths[f"plot_{c.video}"] = plot_curves(
            out / name, f"{c.video}: PSNR vs training time", c.baseline_curve, c.candidate_curve, c.target_psnr,
            methods,
        )
    grid, baseline_mean, candidate_mean = mean_curves(comparisons)
    plot_curves(
        paths["mean_plot"], f"mean over {len(comparisons)} video(s): PSNR vs training time",
        list(zip(grid.tolist(), baseline_mean.tolist())), list(zip(grid.tolist(), candidate_mean.tolist())),
        nanmean([c.target_psnr for c in comparisons]), methods,
    )
    return paths
