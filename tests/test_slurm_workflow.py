"""The real workflow through `snakemake --profile profiles/slurm` on a real Slurm, run
from the repo root as a cluster user does (results in a temporary directory).

The demo's data stages on one demo clip (generated locally): every job goes through sbatch
into the configured partition (not the cluster's default) with the configured account,
memory and time limit, and the stores hold exactly what a local run writes. A broken input
video: the run fails once, with the cause from the job's log in Snakemake's output. A
partition that does not exist: the run stops with Slurm's message. Skips with the reason
when no cluster can be set up.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, demo_config, snakemake, write_config
from slurm_cluster import (  # noqa: F401  (slurm_cluster: pytest fixture)
    abort_snakemake,
    default_partition,
    finish_snakemake,
    run_snakemake,
    scontrol_show_job,
    slurm_cluster,
    start_snakemake,
    submit_env,
    submitted_job_ids,
)

from nvd.data.stores import open_store

ARRAYS = {"frames": ("frames",), "flow": ("forward", "backward", "forward_valid", "backward_valid"),
          "masks": ("masks",), "embedding": ("windows", "video")}


def submit_command(workdir: Path, *args: str) -> list[str]:
    """`snakemake --profile profiles/slurm ...` typed in the repo root, where profiles/local
    also lives, writing into ``workdir``. Only the first status check is brought forward
    (the default 40 s is slow for a test); the status command is the profile's choice."""
    return [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "--directory", str(workdir),
            "--slurm-init-seconds-before-status-checks", "2", *args]


def submit(workdir: Path, *args: str, timeout: float, **env: str):
    return run_snakemake(submit_command(workdir, *args), REPO, submit_env(**env), timeout=timeout)


def one_clip_config() -> dict:
    """The test-sized demo config with one clip, the synthetic orbit: all four data stages
    (frames, flow, masks from its annotations, embedding)."""
    config = demo_config()
    synthetic = config["datasets"]["synthetic"]
    config["datasets"] = {"synthetic": {**synthetic, "videos": {"orbit": synthetic["videos"]["orbit"]}}}
    return config


@pytest.mark.slurm
def test_demo_data_stages_under_slurm_match_local_run(slurm_cluster, tmp_path):
    assert default_partition() != slurm_cluster  # else the partition check proves nothing
    local, remote = tmp_path / "local", tmp_path / "slurm"
    for workdir in (local, remote):
        workdir.mkdir()
        write_config(workdir, one_clip_config())
    # the demo clip is generated once, locally, and both runs start from it
    snakemake(local, "data/demo/orbit/ground_truth.npz", "--configfile", str(local / "config.test.yaml"),
              "--cores", "1")
    shutil.copytree(local / "data", remote / "data")

    # the local run is made while the cluster runs its jobs (the submitting snakemake mostly
    # waits between status checks)
    proc = start_snakemake(submit_command(remote, "--configfile", str(remote / "config.test.yaml"), "--jobs", "4"),
                           REPO, submit_env(NVD_SLURM_PARTITION=slurm_cluster, NVD_SLURM_ACCOUNT="proj42",
                                            NVD_SLURM_MEM_MB="1500", NVD_SLURM_RUNTIME="10"))
    try:
        local_run = snakemake(local, "--configfile", str(local / "config.test.yaml"), "--cores", "2")
    except BaseException:
        abort_snakemake(proc)
        raise
    proc = finish_snakemake(proc, timeout=900)
    text = proc.stdout
    assert proc.returncode == 0, text[-6000:]
    assert "workflow specific profile" not in text, text[:2000]

    # each data stage ran as one job through sbatch, as configured
    stages = {"frames", "flow", "masks", "embedding"}
    ran_locally = re.findall(r"^(?:local)?rule (\w+):$", local_run.stderr, re.M)
    assert sorted(ran_locally) == sorted({*stages, "all"}), local_run.stderr[-3000:]  # `all` runs no code
    job_ids = submitted_job_ids(text)
    assert len(job_ids) == len(set(job_ids)) == len(stages), text[-3000:]
    rules = set()
    for job_id in job_ids:
        info = scontrol_show_job(job_id)
        assert info["JobState"] == "COMPLETED", info
        assert info["Partition"] == slurm_cluster, info
        assert info["Account"] == "proj42", info
        assert info["MinMemoryNode"] == "1500M", info
        assert info["TimeLimit"] == "00:10:00", info
        assert "gres/gpu" not in info.get("TresPerNode", "") + info.get("TresPerJob", ""), info
        rules.add(info["Comment"].removeprefix("rule_").split("_wildcards")[0])
    assert rules == stages, rules

    stores = sorted(local.glob("results/*/*/*.zarr"))
    assert [store.stem for store in stores] == sorted(ARRAYS), stores
    for store in stores:
        stage = store.stem
        other = remote / store.relative_to(local)
        a, b = open_store(store, stage), open_store(other, stage)
        for name in ARRAYS[stage]:
            np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=f"{other}/{name}")


def broken_video_config(workdir: Path) -> Path:
    video = workdir / "broken.mp4"
    video.write_text("not a video\n")
    return write_config(workdir, {"datasets": {"cam": {"layout": "files", "videos": {"clip": str(video)}}},
                                  "masks": {"backend": "none"}})


@pytest.mark.slurm
def test_broken_input_fails_once_with_its_cause_in_the_output(slurm_cluster, tmp_path):
    configfile = broken_video_config(tmp_path)
    proc = submit(tmp_path, "--configfile", str(configfile), "--", "results/cam/clip/frames.zarr",
                  timeout=300, NVD_SLURM_PARTITION=slurm_cluster)
    text = proc.stdout
    assert proc.returncode != 0, text[-4000:]
    # the cause, as the job wrote it to the rule's log, is in Snakemake's own output
    log = (tmp_path / "logs" / "cam" / "clip" / "frames.log").read_text()
    causes = [line.split(" ERROR ", 1)[1] for line in log.splitlines() if " ERROR " in line]
    assert causes and "broken.mp4" in causes[0], log
    assert causes[0] in text, text[-4000:]
    # submitted once: a bad input is not retried (Slurm requeues node failures instead)
    [job_id] = submitted_job_ids(text)
    info = scontrol_show_job(job_id)
    assert info["JobState"] == "FAILED" and info["Partition"] == slurm_cluster, info
    assert info["Restarts"] == "0" and info["Requeue"] == "1", info


@pytest.mark.slurm
def test_nonexistent_partition_stops_the_run_with_slurms_message(slurm_cluster, tmp_path):
    configfile = broken_video_config(tmp_path)  # never runs: nothing gets submitted
    proc = submit(tmp_path, "--configfile", str(configfile), "--", "results/cam/clip/frames.zarr",
                  timeout=120, NVD_SLURM_PARTITION="nvd_no_such_partition")
    text = proc.stdout
    assert proc.returncode != 0, text[-4000:]
    assert "invalid partition specified: nvd_no_such_partition" in text, text[-4000:]
    assert not submitted_job_ids(text), text[-4000:]
