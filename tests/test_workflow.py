"""The real Snakemake DAG: lint, demo run through the API, caching and staleness, bad input."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SNAKEFILE, demo_config, dry_run_jobs, snakemake, tool_env, write_config

from nvd.data.stores import open_store, provenance

STAGES = ("frames", "flow", "masks", "embedding")
DEMO_VIDEOS = {"synthetic": ("orbit", "duo"), "footage": ("carphone",)}


def run_workflow_api(workdir: Path, configfile: Path, cores: int = 2) -> None:
    """Execute the workflow in-process through snakemake.api, as a library user would."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
    )

    cwd = os.getcwd()
    try:
        with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
            workflow = api.workflow(
                resource_settings=ResourceSettings(cores=cores),
                config_settings=ConfigSettings(configfiles=[configfile]),
                storage_settings=StorageSettings(),
                snakefile=SNAKEFILE,
                workdir=workdir,
            )
            workflow.dag(DAGSettings()).execute_workflow(executor="local")
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo config (test-sized) run to completion once for the whole module."""
    workdir = tmp_path_factory.mktemp("demo")
    configfile = write_config(workdir, demo_config())
    env_path = os.environ["PATH"]
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env_path}"
    try:
        run_workflow_api(workdir, configfile)
    finally:
        os.environ["PATH"] = env_path
    return workdir, configfile


def test_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True,
                          text=True, env=tool_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_demo_run_writes_every_store(demo_run):
    workdir, _ = demo_run
    for dataset, videos in DEMO_VIDEOS.items():
        for video in videos:
            base = workdir / "results" / dataset / video
            frames = open_store(base / "frames.zarr", "frames")["frames"]
            t, h, w, c = frames.shape
            assert (t, c) == (8, 3) and max(h, w) == 64
            flow = open_store(base / "flow.zarr", "flow")
            assert flow["forward"].shape == (t - 1, h, w, 2)
            masks = open_store(base / "masks.zarr", "masks")["masks"]
            assert masks.shape[1:] == (t, h, w)
            assert masks.shape[0] == (0 if dataset == "footage" else len(open_store(base / "masks.zarr").attrs["objects"]))
            emb = open_store(base / "embedding.zarr", "embedding")
            assert emb["video"].shape == (64,) and np.isfinite(emb["video"][:]).all()
            assert (workdir / "logs" / dataset / video / "flow.log").exists()
            assert (workdir / "benchmarks" / dataset / video / "flow.tsv").exists()


def test_demo_masks_match_generated_ground_truth(demo_run):
    workdir, _ = demo_run
    truth = np.load(workdir / "data" / "demo" / "orbit" / "ground_truth.npz")
    masks = open_store(workdir / "results" / "synthetic" / "orbit" / "masks.zarr", "masks")["masks"][:]
    gt = truth["masks"][:, :8]
    assert masks.shape[0] == gt.shape[0]
    # frames were downscaled to 64 px; compare at the store's size (nearest neighbour)
    import cv2
    h, w = masks.shape[2:]
    resized = np.stack([[cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in obj] for obj in gt])
    assert (masks == (resized > 0)).mean() > 0.999


def test_stores_record_config_and_code_version(demo_run):
    from nvd.core.versioning import code_version

    workdir, _ = demo_run
    prov = provenance(open_store(workdir / "results" / "synthetic" / "orbit" / "flow.zarr"))
    assert prov["stage"] == "flow" and prov["code_version"] == code_version("flow")
    assert prov["config"]["flow"]["backend"] == "dis"


def test_nothing_to_do_after_a_complete_run(demo_run):
    workdir, configfile = demo_run
    assert dry_run_jobs(workdir, "--configfile", str(configfile)) == {}


def test_changed_section_reruns_that_stage_and_dependents_only(demo_run):
    workdir, _ = demo_run
    per_video = 3
    flow_changed = write_config(workdir, demo_config(flow={"backend": "farneback"}), "flow.yaml")
    assert dry_run_jobs(workdir, "--configfile", str(flow_changed)) == {"flow": per_video, "all": 1}
    config = demo_config()
    config["frames"]["max_frames"] = 6
    frames_changed = write_config(workdir, config, "frames.yaml")
    assert dry_run_jobs(workdir, "--configfile", str(frames_changed)) == {
        "frames": per_video, "flow": per_video, "masks": per_video, "embedding": per_video, "all": 1}
    masks_override = demo_config()
    masks_override["datasets"]["footage"]["masks"] = {"backend": "none", "score_threshold": 0.7}
    changed = write_config(workdir, masks_override, "masks.yaml")
    assert dry_run_jobs(workdir, "--configfile", str(changed)) == {"masks": 1, "all": 1}


def test_changed_stage_code_reruns_that_stage_only(demo_run, tmp_path):
    """Editing nvd/data/flow/ must rerun flow jobs and nothing else (Snakemake cannot see it alone)."""
    workdir, configfile = demo_run
    copy = tmp_path / "pkg"
    shutil.copytree(REPO / "nvd", copy / "nvd", ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "nvd" / "data" / "flow" / "__init__.py").open("a") as fh:
        fh.write("\n# an edit to the flow code\n")
    env = tool_env(PYTHONPATH=str(copy))
    assert dry_run_jobs(workdir, "--configfile", str(configfile), env=env) == {"flow": 3, "all": 1}


def test_summary_lists_every_store(demo_run):
    workdir, configfile = demo_run
    proc = subprocess.run([sys.executable, "-m", "nvd.cli", "summary", "--config", str(configfile)],
                          cwd=workdir, capture_output=True, text=True, check=True)
    rows = {line.split()[1]: line for line in proc.stdout.splitlines()[2:]}
    assert set(rows) == {"orbit", "duo", "carphone"}
    assert all("missing" not in row and "incomplete" not in row for row in rows.values())
    assert "8 x 48x64" in rows["orbit"] and "1 object(s)" in rows["orbit"] and "2 object(s)" in rows["duo"]
    assert "0 object(s)" in rows["carphone"] and "64-d" in rows["carphone"]


def test_missing_weights_stop_the_run_before_any_job(tmp_path):
    config = demo_config(flow={"backend": "raft"}, weights={"raft": str(tmp_path / "raft_large.pth")})
    configfile = write_config(tmp_path, config)
    proc = snakemake(tmp_path, "--configfile", str(configfile), "--cores", "1", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "weights.raft" in text and "raft_large.pth" in text and "RAFT" in text
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


def test_config_type_error_names_the_key(tmp_path):
    config = demo_config()
    config["frames"]["max_frames"] = "eight"
    configfile = write_config(tmp_path, config)
    proc = snakemake(tmp_path, "--configfile", str(configfile), "--cores", "1", "-n", check=False)
    assert proc.returncode != 0 and "frames.max_frames" in proc.stdout + proc.stderr


def test_sigkill_mid_stage_never_leaves_a_store_a_later_stage_reads(tmp_path):
    """Kill the whole run while frames are being written; the rerun redoes that stage."""
    frames_dir = tmp_path / "long"
    frames_dir.mkdir()
    import cv2
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    for i in range(400):
        cv2.imwrite(str(frames_dir / f"{i:05d}.png"), np.roll(base, i, axis=1))
    config = {"datasets": {"big": {"layout": "files", "videos": {"clip": str(frames_dir)}}},
              "frames": {"long_edge": None}, "masks": {"backend": "none"}}
    configfile = write_config(tmp_path, config)
    target = tmp_path / "results" / "big" / "clip" / "frames.zarr"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(tmp_path),
           "--configfile", str(configfile), "--cores", "1"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=tool_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(target.parent.glob(".frames.zarr.partial-*/frames/c")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(target.parent.glob(".frames.zarr.partial-*")), "the kill did not land mid-write"
    assert not target.exists()
    jobs = dry_run_jobs(tmp_path, "--configfile", str(configfile))
    assert jobs["frames"] == 1 and jobs["flow"] == 1
    config["frames"]["max_frames"] = 3  # keep the rerun short; it must still redo frames
    write_config(tmp_path, config)
    snakemake(tmp_path, "--configfile", str(configfile), "--unlock")  # the killed run's lock
    # the stage that was killed (the later ones would follow: see the dry run above)
    snakemake(tmp_path, str(target.relative_to(tmp_path)), "--configfile", str(configfile), "--cores", "2",
              "--rerun-incomplete")
    assert open_store(target, "frames")["frames"].shape[0] == 3
    assert not list(target.parent.glob(".frames.zarr.partial-*"))
