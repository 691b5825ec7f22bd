"""Damaged stores, as a user meets them: a chunk deleted or truncated, the completion mark
removed, and an input store that changed under a finished decomposition (nvd.data.verify)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_DECOMPOSITION, demo_config, dry_run_jobs, snakemake, tool_env, write_config

from nvd.core.errors import StoreError
from nvd.data.stores import open_store

ORBIT = Path("results/synthetic/orbit")
DATA_JOBS = {"frames": 1, "flow": 1, "masks": 1, "embedding": 1, "all": 1}


def orbit_config(**sections) -> dict:
    """The test-sized demo config with one video (the synthetic orbit clip)."""
    config = demo_config(**sections)
    synthetic = config["datasets"]["synthetic"]
    config["datasets"] = {"synthetic": {**synthetic, "videos": {"orbit": synthetic["videos"]["orbit"]}}}
    config.pop("edits", None)
    return config


def nvd(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nvd.cli", *args], cwd=workdir, capture_output=True, text=True,
                          env=tool_env())


def chunk(workdir: Path, stage: str, array: str, index: int = 0) -> Path:
    """The ``index``-th chunk file (sorted) of an array of orbit's ``stage`` store."""
    return sorted(p for p in (workdir / ORBIT / f"{stage}.zarr" / array / "c").rglob("*") if p.is_file())[index]


def key(path: Path, stage: str, array: str) -> str:
    """The chunk key of a chunk file (its path under the array's folder), as errors name it."""
    return path.as_posix().split(f"{stage}.zarr/{array}/", 1)[1]


@pytest.fixture(scope="module")
def finished_data(tmp_path_factory):
    """The data stages of one demo clip, run to completion once: (working folder, config
    file, an untouched copy of the finished folder for tests that start from it)."""
    workdir = tmp_path_factory.mktemp("integrity")
    configfile = write_config(workdir, orbit_config())
    snakemake(workdir, "--configfile", str(configfile), "--cores", "2")
    assert dry_run_jobs(workdir, "--configfile", str(configfile)) == {}
    copy = tmp_path_factory.mktemp("integrity-finished")
    shutil.copytree(workdir, copy, symlinks=True, dirs_exist_ok=True)  # with mtimes and .snakemake
    return workdir, configfile, copy


@pytest.fixture(scope="module")
def data_run(finished_data):
    """(working folder, config file) of the finished data stages; tests damage and repair it."""
    workdir, configfile, _ = finished_data
    return workdir, configfile


def test_a_deleted_chunk_is_refused_and_the_workflow_rebuilds_the_store(data_run):
    from nvd.data.frames import load_frames

    workdir, configfile = data_run
    store = workdir / ORBIT / "frames.zarr"
    before = open_store(store, "frames")["frames"][:]
    lost = chunk(workdir, "frames", "frames", 3)
    lost.unlink()
    # a reader names the store, the array and the chunk instead of returning a black frame
    lost_key = key(lost, "frames", "frames")
    with pytest.raises(StoreError, match=rf"frames\.zarr: array 'frames', chunk '{lost_key}': missing"):
        load_frames(store)
    # the workflow sees the store as missing: it and everything downstream are redone
    assert dry_run_jobs(workdir, "--configfile", str(configfile)) == DATA_JOBS
    assert not store.exists() and list(store.parent.glob(".frames.zarr.invalid-*"))
    snakemake(workdir, "--configfile", str(configfile), "--cores", "2")
    np.testing.assert_array_equal(open_store(store, "frames")["frames"][:], before)
    assert dry_run_jobs(workdir, "--configfile", str(configfile)) == {}


