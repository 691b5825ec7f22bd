"""The paper configs build their full DAG (dry run) against a tiny fake dataset tree."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import REPO, dry_run_jobs, job_stats, snakemake, write_config


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


NERV_RULES = {"regression": ("nerv_train", "nerv_evaluate"), "inpaint": ("nerv_inpaint",),
              "interpolate": ("nerv_interpolate",)}
NERV_TASK_SECTIONS = {"regression": "nerv", "inpaint": "nerv_inpaint", "interpolate": "nerv_interpolate"}
# rule -> the section whose train.device places it (gpu=1 unless cpu)
TRAINED_RULES = {**{rule: "nvp" for rule in ("nvp_train", "nvp_evaluate", "nvp_superres", "nvp_interpolate",
                                              "nvp_compress")},
                 **{rule: "nerv" for rules in NERV_RULES.values() for rule in rules}, "nerv_compress": "nerv_compress"}


def nerv_folders(config: dict, task: str) -> set[str]:
    """The model folders a config trains for ``task``, read off its keys: the task section's
    models (default nerv.models, default all six) at every size, named with the size when
    nerv.model_sizes lists several; none without the task's section (regression: or with
    nerv.regression false)."""
    from nvd.models import NERV_MODELS

    nerv = config.get("nerv") or {}
    section = NERV_TASK_SECTIONS[task]
    if section not in config or (task == "regression" and nerv.get("regression") is False):
        return set()
    models = (config.get(section) or {}).get("models") or nerv.get("models") or NERV_MODELS
    sizes = nerv.get("model_sizes") or [nerv.get("model_size", 3)]
    return {model if len(sizes) == 1 else f"{model}_{size:g}M" for model in models for size in sizes}


def expected_jobs(config: dict) -> Counter:
    """Every job of a config's full DAG, counted from its datasets and sections."""
    jobs, hyper = Counter(all=1), config.get("hypernet")
    for name, spec in config["datasets"].items():
        n, families = len(spec["videos"]), spec.get("families", ["decomposition"])
        hyper_data = hyper is not None and hyper["dataset"] == name  # its embeddings condition it
        jobs["frames"] += n
        if "decomposition" in families or hyper_data:
            jobs.update(flow=n, masks=n)
        if hyper_data:
            jobs["embedding"] += n
        if "decomposition" in families and "decomposition" in config:
            jobs.update(decompose=n, evaluate=n)
        if "nvp" in families:  # the runs, their tables and the paper's encoding-time table
            tables = [kind for kind in ("nvp_superres", "nvp_interpolate") if kind in config]
            jobs.update(nvp_train=n, nvp_evaluate=n, nvp_table=1 + len(tables), paper_table=1,
                        **{kind: n for kind in tables})
        if "nerv" in families:
            for task, rules in NERV_RULES.items():
                folders = nerv_folders(config, task)
                jobs.update({rule: n * len(folders) for rule in rules})
                jobs["nerv_table"] += bool(folders)
            regression = bool(nerv_folders(config, "regression"))  # its figure and the paper's table
            jobs.update(nerv_regression_plot=regression, paper_table=regression)
        if {"nvp", "nerv"} & set(families):
            codec_jobs(jobs, config, families, n)
    if hyper is not None:  # one hypernetwork; its output on every video; held-out ones finetuned
        heldout = len(hyper["heldout_videos"])
        jobs.update(train_hyper=1, tables=1, hyper_output=len(hyper["train_videos"]) + heldout, finetune=heldout,
                    scratch=heldout, evaluate=2 * heldout, paper_table=bool(heldout))
    return +jobs


def codec_jobs(jobs: Counter, config: dict, families: list[str], n: int) -> None:
    """The codec jobs of a representation dataset of n videos: a job per rate point of each
    coded model, one per anchor curve, and the benchmark with a plot per video."""
    from nvd.compression.anchor_config import anchor_config, anchor_names
    from nvd.models import parse_nerv_model
    from nvd.models.nerv.codec_config import cem_config
    from nvd.models.nvp.codec_config import nvp_codec_config

    if "nvp" in families and "nvp_compress" in config:
        jobs["nvp_compress"] += n * len(nvp_codec_config(config["nvp_compress"]).points)
    coded_nerv = "nerv" in families and "nerv_compress" in config
    if coded_nerv:
        cfg = cem_config(config["nerv_compress"])
        folders = [f for f in nerv_folders(config, "regression")
                   if cfg.models is None or parse_nerv_model(f)[0] in cfg.models]
        jobs["nerv_compress"] += n * len(folders) * len(cfg.targets)
    if "codec_anchor" in config or "benchmark" in config:
        jobs["codec_anchor"] += n * len(anchor_names(anchor_config(config.get("codec_anchor"))))
    if "benchmark" in config:
        jobs.update(benchmark=1, rd_plot=n, paper_table=coded_nerv)  # the paper's rate-distortion table


