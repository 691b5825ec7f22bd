"""The papers' tables: our figures from our tables beside the published ones, cell by cell."""

from __future__ import annotations

import math

import pytest

from nvd.core.errors import InputError
from nvd.eval import published
from nvd.eval.paper_tables import psnr_at_rate, write_paper_table
from nvd.eval.table_format import csv_text


def write_csv(path, rows):
    path.write_text(csv_text(list(rows[0]), rows))
    return path


def cells(markdown: str) -> dict[str, list[str]]:
    """First cell -> the row's cells, for every table row."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    return {row[0].strip(): [c.strip() for c in row[1:]] for row in rows}


def test_hypernvd_cells_put_our_mean_beside_the_paper(tmp_path):
    source = write_csv(tmp_path / "c.csv", [
        {"video": "a", "finetune_psnr_at_100pct_time": 36.0, "scratch_psnr_at_100pct_time": 32.0, "time_ratio": 0.2},
        {"video": "mean", "finetune_psnr_at_100pct_time": 37.05, "scratch_psnr_at_100pct_time": 32.63,
         "time_ratio": 0.29}])
    text = write_paper_table("hypernvd", source, "family", tmp_path / "p.md").read_text()
    table = cells(text)
    assert table["finetuning above scratch at equal time (dB)"] == ["+4.42 / +0.80"]
    assert table["time to scratch's final PSNR, finetuning / scratch"] == ["0.29 / 0.17"]
    assert "1 held-out videos" in text


def test_nvp_rows_pair_our_budgets_with_the_paper_rows_in_order(tmp_path):
    source = write_csv(tmp_path / "e.csv", [
        {"steps": 500, "wall_time_s_mean": 59.1, "bpp_mean": 4.26, "psnr_mean": 30.76, "flip_mean": 0.088,
         "lpips_mean": math.nan},
        {"steps": 2000, "wall_time_s_mean": 247.5, "bpp_mean": 4.26, "psnr_mean": 34.67, "flip_mean": 0.049,
         "lpips_mean": math.nan}])
    table = cells(write_paper_table("nvp_encoding", source, "bunny", tmp_path / "p.md").read_text())
    assert table["59 s (500 steps) / ~5 min"] == ["4.260 / 0.901", "30.76 / 34.57", "0.088 / 0.075", "n/a / 0.190"]
    assert table["n/a / ~8 h"][1] == "n/a / 36.46"  # the paper's rows we have no budget for stay


def test_nerv_regression_gains_and_rd_points(tmp_path):
    models = {"nerv": 13.7, "nerv_boost": 22.0, "hnerv": 21.8, "hnerv_boost": 25.2}
    source = write_csv(tmp_path / "r.csv", [{"model": m, "psnr_mean": p} for m, p in models.items()])
    table = cells(write_paper_table("nerv_regression", source, "bunny", tmp_path / "p.md").read_text())
    assert table["hnerv_boost"] == ["25.20 / 39.65", "+3.40 / +2.65"]
    assert table["enerv"][0] == "n/a / 36.70"  # a model we did not run
    bench = write_csv(tmp_path / "b.csv", [
        {"method": "hnerv_boost", "bpp": 0.05, "psnr": 30.0}, {"method": "hnerv_boost", "bpp": 0.2, "psnr": 34.0},
        {"method": "x265_medium_yuv420p", "bpp": 0.1, "psnr": 40.0}])
    table = cells(write_paper_table("nerv_rd", bench, "bunny", tmp_path / "rd.md").read_text())
    # log-rate interpolation: 0.1 is half way between 0.05 and 0.2
    assert table["hnerv_boost"] == ["30.00 / 36.90", "32.00 / 39.55", "0.050-0.200"]
    assert table["hnerv"][0] == f"n/a / {published.BOOSTING_BUNNY_RD[0.05]['hnerv']:.2f}"


def test_rate_outside_our_curve_is_not_extrapolated():
    assert math.isnan(psnr_at_rate([(0.2, 30.0), (0.4, 33.0)], 0.1))
    assert psnr_at_rate([(0.4, 33.0), (0.2, 30.0)], 0.4) == pytest.approx(33.0)


def test_unknown_table_and_missing_source_are_named(tmp_path):
    with pytest.raises(InputError, match="unknown paper table 'lna'"):
        write_paper_table("lna", tmp_path / "x.csv", "d", tmp_path / "p.md")
    with pytest.raises(InputError, match="x.csv: cannot read"):
        write_paper_table("hypernvd", tmp_path / "x.csv", "d", tmp_path / "p.md")


def test_sized_model_folders_each_get_a_row_beside_their_model_s_paper_figure(tmp_path):
    source = write_csv(tmp_path / "r.csv", [{"model": f, "psnr_mean": p} for f, p in
                                            (("hnerv_0.75M", 30.0), ("hnerv_boost_0.75M", 33.0),
                                             ("hnerv_3M", 34.0), ("hnerv_boost_3M", 36.5))])
    table = cells(write_paper_table("nerv_regression", source, "bunny", tmp_path / "p.md").read_text())
    assert table["hnerv_boost_0.75M"] == ["33.00 / 39.65", "+3.00 / +2.65"]  # against its own size's plain model
    assert table["hnerv_boost_3M"] == ["36.50 / 39.65", "+2.50 / +2.65"]
    assert table["nerv"] == ["n/a / 30.20", ""]
