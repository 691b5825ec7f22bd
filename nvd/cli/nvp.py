"""``nvd`` subcommands of NVP (learnable positional features)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nvd.cli.common import Command
from nvd.core.layout import MODEL_NAME, SNAPSHOTS_DIR, WORK_DIR
from nvd.train.config import TrainConfig


def _cmd_train(args: argparse.Namespace) -> None:
    import dataclasses

    from nvd.core.config import load_config
    from nvd.core.devices import resolve_device
    from nvd.data.loader import frames_uint8
    from nvd.models.nvp.config import nvp_train_config
    from nvd.models.nvp.run import train_nvp_run

    values = dict((load_config(args.config).get("nvp") or {}) if args.config else {})
    if args.size is not None:
        values["size"] = args.size
    cfg = nvp_train_config(values)
    if args.iterations is not None:
        budgets = tuple(b for b in cfg.budgets if b <= args.iterations)
        cfg = dataclasses.replace(cfg, budgets=budgets, train=dataclasses.replace(cfg.train, iterations=args.iterations))
    out = Path(args.out)
    frames = frames_uint8(args.frames, resolve_device(cfg.train.device))
    result = train_nvp_run(frames, args.frames, cfg, out / WORK_DIR, out / MODEL_NAME, out / SNAPSHOTS_DIR)
    print(f"{out / MODEL_NAME}: {result.iterations} iterations, {result.wall_time_s:.0f} s, PSNR {result.psnr:.2f} dB")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from nvd.models.nvp.evaluate import evaluate_nvp

    snapshots = Path(args.model).with_name(SNAPSHOTS_DIR)
    metrics = evaluate_nvp(args.model, args.frames, args.out, snapshots=snapshots if snapshots.is_dir() else None,
                           lpips_weights=args.lpips_weights, device=args.device)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}, indent=1))


def register(command: Command) -> None:
    p = command("nvp-train", _cmd_train, "Train NVP on one video's frames store (resumes when interrupted).")
    p.add_argument("--frames", required=True, help="frames.zarr of the video")
    p.add_argument("--out", required=True, help="output folder: model.pt, log.csv, snapshots/, work/")
    p.add_argument("--config", default=None, help="workflow config whose 'nvp' section to use")
    p.add_argument("--size", choices=["S", "L"], default=None, help="NVP-S or NVP-L (overrides nvp.size)")
    p.add_argument("--iterations", type=int, default=None, help="override nvp.train.iterations")

    p = command("nvp-evaluate", _cmd_evaluate, "Quantise a trained NVP model and score it (metrics.json, videos).")
    p.add_argument("--model", required=True, help="model.pt written by nvd nvp-train (snapshots/ beside it are scored too)")
    p.add_argument("--frames", required=True, help="frames.zarr of the video it was trained on")
    p.add_argument("--out", required=True, help="output folder (metrics.json, rec.mp4, side_by_side.mp4)")
    p.add_argument("--lpips-weights", default=None, help="local LPIPS (AlexNet) weight file (config key weights.lpips)")
    p.add_argument("--device", default=TrainConfig().device, help="cpu, cuda, cuda:N or auto")