def test_a_truncated_chunk_is_named_and_nvd_verify_finds_a_corrupt_one(data_run):
    workdir, configfile = data_run
    flow = workdir / ORBIT / "flow.zarr"
    cut = chunk(workdir, "flow", "forward", 1)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match=rf"flow\.zarr: array 'forward', chunk '{key(cut, 'flow', 'forward')}': "
                                         rf"{len(data) // 2} bytes, {len(data)} when written"):
        open_store(flow, "flow")
    frames = workdir / ORBIT / "frames.zarr"
    proc = nvd(workdir, "verify", str(frames), str(flow))
    assert proc.returncode == 1
    assert f"{frames}: ok" in proc.stdout and f"array 'forward', chunk '{key(cut, 'flow', 'forward')}'" in proc.stdout

    # altered in place at the same size: the cheap check passes, the checksums do not
    masks = workdir / ORBIT / "masks.zarr"
    bad = chunk(workdir, "masks", "masks", 0)
    bad.write_bytes(bytes(bad.stat().st_size))  # zeros: same size, not a Blosc frame any more
    proc = nvd(workdir, "verify", str(masks))
    assert proc.returncode == 1
    assert f"array 'masks', chunk '{key(bad, 'masks', 'masks')}': checksum mismatch" in proc.stdout
    summary = nvd(workdir, "summary", "--config", str(configfile), "--verify")
    assert summary.returncode == 0 and "checksum mismatch" in summary.stdout and "damaged" in summary.stdout
    # a read that does not decode names the store, the array and the chunk
    with pytest.raises(StoreError, match=rf"masks\.zarr: array 'masks' does not decode .*"
                                         rf"chunk '{key(bad, 'masks', 'masks')}': checksum mismatch"):
        open_store(masks, "masks")["masks"][:]

    # the truncated store is rebuilt by the workflow (the one altered in place is removed by hand,
    # as nvd verify's message says)
    shutil.rmtree(masks)
    assert dry_run_jobs(workdir, "--configfile", str(configfile)) == {"flow": 1, "masks": 1, "all": 1}
    snakemake(workdir, "--configfile", str(configfile), "--cores", "2")
    assert nvd(workdir, "verify", str(flow), str(masks)).returncode == 0


def test_a_store_without_its_completion_mark_is_redone(data_run):
    workdir, configfile = data_run
    store = workdir / ORBIT / "embedding.zarr"
    meta_path = store / "zarr.json"
    meta = json.loads(meta_path.read_text())
    del meta["attributes"]["nvd_complete"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="incomplete"):
        open_store(store, "embedding")
    proc = snakemake(workdir, "--configfile", str(configfile), "--cores", "2")
    assert "embedding.zarr fails its check" in proc.stderr
    assert open_store(store, "embedding")["video"].shape == (64,)
    assert dry_run_jobs(workdir, "--configfile", str(configfile)) == {}


def test_a_changed_flow_store_retrains_the_decomposition(finished_data, tmp_path):
    from nvd.train.loop import read_checkpoint

    shutil.copytree(finished_data[2], tmp_path, symlinks=True, dirs_exist_ok=True)  # the data stages are done
    model = ORBIT / "decomposition" / "model.pt"
    train = {**TINY_DECOMPOSITION["train"], "iterations": 10}
    decomposition = {**TINY_DECOMPOSITION, "pretrain_iterations": 5, "train": train}
    first = write_config(tmp_path, orbit_config(decomposition=decomposition), "dis.yaml")
    run = snakemake(tmp_path, "--configfile", str(first), "--cores", "2", str(model))
    assert re.findall(r"^(?:local)?rule (\w+):$", run.stderr, re.M) == ["decompose"], run.stderr[-3000:]
    old = (tmp_path / model).read_bytes()

    second = write_config(tmp_path, orbit_config(decomposition=decomposition, flow={"backend": "farneback"}),
                          "farneback.yaml")
    snakemake(tmp_path, "--configfile", str(second), "--cores", "2", str(model))
    log = (tmp_path / "logs/synthetic/orbit/decompose.log").read_text()
    # not "resuming ... at iteration 10/10" from the checkpoint trained on the old flow
    assert "resuming" not in log and "training from scratch" in log
    assert (tmp_path / model).read_bytes() != old
    identity = read_checkpoint(tmp_path / model)["identity"]
    assert sorted(identity["inputs"]) == ["flow", "frames", "masks"]


def test_hypernetwork_identity_holds_every_input_store(data_run):
    from nvd.core.layout import ResultsLayout
    from nvd.models.hypernvd.objective import HyperTrainConfig
    from nvd.models.hypernvd.run import VideoStores, hyper_identity

    workdir, _ = data_run
    stores = ResultsLayout(str(workdir / "results")).stores("synthetic", "orbit")
    cfg = HyperTrainConfig(dataset="synthetic", train_videos=("orbit",))
    identity = hyper_identity(cfg, {"orbit": VideoStores.of(stores)})
    inputs = identity["videos"]["orbit"]["inputs"]
    assert sorted(inputs) == ["embedding", "flow", "frames", "masks"]
    assert all(value.startswith("sha256:") for value in inputs.values())
