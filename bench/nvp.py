"""NVP training-step throughput: samples/s of a full NVP-S step, its peak memory and profile.

    python -m bench.nvp [--device cpu|cuda|auto] [--steps 5] [--frames 32] [--threads N]
                        [--batches 65536 262144] [--profile]

A step is what the shared loop does each iteration with nvd.models.nvp.objective.NVPTask:
zero_grad, sampling a batch of (t, pixel) samples, forward, MSE, backward and the fused AdamW
step over every parameter, on the paper's NVP-S (16 levels, base 16, scale 1.35, F=2, a
[T, 300, 300, 2] sparse grid, 3 x 128 modulated SIREN, square levels as in the paper) and a
T-frame 320x180 clip of random pixels (the content does not change the work). Each batch size runs in fresh subprocesses:
one times steps after two warm-up steps, one measures the peak memory of one step
(bench.hashgrid's method: peak RSS on CPU, max_memory_allocated on CUDA). ``--profile``
prints the torch profiler's top operators of three steps at the first batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from bench.common import task_step, time_steps
from bench.hashgrid import peak_memory, start_peak_memory


def make_task(frames: int, batch: int, device: str):
    import torch

    from nvd.models.nvp.config import nvp_train_config
    from nvd.models.nvp.objective import NVPTask

    torch.manual_seed(0)
    video = torch.randint(0, 256, (frames, 180, 320, 3), dtype=torch.uint8, device=device)
    cfg = nvp_train_config({"size": "S", "model": {"cap_to_video": False}, "batch_size": batch,
                            "train": {"iterations": 100_000, "device": device}})
    return NVPTask(video, cfg), torch.Generator(device=device).manual_seed(0)


def run_case(frames: int, batch: int, device: str, steps: int, threads: int | None, measure: str) -> dict:
    """One batch size in its own process: ``measure`` "time", "memory" or "profile"."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    task, generator = make_task(frames, batch, device)
    step = task_step(task, device)
    step()
    if measure == "memory":
        before, how = start_peak_memory(device)
        step()
        return {"peak_mib": peak_memory(device, how) - before, "memory": how}
    if measure == "profile":
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        with profile(activities=activities) as prof:
            for _ in range(3):
                step()
        key = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
        return {"table": prof.key_averages().table(sort_by=key, row_limit=12)}
    times = time_steps(step, steps, warmup=1)  # one more after the memory check's step
    return {"parameters": task.model.parameter_count(), "median_samples_s": batch / statistics.median(times),
            "best_samples_s": batch / min(times), "median_s": statistics.median(times)}


def run_subprocess(args: argparse.Namespace, device: str, batch: int, measure: str) -> dict:
    command = [sys.executable, "-m", "bench.nvp", "--device", device, "--steps", str(args.steps),
               "--frames", str(args.frames), "--case", json.dumps([batch, measure])]
    command += ["--threads", str(args.threads)] if args.threads else []
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072") if measure == "memory" else None
    proc = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batches", type=int, nargs="+", default=[2**16, 2**18])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from nvd.core.devices import resolve_device

    device = resolve_device(args.device).type
    if args.case:
        batch, measure = json.loads(args.case)
        print(json.dumps(run_case(args.frames, batch, device, args.steps, args.threads, measure)))
        return
    print(f"NVP-S training step, {args.frames} frames of 320x180, {device}"
          f"{f', {args.threads} threads' if args.threads else ''}")
    print(f"{'batch':>8} {'parameters':>11} {'median samples/s':>17} {'best samples/s':>15} {'median step s':>14} "
          f"{'peak MiB':>9}")
    for batch in args.batches:
        timing = run_subprocess(args, device, batch, "time")
        memory = run_subprocess(args, device, batch, "memory")
        print(f"{batch:>8} {timing['parameters']:>11,} {timing['median_samples_s']:>17,.0f} "
              f"{timing['best_samples_s']:>15,.0f} {timing['median_s']:>14.3f} {memory['peak_mib']:>9.0f}")
    if args.profile:
        print(f"\nprofile of three steps at batch {args.batches[0]}:")
        print(run_subprocess(args, device, args.batches[0], "profile")["table"])


if __name__ == "__main__":
    main()
