"""``nvd`` subcommands of HyperNVD: the hypernetwork, finetuning vs scratch, its tables."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nvd.cli.common import Command, add_video_stores
from nvd.core.errors import NvdError
from nvd.core.layout import MODEL_NAME, WORK_DIR, ResultsLayout


def _layout(config: dict, results: str | None) -> ResultsLayout:
    from nvd.core.config import results_layout

    return ResultsLayout(results) if results else results_layout(config)


def _video_stores(args: argparse.Namespace) -> "VideoStores":  # noqa: F821
    from nvd.models.hypernvd.run import VideoStores

    return VideoStores(Path(args.frames), Path(args.flow), Path(args.masks),
                       Path(args.embedding) if args.embedding else None)


def _cmd_train_hyper(args: argparse.Namespace) -> None:
    from nvd.core.config import load_config
    from nvd.models.hypernvd.run import VideoStores, hyper_config, train_hypernet

    config = load_config(args.config)
    cfg = hyper_config(config)
    layout = _layout(config, args.results)
    videos = {v: VideoStores(**layout.stores(cfg.dataset, v)) for v in cfg.train_videos}
    out = Path(args.out)
    result = train_hypernet(videos, out / WORK_DIR, out / MODEL_NAME, cfg)
    print(f"{out / MODEL_NAME}: {result.iterations} iterations, {result.wall_time_s:.0f} s, "
          f"mean PSNR of the generated decompositions {result.psnr:.2f} dB")


def _cmd_finetune(args: argparse.Namespace) -> None:
    from nvd.core.config import load_config
    from nvd.models.hypernvd.run import finetune, finetune_config, scratch_config, train_scratch

    config = load_config(args.config)
    cfg = finetune_config(config)
    out = Path(args.out)
    if args.from_scratch:
        result = train_scratch(_video_stores(args), out / WORK_DIR, out / MODEL_NAME, cfg, scratch_config(config))
    else:
        if not args.hypernet or not args.embedding:
            raise NvdError("finetuning needs --hypernet and --embedding (or --from-scratch for the baseline)")
        result = finetune(args.hypernet, _video_stores(args), out / WORK_DIR, out / MODEL_NAME, cfg)
    print(f"{out / MODEL_NAME}: {result.iterations} iterations, {result.wall_time_s:.0f} s, "
          f"PSNR {result.psnr:.2f} dB")


def _cmd_hyper_output(args: argparse.Namespace) -> None:
    from nvd.core.config import load_config
    from nvd.models.hypernvd.run import finetune_config, hypernet_output_quality

    cfg = finetune_config(load_config(args.config))
    print(json.dumps(hypernet_output_quality(args.hypernet, _video_stores(args), cfg, args.out, args.split), indent=1))


def _cmd_tables(args: argparse.Namespace) -> None:
    from nvd.core.config import load_config, section
    from nvd.models.hypernvd.run import hyper_config
    from nvd.models.hypernvd.tables import TablesConfig, write_tables

    config = load_config(args.config)
    cfg = hyper_config(config)
    layout = _layout(config, args.results)
    runs = {v: tuple(layout.run_file("log", m, cfg.dataset, v) for m in ("scratch", "finetune"))
            for v in cfg.heldout_videos}
    outputs = {v: layout.hyper_output(cfg.dataset, v) for v in (*cfg.train_videos, *cfg.heldout_videos)}
    written = write_tables(args.out or layout.tables_dir(), runs, outputs,
                           section(TablesConfig, config.get("tables"), "tables"))
    print("\n".join(str(p) for p in written.values()))


def register(command: Command) -> None:
    p = command("train-hyper", _cmd_train_hyper,
                "Train the HyperNVD hypernetwork on the config's training split (resumes when interrupted).")
    p.add_argument("--config", default="config.yaml", help="workflow config with a 'hypernet' section")
    p.add_argument("--results", default=None, help="where the stores are (default: the config's results_dir)")
    p.add_argument("--out", required=True, help="output folder: model.pt, log.csv, work/ (checkpoints)")

    def hyper_video(p: argparse.ArgumentParser) -> None:
        add_video_stores(p, embedding=True)
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
