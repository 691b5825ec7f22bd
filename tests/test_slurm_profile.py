"""profiles/slurm: the profile parses as Snakemake parses it, and a toy
two-rule workflow runs through a real single-node Slurm cluster with it.

The cluster test is marked `slurm` and skips (with the reason) when no
cluster can be set up here: see tests/slurm_cluster.py and .ci/setup_slurm.sh.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import slurm_cluster as sc
except ImportError:  # e.g. pytest --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import slurm_cluster as sc

from slurm_cluster import slurm_cluster  # noqa: F401,E402  (pytest fixture)

PROFILE = sc.PROFILE_DIR / "config.yaml"


def _parse_profile() -> dict:
    """Parse the profile exactly like `snakemake --profile` does (YTE + env)."""
    from snakemake.profiles import ProfileConfigFileParser

    with open(PROFILE) as f:
        return dict(ProfileConfigFileParser().parse(f))


def _resources(parsed: dict) -> dict[str, object]:
    """default-resources values as Snakemake evaluates them (Python expression,
    or the raw string when it is not one)."""
    out = {}
    for item in parsed["default-resources"]:
        key, raw = item.split("=", 1)
        try:
            out[key] = eval(raw, {})
        except (NameError, SyntaxError):
            out[key] = raw
    return out


# ---------------------------------------------------------------- fast tests


def test_profile_parses_with_required_keys(monkeypatch):
    for var in (
        "NVD_SLURM_PARTITION",
        "NVD_SLURM_ACCOUNT",
        "NVD_SLURM_RUNTIME",
        "NVD_SLURM_MEM_MB",
        "NVD_SLURM_STATUS_COMMAND",
    ):
        monkeypatch.delenv(var, raising=False)
    parsed = _parse_profile()
    assert parsed["executor"] == "slurm"
    assert int(parsed["jobs"]) >= 1
    assert int(parsed["retries"]) == 1
    assert int(parsed["latency-wait"]) >= 30
    # status command left to the plugin (sacct if installed, else squeue)
    assert "slurm-status-command" not in parsed
    res = _resources(parsed)
    assert set(res) >= {"slurm_partition", "slurm_account", "runtime", "mem_mb"}
    # documented defaults: "" = cluster default partition / no explicit account
    assert res["slurm_partition"] == ""
    assert res["slurm_account"] == ""
    assert res["runtime"] == "60"
    assert res["mem_mb"] == 4000


def test_profile_env_overrides(monkeypatch):
    monkeypatch.setenv("NVD_SLURM_PARTITION", "all")  # a Python builtin name
    monkeypatch.setenv("NVD_SLURM_ACCOUNT", "123456")  # numeric account stays a str
    monkeypatch.setenv("NVD_SLURM_RUNTIME", "2h")
    monkeypatch.setenv("NVD_SLURM_MEM_MB", "16000")
    monkeypatch.setenv("NVD_SLURM_STATUS_COMMAND", "squeue")
    parsed = _parse_profile()
    assert parsed["slurm-status-command"] == "squeue"
    res = _resources(parsed)
    assert res["slurm_partition"] == "all"
    assert res["slurm_account"] == "123456"
    assert res["runtime"] == "2h"
    assert res["mem_mb"] == 16000


# ------------------------------------------------------------- cluster test

TOY_SNAKEFILE = textwrap.dedent(
    """\
    rule all:
        input: "b.txt"

    rule a:
        output: "a.txt"
        resources: gpu=0
        shell: "echo $SLURM_JOB_ID > {output}; command -v python >> {output}"

    rule b:
        input: "a.txt"
        output: "b.txt"
        shell: "echo $SLURM_JOB_ID > {output}; cat {input} >> {output}"
    """
)


@pytest.mark.slurm
def test_toy_workflow_runs_through_sbatch(tmp_path, slurm_cluster):  # noqa: F811
    partition = slurm_cluster
    (tmp_path / "Snakefile").write_text(TOY_SNAKEFILE)
    env = sc.submit_env(
        # the profile's env-var mechanism, not --default-resources
        NVD_SLURM_PARTITION=partition,
        NVD_SLURM_MEM_MB="500",
        NVD_SLURM_RUNTIME="10",
    )
    cmd = [
        sys.executable, "-m", "snakemake",
        "--profile", str(sc.PROFILE_DIR),
        "--slurm-status-command", "squeue",  # the test cluster has no accounting
        "--slurm-init-seconds-before-status-checks", "2",
        "--jobs", "2",
        "--retries", "0",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=150,
        )
    except subprocess.TimeoutExpired as e:
        subprocess.run(["squeue", "-a", "-t", "all"], check=False)
        pytest.fail(f"snakemake did not finish in 150 s:\n{e.stdout}")
    log = proc.stdout
    assert proc.returncode == 0, log

    ids = {}
    for rule in ("a", "b"):
        lines = (tmp_path / f"{rule}.txt").read_text().splitlines()
        assert lines and re.fullmatch(r"\d+", lines[0]), (rule, lines, log)
        ids[rule] = lines[0]
    assert ids["a"] != ids["b"]
    # PATH was exported into the job: it found the venv's python
    a_lines = (tmp_path / "a.txt").read_text().splitlines()
    assert a_lines[1] == str(Path(sys.executable).parent / "python"), a_lines

    for rule, job_id in ids.items():
        assert re.search(rf"submitted with SLURM jobid {job_id}\b", log), (rule, log)
        info = sc.scontrol_show_job(job_id)
        assert info["JobState"] == "COMPLETED", info
        assert info["BatchFlag"] == "1", info  # a batch job, i.e. sbatch
        assert info["Partition"] == partition, info
        assert info["Comment"].startswith(f"rule_{rule}"), info
        assert Path(info["WorkDir"]).resolve() == tmp_path.resolve(), info
        assert info["TimeLimit"] == "00:10:00", info  # NVD_SLURM_RUNTIME
        assert info.get("MinMemoryNode") == "500M", info  # NVD_SLURM_MEM_MB
