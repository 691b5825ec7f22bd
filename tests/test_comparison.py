"""The baseline-vs-candidate comparison (nvd.eval.comparison) and HyperNVD's tables built on it
(nvd.models.hypernvd.tables): values from hand-built logs, CSV/Markdown/PNG outputs, the
generalisation table, file permissions and bad input."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from nvd.core.errors import ConfigError, InputError
from nvd.core.publish import PARTIAL_TAG
from nvd.eval.comparison import (
    ComparisonFiles,
    Methods,
    TablesConfig,
    VideoComparison,
    compare_runs,
    comparison_markdown,
    comparison_rows,
    mean_curves,
    write_comparison,
)
from nvd.models.hypernvd.tables import COMPARISON_FILES, SCRATCH_VS_FINETUNE, write_generalisation, write_tables

HYPER = SCRATCH_VS_FINETUNE


def linear_log(step: float, n: int, psnr0: float, per_second: float, iters_per_second: int = 10) -> list[dict]:
    """``n`` rows at t = step, 2 step, ...; PSNR = psnr0 + per_second * t (values exact in binary)."""
    rows = []
    for k in range(1, n + 1):
        t = step * k
        rows.append(
            {"iteration": int(t * iters_per_second), "wall_time_s": t, "loss": 1.0 / k, "psnr": psnr0 + per_second * t}
        )
    return rows


# Scratch is the baseline, HyperNVD finetune the candidate throughout.
# Video "a": scratch 10 dB -> 30 dB at t = 100 s (a row every 10 s, iteration = 10 t);
# finetune 25 dB + 0.25 dB/s, a row every 5 s up to 40 s, so 30 dB at t = 20 s.
SCRATCH_A = linear_log(10, 10, 10.0, 0.2)
FINETUNE_A = linear_log(5, 8, 25.0, 0.25)
# Video "b": scratch reaches 30 dB at 200 s, finetune (22 dB + 0.1 dB/s) at 80 s.
SCRATCH_B = linear_log(20, 10, 10.0, 0.1)
FINETUNE_B = linear_log(10, 16, 22.0, 0.1)


@pytest.fixture
def comp_a() -> VideoComparison:
    return compare_runs("a", SCRATCH_A, FINETUNE_A, methods=HYPER)


@pytest.fixture
def comp_b() -> VideoComparison:
    return compare_runs("b", SCRATCH_B, FINETUNE_B, methods=HYPER)


def test_fixture_logs_are_what_the_comments_say() -> None:
    assert SCRATCH_A[-1] == {"iteration": 1000, "wall_time_s": 100, "loss": 0.1, "psnr": 30.0}
    assert FINETUNE_A[3]["wall_time_s"] == 20 and FINETUNE_A[3]["psnr"] == 30.0
    assert FINETUNE_B[7]["wall_time_s"] == 80 and FINETUNE_B[7]["psnr"] == pytest.approx(30.0)


def test_time_to_target_ratio_and_speedup(comp_a: VideoComparison, comp_b: VideoComparison) -> None:
    assert comp_a.target_psnr == 30.0  # scratch's final PSNR by default
    assert comp_a.baseline_final_psnr == 30.0 and comp_a.candidate_final_psnr == 35.0
    assert comp_a.baseline_time_s == 100 and comp_a.candidate_time_s == 40
    assert comp_a.time_to_target_baseline == 100
    assert comp_a.time_to_target_candidate == 20
    assert comp_a.time_ratio == pytest.approx(0.2)
    assert comp_a.speedup == pytest.approx(5.0)
    assert comp_b.time_to_target_baseline == 200 and comp_b.time_to_target_candidate == 80
    assert comp_b.time_ratio == pytest.approx(0.4) and comp_b.speedup == pytest.approx(2.5)
    # the same race in iterations (10 per second in these logs)
    assert (comp_a.iterations_to_target_baseline, comp_a.iterations_to_target_candidate) == (1000, 200)
    assert comp_a.iteration_ratio == pytest.approx(0.2) and comp_b.iteration_ratio == pytest.approx(0.4)


def test_psnr_at_equal_time_is_last_row_at_or_before_budget(comp_a: VideoComparison) -> None:
    budgets = [s for s, _, _ in comp_a.at_time]
    assert budgets == pytest.approx([10, 25, 50, 100])
    # 25 s: scratch's last row is t = 20 (14 dB), finetune has a row at 25 s (31.25 dB);
    # past its 40 s end the finetune run holds its final 35 dB
    assert [s for _, s, _ in comp_a.at_time] == pytest.approx([12.0, 14.0, 20.0, 30.0])
    assert [f for _, _, f in comp_a.at_time] == pytest.approx([27.5, 31.25, 35.0, 35.0])


def test_psnr_at_equal_iterations(comp_a: VideoComparison) -> None:
    assert [i for i, _, _ in comp_a.at_iteration] == [100, 250, 500, 1000]
    assert [s for _, s, _ in comp_a.at_iteration] == pytest.approx([12.0, 14.0, 20.0, 30.0])
    assert [f for _, _, f in comp_a.at_iteration] == pytest.approx([27.5, 31.25, 35.0, 35.0])


def test_budget_before_first_row_is_nan() -> None:
    comp = compare_runs("a", SCRATCH_A, FINETUNE_A, TablesConfig(budgets=(0.05,), iteration_fractions=(0.04,)))
    # 5 s: finetune's first row is at 5 s, scratch's at 10 s; iteration 40: neither has a row
    (seconds, s, f), = comp.at_time
    assert seconds == pytest.approx(5.0) and math.isnan(s) and f == 25 + 0.25 * 5
    (iteration, s, f), = comp.at_iteration
    assert iteration == 40 and math.isnan(s) and math.isnan(f)


def test_target_never_reached_gives_nan() -> None:
    never = compare_runs("a", SCRATCH_A, FINETUNE_A, TablesConfig(target_psnr=40.0))
    assert math.isnan(never.time_to_target_baseline) and math.isnan(never.time_to_target_candidate)
    assert math.isnan(never.time_ratio) and math.isnan(never.speedup) and math.isnan(never.iteration_ratio)
    only_finetune = compare_runs("a", SCRATCH_A, FINETUNE_A, TablesConfig(target_psnr=33.0))
    assert math.isnan(only_finetune.time_to_target_baseline)
    assert only_finetune.time_to_target_candidate == 35
    assert math.isnan(only_finetune.time_ratio) and math.isnan(only_finetune.speedup)


def test_curves_are_the_logged_points(comp_a: VideoComparison) -> None:
    assert comp_a.baseline_curve[0] == (10.0, 12.0) and comp_a.baseline_curve[-1] == (100.0, 30.0)
    assert len(comp_a.candidate_curve) == 8 and comp_a.candidate_curve[3] == (20.0, 30.0)


def test_mean_curve_averages_only_where_all_videos_are_defined(comp_a, comp_b) -> None:
    grid, scratch, finetune = mean_curves([comp_a, comp_b], points=3)
    assert grid.tolist() == [0.0, 100.0, 200.0]
    assert math.isnan(scratch[0]) and math.isnan(finetune[0])
    # 100 s: a has ended (holds 30 / 35 dB), b is at 20 / 32 dB; 200 s: b's finetune holds 38 dB
    assert scratch[1:].tolist() == pytest.approx([25.0, 30.0])
    assert finetune[1:].tolist() == pytest.approx([33.5, 36.5])
    grid, scratch, _ = mean_curves([comp_a, comp_b], points=21)  # 10 s steps
    assert grid[1] == 10.0 and math.isnan(scratch[1])  # a has a row at 10 s, b not yet


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """write_comparison on videos a and b, once: plotting is the slow part of these tests."""
    out = tmp_path_factory.mktemp("comparison") / "out"
    comparisons = [compare_runs("a", SCRATCH_A, FINETUNE_A), compare_runs("b", SCRATCH_B, FINETUNE_B)]
    return write_comparison(out, comparisons, HYPER, COMPARISON_FILES)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_write_comparison_csv(written: dict[str, Path]) -> None:
    assert written["csv"].name == "hypernvd_comparison.csv"
    rows = read_csv(written["csv"])
    assert [r["video"] for r in rows] == ["a", "b", "mean"]
    for column in (
        "target_psnr", "scratch_final_psnr", "finetune_final_psnr", "scratch_time_s", "finetune_time_s",
        "budget_25pct_s", "scratch_psnr_at_25pct_time", "finetune_psnr_at_25pct_time",
        "iteration_10pct", "scratch_psnr_at_25pct_iters", "finetune_psnr_at_100pct_iters",
        "time_to_target_scratch_s", "time_to_target_finetune_s", "time_ratio", "speedup",
        "iterations_to_target_scratch", "iterations_to_target_finetune", "iteration_ratio",
    ):
        assert column in rows[0], column
    a, b, mean = rows
    assert float(a["finetune_psnr_at_25pct_time"]) == 31.25
    assert float(a["budget_25pct_s"]) == 25.0 and float(b["budget_25pct_s"]) == 50.0
    assert int(a["iteration_25pct"]) == 250
    assert float(mean["time_ratio"]) == pytest.approx(0.3)
    assert float(mean["iteration_ratio"]) == pytest.approx(0.3)
    assert float(mean["speedup"]) == pytest.approx(3.75)  # mean of 5 and 2.5
    assert float(mean["time_to_target_scratch_s"]) == pytest.approx(150.0)
    assert float(mean["time_to_target_finetune_s"]) == pytest.approx(50.0)
    assert float(mean["scratch_time_s"]) == pytest.approx(150.0)
    # b at 25 % time (50 s): scratch's last row is t = 40 (14 dB), finetune's t = 50 (27 dB)
    assert float(mean["scratch_psnr_at_25pct_time"]) == pytest.approx(14.0)
    assert float(mean["finetune_psnr_at_25pct_time"]) == pytest.approx((31.25 + 27.0) / 2)


def test_mean_row_ignores_nan() -> None:
    never = compare_runs("never", SCRATCH_A, FINETUNE_A, TablesConfig(target_psnr=33.0))
    ok = compare_runs("ok", SCRATCH_A, FINETUNE_A, TablesConfig(target_psnr=30.0))
    _, rows = comparison_rows([never, ok], HYPER)
    assert [r["video"] for r in rows] == ["never", "ok", "mean"]
    assert math.isnan(rows[0]["speedup"])
    assert rows[2]["speedup"] == pytest.approx(5.0)
    assert rows[2]["time_to_target_finetune_s"] == pytest.approx((35 + 20) / 2)


def test_write_comparison_markdown_and_plots(written: dict[str, Path]) -> None:
    paths = written
    text = paths["markdown"].read_text()
    assert "| a |" in text and "| b |" in text and "| mean |" in text
    assert "12.00 / 27.50" in text  # a at 10 % time
    assert "100.0 s" in text and "20.0 s" in text and "0.20" in text and "5.00" in text
    assert text.count("|---|") >= 3  # three tables
    assert set(paths) == {"csv", "markdown", "mean_plot", "plot_a", "plot_b"}
    for key in ("plot_a", "plot_b", "mean_plot"):
        png = paths[key]
        assert png.is_file() and png.stat().st_size > 0
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = mpimg.imread(png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert paths["plot_a"].name == "psnr_vs_time_a.png"
    assert all(p.parent == paths["csv"].parent for p in paths.values())
    assert not [p for p in paths["csv"].parent.iterdir() if PARTIAL_TAG in p.name]  # atomic writes cleaned up


def test_write_comparison_bad_input(tmp_path: Path, comp_a) -> None:
    with pytest.raises(InputError, match="empty"):
        write_comparison(tmp_path, [], HYPER, COMPARISON_FILES)
    with pytest.raises(InputError, match="distinct"):
        write_comparison(tmp_path, [comp_a, comp_a], HYPER, COMPARISON_FILES)
    other = compare_runs("c", SCRATCH_A, FINETUNE_A, TablesConfig(budgets=(0.5,)))
    with pytest.raises(InputError, match="TablesConfig"):
        write_comparison(tmp_path, [comp_a, other], HYPER, COMPARISON_FILES)
    # a video's plot must not overwrite another output
    clash = ComparisonFiles(csv="psnr_vs_time_a.png", markdown="t.md")
    with pytest.raises(InputError, match="distinct"):
        write_comparison(tmp_path, [comp_a], HYPER, clash)
    assert list(tmp_path.iterdir()) == []


def test_generalisation(tmp_path: Path) -> None:
    rows = [
        {"video": "x", "split": "heldout", "psnr": 27.0, "psnr_no_residual": 25.0},
        {"video": "p", "split": "train", "psnr": 30.0, "psnr_no_residual": 28.0},
        {"video": "q", "split": "train", "psnr": 32.0, "psnr_no_residual": 29.0},
        {"video": "y", "split": "heldout", "psnr": 26.0, "psnr_no_residual": 24.5},
    ]
    paths = write_generalisation(tmp_path / "gen", rows)
    table = read_csv(paths["csv"])
    assert [r["video"] for r in table] == ["p", "q", "x", "y", "mean (train)", "mean (heldout)"]
    means = {r["split"]: r for r in table[4:]}
    assert float(means["train"]["psnr"]) == pytest.approx(31.0)
    assert float(means["train"]["psnr_no_residual"]) == pytest.approx(28.5)
    assert float(means["heldout"]["psnr"]) == pytest.approx(26.5)
    assert float(means["heldout"]["psnr_no_residual"]) == pytest.approx(24.75)
    text = paths["markdown"].read_text()
    assert "| x | heldout | 27.00 | 25.00 |" in text
    assert "| train | 2 | 31.00 | 28.50 |" in text and "| heldout | 2 | 26.50 | 24.75 |" in text


def test_generalisation_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="split"):
        write_generalisation(tmp_path, [{"video": "x", "split": "test", "psnr": 1.0, "psnr_no_residual": 1.0}])
    with pytest.raises(InputError, match="psnr_no_residual"):
        write_generalisation(tmp_path, [{"video": "x", "split": "train", "psnr": 1.0}])
    with pytest.raises(InputError):
        write_generalisation(tmp_path, [])


def test_bad_logs_raise_input_error() -> None:
    with pytest.raises(InputError, match="scratch training log is empty"):
        compare_runs("a", [], FINETUNE_A, methods=HYPER)
    with pytest.raises(InputError, match="finetune training log is empty"):
        compare_runs("a", SCRATCH_A, [], methods=HYPER)
    with pytest.raises(InputError, match="candidate training log is empty"):  # the generic names by default
        compare_runs("a", SCRATCH_A, [])
    no_psnr = [{k: v for k, v in row.items() if k != "psnr"} for row in FINETUNE_A]
    with pytest.raises(InputError, match="lacks psnr"):
        compare_runs("a", SCRATCH_A, no_psnr)
    with pytest.raises(InputError, match="not non-decreasing"):
        compare_runs("a", SCRATCH_A[::-1], FINETUNE_A)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"budgets": ()}, "tables.budgets"),
        ({"budgets": (0.0, 0.5)}, "tables.budgets"),
        ({"budgets": (1.5,)}, "tables.budgets"),
        ({"budgets": (True,)}, "tables.budgets"),
        ({"iteration_fractions": (0.5, 0.5)}, "tables.iteration_fractions"),
        ({"iteration_fractions": "0.5"}, "tables.iteration_fractions"),
        ({"target_psnr": math.nan}, "tables.target_psnr"),
    ],
)
def test_bad_tables_config(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        TablesConfig(**kwargs)


def test_tables_config_accepts_lists() -> None:
    cfg = TablesConfig(budgets=[0.5, 1], target_psnr=28)
    assert cfg.budgets == (0.5, 1.0) and cfg.target_psnr == 28.0


# ---------------------------------------------------------------------------- method names


def legend_labels(monkeypatch: pytest.MonkeyPatch, write) -> list[list[str]]:
    """The legend texts of every figure ``write()`` saves."""
    from matplotlib.figure import Figure

    seen: list[list[str]] = []
    savefig = Figure.savefig

    def spy(fig, *args, **kwargs):
        seen.append([t.get_text() for t in fig.axes[0].get_legend().get_texts()])
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    write()
    return seen


ADAM_VS_LBFGS = Methods(baseline="adam", candidate="lbfgs", baseline_label="Adam", candidate_label="L-BFGS")


def test_custom_methods_name_columns_markdown_and_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    comps = [compare_runs(v, s, f, methods=ADAM_VS_LBFGS) for v, s, f in (("a", SCRATCH_A, FINETUNE_A),
                                                                        ("b", SCRATCH_B, FINETUNE_B))]
    columns, rows = comparison_rows(comps, ADAM_VS_LBFGS)
    for column in ("adam_final_psnr", "lbfgs_time_s", "adam_psnr_at_25pct_time", "lbfgs_psnr_at_25pct_time",
                   "lbfgs_psnr_at_100pct_iters", "time_to_target_adam_s", "iterations_to_target_lbfgs"):
        assert column in columns, column
    assert not [c for c in columns if "scratch" in c or "finetune" in c]
    assert rows[0]["lbfgs_psnr_at_25pct_time"] == 31.25 and rows[2]["speedup"] == pytest.approx(3.75)
    text = comparison_markdown(comps, ADAM_VS_LBFGS)
    assert text.startswith("# L-BFGS vs Adam\n")  # the default title
    assert "`Adam / L-BFGS`" in text and "time ratio = L-BFGS / Adam time" in text
    assert "| video | target (dB) | Adam time | L-BFGS time |" in text and "| Adam iters | L-BFGS iters |" in text
    assert "same work per iteration" not in text  # not claimed unless the methods say so
    assert "HyperNVD" not in text and "scratch" not in text

    files = ComparisonFiles(csv="ab.csv", markdown="ab.md", mean_plot="mean.png", plot=lambda s: f"curve_{s}.png")
    paths: dict[str, Path] = {}
    labels = legend_labels(monkeypatch, lambda: paths.update(write_comparison(tmp_path, comps, ADAM_VS_LBFGS, files)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ab.csv", "ab.md", "curve_a.png", "curve_b.png", "mean.png"]
    assert paths["plot_b"].name == "curve_b.png"
    assert len(labels) == 3 and all(legend[:2] == ["Adam", "L-BFGS"] for legend in labels)


def test_methods_defaults_and_validation() -> None:
    generic = Methods()
    assert (generic.baseline_label, generic.candidate_plot_label, generic.title) == (
        "baseline", "candidate", "candidate vs baseline")
    assert ADAM_VS_LBFGS.baseline_plot_label == "Adam"  # plot labels default to the Markdown ones
    for bad in ("", "1st", "with space", "a_b"):
        with pytest.raises(ValueError, match="method key"):
            Methods(baseline=bad)
    with pytest.raises(ValueError, match="distinct"):
        Methods(baseline="x", candidate="x")


def test_hypernvd_names_in_markdown_and_plots(comp_a, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = comparison_markdown([comp_a], HYPER)
    assert text.startswith("# HyperNVD finetune vs training from scratch\n")
    assert "Each cell is `scratch / HyperNVD` PSNR (dB)" in text
    assert "time ratio = HyperNVD / scratch time to target" in text
    assert "(both runs do the same work per iteration, so it is free of the machine's timing noise)" in text
    assert "| video | target (dB) | scratch time | HyperNVD time | time ratio | speedup | scratch iters |" in text
    labels = legend_labels(monkeypatch, lambda: write_comparison(tmp_path, [comp_a], HYPER, COMPARISON_FILES))
    assert labels == [["scratch", "HyperNVD finetune", "target 30.00 dB"]] * 2  # video a, then the mean


# ---------------------------------------------------------------------------- HyperNVD's tables from run files


def write_log(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def umask():
    """Set the process umask for a test, restoring it afterwards."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


