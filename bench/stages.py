"""Throughput of every data stage, on the demo clips and at 480p, plus the DAG check time.

    python -m bench.stages            (or: make bench)

Prints frames/s per stage and backend. Model backends (RAFT, Mask R-CNN, VideoMAE) run with
randomly initialised weights: same architecture and compute as the real checkpoints, which
cannot be downloaded here. Figures go into the README's benchmark table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nvd.data.demo import footage_source

REPO = Path(__file__).resolve().parent.parent


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start




def random_weights(tmp: Path) -> "WeightsConfig":
    """Randomly initialised RAFT-large, Mask R-CNN R50-FPN and VideoMAE-Base, saved locally."""
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    from torchvision.models.optical_flow import raft_large
    from transformers import VideoMAEConfig, VideoMAEImageProcessor, VideoMAEModel

    from nvd.data.weights import WeightsConfig

    torch.manual_seed(0)
    torch.save(raft_large(weights=None).state_dict(), tmp / "raft.pth")
    torch.save(maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict(), tmp / "maskrcnn.pth")
    VideoMAEModel(VideoMAEConfig()).save_pretrained(tmp / "videomae")
    VideoMAEImageProcessor().save_pretrained(tmp / "videomae")
    return WeightsConfig(raft=str(tmp / "raft.pth"), maskrcnn=str(tmp / "maskrcnn.pth"),
                         videomae=str(tmp / "videomae"))


def bench_clip(name: str, source: Path, frames_cfg, tmp: Path, weights, models: bool,
               annotations: Path | None = None) -> list[tuple]:
    from nvd.data.embedding import EmbeddingConfig, compute_embedding
    from nvd.data.flow import FlowConfig, compute_flow
    from nvd.data.frames import FramesConfig, extract_frames
    from nvd.data.masks import MasksConfig, compute_masks

    rows = []
    store = tmp / f"{name}.frames.zarr"
    secs = timed(extract_frames, source, store, frames_cfg)
    from nvd.data.frames import load_frames

    frames, _ = load_frames(store)
    t, h, w, _ = frames.shape
    size = f"{w}x{h}"
    rows.append((name, size, "frames", "decode+resize", t, secs))
    for backend in ("dis", "farneback"):
        secs = timed(compute_flow, store, tmp / f"{name}.{backend}.zarr", FlowConfig(backend=backend), weights)
        rows.append((name, size, "flow", f"{backend} (fwd+bwd, per pair)", t - 1, secs))
    if annotations is not None:
        secs = timed(compute_masks, store, tmp / f"{name}.ann.zarr", MasksConfig(backend="annotations"), weights,
                     annotations=annotations)
        rows.append((name, size, "masks", "annotations", t, secs))
    secs = timed(compute_embedding, store, tmp / f"{name}.stats.zarr", EmbeddingConfig(backend="stats"), weights)
    rows.append((name, size, "embedding", "stats", t, secs))
    if models:
        sub = tmp / f"{name}.sub.zarr"
        extract_frames(source, sub, FramesConfig(long_edge=frames_cfg.long_edge, max_frames=5))
        secs = timed(compute_flow, sub, tmp / f"{name}.raft.zarr", FlowConfig(backend="raft", batch_size=2), weights)
        rows.append((name, size, "flow", "raft 20 it (fwd+bwd, per pair)", 4, secs))
        secs = timed(compute_masks, sub, tmp / f"{name}.mrcnn.zarr",
                     MasksConfig(backend="maskrcnn", objects=("person",), min_size=min(h, w)), weights)
        rows.append((name, size, "masks", "maskrcnn", 5, secs))
        secs = timed(compute_embedding, store, tmp / f"{name}.vmae.zarr",
                     EmbeddingConfig(backend="videomae", window=16), weights)
        rows.append((name, size, "embedding", "videomae ViT-B", t, secs))
    return rows


def bench_dag_check() -> float:
    """Seconds for a dry run of the demo workflow when everything is up to date."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        base = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                "--directory", tmp, "--configfile", str(REPO / "config.yaml"), "--cores", "2", "--quiet", "all"]
        subprocess.run(base, check=True, env=env, capture_output=True)
        start = time.perf_counter()
        proc = subprocess.run([*base, "--dry-run"], check=True, env=env, capture_output=True, text=True)
        secs = time.perf_counter() - start
        assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-2000:]
        return secs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-models", action="store_true", help="skip RAFT / Mask R-CNN / VideoMAE")
    parser.add_argument("--frames-480p", type=int, default=60)
    args = parser.parse_args()

    import torch

    from nvd.core.progress import configure_logging
    from nvd.data.demo import write_footage_clip, write_synthetic_clip
    from nvd.data.frames import FramesConfig
    from nvd.data.weights import WeightsConfig

    configure_logging(os.devnull)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        weights = WeightsConfig() if args.no_models else random_weights(tmp)
        rows = []
        write_synthetic_clip("orbit", tmp / "orbit")
        rows += bench_clip("demo orbit", tmp / "orbit" / "frames", FramesConfig(long_edge=160), tmp, weights, False,
                           annotations=tmp / "orbit" / "masks")
        write_footage_clip("carphone", tmp / "carphone.mp4")
        rows += bench_clip("demo carphone", tmp / "carphone.mp4", FramesConfig(long_edge=160), tmp, weights, False)
        rows += bench_clip("bunny 480p", footage_source("bunny"), FramesConfig(long_edge=854, max_frames=args.frames_480p),
                           tmp, weights, not args.no_models)
    print("\nitems are frames, or frame pairs (both directions) for flow")
    print(f"{'clip':<14} {'size':>8}  {'stage':<10} {'backend':<32} {'items':>5} {'items/s':>9} {'s/item':>8}")
    for clip, size, stage, backend, n, secs in rows:
        print(f"{clip:<14} {size:>8}  {stage:<10} {backend:<32} {n:>5} {n / secs:>9.2f} {secs / n:>8.3f}")
    print(f"\nnothing-to-do DAG check (snakemake --dry-run on the finished demo): {bench_dag_check():.2f} s")


if __name__ == "__main__":
    main()
