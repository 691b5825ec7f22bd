"""NVP through the real Snakemake workflow on a tiny clip: tables, staleness, frames-only DAG."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from conftest import TINY_NVP, demo_config, dry_run_jobs, snakemake, write_config


def nvp_config(**sections):
    """The demo's footage clip (64 px, 8 frames) running NVP only, with tiny settings."""
    config = demo_config()
    config["datasets"] = {"clips": {"layout": "files", "videos": {"carphone": "data/demo/carphone/video.mp4"},
                                    "families": ["nvp"]}}
    config["nvp"] = TINY_NVP
    config["nvp_superres"] = {"factor": 2, "iterations": 10}
    config["nvp_interpolate"] = {"factor": 2, "iterations": 10}
    config.update(sections)
    return config


def test_a_frames_only_dataset_plans_no_flow_masks_or_embedding(tmp_path):
    configfile = write_config(tmp_path, nvp_config())
    assert dry_run_jobs(tmp_path, "--configfile", str(configfile)) == {
        "demo_footage": 1, "frames": 1, "nvp_train": 1, "nvp_evaluate": 1, "nvp_superres": 1,
        "nvp_interpolate": 1, "nvp_table": 3, "paper_table": 1, "all": 1}  # and NVP's encoding-time table
    without = nvp_config()
    for key in ("nvp_superres", "nvp_interpolate"):
        without.pop(key)
    configfile = write_config(tmp_path, without, "plain.yaml")
    assert dry_run_jobs(tmp_path, "--configfile", str(configfile))["nvp_table"] == 1


def test_a_frames_only_dataset_refuses_a_decomposition(tmp_path):
    config = nvp_config(decomposition={"train": {"iterations": 5}})
    configfile = write_config(tmp_path, config)
    proc = snakemake(tmp_path, "--configfile", str(configfile), "--dry-run", "--cores", "1",
                     "results/clips/carphone/decomposition/eval", check=False)
    assert proc.returncode != 0
    assert "does not run the decomposition" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def nvp_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("nvp")
    configfile = write_config(workdir, nvp_config())
    snakemake(workdir, "--configfile", str(configfile), "--cores", "2")
    return workdir, configfile


@pytest.mark.slow
def test_workflow_trains_evaluates_and_tabulates(nvp_run):
    workdir, configfile = nvp_run
    base = workdir / "results" / "clips" / "carphone"
    metrics = json.loads((base / "nvp" / "eval" / "metrics.json").read_text())
    assert metrics["psnr"] > 10 and metrics["psnr_float"] >= metrics["psnr"] - 0.5
    assert metrics["bpp"] == pytest.approx(metrics["bits"] / (8 * 52 * 64)) and metrics["bpp"] < metrics["bpp_float"]
    assert [b["step"] for b in metrics["budgets"]] == [10, 20] and metrics["ms_ssim"] is not None
    assert 0 <= metrics["flip"] <= 1 and metrics["lpips"] is None  # no LPIPS weights configured
    for name in ("rec.mp4", "side_by_side.mp4"):
        assert (base / "nvp" / "eval" / name).stat().st_size > 0
    tables = workdir / "results" / "tables"
    rows = list(csv.DictReader((tables / "nvp_encoding_clips.csv").open()))
    assert [int(r["steps"]) for r in rows] == [10, 20]
    assert float(rows[-1]["psnr_mean"]) == pytest.approx(metrics["psnr"]) and float(rows[-1]["psnr_std"]) == 0
    assert "± 0.00" in (tables / "nvp_encoding_clips.md").read_text()
    for kind, baseline in (("superres", "bicubic"), ("interpolate", "blend")):
        table = list(csv.DictReader((tables / f"nvp_{kind}_clips.csv").open()))
        assert [r["video"] for r in table] == ["carphone", "mean"]
        assert float(table[0]["baseline_psnr"]) > 15  # the classical baseline on a real clip
        assert baseline in (tables / f"nvp_{kind}_clips.md").read_text()
    sr = json.loads((base / "nvp_superres" / "eval" / "metrics.json").read_text())
    assert sr["trained_size"] == [26, 32] and sr["size"] == [52, 64]
    assert not (base / "flow.zarr").exists() and not (base / "masks.zarr").exists()
    summary = subprocess.run([sys.executable, "-m", "nvd.cli", "summary", "--config", str(configfile)],
                             cwd=workdir, capture_output=True, text=True, check=True).stdout
    row = next(line for line in summary.splitlines() if line.startswith("clips"))
    assert f"nvp {metrics['psnr']:.2f} dB at {metrics['bpp']:.2f} bpp" in row and "missing" not in row


@pytest.mark.slow
def test_nvp_settings_rerun_nvp_jobs_only(nvp_run):
    workdir, configfile = nvp_run
    assert dry_run_jobs(workdir, "--configfile", str(configfile)) == {}
    changed = nvp_config(nvp={**TINY_NVP, "lr": 0.005})
    jobs = dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "lr.yaml")))
    assert jobs == {"nvp_train": 1, "nvp_evaluate": 1, "nvp_superres": 1, "nvp_interpolate": 1, "nvp_table": 3,
                    "paper_table": 1, "all": 1}
    changed = nvp_config(nvp_interpolate={"factor": 2, "iterations": 12})
    jobs = dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "interp.yaml")))
    assert jobs == {"nvp_interpolate": 1, "nvp_table": 1, "all": 1}
