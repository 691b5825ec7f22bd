"""``nvd`` subcommands of the data stages, the demo data and the config and results checks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nvd.cli.common import Command, add_dataclass_options, add_weight_options, from_options, weights_from_options


def _cmd_frames(args: argparse.Namespace) -> None:
    from nvd.data.frames import FramesConfig, extract_frames

    print(extract_frames(args.source, args.out, from_options(FramesConfig, args)))


def _cmd_flow(args: argparse.Namespace) -> None:
    from nvd.data.flow import FlowConfig, compute_flow

    print(compute_flow(args.frames, args.out, from_options(FlowConfig, args), weights_from_options(args)))


def _cmd_masks(args: argparse.Namespace) -> None:
    from nvd.data.masks import MasksConfig, compute_masks

    cfg = from_options(MasksConfig, args)
    print(compute_masks(args.frames, args.out, cfg, weights_from_options(args), annotations=args.annotations))


def _cmd_embed(args: argparse.Namespace) -> None:
    from nvd.data.embedding import EmbeddingConfig, compute_embedding

    print(compute_embedding(args.frames, args.out, from_options(EmbeddingConfig, args), weights_from_options(args)))


def _cmd_demo_data(args: argparse.Namespace) -> None:
    from nvd.data.demo import FOOTAGE_CLIPS, SYNTHETIC_CLIPS, write_footage_clip, write_synthetic_clip

    for clip in args.clips or [*SYNTHETIC_CLIPS, *FOOTAGE_CLIPS]:
        if clip in FOOTAGE_CLIPS:
            print(write_footage_clip(clip, Path(args.out) / clip / "video.mp4"))
        else:
            print(write_synthetic_clip(clip, Path(args.out) / clip))


def _cmd_check_config(args: argparse.Namespace) -> None:
    from nvd.core.config import load_config
    from nvd.data.datasets import all_videos
    from nvd.data.inputs import check_inputs
    from nvd.data.stages import backends_in_use
    from nvd.data.weights import check_weights, weights_from_config

    config = load_config(args.config)
    check_weights(weights_from_config(config), backends_in_use(config))
    videos = all_videos(config)
    check_inputs(config, directory=args.directory)
    datasets = {v.dataset for v in videos}
    print(f"{args.config}: valid; {len(videos)} video(s) in {len(datasets)} dataset(s); weights and inputs present")


def _cmd_summary(args: argparse.Namespace) -> None:
    from nvd.core.config import load_config, results_layout
    from nvd.core.layout import DATA_STAGES
    from nvd.data.datasets import all_videos, video_stages
    from nvd.eval.summary import format_summary

    config = load_config(args.config)
    layout = results_layout(config, args.directory)
    if not Path(layout.root).exists():
        print(f"nvd summary: no results under {Path(layout.root).resolve()}: run it from the folder the "
              "workflow runs in, or pass --directory", file=sys.stderr)
    print(format_summary(layout, all_videos(config), verify=args.verify,
                         stages=lambda dataset: video_stages(config, dataset, DATA_STAGES)))


def _cmd_verify(args: argparse.Namespace) -> None:
    from nvd.core.errors import StoreError
    from nvd.data.verify import describe_problems, store_problems

    failed = []
    for store in args.stores:
        problems = store_problems(store, full=not args.quick)
        print(f"{store}: ok" if not problems else describe_problems(store, problems))
        if problems:
            failed.append(store)
    if failed:
        raise StoreError(f"{len(failed)} of {len(args.stores)} store(s) fail their check: {', '.join(failed)}; "
                         "rerun the stages that write them (the workflow moves them aside and rebuilds them)")


def register(command: Command) -> None:
    from nvd.data.embedding import EmbeddingConfig
    from nvd.data.flow import FlowConfig
    from nvd.data.frames import FramesConfig
    from nvd.data.masks import MasksConfig

    p = command("frames", _cmd_frames, "Video file or frame folder -> frames.zarr (uint8 [T,H,W,3]).")
    p.add_argument("source", help="video file (mp4/mov/avi/mkv) or folder of numbered jpg/png frames")
    p.add_argument("out", help="output store, e.g. results/demo/clip/frames.zarr")
    add_dataclass_options(p, FramesConfig)

    p = command("flow", _cmd_flow, "frames.zarr -> flow.zarr (forward/backward flow + consistency masks).")
    p.add_argument("frames", help="frames store")
    p.add_argument("out", help="output flow store")
    add_dataclass_options(p, FlowConfig)
    add_weight_options(p, ["raft"])

    p = command("masks", _cmd_masks, "frames.zarr (+ annotations) -> masks.zarr (uint8 [K,T,H,W]).")
    p.add_argument("frames", help="frames store")
    p.add_argument("out", help="output masks store")
    p.add_argument("--annotations", default=None, help="annotation folder (backend 'annotations')")
    add_dataclass_options(p, MasksConfig)
    add_weight_options(p, ["maskrcnn", "detectron2_config", "detectron2"])

    p = command("embed", _cmd_embed, "frames.zarr -> embedding.zarr (per-window [W,D] and video [D]).")
    p.add_argument("frames", help="frames store")
    p.add_argument("out", help="output embedding store")
    add_dataclass_options(p, EmbeddingConfig)
    add_weight_options(p, ["videomae"])


def register_tools(command: Command) -> None:
    from nvd.data.demo import DEFAULT_DEMO_DIR

    p = command("demo-data", _cmd_demo_data, "Write the built-in demo clips (synthetic scenes + real footage).")
    p.add_argument("out", nargs="?", default=DEFAULT_DEMO_DIR, help=f"output folder (default: {DEFAULT_DEMO_DIR})")
    p.add_argument("--clips", nargs="+", default=None, help="clip names (default: all)")

    directory = {"default": None, "help": "folder the workflow runs in, which relative config paths are relative to "
                                          "(default: the current folder)"}
    p = command("check-config", _cmd_check_config,
                "Validate a workflow config and check its weight files and input paths.")
    p.add_argument("config", nargs="?", default="config.yaml")
    p.add_argument("--directory", **directory)

    p = command("summary", _cmd_summary, "Print what the workflow has produced for a config.")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--directory", **directory)
    p.add_argument("--verify", action="store_true",
                   help="check every chunk of every store against its checksum (reads them all)")

    p = command("verify", _cmd_verify, "Check stores against the manifest they recorded when written "
                "(every chunk present, its size and crc32c); exit 1 naming each damaged store, array and chunk.")
    p.add_argument("stores", nargs="+", help="store folders, e.g. results/demo/clip/frames.zarr")
    p.add_argument("--quick", action="store_true",
                   help="presence and size of each chunk only (what every reader checks), no checksums")
