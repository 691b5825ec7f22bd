"""The demo's data stages through `snakemake --profile profiles/slurm` on a real Slurm.

Every job must go through sbatch (job ids in the logs) and the stores must hold exactly
what a local run writes. Skips with the reason when no cluster can be set up here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nvd.data.stores import open_store

from conftest import SNAKEFILE, demo_config, snakemake, write_config
from slurm_cluster import PROFILE_DIR, scontrol_show_job, slurm_cluster, submit_env  # noqa: F401

ARRAYS = {"frames": ("frames",), "flow": ("forward", "backward", "forward_valid", "backward_valid"),
          "masks": ("masks",), "embedding": ("windows", "video")}


@pytest.mark.slurm
def test_demo_data_stages_under_slurm_match_local_run(slurm_cluster, tmp_path):
    config = demo_config()
    local, remote = tmp_path / "local", tmp_path / "slurm"
    for workdir in (local, remote):
        workdir.mkdir()
        write_config(workdir, config)
    snakemake(local, "--configfile", str(local / "config.test.yaml"), "--cores", "2")

    env = submit_env(NVD_SLURM_PARTITION=slurm_cluster, NVD_SLURM_MEM_MB="1500", NVD_SLURM_RUNTIME="10")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(remote),
           "--configfile", str(remote / "config.test.yaml"), "--profile", str(PROFILE_DIR),
           "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
           "--jobs", "4", "--retries", "0"]
    proc = subprocess.run(cmd, cwd=remote, env=env, capture_output=True, text=True, timeout=900)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-6000:]

    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", text)
    assert len(job_ids) == len(set(job_ids)) >= 3 * 4, text[-3000:]
    info = scontrol_show_job(job_ids[0])
    assert info["JobState"] == "COMPLETED" and info["Partition"] == slurm_cluster

    for store in sorted(local.glob("results/*/*/*.zarr")):
        stage = store.stem
        other = remote / store.relative_to(local)
        a, b = open_store(store, stage), open_store(other, stage)
        for name in ARRAYS[stage]:
            np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=f"{other}/{name}")
