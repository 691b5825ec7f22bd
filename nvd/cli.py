"""The ``nvd`` console script: one subcommand per pipeline stage, usable without Snakemake.

Options are generated from each stage's config dataclass, so defaults and names always
match the workflow's config keys (``long_edge`` -> ``--long-edge``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import NvdError
from .weights import WEIGHT_SPECS, WeightsConfig


def add_dataclass_options(parser: argparse.ArgumentParser, cls: type, skip: Sequence[str] = ()) -> None:
    """Add one ``--field-name`` option per dataclass field, typed and defaulted from it."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} options (config section keys)")
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind, optional = _unwrap(hints[field.name])
        kwargs: dict[str, Any] = {"default": field.default, "dest": field.name}
        if typing.get_origin(kind) is typing.Literal:
            kwargs["choices"] = list(typing.get_args(kind))
        elif typing.get_origin(kind) is tuple:
            kwargs.update(nargs="+", type=str)
        elif kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _optional(kind) if optional else kind
        kwargs["help"] = f"default: {field.default}" + (" ('none' to unset)" if optional else "")
        group.add_argument(flag, **kwargs)


def from_options(cls: type, args: argparse.Namespace) -> Any:
    """Build ``cls`` from the options added by add_dataclass_options."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    return cls(**values)


def _optional(kind: type) -> Callable[[str], Any]:
    """Parse a value of ``kind``, or the word 'none' as None."""

    def parse(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """``int | None`` -> (int, True); ``int`` -> (int, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def _add_weight_options(parser: argparse.ArgumentParser, keys: Sequence[str]) -> None:
    for key in keys:
        parser.add_argument(
            f"--{key.replace('_', '-')}-weights" if key != "detectron2_config" else "--detectron2-config",
            dest=f"weights_{key}",
            default=None,
            help=f"{WEIGHT_SPECS[key].what} (config key weights.{key})",
        )


def _weights(args: argparse.Namespace) -> WeightsConfig:
    return WeightsConfig(**{k: getattr(args, f"weights_{k}", None) for k in WEIGHT_SPECS})


def _cmd_frames(args: argparse.Namespace) -> None:
    from .frames import FramesConfig, extract_frames

    out = extract_frames(args.source, args.out, from_options(FramesConfig, args))
    print(out)


def _cmd_flow(args: argparse.Namespace) -> None:
    from .flow import FlowConfig, compute_flow

    print(compute_flow(args.frames, args.out, from_options(FlowConfig, args), _weights(args)))


def _cmd_masks(args: argparse.Namespace) -> None:
    from .masks import MasksConfig, compute_masks

    cfg = from_options(MasksConfig, args)
    print(compute_masks(args.frames, args.out, cfg, _weights(args), annotations=args.annotations))


def _cmd_embed(args: argparse.Namespace) -> None:
    from .embedding import EmbeddingConfig, compute_embedding

    print(compute_embedding(args.frames, args.out, from_options(EmbeddingConfig, args), _weights(args)))


def _decomposition_config(path: str | None) -> "DecompositionTrainConfig":  # noqa: F821
    """The ``decomposition`` section of a workflow config file (package defaults without one)."""
    from .config import load_config, section
    from .decomposition_training import DecompositionTrainConfig

    values = load_config(path).get("decomposition") if path else None
    return section(DecompositionTrainConfig, values, "decomposition")


def _cmd_train(args: argparse.Namespace) -> None:
    import dataclasses

    from .decompose import train_decomposition

    cfg = _decomposition_config(args.config)
    if args.iterations is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, iterations=args.iterations))
    out = Path(args.out)
    result = train_decomposition(args.frames, args.flow, args.masks, out / "work", out / "model.pt", cfg)
    print(f"{out / 'model.pt'}: {result.iterations} iterations, {result.wall_time_s:.0f} s, PSNR {result.psnr:.2f} dB")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    import json

    from .decompose import load_decomposition, load_truth, training_log, video_fps
    from .decomposition_eval import evaluate

    task, meta = load_decomposition(args.model, args.frames, args.flow, args.masks, args.device)
    truth = load_truth(args.truth, args.frames) if args.truth else None
    metrics = evaluate(task, args.out, fps=video_fps(args.frames), training=training_log(args.model), meta=meta,
                       atlas_size=args.atlas_size, lpips_weights=args.lpips_weights, truth=truth)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}, indent=1))


