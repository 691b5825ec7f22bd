"""The NeRV family through the real Snakemake workflow on a tiny clip: tables, figure, staleness."""

from __future__ import annotations

import csv
import re

import pytest
from conftest import TINY_NERV_MODELS, demo_config, dry_run_jobs, job_stats, snakemake, write_config

TINY_NERV = {"model_size": 0.02, "epochs": 2, "eval_every": 1, "checkpoint_every": 1,
             "per_model": TINY_NERV_MODELS, "train": {"device": "cpu"}}


def nerv_config(**sections):
    """The demo bunny at 64x36, 4 frames, running the NeRV family only, with tiny models."""
    config = demo_config()
    config["frames"] = {"long_edge": 64, "max_frames": 4, "first_frame": 0, "step": 1}
    config["datasets"] = {"clips": {"layout": "files", "videos": {"bunny": "data/demo/bunny/video.mp4"},
                                    "families": ["nerv"]}}
    config["nerv"] = {**TINY_NERV, "models": ["hnerv", "hnerv_boost", "nerv_boost"]}
    config["nerv_inpaint"] = {"mask": "centre", "models": ["hnerv_boost"]}
    config["nerv_interpolate"] = {"models": ["hnerv_boost"], "epochs": 1}
    config.update(sections)
    return config


def test_the_dag_trains_each_configured_model_once_per_task(tmp_path):
    configfile = write_config(tmp_path, nerv_config())
    assert dry_run_jobs(tmp_path, "--configfile", str(configfile)) == {
        "demo_footage": 1, "frames": 1, "nerv_train": 3, "nerv_evaluate": 3, "nerv_inpaint": 1,
        "nerv_interpolate": 1, "nerv_table": 3, "nerv_regression_plot": 1, "paper_table": 1, "all": 1}
    proc = snakemake(tmp_path, "--configfile", str(configfile), "--dry-run", "--cores", "1",
                     "results/clips/bunny/enerv_interpolate/eval", check=True)
    assert "nerv_interpolate" in proc.stdout + proc.stderr  # any model can be asked for by name
    # several sizes: every model at each, in folders that say their size
    sized = {key: value for key, value in TINY_NERV.items() if key != "model_size"}
    sized = write_config(tmp_path, nerv_config(nerv={**sized, "models": ["hnerv", "hnerv_boost"],
                                                     "model_sizes": [0.02, 0.025]}), "sized.yaml")
    proc = snakemake(tmp_path, "--configfile", str(sized), "--dry-run", "--cores", "1", check=True)
    text = proc.stdout + proc.stderr
    assert job_stats(text) == {"demo_footage": 1, "frames": 1, "nerv_train": 4, "nerv_evaluate": 4, "nerv_inpaint": 2,
                               "nerv_interpolate": 2, "nerv_table": 3, "nerv_regression_plot": 1, "paper_table": 1,
                               "all": 1}
    assert {f"results/clips/bunny/{m}_{s}M/model.pt" for m in ("hnerv", "hnerv_boost") for s in ("0.02", "0.025")} \
        <= set(re.findall(r"results/clips/bunny/\S+/model\.pt", text))
    assert "results/clips/bunny/hnerv_boost_0.025M_inpaint/eval" in text
    bad = write_config(tmp_path, nerv_config(nerv={**TINY_NERV, "models": ["hnerv", "vit"]}), "bad.yaml")
    proc = snakemake(tmp_path, "--configfile", str(bad), "--dry-run", "--cores", "1", check=False)
    assert proc.returncode != 0 and "nerv" in proc.stdout + proc.stderr and "vit" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def nerv_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("nerv")
    configfile = write_config(workdir, nerv_config())
    snakemake(workdir, "--configfile", str(configfile), "--cores", "2")
    return workdir, configfile


@pytest.mark.slow
def test_workflow_trains_the_models_and_writes_the_tables(nerv_run):
    workdir, _ = nerv_run
    tables = workdir / "results" / "tables"
    rows = {r["model"]: r for r in csv.DictReader((tables / "nerv_regression_clips.csv").open())}
    assert set(rows) == {"hnerv", "hnerv_boost", "nerv_boost"}
    for row in rows.values():
        assert float(row["psnr_mean"]) > 8 and float(row["epochs_mean"]) == 2
        assert abs(float(row["parameters_mean"]) - 20_000) < 0.02 * 20_000  # equal size, solved
    markdown = (tables / "nerv_regression_clips.md").read_text()
    gain = float(rows["hnerv_boost"]["psnr_mean"]) - float(rows["hnerv"]["psnr_mean"])
    gains = markdown.split("PSNR gain")[-1].splitlines()[2:]
    assert gains == [f"| hnerv_boost | {gain:+.2f} |"]  # nerv_boost's plain model did not run
    assert (tables / "nerv_psnr_vs_time_clips.png").read_bytes()[:4] == b"\x89PNG"
    inpaint = list(csv.DictReader((tables / "nerv_inpaint_clips.csv").open()))
    assert [r["model"] for r in inpaint] == ["hnerv_boost"]
    assert float(inpaint[0]["input_psnr_holes_mean"]) < float(inpaint[0]["psnr_holes_mean"])
    interp = list(csv.DictReader((tables / "nerv_interpolate_clips.csv").open()))
    assert [r["model"] for r in interp] == ["hnerv_boost"] and float(interp[0]["blend_psnr_mean"]) > 15


@pytest.mark.slow
def test_nerv_settings_rerun_their_jobs_only(nerv_run):
    workdir, configfile = nerv_run
    assert dry_run_jobs(workdir, "--configfile", str(configfile)) == {}
    changed = nerv_config(nerv_inpaint={"mask": "squares", "models": ["hnerv_boost"]})
    assert dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "mask.yaml"))) == {
        "nerv_inpaint": 1, "nerv_table": 1, "all": 1}
    # one model's settings rerun that model's folder only; a model added to a task's list
    # adds its folder and leaves the others
    per_model = {**TINY_NERV_MODELS, "nerv_boost": {**TINY_NERV_MODELS["nerv_boost"], "lower_width": 5}}
    changed = nerv_config(nerv={**TINY_NERV, "per_model": per_model, "models": ["hnerv", "hnerv_boost", "nerv_boost"]},
                          nerv_inpaint={"mask": "centre", "models": ["hnerv_boost", "hnerv"]})
    assert dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "one.yaml"))) == {
        "nerv_train": 1, "nerv_evaluate": 1, "nerv_inpaint": 1, "nerv_table": 2, "nerv_regression_plot": 1,
        "paper_table": 1, "all": 1}
    changed = nerv_config(nerv={**TINY_NERV, "models": ["hnerv", "hnerv_boost", "nerv_boost"], "epochs": 3})
    jobs = dry_run_jobs(workdir, "--configfile", str(write_config(workdir, changed, "epochs.yaml")))
    assert jobs == {"nerv_train": 3, "nerv_evaluate": 3, "nerv_inpaint": 1, "nerv_interpolate": 1, "nerv_table": 3,
                    "nerv_regression_plot": 1, "paper_table": 1, "all": 1}
