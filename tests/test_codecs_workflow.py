"""The codecs through the real Snakemake workflow on a tiny clip: NVP and a NeRV-family model
coded into files, two anchors, the benchmark tables and plot, the paper's rate-distortion
table, and staleness per rate point and per anchor curve."""

from __future__ import annotations

import csv
import json
import math

import pytest
from conftest import TINY_NERV_MODELS, TINY_NVP, demo_config, dry_run_jobs, snakemake, write_config

T, H, W = 4, 36, 64
ANCHORS = {"anchors": [{"codec": "x265", "preset": "medium", "crfs": [24, 32, 40]},
                       {"codec": "x264", "preset": "medium", "crfs": [24, 32, 40]}]}


def codecs_config(**sections):
    """The demo bunny at 64x36, 4 frames, with a tiny NVP and a tiny HNeRV-Boost, both coded."""
    config = demo_config()
    config["frames"] = {"long_edge": W, "max_frames": T, "first_frame": 0, "step": 1}
    config["datasets"] = {"clips": {"layout": "files", "videos": {"bunny": "data/demo/bunny/video.mp4"},
                                    "families": ["nvp", "nerv"]}}
    config["nvp"] = {**TINY_NVP, "budgets": []}
    config["nerv"] = {"model_size": 0.02, "epochs": 2, "eval_every": 1, "checkpoint_every": 2,
                      "models": ["hnerv_boost"], "per_model": TINY_NERV_MODELS, "train": {"device": "cpu"}}
    config["nvp_compress"] = {"points": [{"qscale": 2, "crf": 20}, {"qscale": 8, "crf": 34}]}
    config["nerv_compress"] = {"targets": [1.0, 4.0], "epochs": 1, "eval_every": 1, "checkpoint_every": 1,
                               "train": {"device": "cpu"}}
    config["codec_anchor"] = ANCHORS
    config["benchmark"] = {"reference": "x265_medium_yuv420p"}
    config.update(sections)
    return config


TARGETS = ("codecs", "results/tables/paper_nerv_rd_clips.md")


@pytest.fixture(scope="module")
def codecs_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("codecs")
    configfile = write_config(workdir, codecs_config())
    snakemake(workdir, "--configfile", str(configfile), "--cores", "2", *TARGETS)
    return workdir, configfile


@pytest.mark.slow
def test_benchmark_holds_every_method_at_the_rate_of_its_file(codecs_run):
    workdir, _ = codecs_run
    tables = workdir / "results" / "tables"
    rows = list(csv.DictReader((tables / "benchmark_clips.csv").open()))
    methods = {(r["method"], r["point"]) for r in rows}
    assert methods == {("nvp", "q2-2-2_crf20"), ("nvp", "q8-8-8_crf34"), ("hnerv_boost", "bpp1"),
                       ("hnerv_boost", "bpp4"), *((a, f"crf{c}") for a in ("x265_medium_yuv420p", "x264_medium_yuv420p")
                                                  for c in (24, 32, 40))}
    video = workdir / "results" / "clips" / "bunny"
    for row in rows:
        if row["kind"] == "neural":  # the bpp is the file's: everything a decoder reads
            folder = video / row["method"] / "compress" / row["point"]
            assert float(row["bpp"]) == pytest.approx(8 * (folder / "stream.nvd").stat().st_size / (T * H * W))
            assert float(row["decode_fps"]) > 0 and float(row["decode_peak_mb"]) > 0
        assert 5 < float(row["psnr"]) < 60
    nvp = sorted(float(r["bpp"]) for r in rows if r["method"] == "nvp")
    assert nvp[0] < nvp[1]  # the coarser point is the smaller file
    bd = {r["method"]: r for r in csv.DictReader((tables / "bdrate_clips.csv").open())}
    assert set(bd) == {"nvp", "hnerv_boost", "x264_medium_yuv420p"}
    assert math.isfinite(float(bd["x264_medium_yuv420p"]["bd_rate_psnr"]))  # the two anchors overlap
    assert (tables / "rd_clips" / "bunny.png").read_bytes()[:4] == b"\x89PNG"
    assert "| hnerv_boost |" in (tables / "paper_nerv_rd_clips.md").read_text()
    anchor = json.loads((video / "anchors" / "x265_medium_yuv420p" / "metrics.json").read_text())
    assert [p["crf"] for p in sorted(anchor["points"], key=lambda p: -p["bpp"])] == [24, 32, 40]


@pytest.mark.slow
def test_a_rate_point_or_a_curve_changed_reruns_only_itself(codecs_run, tmp_path):
    workdir, configfile = codecs_run
    assert dry_run_jobs(workdir, *TARGETS, "--configfile", str(configfile)) == {}
    changed = codecs_config(nerv_compress={"targets": [1.0, 2.0], "epochs": 1, "eval_every": 1,
                                           "checkpoint_every": 1, "train": {"device": "cpu"}})
    changed["codec_anchor"] = {"anchors": [ANCHORS["anchors"][0], {**ANCHORS["anchors"][1], "crfs": [26, 32, 40]}]}
    other = write_config(workdir, changed, "changed.yaml")
    assert dry_run_jobs(workdir, *TARGETS, "--configfile", str(other)) == {
        "nerv_compress": 1, "codec_anchor": 1, "benchmark": 1, "rd_plot": 1, "paper_table": 1, "codecs": 1}
