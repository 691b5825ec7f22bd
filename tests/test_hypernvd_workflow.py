"""HyperNVD through the real workflow: hypernetwork, finetune vs scratch, tables and report."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import demo_config, dry_run_jobs, snakemake, write_config

from nvd.core.errors import ConfigError
from nvd.models.hashing_nvd.run import load_decomposition
from nvd.models.hypernvd.run import VideoStores, finetune, finetune_config, load_embedding, load_hypernet

pytestmark = pytest.mark.slow

TINY_TARGET = {
    "mapping_hidden": 16, "mapping_layers": 3, "texture_hidden": 16, "texture_layers": 2,
    "residual_hidden": 16, "residual_layers": 2, "alpha_hidden": 16, "alpha_layers": 2,
    "texture_grid": {"n_levels": 4, "log2_table_size": 10, "finest_resolution": 128},
    "residual_grid": {"n_levels": 4, "log2_table_size": 10, "finest_resolution": 128},
    "alpha_grid": {"n_levels": 4, "log2_table_size": 10, "finest_resolution": 128},
}
RUN = {"iterations": 12, "checkpoint_every": 6, "log_every": 3, "device": "cpu"}


def family_entry(name: str) -> dict:
    return {"frames": f"data/demo/{name}/frames", "annotations": f"data/demo/{name}/masks"}


def hyper_config(train=("drift",), heldout=("roam",)) -> dict:
    config = demo_config()
    config["datasets"] = {"family": {"layout": "files", "masks": {"backend": "annotations"},
                                     "videos": {v: family_entry(v) for v in (*train, *heldout)}}}
    config["hypernet"] = {
        "dataset": "family", "train_videos": list(train), "heldout_videos": list(heldout),
        "batch_size": 256, "pretrain_iterations": 3, "lr": 1e-3, "model": TINY_TARGET,
        "network": {"head": "chunked", "hidden": 16, "chunk_size": 512, "chunk_code": 8},
        "losses": {"alpha_bootstrapping_until": 6, "global_rigidity_until": 6}, "train": RUN,
    }
    config["finetune"] = {"batch_size": 256, "pretrain_iterations": 0, "lr_mlp": 1e-3,
                          "losses": {"alpha_bootstrapping_until": 2, "global_rigidity_until": 0}, "train": RUN}
    config["scratch"] = {"pretrain_iterations": 3, "alpha_bootstrapping_until": 6, "global_rigidity_until": 6}
    config["tables"] = {"budgets": [0.5, 1.0], "iteration_fractions": [0.5, 1.0]}
    config["evaluation"] = {"atlas_size": 64}
    return config


@pytest.fixture(scope="module")
def hyper_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hypernvd")
    path = write_config(workdir, hyper_config())
    snakemake(workdir, "--configfile", str(path), "--cores", "2")
    return workdir, path


def test_workflow_produces_the_tables_and_evaluations(hyper_run):
    workdir, _ = hyper_run
    tables = workdir / "results" / "tables"
    with open(tables / "hypernvd_comparison.csv") as fh:
        rows = {row["video"]: row for row in csv.DictReader(fh)}
    assert set(rows) == {"roam", "mean"}
    roam = rows["roam"]
    for key in ("scratch_final_psnr", "finetune_final_psnr", "scratch_psnr_at_50pct_time", "finetune_psnr_at_100pct_iters"):
        assert 5 < float(roam[key]) < 60, (key, roam[key])
    assert "roam" in (tables / "hypernvd_comparison.md").read_text()
    for plot in ("psnr_vs_time_roam.png", "psnr_vs_time_mean.png"):
        assert (tables / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(tables / "hypernvd_generalisation.csv") as fh:
        splits = {row["video"]: row["split"] for row in csv.DictReader(fh)}
    assert splits["drift"] == "train" and splits["roam"] == "heldout"
    for method in ("finetune", "scratch"):
        metrics = json.loads((workdir / f"results/family/roam/{method}/eval/metrics.json").read_text())
        assert metrics["iterations"] == RUN["iterations"] and metrics["psnr"] > 5
        # the baseline trains with the finetune settings plus the scratch section's warm-ups
        losses = metrics["meta"]["config"]["losses"]
        assert (losses["alpha_bootstrapping_until"], losses["global_rigidity_until"]) == (
            (2, 0) if method == "finetune" else (6, 6)), method
        assert metrics["meta"]["config"]["pretrain_iterations"] == (0 if method == "finetune" else 3)


def test_summary_shows_finetuned_and_scratch_models(hyper_run):
    from nvd.core.layout import ResultsLayout
    from nvd.data.datasets import all_videos
    from nvd.eval.summary import format_summary

    workdir, _ = hyper_run
    text = format_summary(ResultsLayout(str(workdir / "results")), all_videos(hyper_config()))
    roam = next(line for line in text.splitlines() if "roam" in line)
    assert "finetune" in roam and "scratch" in roam and "dB" in roam
    assert "HyperNVD tables" in text


def test_hypernet_log_has_per_video_psnr_and_parameter_counts(hyper_run):
    workdir, _ = hyper_run
    from nvd.train.logs import read_log
    from nvd.train.loop import read_checkpoint

    rows = read_log(workdir / "results/hypernet/family")
    assert [r["iteration"] for r in rows] == [3, 6, 9, 12]
    assert "psnr_drift" in rows[-1]
    meta = read_checkpoint(workdir / "results/hypernet/family/model.pt")["meta"]
    assert meta["hypernet_parameters"] > 0 and meta["target_parameters"] > 0 and meta["embedding_dim"] == 64


def test_finetune_starts_from_the_hypernetwork_output(hyper_run, tmp_path):
    """One finetuning step at a negligible learning rate leaves the generated tensors in place."""
    workdir, _ = hyper_run
    import yaml

    config = yaml.safe_load((workdir / "config.test.yaml").read_text())
    config["finetune"]["lr_grid"] = config["finetune"]["lr_mlp"] = 1e-12
    config["finetune"]["train"] = {**RUN, "iterations": 1}
    cfg = finetune_config(config)
    stores = VideoStores(*(workdir / f"results/family/roam/{s}.zarr" for s in ("frames", "flow", "masks", "embedding")))
    hypernet_path = workdir / "results/hypernet/family/model.pt"
    finetune(hypernet_path, stores, tmp_path / "work", tmp_path / "model.pt", cfg)
    hypernet, _, _ = load_hypernet(hypernet_path, cfg.model)
    generated = hypernet(load_embedding(stores.embedding))
    task, meta = load_decomposition(tmp_path / "model.pt", stores.frames, stores.flow, stores.masks, "cpu")
    for name, value in task.model.state_dict().items():
        assert torch.allclose(value, generated[name], atol=1e-8), name
    assert meta["init"]["hypernet"]  # the run records which hypernetwork it started from


def test_report_holds_the_tables_and_plots(hyper_run):
    workdir, path = hyper_run
    snakemake(workdir, "--configfile", str(path), "--report", "report.html")
    html = (workdir / "report.html").read_text(errors="replace")
    for name in ("hypernvd_comparison.csv", "psnr_vs_time_mean.png", "hypernvd_generalisation.csv", "rec.mp4"):
        assert name in html, name


def test_nothing_to_redo_and_finetune_settings_rerun_only_their_jobs(hyper_run):
    workdir, path = hyper_run
    assert dry_run_jobs(workdir, "--configfile", str(path)) == {}
    config = hyper_config()
    config["finetune"]["lr_grid"] = 0.02
    changed = write_config(workdir, config, "changed.yaml")
    jobs = dry_run_jobs(workdir, "--configfile", str(changed))
    assert "train_hyper" not in jobs and jobs.get("finetune") == 1 and jobs.get("scratch") == 1


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["hypernet"].update(train_videos=["nosuch"]), "not listed in dataset"),
    (lambda c: c["hypernet"].update(heldout_videos=["drift"]), "both"),
    (lambda c: c["hypernet"].update(dataset="other"), "other"),
])
def test_bad_splits_stop_the_run_before_any_job(tmp_path, mutate, message):
    config = hyper_config()
    mutate(config)
    proc = snakemake(tmp_path, "--configfile", str(write_config(tmp_path, config)), "--dry-run", check=False)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr


def test_finetune_refuses_an_embedding_of_another_dimension(hyper_run, tmp_path):
    workdir, _ = hyper_run
    import yaml

    from nvd.core.errors import InputError
    from nvd.data.stores import new_array, write_store

    store = tmp_path / "embedding.zarr"
    with write_store(store, "embedding", config={}, code_version="test") as group:
        new_array(group, "windows", (1, 10), "float32", (1, 10), ("window", "d"))[:] = 1.0
        new_array(group, "video", (10,), "float32", (10,), ("d",))[:] = 1.0
    config = yaml.safe_load((workdir / "config.test.yaml").read_text())
    stores = VideoStores(*(workdir / f"results/family/roam/{s}.zarr" for s in ("frames", "flow", "masks")), store)
    with pytest.raises(InputError, match="10-d embedding"):
        finetune(workdir / "results/hypernet/family/model.pt", stores, tmp_path / "w", tmp_path / "m.pt",
                 finetune_config(config))


def test_finetune_section_may_not_set_the_model():

    config = hyper_config()
    config["finetune"]["model"] = {"mapping_hidden": 8}
    with pytest.raises(ConfigError, match="hypernet.model"):
        finetune_config(config)


def test_shipped_demo_config_plans_hypernvd_on_the_family(tmp_path):
    import yaml
    from conftest import REPO

    from nvd.models.hypernvd.run import hyper_config

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg = hyper_config(config)
    assert finetune_config(config).model == cfg.model  # the finetuned architecture is the target's
    jobs = dry_run_jobs(tmp_path, "--configfile", str(write_config(tmp_path, config)))
    videos, heldout = len(cfg.train_videos) + len(cfg.heldout_videos), len(cfg.heldout_videos)
    assert (jobs["train_hyper"], jobs["hyper_output"], jobs["finetune"], jobs["scratch"], jobs["tables"]) == (
        1, videos, heldout, heldout, 1)