def test_write_tables_from_run_files_follows_umask(tmp_path: Path, umask) -> None:
    runs = {video: (write_log(tmp_path / video / "scratch" / "log.csv", s),
                    write_log(tmp_path / video / "finetune" / "log.csv", f))
            for video, s, f in (("a", SCRATCH_A, FINETUNE_A), ("b", SCRATCH_B, FINETUNE_B))}
    outputs = {}
    for video, split in (("p", "train"), ("a", "heldout"), ("b", "heldout")):
        outputs[video] = tmp_path / video / "hypernet_output.json"
        outputs[video].parent.mkdir(exist_ok=True)
        outputs[video].write_text(json.dumps({"split": split, "psnr": 28.0, "psnr_no_residual": 27.0}))
    umask(0o022)
    paths = write_tables(tmp_path / "tables", runs, outputs)
    assert set(paths) == {"csv", "markdown", "mean_plot", "plot_a", "plot_b",
                          "generalisation_csv", "generalisation_markdown"}
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == [
        "hypernvd_comparison.csv", "hypernvd_comparison.md", "hypernvd_generalisation.csv",
        "hypernvd_generalisation.md", "psnr_vs_time_a.png", "psnr_vs_time_b.png", "psnr_vs_time_mean.png"]
    assert {p.name: p.stat().st_mode & 0o777 for p in paths.values()} == {p.name: 0o644 for p in paths.values()}
    rows = read_csv(paths["csv"])
    assert float(rows[0]["finetune_psnr_at_25pct_time"]) == 31.25 and float(rows[2]["speedup"]) == pytest.approx(3.75)

    umask(0o077)  # no held-out runs: only the generalisation table, and its files now 0600
    paths = write_tables(tmp_path / "private", {}, {"p": outputs["p"]})
    assert set(paths) == {"generalisation_csv", "generalisation_markdown"}
    assert {p.stat().st_mode & 0o777 for p in paths.values()} == {0o600}
