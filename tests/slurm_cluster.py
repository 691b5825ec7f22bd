"""Single-node Slurm cluster for the `slurm`-marked tests.

The cluster is set up by `.ci/setup_slurm.sh` (the same script CI runs), so
tests and CI share one set-up. Use the fixture (one test at a time holds it):

    from slurm_cluster import slurm_cluster  # noqa: F401  (pytest fixture)

    @pytest.mark.slurm
    def test_something(slurm_cluster): ...

or call `ensure_cluster()` directly. When the cluster cannot be had (not
root, no apt-get and no Slurm, set-up fails) the test is skipped with the
reason -- unless NVD_REQUIRE_SLURM=1, then it fails (use that in CI, where a
silently skipped cluster test would hide a broken set-up).

Cluster facts the tests rely on: partitions `debug` (the default) and `gpuq`
(not the default: the tests submit there through NVD_SLURM_PARTITION, so a
setting that does not reach sbatch shows up as a job in `debug`), no
accounting storage (so `sacct` fails; profiles/slurm then picks squeue by
itself), MinJobAge=600 (finished jobs stay visible to `squeue`/`scontrol show
job` for 10 min).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SETUP_SCRIPT = REPO / ".ci" / "setup_slurm.sh"
PROFILE_DIR = REPO / "profiles" / "slurm"
PARTITION = "gpuq"  # where the tests send their jobs: NOT the cluster's default
SETUP_TIMEOUT_S = 300
# one test at a time on the cluster, across processes (see the fixture)
LOCK_PATH = Path(tempfile.gettempdir()) / "nvd-slurm-tests.lock"

_setup_result: tuple[bool, str] | None = None  # cached per process (each pytest worker)


def _require() -> bool:
    return os.environ.get("NVD_REQUIRE_SLURM", "") not in ("", "0")


def slurm_available() -> tuple[bool, str]:
    """Whether `.ci/setup_slurm.sh` can give us a cluster here (cheap check).

    Returns (True, "") or (False, reason). Does not start anything.
    """
    if not sys.platform.startswith("linux"):
        return False, f"Slurm tests need Linux (this is {sys.platform})"
    if not SETUP_SCRIPT.is_file():
        return False, f"{SETUP_SCRIPT} is missing"
    if shutil.which("bash") is None:
        return False, "bash is not available"
    if os.geteuid() != 0:
        return False, "Slurm tests need root (they install and start munge/slurmctld/slurmd)"
    have_slurm = all(shutil.which(t) for t in ("sbatch", "slurmctld", "slurmd", "munged"))
    if not have_slurm and shutil.which("apt-get") is None:
        return False, "Slurm is not installed and apt-get is unavailable to install it"
    return True, ""


def _run_setup() -> tuple[bool, str]:
    env = dict(os.environ)
    env.setdefault("DEBIAN_FRONTEND", "noninteractive")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            ["bash", str(SETUP_SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=SETUP_TIMEOUT_S,
            env=env,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return False, f"{SETUP_SCRIPT.name} timed out after {SETUP_TIMEOUT_S}s:\n{out[-3000:]}"
    dt = time.monotonic() - t0
    if proc.returncode != 0:
        return False, (
            f"{SETUP_SCRIPT.name} failed (exit {proc.returncode}, {dt:.1f}s):\n"
            f"{proc.stdout[-3000:]}"
        )
    return True, f"{SETUP_SCRIPT.name} ok in {dt:.1f}s"


def ensure_cluster() -> None:
    """Make sure the single-node cluster runs; pytest.skip (or fail) if it can't."""
    global _setup_result
    ok, reason = slurm_available()
    if ok:
        if _setup_result is None:
            _setup_result = _run_setup()
        ok, reason = _setup_result
    if not ok:
        msg = f"no Slurm cluster: {reason}"
        if _require():
            pytest.fail(f"{msg} (NVD_REQUIRE_SLURM is set)", pytrace=False)
        pytest.skip(msg)


def submit_env(**extra: str) -> dict[str, str]:
    """Environment for running snakemake against the cluster.

    The venv's bin directory comes first in PATH: sbatch exports the
    submitting environment (the plugin calls `sbatch --export=ALL`), so shell
    commands inside the jobs find the same python/snakemake/nvd. Inherited
    SLURM_* and NVD_SLURM_* variables are dropped so the run is reproducible.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "NVD_SLURM_"))
    }
    venv_bin = str(Path(sys.executable).parent)  # not resolved: keep the venv path
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "/usr/bin:/bin")])
    env.update(extra)
    return env


def default_partition() -> str:
    """The cluster's default partition (the one `sinfo` marks with `*`)."""
    out = subprocess.run(["sinfo", "-h", "-o", "%P"], stdout=subprocess.PIPE, text=True,
                         timeout=30, check=True).stdout
    defaults = [p.rstrip("*") for p in out.split() if p.endswith("*")]
    assert defaults, f"no default partition in sinfo output: {out!r}"
    return defaults[0]


def submitted_job_ids(text: str) -> list[str]:
    """Slurm job ids in Snakemake's output, in submission order."""
    return re.findall(r"submitted with SLURM jobid (\d+)", text)


def start_snakemake(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a submitting snakemake (stdout and stderr together); `finish_snakemake` waits."""
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish_snakemake(proc: subprocess.Popen, timeout: float) -> subprocess.CompletedProcess:
    """Wait for a started snakemake (its output in .stdout).

    A run that does not finish in time (e.g. one that never sees its jobs end)
    is SIGKILLed with its process group, its jobs are cancelled, and the test
    fails with the output."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out = abort_snakemake(proc)
        pytest.fail(f"snakemake did not finish in {timeout:.0f} s (killed):\n{out[-6000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out)


def abort_snakemake(proc: subprocess.Popen) -> str:
    """SIGKILL a started snakemake with its process group, cancel the jobs it
    submitted; its output."""
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    for job_id in submitted_job_ids(out):
        subprocess.run(["scancel", job_id], check=False, timeout=30)
    return out


def run_snakemake(cmd: list[str], cwd: Path, env: dict[str, str],
                  timeout: float) -> subprocess.CompletedProcess:
    """Run a submitting snakemake (stdout and stderr together in .stdout); see
    `finish_snakemake` for a run that does not finish in time."""
    return finish_snakemake(start_snakemake(cmd, cwd, env), timeout)


def scontrol_show_job(job_id: str | int) -> dict[str, str]:
    """`scontrol show job -o <id>` as a dict (valid for MinJobAge after the end)."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", str(job_id)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    fields: dict[str, str] = {}
    for token in out.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


@pytest.fixture
def slurm_cluster() -> Iterator[str]:
    """A running single-node cluster for the length of one test; yields the partition the
    tests submit to (`gpuq`, which is not the cluster's default). Tests hold it in turn (an
    exclusive lock on LOCK_PATH): two test runs on one machine (people share a machine and
    its one cluster; pytest-xdist workers) never set it up at the same time, nor share its
    two CPUs between two workflow runs, which would push the tests past their timeouts."""
    with open(LOCK_PATH, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            ensure_cluster()
            yield PARTITION
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
