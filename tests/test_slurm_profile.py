"""profiles/slurm as a cluster user runs it.

Fast tests (no Slurm needed): from the repo root, where profiles/local exists,
`--profile profiles/slurm` and -- after profiles/install.sh -- `--profile
slurm` give every job the partition, account, memory and runtime from the
NVD_SLURM_* variables (no workflow profile gets in the way); the status
command is squeue exactly when sacct is installed but does not work.

Cluster test (marker `slurm`, skips with the reason when no cluster can be set
up here: see tests/slurm_cluster.py and .ci/setup_slurm.sh): a toy two-rule
workflow whose jobs run through sbatch in the configured, non-default
partition with the configured limits, and see the submitting PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

try:
    import slurm_cluster as sc
except ImportError:  # e.g. pytest --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import slurm_cluster as sc

from slurm_cluster import slurm_cluster  # noqa: F401,E402  (pytest fixture)

PROFILE = sc.PROFILE_DIR / "config.yaml"
INSTALL = sc.REPO / "profiles" / "install.sh"
SLURM_ENV = {"NVD_SLURM_PARTITION": "gpuq", "NVD_SLURM_ACCOUNT": "proj42",
             "NVD_SLURM_MEM_MB": "1500", "NVD_SLURM_RUNTIME": "7"}


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


def _dry_run_frames(tmp_path: Path, profile: str, env: dict[str, str]) -> tuple[dict[str, str], str]:
    """`snakemake --profile <profile> -n` of one frames job of the real workflow,
    run from the repo root as a user would (results in tmp_path); the job's
    resources as Snakemake prints them, and the whole output."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")  # a dry run only needs the input to exist
    configfile = tmp_path / "config.test.yaml"
    configfile.write_text(yaml.safe_dump({"datasets": {"cam": {"layout": "files",
                                                               "videos": {"clip": str(video)}}},
                                          "masks": {"backend": "none"}}))
    cmd = [sys.executable, "-m", "snakemake", "--profile", profile, "--directory", str(tmp_path),
           "--configfile", str(configfile), "-n", "--", "results/cam/clip/frames.zarr"]
    proc = subprocess.run(cmd, cwd=sc.REPO, env=env, capture_output=True, text=True, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    match = re.search(r"rule frames:.*?\n\s*resources: ([^\n]*)", text, re.S)
    assert match, text[-4000:]
    resources = dict(item.split("=", 1) for item in match.group(1).split(", "))
    return resources, text


def _assert_slurm_settings(resources: dict[str, str], text: str) -> None:
    assert "workflow specific profile" not in text, text[:2000]
    assert resources["slurm_partition"] == "gpuq", resources
    assert resources["slurm_account"] == "proj42", resources
    assert resources["mem_mb"] == "1500", resources
    assert resources["runtime"] == "7", resources


# ---------------------------------------------------------------- fast tests


def test_profile_path_from_repo_root_applies_its_settings(tmp_path):
    # the local profile lives next to it; it must not be picked up as a workflow profile
    assert (sc.REPO / "profiles" / "local" / "config.yaml").is_file()
    resources, text = _dry_run_frames(tmp_path, "profiles/slurm", sc.submit_env(**SLURM_ENV))
    assert "Using profile profiles/slurm for setting default command line arguments" in text
    _assert_slurm_settings(resources, text)


def test_named_profile_works_after_install(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = sc.submit_env(HOME=str(home), **SLURM_ENV)
    env.pop("XDG_CONFIG_HOME", None)
    before = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "slurm", "-n"],
                            cwd=sc.REPO, env=env, capture_output=True, text=True, timeout=120)
    assert before.returncode != 0 and "slurm" in before.stderr, before.stderr[-2000:]

    for _ in range(2):  # a second install replaces the first one
        proc = subprocess.run(["bash", str(INSTALL), "slurm"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (home / ".config" / "snakemake" / "slurm" / "config.yaml").is_file()

    work = tmp_path / "work"
    work.mkdir()
    resources, text = _dry_run_frames(work, "slurm", env)
    assert "Using profile slurm for setting default command line arguments" in text
    _assert_slurm_settings(resources, text)


def test_install_leaves_a_foreign_profile_alone(tmp_path):
    foreign = tmp_path / "cfg" / "snakemake" / "slurm"
    foreign.mkdir(parents=True)
    (foreign / "config.yaml").write_text("jobs: 1\n")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    proc = subprocess.run(["bash", str(INSTALL)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "--force" in proc.stderr, proc.stderr
    assert (foreign / "config.yaml").read_text() == "jobs: 1\n"


def _fake_tools(bindir: Path, sacct_exit: int | None) -> None:
    bindir.mkdir()
    tools = {"squeue": 0} if sacct_exit is None else {"squeue": 0, "sacct": sacct_exit}
    for name, code in tools.items():
        (bindir / name).write_text(f"#!/bin/sh\nexit {code}\n")
        (bindir / name).chmod(0o755)


@pytest.mark.parametrize(
    "sacct_exit, explicit, expected",
    [
        (1, None, "squeue"),  # sacct installed but failing: no accounting storage
        (0, None, None),  # sacct works: leave it to the plugin (sacct)
        (None, None, None),  # no sacct: the plugin uses squeue by itself
        (1, "sacct", "sacct"),  # NVD_SLURM_STATUS_COMMAND always wins
    ],
)
def test_status_command_follows_whether_sacct_works(tmp_path, monkeypatch, sacct_exit, explicit,
                                                    expected):
    _fake_tools(tmp_path / "bin", sacct_exit)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    if explicit:
        monkeypatch.setenv("NVD_SLURM_STATUS_COMMAND", explicit)
    else:
        monkeypatch.delenv("NVD_SLURM_STATUS_COMMAND", raising=False)
    assert _parse_profile().get("slurm-status-command") == expected


def test_profile_env_overrides(monkeypatch):
    monkeypatch.setenv("NVD_SLURM_PARTITION", "all")  # a Python builtin name
    monkeypatch.setenv("NVD_SLURM_ACCOUNT", "123456")  # numeric account stays a str
    monkeypatch.setenv("NVD_SLURM_RUNTIME", "2h")
    monkeypatch.setenv("NVD_SLURM_MEM_MB", "16000")
    res = _resources(_parse_profile())
    assert res["slurm_partition"] == "all"
    assert res["slurm_account"] == "123456"
    assert res["runtime"] == "2h"
    assert res["mem_mb"] == 16000


def test_profile_defaults_leave_partition_and_account_to_the_cluster(monkeypatch):
    for var in SLURM_ENV:
        monkeypatch.delenv(var, raising=False)
    res = _resources(_parse_profile())
    assert res["slurm_partition"] == "" and res["slurm_account"] == ""  # "" = no -p / -A


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
    assert sc.default_partition() != partition  # else the partition check proves nothing
    (tmp_path / "Snakefile").write_text(TOY_SNAKEFILE)
    env = sc.submit_env(
        # the profile's env-var mechanism, not --default-resources
        NVD_SLURM_PARTITION=partition,
        NVD_SLURM_ACCOUNT="proj42",
        NVD_SLURM_MEM_MB="500",
        NVD_SLURM_RUNTIME="10",
    )
    # No --slurm-status-command: the cluster has no accounting and the profile
    # must notice by itself (a run on sacct would never see its jobs end).
    cmd = [
        sys.executable, "-m", "snakemake",
        "--profile", str(sc.PROFILE_DIR),
        "--slurm-init-seconds-before-status-checks", "2",
        "--jobs", "2",
    ]  # fmt: skip
    proc = sc.run_snakemake(cmd, tmp_path, env, timeout=150)
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

    assert sorted(sc.submitted_job_ids(log)) == sorted(ids.values()), log
    for rule, job_id in ids.items():
        info = sc.scontrol_show_job(job_id)
        assert info["JobState"] == "COMPLETED", info
        assert info["BatchFlag"] == "1", info  # a batch job, i.e. sbatch
        assert info["Partition"] == partition, info
        assert info["Account"] == "proj42", info
        assert info["Comment"].startswith(f"rule_{rule}"), info
        assert Path(info["WorkDir"]).resolve() == tmp_path.resolve(), info
        assert info["TimeLimit"] == "00:10:00", info  # NVD_SLURM_RUNTIME
        assert info.get("MinMemoryNode") == "500M", info  # NVD_SLURM_MEM_MB
