"""``nvd`` subcommands of the per-video layered decomposition (Hashing-NVD)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nvd.cli.common import Command, add_dataclass_options, add_video_stores, from_options
from nvd.core.errors import NvdError
from nvd.core.layout import MODEL_NAME, WORK_DIR
from nvd.train.config import TrainConfig


def _cmd_train(args: argparse.Namespace) -> None:
    import dataclasses

    from nvd.core.config import load_config, section
    from nvd.models.hashing_nvd.objective import DecompositionTrainConfig
    from nvd.models.hashing_nvd.run import train_decomposition

    values = load_config(args.config).get("decomposition") if args.config else None
    cfg = section(DecompositionTrainConfig, values, "decomposition")
    if args.iterations is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, iterations=args.iterations))
    out = Path(args.out)
    result = train_decomposition(args.frames, args.flow, args.masks, out / WORK_DIR, out / MODEL_NAME, cfg)
    print(f"{out / MODEL_NAME}: {result.iterations} iterations, {result.wall_time_s:.0f} s, "
          f"PSNR {result.psnr:.2f} dB")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from nvd.models.hashing_nvd.evaluate import EvaluationConfig, evaluate_model

    metrics = evaluate_model(args.model, args.frames, args.flow, args.masks, args.out,
                             from_options(EvaluationConfig, args), lpips_weights=args.lpips_weights,
                             truth=args.truth, device=args.device)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}, indent=1))


def _cmd_edit(args: argparse.Namespace) -> None:
    from nvd.models.hashing_nvd.edit import EditConfig, edit_model

    atlases = {}
    for item in args.layer:
        index, _, path = item.partition("=")
        if not index.isdigit() or not path:
            raise NvdError(f"--layer takes INDEX=IMAGE, got '{item}'")
        atlases[int(index)] = path
    cfg = EditConfig(atlases=atlases, mode=args.mode)
    print(edit_model(args.model, args.frames, args.flow, args.masks, args.atlases, cfg, args.out, args.device))


def register(command: Command) -> None:
    from nvd.models.hashing_nvd.edit import EDIT_MODES, EditConfig
    from nvd.models.hashing_nvd.evaluate import EvaluationConfig

    p = command("train", _cmd_train, "Train the layered decomposition of one video (resumes when interrupted).")
    add_video_stores(p)
    p.add_argument("--out", required=True, help="output folder: model.pt, log.csv, work/ (checkpoints)")
    p.add_argument("--config", default=None, help="workflow config whose 'decomposition' section to use")
    p.add_argument("--iterations", type=int, default=None, help="override decomposition.train.iterations")

    p = command("evaluate", _cmd_evaluate, "Metrics, atlases and videos of a trained decomposition.")
    p.add_argument("--model", required=True, help="model.pt written by nvd train")
    add_video_stores(p)
    p.add_argument("--out", required=True, help="output folder (metrics.json, tex{i}.png, *.mp4)")
    p.add_argument("--truth", default=None, help="ground_truth.npz of a synthetic demo clip (alpha IoU)")
    add_dataclass_options(p, EvaluationConfig)
    p.add_argument("--lpips-weights", default=None, help="local LPIPS (AlexNet) weight file (config key weights.lpips)")
    p.add_argument("--device", default=TrainConfig().device, help="cpu, cuda, cuda:N or auto")

    p = command("edit", _cmd_edit, "Propagate edited atlas textures through the video (custom_edit.mp4).")
    p.add_argument("--model", required=True, help="model.pt written by nvd train")
    add_video_stores(p)
    p.add_argument("--atlases", required=True, help="evaluation folder holding the original tex{i}.png")
    p.add_argument("--layer", action="append", required=True, metavar="INDEX=IMAGE",
                   help="edited atlas for a layer (RGBA or RGB), repeatable")
    p.add_argument("--mode", choices=list(EDIT_MODES), default=EditConfig().mode)
    p.add_argument("--out", default="custom_edit.mp4")
    p.add_argument("--device", default=TrainConfig().device, help="cpu, cuda, cuda:N or auto")
