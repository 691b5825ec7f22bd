"""Shared test helpers: run the real Snakemake workflow in a temporary working directory."""

from __future__ import annotations

import copy
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


TINY_NVP = {
    "size": "S",
    "model": {"levels": 4, "base_resolution": 4, "per_level_scale": 1.5, "sparse_size": 8, "siren_width": 16},
    "batch_size": 512,
    "budgets": [10],
    "train": {"iterations": 20, "checkpoint_every": 10, "log_every": 10, "device": "cpu"},
}

TINY_BOOST = {"time_levels": 16, "time_hidden": 16, "time_dim": 8, "tat_hidden": 8}
TINY_NERV_MODELS = {  # ~0.02M counted parameters at 64 x 36 (model_size 0.02)
    "nerv": {"stem_hidden": 16, "pe_levels": 16, "lower_width": 4},
    "nerv_boost": {"stem_hidden": 16, "pe_levels": 16, "lower_width": 4, "boost_cfg": TINY_BOOST},
    "enerv": {"block_dim": 16, "dim_head": 8, "t_hidden": 16, "pe_levels": 16, "lower_width": 4, "heads": [1, 2]},
    "enerv_boost": {"block_dim": 16, "dim_head": 8, "t_hidden": 16, "pe_levels": 16, "lower_width": 4,
                    "heads": [1, 2], "boost_cfg": TINY_BOOST},
    "hnerv": {"enc_dim": 8, "embed_channels": 4, "lower_width": 4},
    "hnerv_boost": {"enc_dim": 8, "embed_channels": 4, "lower_width": 4, "boost_cfg": TINY_BOOST},
}


def demo_config(decomposition: bool = False, **sections: Any) -> dict[str, Any]:
    """The shipped demo config (without HyperNVD and NVP) with test-sized frames, plus any
    section overrides.

    Without ``decomposition`` only the data stages run (all four: ``families: []``); with it, a tiny decomposition
    (30 iterations of a small model) and 64 px atlases replace the demo's settings.
    """
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    # HyperNVD's demo family, and the bunny of NVP, the NeRV family and the codecs, with their
    # sections, are left out: tests/test_hypernvd_workflow.py, test_nvp_workflow.py,
    # test_nerv_workflow.py and test_codecs_workflow.py build tiny versions.
    config["datasets"].pop("family")
    config["datasets"].pop("bunny")
    for key in ("hypernet", "finetune", "scratch", "tables", "nvp", "nvp_superres", "nvp_interpolate", "nerv",
                "nerv_inpaint", "nerv_interpolate", "nvp_compress", "nerv_compress", "codec_anchor", "benchmark"):
        config.pop(key)
    config["frames"] = {"long_edge": 64, "max_frames": 8, "first_frame": 0, "step": 1}
    config["embedding"] = {"backend": "stats", "window": 4}
    if decomposition:
        config["decomposition"] = copy.deepcopy(TINY_DECOMPOSITION)  # tests may edit their copy
        config["evaluation"] = {"atlas_size": 64}
    else:
        for key in ("decomposition", "evaluation", "edits"):
            config.pop(key, None)
        for spec in config["datasets"].values():
            spec["families"] = []  # the data stages only, all four
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
    return job_stats(proc.stdout + proc.stderr)


def job_stats(text: str) -> dict[str, int]:
    """{rule: count} of a dry run's output (empty when nothing is to be done)."""
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


def smooth_clip(frames: int = 6, height: int = 16, width: int = 24) -> Any:
    """uint8 [T, H, W, 3]: smooth colour ramps drifting about one pixel per frame."""
    import torch

    t, y, x = torch.meshgrid(torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij")
    scale = max(height, width) / 24  # the same picture at every size
    rgb = torch.stack((128 + 100 * torch.sin((x + t) / (5 * scale)), 128 + 90 * torch.cos(y / (4 * scale) + t / 6),
                       64 + 2.0 * (x + y) / scale), dim=-1)
    return rgb.round().clamp(0, 255).to(torch.uint8)


def write_frames_store(path: Path, frames: Any, source: str = "abc") -> Path:
    """A frames store holding ``frames`` (uint8 [T,H,W,3]) as the frames stage writes it;
    ``source`` stands for the source fingerprint (another value: another video)."""
    from nvd.data.stores import new_array, write_store

    with write_store(path, "frames", {}, "test") as group:
        array = new_array(group, "frames", frames.shape, "uint8", (1, *frames.shape[1:]), ("t", "y", "x", "c"))
        array[:] = frames.numpy()
        group.attrs.update(fps=10.0, source="test", source_fingerprint=source,
                           frame_indices=list(range(frames.shape[0])), size=list(frames.shape[1:3]))
    return path
