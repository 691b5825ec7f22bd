"""``nvd`` subcommands of the NeRV family (NeRV, E-NeRV, HNeRV, plain and Boosting-NeRV)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nvd.cli.common import Command
from nvd.core.layout import EVAL_DIR, MODEL_NAME, WORK_DIR
from nvd.models import NERV_MODELS, NERV_TASKS
from nvd.train.config import TrainConfig

MODELS = NERV_MODELS
TASKS = tuple(NERV_TASKS)


def _cmd_train(args: argparse.Namespace) -> None:
    import dataclasses

    from nvd.core.config import load_config
    from nvd.core.devices import resolve_device
    from nvd.data.loader import frames_uint8
    from nvd.models import nerv_model_folder
    from nvd.models.nerv.run import train_nerv_run
    from nvd.models.nerv.tasks import variant
    from nvd.models.nerv.training import inpaint_config, nerv_train_config

    config = load_config(args.config) if args.config else {}
    # A model with a size names the folder the workflow would train it in (hnerv_3M).
    cfg = nerv_train_config(config.get("nerv"), model=nerv_model_folder(args.model, args.model_size))
    cfg = cfg.with_epochs(args.epochs)
    if args.device is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device=args.device))
    mask = None
    if args.task == "inpaint":
        mask = args.mask or inpaint_config(config.get("nerv_inpaint")).mask
    out = Path(args.out)
    frames = frames_uint8(args.frames, resolve_device(cfg.train.device))
    result = train_nerv_run(frames, args.frames, cfg, out / WORK_DIR, out / MODEL_NAME,
                            run_variant=variant(args.task, mask))
    print(f"{out / MODEL_NAME}: {cfg.model}, {cfg.epochs} epochs ({result.iterations} iterations), "
          f"{result.wall_time_s:.0f} s, PSNR {result.psnr:.2f} dB")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from nvd.models.nerv.evaluate import evaluate_nerv

    out = args.out or str(Path(args.model_file).with_name(EVAL_DIR))
    metrics = evaluate_nerv(args.model_file, args.frames, out, lpips_weights=args.lpips_weights, device=args.device)
    shown = {k: v for k, v in metrics.items() if not isinstance(v, list) and k not in ("config", "model_config")}
    print(json.dumps(shown, indent=1))


def register(command: Command) -> None:
    p = command("nerv-train", _cmd_train,
                "Train a NeRV-family model on one video's frames store (resumes when interrupted).")
    p.add_argument("--model", required=True, choices=MODELS, help="which of the six models")
    p.add_argument("--frames", required=True, help="frames.zarr of the video")
    p.add_argument("--out", required=True, help="output folder: model.pt, log.csv, work/")
    p.add_argument("--config", default=None, help="workflow config whose 'nerv' section to use")
    p.add_argument("--epochs", type=int, default=None, help="override nerv.epochs")
    p.add_argument("--model-size", type=float, default=None, help="override nerv.model_size / model_sizes (millions)")
    p.add_argument("--task", choices=TASKS, default="regression",
                   help="regression (the whole video), inpaint (frames with holes) or interpolate "
                        "(even frames only)")
    p.add_argument("--mask", choices=("centre", "squares"), default=None,
                   help="inpainting mask (default: nerv_inpaint.mask of the config, else centre)")
    p.add_argument("--device", default=None, help="override nerv.train.device (cpu, cuda, cuda:N, auto)")

    p = command("nerv-evaluate", _cmd_evaluate,
                "Score a trained NeRV-family model for the task it was trained for (metrics.json, videos).")
    p.add_argument("--model-file", required=True, help="model.pt written by nvd nerv-train")
    p.add_argument("--frames", required=True, help="frames.zarr of the video it was trained on")
    p.add_argument("--out", default=None, help="output folder (default: eval/ beside the model file)")
    p.add_argument("--lpips-weights", default=None, help="local LPIPS (AlexNet) weight file (config key weights.lpips)")
    p.add_argument("--device", default=TrainConfig().device, help="cpu, cuda, cuda:N or auto")
