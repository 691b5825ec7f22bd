"""NeRV-family training-step time: each Boosting-NeRV model against its plain model at the
same counted parameter count.

    python -m bench.nerv [--device cpu|cuda|auto] [--steps 5] [--frames 32] [--size 0.75]
                         [--height 180] [--width 320] [--threads N] [--models nerv hnerv ...]

A step is what the shared loop does each iteration with nvd.models.nerv.objective.NeRVTask:
zero_grad, the frame of the step (batch 1), forward, the model's loss (boost: 60 * (0.7 L1 +
0.3 (1 - MS-SSIM)) + FFT-L1; plain: its paper's), backward and the Adan step. Every model is
solved to ``--size`` million counted parameters (nvd.models.nerv.size) on a T-frame clip of
random pixels (the content does not change the work) with the presets' settings and strides
from the frame size; an epoch is T steps. Each model runs in a fresh subprocess, which times
``--steps`` steps after two warm-up steps; the median and best step are printed, and the
floating-point operations of one step (forward and backward of the convolutions and matrix
products, torch.utils.flop_counter: the work the architecture asks for, whatever the machine).
For each pair the plain model runs twice, with its own loss and with the boost loss, and the
ratio boosted / plain of the median step is printed against both, beside the ratio of their
FLOPs: the recipe's cost (model and loss), and the conditional decoder's alone (this project's
target: at most 1.5x).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from bench.common import task_step, time_steps

PAIRS = (("nerv", "nerv_boost"), ("enerv", "enerv_boost"), ("hnerv", "hnerv_boost"))


def run_case(model: str, loss: str | None, args: argparse.Namespace, device: str) -> dict:
    """One model (with ``loss``, None: its own) in its own process: counted parameters and
    step times."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from nvd.models.nerv.objective import NeRVTask
    from nvd.models.nerv.training import nerv_train_config

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    video = torch.randint(0, 256, (args.frames, args.height, args.width, 3), dtype=torch.uint8, device=device)
    cfg = nerv_train_config({"model_size": args.size, "epochs": 300, "loss": loss, "train": {"device": device}},
                            model=model)
    task = NeRVTask(video, cfg)
    step = task_step(task, device)
    times = time_steps(step, args.steps)
    with FlopCounterMode(display=False) as flops:
        step()
    return {"parameters": task.parameter_count, "median_s": statistics.median(times), "best_s": min(times),
            "gflop": flops.get_total_flops() / 1e9,
            "loss": task.loss_name, "strides": list(task.model.layout.strides),
            "blocks": list(task.model.layout.blocks)}


def run_subprocess(model: str, loss: str | None, args: argparse.Namespace, device: str) -> dict:
    command = [sys.executable, "-m", "bench.nerv", "--device", device, "--steps", str(args.steps),
               "--frames", str(args.frames), "--size", str(args.size), "--height", str(args.height),
               "--width", str(args.width), "--case", json.dumps([model, loss])]
    command += ["--threads", str(args.threads)] if args.threads else []
    proc = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=float, default=0.75, help="counted parameters, millions")
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--models", nargs="+", default=[p[0] for p in PAIRS], choices=[p[0] for p in PAIRS],
                        help="plain models whose pairs to run")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from nvd.core.devices import resolve_device

    device = resolve_device(args.device).type
    if args.case:
        model, loss = json.loads(args.case)
        print(json.dumps(run_case(model, loss, args, device)))
        return
    print(f"NeRV-family training step (batch 1), {args.frames} frames of {args.width}x{args.height}, "
          f"{args.size}M counted parameters, {device}{f', {args.threads} threads' if args.threads else ''}")
    print(f"{'model':>12} {'parameters':>11} {'loss':>7} {'median step s':>14} {'best step s':>12} "
          f"{'epoch s':>8} {'GFLOP/step':>11}")
    for plain, boosted in PAIRS:
        if plain not in args.models:
            continue
        rows = [(plain, None), (plain, "boost"), (boosted, None)]
        results = [run_subprocess(model, loss, args, device) for model, loss in rows]
        for (model, _), r in zip(rows, results):
            print(f"{model:>12} {r['parameters']:>11,} {r['loss']:>7} {r['median_s']:>14.4f} {r['best_s']:>12.4f} "
                  f"{r['median_s'] * args.frames:>8.2f} {r['gflop']:>11.3f}")
        own, same, boost = (r["median_s"] for r in results)
        print(f"{'':>12} {boosted} / {plain}: {boost / own:.2f}x with each model's own loss, "
              f"{boost / same:.2f}x with the boost loss for both; "
              f"FLOPs {results[2]['gflop'] / results[1]['gflop']:.2f}x")


if __name__ == "__main__":
    main()
