"""Decomposition training speed at the reference setting, and PSNR against time on the demo.

    python -m bench.decomposition [--steps 10] [--demo-results results]

(a) Training steps of the Hashing-NVD reference model (mapping 4x256, texture/residual/alpha
    4x64 on 16-level x 2-feature hash grids with 2^15 tables, 2 layers) at 10,000 pixels
    per batch on a 64-frame 432x768 synthetic video: s/iteration, iterations/s, pixels/s
    and peak resident memory (RSS high-water mark of this process, which holds the video).
(b) When the demo has been run (`make demo`), PSNR against training time for each demo
    clip, read from results/<dataset>/<video>/decomposition/log.csv and metrics.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from nvd.data.loader import VideoTensors
from nvd.models.hashing_nvd.objective import DecompositionTask, DecompositionTrainConfig


def synthetic_video(frames: int, h: int, w: int, device: torch.device) -> VideoTensors:
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(1, frames, h, w)
    masks[:, :, h // 4 : h // 2, w // 4 : w // 2] = 1
    return VideoTensors(
        frames=torch.rand(frames, h, w, 3, generator=g).to(device),
        flow_forward=torch.randn(frames - 1, h, w, 2, generator=g).to(device),
        flow_backward=torch.randn(frames - 1, h, w, 2, generator=g).to(device),
        valid_forward=torch.ones(frames - 1, h, w, dtype=torch.bool, device=device),
        valid_backward=torch.ones(frames - 1, h, w, dtype=torch.bool, device=device),
        masks=masks.to(device), object_names=["object"])


def bench_steps(steps: int, device: torch.device) -> dict[str, float]:
    video = synthetic_video(64, 432, 768, device)
    cfg = DecompositionTrainConfig(batch_size=10_000)
    task = DecompositionTask(video, cfg)
    generator = torch.Generator(device=device).manual_seed(0)
    opt = task.optimizer()

    def step(iteration: int) -> None:
        opt.zero_grad(set_to_none=True)
        loss, _ = task.step_loss(iteration, generator)
        loss.backward()
        opt.step()

    for it in (200, 201):  # warm-up, past pretraining, early-phase losses active
        step(it)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for it in range(202, 202 + steps):
        step(it)
    if device.type == "cuda":
        torch.cuda.synchronize()
    secs = (time.perf_counter() - start) / steps
    return {"s_per_iteration": secs, "iterations_per_s": 1 / secs, "pixels_per_s": 10_000 / secs,
            "parameters": sum(p.numel() for p in task.model.parameters()),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else 0.0}


def mapping_floor(steps: int, device: torch.device) -> dict[str, float]:
    """The reference step's floor on this machine: its two 4x256 mapping MLPs alone, forward
    and backward at the 5 points per pixel the losses need (the pixel, its 2 neighbours, its
    2 flow-matched points), against the machine's fp32 matrix-multiply rate."""
    from nvd.nn.fields import mlp

    nets = [mlp(3, 256, 4, 2).to(device) for _ in range(2)]
    x = torch.rand(5 * 10_000, 3, device=device)

    def step() -> None:
        sum(torch.tanh(n(x)).square().sum() for n in nets).backward()

    a, w = torch.rand(50_000, 256, device=device), torch.rand(256, 256, device=device)
    timings = {}
    for name, fn in (("mapping", step), ("gemm", lambda: a @ w)):
        for _ in range(3):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings[name] = (time.perf_counter() - start) / steps
    flops = 3 * 2 * 2 * x.shape[0] * (3 * 256 + 2 * 256 * 256 + 256 * 2)  # fwd+bwd = 3x fwd, 2 nets
    gemm_rate = 2 * 50_000 * 256 * 256 / timings["gemm"]
    return {"mapping_s": timings["mapping"], "gflop": flops / 1e9, "gemm_gflops": gemm_rate / 1e9,
            "floor_s": flops / gemm_rate}


def demo_curves(results: Path) -> None:
    logs = sorted(results.glob("*/*/decomposition/log.csv"))
    if not logs:
        print(f"\n(no demo decompositions under {results}: run `make demo` for PSNR against time)")
        return
    print("\nPSNR (training log: mean of 4 frames, dB) against training time on the demo clips; final metrics from evaluate:")
    for log in logs:
        rows = [line.split(",") for line in log.read_text().splitlines()]
        head, rows = rows[0], rows[1:]
        t, p = head.index("wall_time_s"), head.index("psnr")
        curve = ", ".join(f"{float(r[t]):.0f}s:{float(r[p]):.1f}" for r in rows[:: max(1, len(rows) // 6)])
        metrics = log.parent / "eval" / "metrics.json"
        final = json.loads(metrics.read_text()) if metrics.exists() else {}
        name = "/".join(log.parts[-4:-2])
        print(f"  {name:<22} {curve}")
        if final:
            print(f"  {'':<22} all frames: PSNR {final['psnr']:.2f} dB (no residual {final['psnr_no_residual']:.2f}), "
                  f"SSIM {final['ssim']:.3f}, alpha IoU {final.get('alpha_iou')}, {final['training_time_s']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--demo-results", default="results")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    r = bench_steps(args.steps, device)
    print(f"reference step (2 layers, 10,000 px, {r['parameters'] / 1e6:.2f} M parameters): "
          f"{r['s_per_iteration']:.3f} s/iteration = {r['iterations_per_s']:.2f} it/s = "
          f"{r['pixels_per_s']:,.0f} px/s; peak RSS {r['peak_rss_mib']:.0f} MiB"
          + (f", peak CUDA {r['peak_cuda_mib']:.0f} MiB" if device.type == "cuda" else ""))
    f = mapping_floor(args.steps, device)
    print(f"  of which the mapping MLPs alone: {f['mapping_s']:.3f} s ({f['gflop']:.0f} GFLOP); at this machine's "
          f"fp32 matmul rate ({f['gemm_gflops']:.0f} GFLOP/s) no step can take less than {f['floor_s']:.2f} s")
    demo_curves(Path(args.demo_results))


if __name__ == "__main__":
    main()
