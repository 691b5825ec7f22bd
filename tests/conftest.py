"""Shared test helpers: run the real Snakemake workflow in a temporary working directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO / "workflow" / "Snakefile"


TINY_DECOMPOSITION = {
    "batch_size": 512,
    "pretrain_iterations": 10,
    "model": {
        "mapping_hidden": 16, "mapping_layers": 3, "texture_hidden": 16, "texture_layers": 2,
        "residual_hidden": 16, "residual_layers": 2, "alpha_hidden": 16, "alpha_layers": 2,
        "texture_grid": {"n_levels": 4, "log2_table_size": 10},
        "residual_grid": {"n_levels": 4, "log2_table_size": 10},
        "alpha_grid": {"n_levels": 4, "log2_table_size": 10},
    },
    "losses": {"alpha_bootstrapping_until": 20, "global_rigidity_until": 15},
    "train": {"iterations": 30, "checkpoint_every": 10, "log_every": 10, "device": "cpu"},
}


def demo_config(decomposition: bool = False, **sections: Any) -> dict[str, Any]:
    """The shipped demo config (without HyperNVD) with test-sized frames, plus any section overrides.

    Without ``decomposition`` only the data stages run; with it, a tiny decomposition
    (30 iterations of a small model) and 64 px atlases replace the demo's settings.
    """
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    # HyperNVD's demo family and sections are left out: tests/test_hypernvd_workflow.py
    # builds its own, tiny version.
    config["datasets"].pop("family")
    for key in ("hypernet", "finetune", "scratch", "tables"):
        config.pop(key)
    config["frames"] = {"long_edge": 64, "max_frames": 8, "first_frame": 0, "step": 1}
    config["embedding"] = {"backend": "stats", "window": 4}
    if decomposition:
        config["decomposition"] = TINY_DECOMPOSITION
        config["evaluation"] = {"atlas_size": 64}
    else:
        for key in ("decomposition", "evaluation", "edits"):
            config.pop(key, None)
    for key, value in sections.items():
        config[key] = value
    return config


def write_config(workdir: Path, config: dict[str, Any], name: str = "config.test.yaml") -> Path:
    path = workdir / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def tool_env(**extra: str) -> dict[str, str]:
    """Environment whose PATH starts with this interpreter's bin (snakemake, nvd)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def snakemake(workdir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the snakemake CLI on the project's Snakefile from ``workdir``."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
           *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env or tool_env(),
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def dry_run_jobs(workdir: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, int]:
    """Jobs a dry run would execute, as {rule: count} (empty when nothing is to be done)."""
    proc = snakemake(workdir, "--dry-run", "--cores", "1", *args, env=env)
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    match = re.search(r"Job stats:\n(.*?)\n\s*total\s+\d+", text, re.S)
    assert match, f"no job stats in dry-run output:\n{text[-3000:]}"
    jobs = {}
    for line in match.group(1).splitlines()[2:]:
        name, count = line.split()
        jobs[name] = int(count)
    return jobs


def kill_at(task: Any, iteration: int) -> Any:
    """Make ``task`` raise KeyboardInterrupt when the loop asks for ``iteration`` (a killed run)."""
    step = task.step_loss

    def failing(it: int, generator: Any) -> Any:
        if it == iteration:
            raise KeyboardInterrupt("killed")
        return step(it, generator)

    task.step_loss = failing
    return task


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """In-process tests use one torch thread: their tensors are tiny, and on a busy 2-core
    machine the thread pool's waiting made them several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