def rule_blocks(text: str) -> dict[str, list[str]]:
    """A dry run's job descriptions, by rule."""
    blocks: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=rule |localrule )", text):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule:
            blocks.setdefault(rule.group(1), []).append(block)
    return blocks


@pytest.mark.parametrize("name", ["davis2016", "uvg", "bunny", "davis_inpaint"])
def test_paper_config_full_dag(name, tmp_path):
    """Every job the config's sections imply, the NeRV family's model folders named with their
    size when there are several, and a GPU for every job of a family trained on one."""
    config = paper_config(name, tmp_path)
    configfile = write_config(tmp_path, config)
    proc = snakemake(tmp_path, "--configfile", str(configfile), "--dry-run", "--cores", "1")
    text = proc.stdout + proc.stderr
    assert job_stats(text) == expected_jobs(config)
    blocks = rule_blocks(text)
    for task, rules in NERV_RULES.items():
        for rule in rules:
            folders = {re.search(r"nerv_model=([^,\s]+)", b).group(1) for b in blocks.get(rule, [])}
            assert folders == nerv_folders(config, task), rule
    for rule, section in TRAINED_RULES.items():
        gpus = {int(re.search(r"resources:.*?\bgpu=(\d+)", b, re.S).group(1)) for b in blocks.get(rule, [])}
        device = (config.get(section) or {}).get("train", {}).get("device", "auto")
        assert gpus <= {0 if device == "cpu" else 1}, rule


@pytest.mark.parametrize("name, size", [("bunny", (720, 1280)), ("uvg", (1080, 1920)), ("davis_inpaint", (1080, 1920))])
def test_paper_configs_use_the_papers_strides(name, size):
    """bunny 720p: 5-2-2-2-2; UVG and DAVIS 1080p: 5-3-2-2-2 (HNeRV's encoder too, so its
    embedding is the 9 x 16 grid)."""
    from nvd.models import NERV_MODELS
    from nvd.models.nerv.geometry import resolve_layout
    from nvd.models.nerv.training import nerv_train_config

    strides = (5, 2, 2, 2, 2) if size == (720, 1280) else (5, 3, 2, 2, 2)
    section = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())["nerv"]
    size_mb = (section.get("model_sizes") or [section.get("model_size")])[0]
    for model in NERV_MODELS:
        cfg = nerv_train_config({**section, "model_sizes": None, "model_size": size_mb}, model=model)
        layout = resolve_layout(cfg.model_config(), *size)
        assert layout.strides == strides and layout.enc_strides in (None, strides), model
        assert layout.grid == (9, 16), model


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


def test_uvg_runs_nvp_with_the_paper_recipe(tmp_path):
    """configs/uvg.yaml: raw yuv sources, NVP-S at the paper's batch (its GPU requests: the
    full-DAG test)."""
    config = paper_config("uvg", tmp_path)
    assert all(str(path).endswith(".yuv") for path in config["datasets"]["uvg"]["videos"].values())
    from nvd.models.nvp.config import nvp_train_config

    cfg = nvp_train_config(config["nvp"])
    assert (cfg.batch_size, cfg.train.iterations, cfg.model.levels, cfg.model.features) == (1245184, 100_000, 16, 2)
    assert not cfg.model.cap_to_video  # the paper's square levels, so its parameter count


def test_slurm_profile_dry_run(tmp_path):
    config = paper_config("bunny", tmp_path)
    configfile = write_config(tmp_path, config)
    jobs = dry_run_jobs(tmp_path, "--configfile", str(configfile), "--profile", str(REPO / "profiles" / "slurm"))
    assert jobs["nerv_train"] == len(nerv_folders(config, "regression"))