def _cmd_edit(args: argparse.Namespace) -> None:
    from .decompose import load_decomposition, video_fps
    from .decomposition_eval import edit

    edits = {}
    for item in args.layer:
        index, _, path = item.partition("=")
        if not index.isdigit() or not path:
            raise NvdError(f"--layer takes INDEX=IMAGE, got '{item}'")
        edits[int(index)] = path
    task, _ = load_decomposition(args.model, args.frames, args.flow, args.masks, args.device)
    print(edit(task, args.atlases, edits, args.out, fps=video_fps(args.frames), mode=args.mode))


def _hyper_stores(args: argparse.Namespace) -> "VideoStores":  # noqa: F821
    from .hypernvd import VideoStores

    return VideoStores(Path(args.frames), Path(args.flow), Path(args.masks),
                       Path(args.embedding) if args.embedding else None)


def _split_stores(config: dict, results: str | None, videos: Sequence[str]) -> dict:
    """Stores of ``videos`` of the hypernet dataset under the results folder."""
    from .hypernvd import VideoStores

    root = Path(results or config.get("results_dir", "results")) / config["hypernet"]["dataset"]
    return {v: VideoStores(*(root / v / f"{s}.zarr" for s in ("frames", "flow", "masks", "embedding"))) for v in videos}


def _cmd_train_hyper(args: argparse.Namespace) -> None:
    from .config import load_config
    from .hypernvd import hyper_config, train_hypernet

    config = load_config(args.config)
    cfg = hyper_config(config)
    out = Path(args.out)
    result = train_hypernet(_split_stores(config, args.results, cfg.train_videos), out / "work", out / "model.pt", cfg)
    print(f"{out / 'model.pt'}: {result.iterations} iterations, {result.wall_time_s:.0f} s, "
          f"mean PSNR of the generated decompositions {result.psnr:.2f} dB")


def _cmd_finetune(args: argparse.Namespace) -> None:
    from .config import load_config
    from .hypernvd import finetune, finetune_config, scratch_config, train_scratch

    config = load_config(args.config)
    cfg = finetune_config(config)
    out = Path(args.out)
    if args.from_scratch:
        result = train_scratch(_hyper_stores(args), out / "work", out / "model.pt", cfg, scratch_config(config))
    else:
        if not args.hypernet or not args.embedding:
            raise NvdError("finetuning needs --hypernet and --embedding (or --from-scratch for the baseline)")
        result = finetune(args.hypernet, _hyper_stores(args), out / "work", out / "model.pt", cfg)
    print(f"{out / 'model.pt'}: {result.iterations} iterations, {result.wall_time_s:.0f} s, PSNR {result.psnr:.2f} dB")


def _cmd_hyper_output(args: argparse.Namespace) -> None:
    import json

    from .config import load_config
    from .hypernvd import finetune_config, hypernet_output_quality

    cfg = finetune_config(load_config(args.config))
    print(json.dumps(hypernet_output_quality(args.hypernet, _hyper_stores(args), cfg, args.out, args.split), indent=1))


