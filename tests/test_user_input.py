"""What a user sees for bad names, missing inputs, bad values and bad videos (issue 11, items
8-10, 12, 13), through the nvd CLI and the Snakemake workflow as they would hit it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
import zarr
from conftest import demo_config, dry_run_jobs, snakemake, tool_env, write_config

from nvd.core.errors import InputError
from nvd.data.inputs import check_inputs
from nvd.data.video_io import write_video

ALLOWED_VIDEO_NAMES = "letters, digits, '_', '-' and '.', not starting with '.'"


def nvd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nvd.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=tool_env())


def check_config(tmp_path: Path, config: dict) -> subprocess.CompletedProcess:
    return nvd("check-config", str(write_config(tmp_path, config)), cwd=tmp_path)


# ---------------------------------------------------------------------------- names (item 8)


@pytest.mark.parametrize("name", ["..", "."])
def test_dot_video_names_are_refused(tmp_path, name):
    config = demo_config()
    config["datasets"]["footage"]["videos"] = {name: "data/demo/carphone/video.mp4"}
    proc = check_config(tmp_path, config)
    assert proc.returncode == 1
    assert "datasets.footage.videos" in proc.stderr and repr(name) in proc.stderr
    assert ALLOWED_VIDEO_NAMES in proc.stderr
    # layout folders: `..` would read root/.. ; the list form is refused the same way
    config["datasets"]["footage"] = {"layout": "folders", "root": str(tmp_path), "videos": ["ok", name]}
    proc = check_config(tmp_path, config)
    assert proc.returncode == 1 and ALLOWED_VIDEO_NAMES in proc.stderr, proc.stderr


def test_dataset_names_checked_without_the_schema():
    from nvd.core.errors import ConfigError
    from nvd.data.datasets import dataset_videos

    config = {"datasets": {"d": {"layout": "davis", "root": "/r", "videos": [".."]}}}
    with pytest.raises(ConfigError, match=r"datasets\.d\.videos.*'\.\.'.*" + ALLOWED_VIDEO_NAMES):
        dataset_videos(config, "d")


# ---------------------------------------------------------------------------- inputs (item 9)


def missing_inputs_config(tmp_path: Path) -> dict:
    config = demo_config(decomposition=True)
    orbit = config["datasets"]["synthetic"]["videos"]["orbit"]
    orbit["frames"] = str(tmp_path / "nowhere" / "frames")
    config["datasets"]["synthetic"]["videos"]["duo"]["annotations"] = "masks/duo"
    config["edits"]["synthetic"]["orbit"]["atlases"]["0"] = "edits/layer0.png"
    return config


MISSING = ["datasets.synthetic.videos.orbit.frames", "nowhere/frames",
           "datasets.synthetic.videos.duo.annotations", "masks/duo",
           "edits.synthetic.orbit.atlases.0", "edits/layer0.png"]


def test_missing_inputs_are_listed_with_their_keys(tmp_path):
    with pytest.raises(InputError) as info:
        check_inputs(missing_inputs_config(tmp_path), directory=tmp_path)
    for text in MISSING:
        assert text in str(info.value)
    # what the demo rules write (frames, masks, ground truth, footage, edit atlases) need not exist
    check_inputs(demo_config(decomposition=True), directory=tmp_path)


def test_check_config_names_missing_inputs(tmp_path):
    proc = check_config(tmp_path, missing_inputs_config(tmp_path))
    assert proc.returncode == 1
    for text in MISSING:
        assert text in proc.stderr


def test_workflow_names_missing_inputs_before_any_job(tmp_path):
    configfile = write_config(tmp_path, missing_inputs_config(tmp_path))
    proc = snakemake(tmp_path, "--dry-run", "--cores", "1", "--configfile", str(configfile), check=False)
    assert proc.returncode != 0
    for text in MISSING:
        assert text in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------- values (item 10)


def test_a_bad_value_says_what_is_expected(tmp_path):
    proc = check_config(tmp_path, demo_config(frames={"long_edge": "big"}))
    assert proc.returncode == 1
    assert "config key 'frames.long_edge': expected a positive integer or null, got 'big'" in proc.stderr


def test_exponent_numbers_yaml_reads_as_strings_are_accepted(tmp_path):
    config = demo_config(decomposition=True)
    config["decomposition"] = {**config["decomposition"], "lr_mlp": "LR"}  # not conftest's TINY_DECOMPOSITION itself
    config["frames"]["long_edge"] = "EDGE"
    text = yaml.safe_dump(config, sort_keys=False)
    text = text.replace("lr_mlp: LR", "lr_mlp: 1e-4").replace("long_edge: EDGE", "long_edge: 6.4e1")
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert yaml.safe_load(text)["decomposition"]["lr_mlp"] == "1e-4"  # YAML 1.1 reads a string
    proc = nvd("check-config", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    from nvd.core.config import load_config

    loaded = load_config(path)
    assert loaded["decomposition"]["lr_mlp"] == 1e-4 and loaded["frames"]["long_edge"] == 64
    assert dry_run_jobs(tmp_path, "--configfile", str(path))["decompose"] == 3


# ---------------------------------------------------------------------------- nvd init (item 12)


def run_init(*args: str) -> None:
    """``nvd init`` as the CLI runs it (its own parser until it is wired into nvd.cli)."""
    from nvd.cli import init

    parser = argparse.ArgumentParser(prog="nvd")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, fn, help):
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=fn)
        return p

    init.register(command)
    parsed = parser.parse_args(["init", *args])
    parsed.func(parsed)


def test_init_writes_a_config_for_a_folder_of_videos(tmp_path, capsys):
    clips = tmp_path / "my clips"
    clips.mkdir()
    frames = np.random.default_rng(0).integers(0, 255, (4, 32, 48, 3), dtype=np.uint8)
    write_video(clips / "walk.mp4", frames, 10)
    write_video(clips / "take 2.mov", frames, 10)
    (clips / "notes.txt").write_text("not a video")
    project = tmp_path / "project"
    project.mkdir()
    out = project / "config.yaml"
    run_init(str(clips), "--out", str(out), "--families")
    assert "2 video(s)" in capsys.readouterr().out
    config = yaml.safe_load(out.read_text())
    assert config["results_dir"] == str(project / "results")
    assert config["datasets"]["my_clips"]["videos"] == {"take_2": str(clips / "take 2.mov"),
                                                        "walk": str(clips / "walk.mp4")}
    assert nvd("check-config", str(out), cwd=tmp_path).returncode == 0
    # any working folder: every path is absolute
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    jobs = dry_run_jobs(elsewhere, "--configfile", str(out))
    assert jobs["frames"] == 2 and "decompose" not in jobs
    nvp_only = project / "nvp.yaml"
    run_init(str(clips), "--out", str(nvp_only), "--families", "nvp")
    jobs = dry_run_jobs(elsewhere, "--configfile", str(nvp_only))
    assert jobs["nvp_train"] == 2 and jobs["frames"] == 2 and "flow" not in jobs and "decompose" not in jobs
    from nvd.core.errors import ConfigError

    with pytest.raises(ConfigError, match="exists already"):
        run_init(str(clips), "--out", str(out))


# ---------------------------------------------------------------------------- frames (item 13)


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty (0 bytes), not a video"),
    (b"this is not a video\n", "not a video file ffmpeg can read"),
], ids=["zero-bytes", "text-file"])
def test_not_a_video_says_so(tmp_path, content, message):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    proc = nvd("frames", str(path), str(tmp_path / "frames.zarr"))
    assert proc.returncode == 1
    assert f"{path}: {message}" in proc.stderr
    assert "misdetection" not in proc.stderr


def test_skipped_files_reach_the_console_and_the_store(tmp_path):
    seq = tmp_path / "seq"
    seq.mkdir()
    for i in range(3):
        cv2.imwrite(str(seq / f"{i}.png"), np.full((16, 24, 3), 40 * i, np.uint8))
    (seq / "notes.txt").write_text("shot on a phone")
    config = {"results_dir": "results", "datasets": {"mine": {"videos": {"seq": str(seq)}}},
              "frames": {"long_edge": None}}
    configfile = write_config(tmp_path, config)
    # targets before --configfile: Snakemake reads every later word as a config file
    proc = snakemake(tmp_path, "results/mine/seq/frames.zarr", "--cores", "1", "--configfile", str(configfile))
    assert f"nvd warning: {seq}: ignoring non-image entries: notes.txt" in proc.stderr
    assert zarr.open_group(str(tmp_path / "results/mine/seq/frames.zarr"), mode="r").attrs["skipped_files"] == [
        "notes.txt"]
