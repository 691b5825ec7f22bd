"""The paper configs build their full DAG (dry run) against a tiny fake dataset tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO, dry_run_jobs, snakemake, write_config


def fake_weights(root: Path, config: dict) -> None:
    """Empty stand-ins at the configured weight paths, moved under ``root``."""
    for key, value in list(config.get("weights", {}).items()):
        if not value:
            continue
        path = root / "weights" / Path(value).name
        path.parent.mkdir(parents=True, exist_ok=True)
        if key == "videomae":
            path.mkdir(exist_ok=True)
        else:
            path.touch()
        config["weights"][key] = str(path)


def paper_config(name: str, root: Path) -> dict:
    """configs/<name>.yaml with its dataset roots moved to a fake tree under ``root``."""
    config = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    fake_weights(root, config)
    for dname, spec in config["datasets"].items():
        layout = spec.get("layout", "files")
        if layout == "davis":
            spec["root"] = str(root / "DAVIS")
            for v in spec["videos"]:
                for kind in ("JPEGImages", "Annotations"):
                    d = root / "DAVIS" / kind / spec["resolution"] / v
                    d.mkdir(parents=True)
                    (d / ("00000.jpg" if kind == "JPEGImages" else "00000.png")).touch()
        elif layout == "folders":
            spec["root"] = str(root / dname)
            for v in spec["videos"]:
                (root / dname / v).mkdir(parents=True)
        else:
            for v, entry in spec["videos"].items():
                path = root / dname / Path(entry if isinstance(entry, str) else entry["frames"]).name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                spec["videos"][v] = str(path)
    return config


@pytest.mark.parametrize("name, videos, decomposed", [("davis2016", 50, True), ("uvg", 7, False), ("bunny", 1, False)])
def test_paper_config_full_dag(name, videos, decomposed, tmp_path):
    configfile = write_config(tmp_path, paper_config(name, tmp_path))
    jobs = dry_run_jobs(tmp_path, "--configfile", str(configfile))
    expected = {"frames": videos, "flow": videos, "masks": videos, "all": 1}
    if name == "davis2016":  # the hypernetwork's dataset: its embeddings condition it
        expected["embedding"] = videos
    if name == "uvg":  # NVP only: frames, then the NVP runs and their three tables
        expected = {"frames": videos, "nvp_train": videos, "nvp_evaluate": videos, "nvp_superres": videos,
                    "nvp_interpolate": videos, "nvp_table": 3, "all": 1}
    if decomposed:
        expected.update(decompose=videos, evaluate=videos)
    if name == "davis2016":  # HyperNVD: 30 training videos, 10 finetuned and trained from scratch
        expected.update(train_hyper=1, hyper_output=40, finetune=10, scratch=10, tables=1,
                        evaluate=videos + 20)
    assert jobs == expected


def test_model_backends_request_a_gpu(tmp_path):
    """RAFT flow and VideoMAE embeddings ask for gpu=1; annotation masks ask for none."""
    configfile = write_config(tmp_path, paper_config("davis2016", tmp_path))
    proc = snakemake(tmp_path, "--configfile", str(configfile), "--dry-run", "--cores", "1",
                     "--until", "flow", "embedding", "masks")
    gpus = {}
    for block in re.split(r"\n(?=rule |localrule )", proc.stdout + proc.stderr):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        found = re.search(r"resources:.*?\bgpu=(\d+)", block, re.S)
        if rule and found:
            gpus.setdefault(rule.group(1), set()).add(int(found.group(1)))
    assert gpus == {"flow": {1}, "embedding": {1}, "masks": {0}}
    # --until finetune plans train_hyper too (its input)
    for until, rules in (("decompose", ["decompose"]), ("finetune", ["train_hyper", "finetune"])):
        proc = snakemake(tmp_path, "--configfile", str(configfile), "--dry-run", "--cores", "1", "--until", until)
        for rule in rules:
            assert re.search(rf"rule {rule}:.*?resources:.*?\bgpu=1", proc.stdout + proc.stderr, re.S), rule


def test_hypernet_rule_gets_a_gpu_through_the_slurm_profile(tmp_path):
    """The Slurm executor turns the hypernet rule's gpu=1 into a GPU request of its job."""
    configfile = write_config(tmp_path, paper_config("davis2016", tmp_path))
    proc = snakemake(tmp_path, "--configfile", str(configfile), "--profile", str(REPO / "profiles" / "slurm"),
                     "--dry-run", "--until", "train_hyper")
    text = proc.stdout + proc.stderr
    block = re.search(r"rule train_hyper:(.*?)(?:\n\n|$)", text, re.S)
    assert block and re.search(r"\bgpu=1\b", block.group(1)), text[-3000:]


def test_uvg_runs_nvp_on_the_gpu_with_the_paper_recipe(tmp_path):
    """configs/uvg.yaml: raw yuv sources, NVP-S at the paper's batch, gpu=1 for NVP's jobs."""
    config = paper_config("uvg", tmp_path)
    assert all(str(path).endswith(".yuv") for path in config["datasets"]["uvg"]["videos"].values())
    configfile = write_config(tmp_path, config)
    proc = snakemake(tmp_path, "--configfile", str(configfile), "--dry-run", "--cores", "1")
    text = proc.stdout + proc.stderr
    for rule in ("nvp_train", "nvp_evaluate", "nvp_superres", "nvp_interpolate"):
        assert re.search(rf"rule {rule}:.*?resources:.*?\bgpu=1", text, re.S), rule
    from nvd.models.nvp.config import nvp_train_config

    cfg = nvp_train_config(config["nvp"])
    assert (cfg.batch_size, cfg.train.iterations, cfg.model.levels, cfg.model.features) == (1245184, 100_000, 16, 2)
    assert not cfg.model.cap_to_video  # the paper's square levels, so its parameter count


def test_slurm_profile_dry_run(tmp_path):
    configfile = write_config(tmp_path, paper_config("bunny", tmp_path))
    jobs = dry_run_jobs(tmp_path, "--configfile", str(configfile), "--profile", str(REPO / "profiles" / "slurm"))
    assert jobs["flow"] == 1