def _cmd_tables(args: argparse.Namespace) -> None:
    from .comparison import TablesConfig, write_tables
    from .config import load_config, section
    from .hypernvd import hyper_config

    config = load_config(args.config)
    cfg = hyper_config(config)
    root = Path(args.results or config.get("results_dir", "results"))
    runs = {v: tuple(root / cfg.dataset / v / m / "log.csv" for m in ("scratch", "finetune")) for v in cfg.heldout_videos}
    outputs = {v: root / cfg.dataset / v / "hypernet_output.json" for v in (*cfg.train_videos, *cfg.heldout_videos)}
    written = write_tables(args.out or root / "tables", runs, outputs, section(TablesConfig, config.get("tables"), "tables"))
    print("\n".join(str(p) for p in written.values()))


def _cmd_demo_data(args: argparse.Namespace) -> None:
    from .demo import FOOTAGE_CLIPS, SYNTHETIC_CLIPS, write_footage_clip, write_synthetic_clip

    clips = args.clips or [*SYNTHETIC_CLIPS, *FOOTAGE_CLIPS]
    for clip in clips:
        if clip in FOOTAGE_CLIPS:
            print(write_footage_clip(clip, Path(args.out) / clip / "video.mp4"))
        else:
            print(write_synthetic_clip(clip, Path(args.out) / clip))


def _cmd_check_config(args: argparse.Namespace) -> None:
    from .config import load_config
    from .datasets import all_videos
    from .stages import backends_in_use
    from .weights import check_weights, weights_from_config

    config = load_config(args.config)
    check_weights(weights_from_config(config), backends_in_use(config))
    videos = all_videos(config)
    datasets = {v.dataset for v in videos}
    print(f"{args.config}: valid; {len(videos)} video(s) in {len(datasets)} dataset(s); weights present")


def _cmd_summary(args: argparse.Namespace) -> None:
    from .config import load_config
    from .datasets import all_videos
    from .summary import format_summary

    config = load_config(args.config)
    print(format_summary(config.get("results_dir", "results"), all_videos(config)))


