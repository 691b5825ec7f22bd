"""Config schema, component dataclasses, dataset layouts, weight checks and the CLI surface."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, demo_config

from nvd.core.config import SCHEMA_PATH, load_config, section, stage_section, validate_config
from nvd.core.errors import ConfigError, WeightsError
from nvd.data.datasets import all_videos, dataset_videos
from nvd.data.embedding import EmbeddingConfig
from nvd.data.flow import FlowConfig
from nvd.data.frames import FramesConfig
from nvd.data.masks import MasksConfig
from nvd.data.weights import WeightsConfig, check_weights, weight_path
from nvd.eval.comparison import TablesConfig
from nvd.models.hashing_nvd.evaluate import EvaluationConfig
from nvd.models.hashing_nvd.objective import DecompositionTrainConfig
from nvd.models.hypernvd.objective import HyperTrainConfig, ScratchConfig

SECTIONS = {"frames": FramesConfig, "flow": FlowConfig, "masks": MasksConfig,
            "embedding": EmbeddingConfig, "weights": WeightsConfig, "decomposition": DecompositionTrainConfig,
            "evaluation": EvaluationConfig, "hypernet": HyperTrainConfig, "tables": TablesConfig,
            "scratch": ScratchConfig}


def test_shipped_configs_validate():
    for path in [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]:
        config = load_config(path)
        assert all_videos(config), f"{path} lists no videos"


@pytest.mark.parametrize("name, cls", SECTIONS.items())
def test_schema_keys_match_dataclass_fields(name, cls):
    """The schema checks keys; the dataclass holds defaults: both must name the same keys."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    node = schema["properties"][name]
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].split("/")[-1]]
    assert set(node["properties"]) == {f.name for f in dataclasses.fields(cls)}


def test_hypernet_network_schema_matches_its_dataclass():
    from nvd.models.hypernvd.model import HyperNetConfig

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    assert set(schema["$defs"]["hypernet_network"]["properties"]) == {f.name for f in dataclasses.fields(HyperNetConfig)}


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda c: c["frames"].update(long_edge="big"), "frames.long_edge"),
        (lambda c: c["flow"].update(backend="pwcnet"), "flow.backend"),
        (lambda c: c["frames"].update(step=0), "frames.step"),
        (lambda c: c.update(unknown_key=1), "(top level)"),
        (lambda c: c["datasets"]["synthetic"].update(layout="weird"), "datasets.synthetic.layout"),
        (lambda c: c["masks"].update(objects="person"), "masks.objects"),
    ],
)
def test_schema_error_names_the_key(mutate, key):
    config = demo_config()
    mutate(config)
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}'")):
        validate_config(config)


def test_dataset_overrides_merge_over_global_section():
    config = demo_config()
    assert stage_section(config, "masks", "synthetic")["backend"] == "annotations"
    assert stage_section(config, "masks", "footage")["backend"] == "none"
    masks = section(MasksConfig, stage_section(config, "masks", "synthetic"), "masks")
    assert masks.score_threshold == MasksConfig().score_threshold


def test_unknown_section_key_is_named():
    with pytest.raises(ConfigError, match="unknown key.*'bogus'"):
        section(FlowConfig, {"bogus": 1}, "flow")


def test_layouts_resolve_paths(tmp_path):
    config = {
        "datasets": {
            "davis": {"layout": "davis", "root": "/d/DAVIS", "resolution": "1080p", "videos": ["bear"]},
            "uvg": {"layout": "folders", "root": "/d/uvg", "videos": ["Beauty"]},
            "misc": {"layout": "files", "videos": {"a": "/v/a.mp4", "b": {"frames": "/v/b", "annotations": "/m/b"}}},
        }
    }
    validate_config(config)
    bear = dataset_videos(config, "davis")["bear"]
    assert str(bear.frames) == "/d/DAVIS/JPEGImages/1080p/bear"
    assert str(bear.annotations) == "/d/DAVIS/Annotations/1080p/bear"
    assert str(dataset_videos(config, "uvg")["Beauty"].frames) == "/d/uvg/Beauty"
    misc = dataset_videos(config, "misc")
    assert misc["a"].annotations is None and str(misc["b"].annotations) == "/m/b"
    assert [v.name for v in all_videos({**config, "run_datasets": ["uvg"]})] == ["Beauty"]


def test_missing_weight_message_names_key_file_and_upstream(tmp_path):
    missing = tmp_path / "raft_large.pth"
    with pytest.raises(WeightsError) as err:
        check_weights(WeightsConfig(raft=str(missing), videomae=None), {"flow": {"raft"}, "embedding": {"videomae"}})
    text = str(err.value)
    assert "weights.raft" in text and str(missing) in text and "RAFT" in text
    assert "weights.videomae" in text and "not set" in text and "VideoMAE" in text


def test_weight_kinds_file_vs_folder(tmp_path):
    (tmp_path / "vm").mkdir()
    (tmp_path / "raft.pth").write_bytes(b"x")
    assert weight_path(WeightsConfig(videomae=str(tmp_path / "vm")), "videomae").is_dir()
    with pytest.raises(WeightsError, match="expected folder"):
        weight_path(WeightsConfig(videomae=str(tmp_path / "raft.pth")), "videomae")
    check_weights(WeightsConfig(), {"flow": {"dis"}, "masks": {"none"}, "embedding": {"stats"}})


@pytest.mark.parametrize("command", ["frames", "flow", "masks", "embed", "demo-data", "check-config", "summary",
                                     "train-hyper", "finetune", "hyper-output", "tables", "init", "verify"])
def test_cli_subcommands_have_help(command, capsys):
    """`nvd COMMAND --help`, in this process: the console script is `sys.exit(main())`
    (`python -m nvd.cli` itself runs in the check-config test below)."""
    from nvd.cli import main

    with pytest.raises(SystemExit) as exit:
        main([command, "--help"])
    out = capsys.readouterr()
    assert exit.value.code == 0, out.err
    assert "usage: nvd " + command in out.out


def test_cli_options_follow_dataclass_defaults():
    from nvd.cli import build_parser
    from nvd.cli.common import from_options

    args = build_parser().parse_args(["flow", "in.zarr", "out.zarr", "--backend", "farneback"])
    assert from_options(FlowConfig, args) == FlowConfig(backend="farneback")
    args = build_parser().parse_args(["frames", "v.mp4", "o.zarr", "--long-edge", "none", "--max-frames", "5"])
    assert from_options(FramesConfig, args) == FramesConfig(long_edge=None, max_frames=5)


def test_cli_check_config_reports_missing_weights(tmp_path):
    config = demo_config(flow={"backend": "raft"}, weights={"raft": str(tmp_path / "nope.pth")})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-m", "nvd.cli", "check-config", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "weights.raft" in proc.stderr and "nope.pth" in proc.stderr


def test_a_set_lpips_weight_that_is_missing_stops_before_any_job(tmp_path):
    """LPIPS is optional (null metrics without it), but a configured file must exist."""
    missing = tmp_path / "lpips_alex.pth"
    check_weights(WeightsConfig(), {"flow": {"dis"}})
    with pytest.raises(WeightsError, match=re.escape("weights.lpips") + ".*" + re.escape(str(missing))):
        check_weights(WeightsConfig(lpips=str(missing)), {"flow": {"dis"}})