def build_parser() -> argparse.ArgumentParser:
    from .embedding import EmbeddingConfig
    from .flow import FlowConfig
    from .frames import FramesConfig
    from .masks import MasksConfig

    parser = argparse.ArgumentParser(prog="nvd", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, fn: Callable[[argparse.Namespace], None], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=fn)
        return p

    p = command("frames", _cmd_frames, "Video file or frame folder -> frames.zarr (uint8 [T,H,W,3]).")
    p.add_argument("source", help="video file (mp4/mov/avi/mkv) or folder of numbered jpg/png frames")
    p.add_argument("out", help="output store, e.g. results/demo/clip/frames.zarr")
    add_dataclass_options(p, FramesConfig)

    p = command("flow", _cmd_flow, "frames.zarr -> flow.zarr (forward/backward flow + consistency masks).")
    p.add_argument("frames", help="frames store")
    p.add_argument("out", help="output flow store")
    add_dataclass_options(p, FlowConfig)
    _add_weight_options(p, ["raft"])

    p = command("masks", _cmd_masks, "frames.zarr (+ annotations) -> masks.zarr (uint8 [K,T,H,W]).")
    p.add_argument("frames", help="frames store")
    p.add_argument("out", help="output masks store")
    p.add_argument("--annotations", default=None, help="annotation folder (backend 'annotations')")
    add_dataclass_options(p, MasksConfig)
    _add_weight_options(p, ["maskrcnn", "detectron2_config", "detectron2"])

    p = command("embed", _cmd_embed, "frames.zarr -> embedding.zarr (per-window [W,D] and video [D]).")
    p.add_argument("frames", help="frames store")
    p.add_argument("out", help="output embedding store")
    add_dataclass_options(p, EmbeddingConfig)
    _add_weight_options(p, ["videomae"])

    def video_stores(p: argparse.ArgumentParser) -> None:
        p.add_argument("--frames", required=True, help="frames store")
        p.add_argument("--flow", required=True, help="flow store")
        p.add_argument("--masks", required=True, help="masks store")

    p = command("train", _cmd_train, "Train the layered decomposition of one video (resumes when interrupted).")
    video_stores(p)
    p.add_argument("--out", required=True, help="output folder: model.pt, log.csv, work/ (checkpoints)")
    p.add_argument("--config", default=None, help="workflow config whose 'decomposition' section to use")
    p.add_argument("--iterations", type=int, default=None, help="override decomposition.train.iterations")

    p = command("evaluate", _cmd_evaluate, "Metrics, atlases and videos of a trained decomposition.")
    p.add_argument("--model", required=True, help="model.pt written by nvd train")
    video_stores(p)
    p.add_argument("--out", required=True, help="output folder (metrics.json, tex{i}.png, *.mp4)")
    p.add_argument("--truth", default=None, help="ground_truth.npz of a synthetic demo clip (alpha IoU)")
    p.add_argument("--atlas-size", type=int, default=1000)
    p.add_argument("--lpips-weights", default=None, help="local LPIPS (AlexNet) weight file")
    p.add_argument("--device", default="auto")

    p = command("edit", _cmd_edit, "Propagate edited atlas textures through the video (custom_edit.mp4).")
    p.add_argument("--model", required=True, help="model.pt written by nvd train")
    video_stores(p)
    p.add_argument("--atlases", required=True, help="evaluation folder holding the original tex{i}.png")
    p.add_argument("--layer", action="append", required=True, metavar="INDEX=IMAGE",
                   help="edited atlas for a layer (RGBA or RGB), repeatable")
    p.add_argument("--mode", choices=["add", "replace"], default="add")
    p.add_argument("--out", default="custom_edit.mp4")
    p.add_argument("--device", default="auto")

    p = command("train-hyper", _cmd_train_hyper,
                "Train the HyperNVD hypernetwork on the config's training split (resumes when interrupted).")
    p.add_argument("--config", default="config.yaml", help="workflow config with a 'hypernet' section")
    p.add_argument("--results", default=None, help="where the stores are (default: the config's results_dir)")
    p.add_argument("--out", required=True, help="output folder: model.pt, log.csv, work/ (checkpoints)")

    def hyper_video(p: argparse.ArgumentParser) -> None:
        video_stores(p)
        p.add_argument("--embedding", default=None, help="embedding store")
        p.add_argument("--hypernet", default=None, help="model.pt written by nvd train-hyper")
        p.add_argument("--config", default="config.yaml", help="workflow config ('hypernet', 'finetune' sections)")

    p = command("finetune", _cmd_finetune,
                "Finetune a video's decomposition from the hypernetwork's output (or train it from scratch).")
    hyper_video(p)
    p.add_argument("--from-scratch", action="store_true", help="the baseline: same model and settings, random init")
    p.add_argument("--out", required=True, help="output folder: model.pt, log.csv, work/")

    p = command("hyper-output", _cmd_hyper_output, "PSNR of the hypernetwork's output for a video, before finetuning.")
    hyper_video(p)
    p.add_argument("--split", choices=["train", "heldout"], default=None)
    p.add_argument("--out", default=None, help="JSON file to write")

    p = command("tables", _cmd_tables, "HyperNVD vs scratch tables and plots from finished runs.")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--results", default=None, help="results folder (default: the config's results_dir)")
    p.add_argument("--out", default=None, help="output folder (default: <results>/tables)")

    p = command("demo-data", _cmd_demo_data, "Write the built-in demo clips (synthetic scenes + real footage).")
    p.add_argument("out", nargs="?", default="data/demo", help="output folder (default: data/demo)")
    p.add_argument("--clips", nargs="+", default=None, help="clip names (default: all)")

    p = command("check-config", _cmd_check_config, "Validate a workflow config and check its weight files.")
    p.add_argument("config", nargs="?", default="config.yaml")

    p = command("summary", _cmd_summary, "Print what the workflow has produced for a config.")
    p.add_argument("--config", default="config.yaml")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .progress import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        args.func(args)
    except NvdError as exc:
        print(f"nvd {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
