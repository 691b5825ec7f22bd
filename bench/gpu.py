"""The GPU checks of NVP, the NeRV family and its codec, as one prepared script for a lent GPU.

    make gpu-pack                       # here: the wheels the GPU machine lacks, and the bunny, in .gpu/
    python -m bench.gpu --out DIR       # there (README, "GPU checks"); --scale tiny --device cpu tries it here

Everything runs through the ``nvd`` commands a user runs (frames, nvp-train, nerv-train, encode,
decode), on Big Buck Bunny (132 frames, 1280x720; upscaled bicubically to 1920x1080 for NVP):

- ``nvp``: NVP-S at the paper's batch (1,245,184 samples) on the 1080p clip, PSNR over the whole
  video every 2,000 steps up to 10,000, stopped at its time budget: the steps it reached, their
  PSNR and wall time, and samples/s, beside the paper's V100 figure.
- ``nerv``: HNeRV and HNeRV-Boost at 3M counted parameters on the 720p clip, the same number of
  epochs each, as many as the budget allows after a timed probe of both models' steps
  (bench.nerv): epoch time and PSNR, beside the paper's HNeRV-Boost.
- ``codec``: that HNeRV-Boost fine-tuned with CEM towards 0.1 bpp for a few epochs, written as a
  file, the file decoded on the GPU and on the CPU: bytes, bpp, decoding frames/s.

The GPU machine has no ffmpeg binary, so the clip is decoded with OpenCV into PNG frames and only
what needs no ffmpeg runs (no evaluation videos, no NVP file). Results: ``DIR/gpu_report.json``
and a Markdown summary (stdout and ``DIR/gpu_report.md``); each command's output in
``DIR/<step>.log``. A part that fails is reported as failed and the others still run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from bench.nerv import run_subprocess as run_nerv_case
from nvd.train.logs import read_log

NVP_BATCH = 1_245_184
PAPER = {"nvp": "NVP-S, UVG 1080p, V100: 34.57 dB after about 5 minutes",
         "nerv": "HNeRV-Boost, bunny 720p, 3M: 37.75 dB after 0.7 h (300 epochs)"}
PARTS = ("nvp", "nerv", "codec")


@dataclass(frozen=True)
class Scale:
    """How big each part runs; ``full`` is the GPU check, ``tiny`` a CPU try of the script."""

    frames: int
    nerv_size: tuple[int, int]  # (height, width) of the NeRV clip
    nvp_size: tuple[int, int]
    nvp_batch: int
    nvp_steps: int
    nvp_log_every: int
    nvp_budget_s: float
    nerv_model_size: float  # millions of counted parameters
    nerv_budget_s: float  # per model
    nerv_max_epochs: int
    codec_epochs: int
    codec_target_bpp: float


SCALES = {
    "full": Scale(132, (720, 1280), (1080, 1920), NVP_BATCH, 10_000, 2_000, 150, 3.0, 90, 300, 3, 0.1),
    "tiny": Scale(4, (90, 160), (180, 320), 4096, 20, 10, 120, 0.05, 20, 3, 1, 0.5),
}


def run_step(name: str, command: list[str], out: Path, timeout: float | None = None) -> tuple[bool, float]:
    """Run one command with its output in ``out/<name>.log``: (finished, seconds). A command
    past ``timeout`` is stopped and counts as not finished."""
    start = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        try:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout).returncode == 0
        except subprocess.TimeoutExpired:
            done = False
    return done, time.perf_counter() - start


def nvd(*args: str) -> list[str]:
    return [sys.executable, "-m", "nvd.cli", *args]


def write_config(path: Path, sections: dict, video: Path) -> Path:
    """A workflow config (its schema wants a dataset) with ``sections``."""
    dataset = {"bunny": {"layout": "files", "videos": {"bunny": str(video.resolve())}, "families": []}}
    path.write_text(yaml.safe_dump({"datasets": dataset, **sections}))
    return path


def png_frames(video: Path, folder: Path, count: int, size: tuple[int, int]) -> None:
    """The first ``count`` frames of ``video`` at (height, width) ``size`` as PNGs (OpenCV reads
    the mp4; INTER_AREA down, bicubic up)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(video))
    for i in range(count):
        ok, frame = capture.read()
        if not ok:
            raise SystemExit(f"{video}: only {i} frames, {count} needed")
        height, width = frame.shape[:2]
        if (height, width) != size:
            grow = size[0] * size[1] > height * width
            frame = cv2.resize(frame, size[::-1], interpolation=cv2.INTER_CUBIC if grow else cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"{i:05d}.png"), frame)


def frames_store(video: Path, work: Path, out: Path, name: str, count: int, size: tuple[int, int]) -> Path:
    store = work / name / "frames.zarr"
    if not store.exists():
        png_frames(video, work / f"{name}_png", count, size)
        done, _ = run_step(f"frames_{name}", nvd("frames", str(work / f"{name}_png"), str(store),
                                                 "--long-edge", "none"), out)
        if not done:
            raise RuntimeError(f"nvd frames failed: {out / f'frames_{name}.log'}")
    return store


def part_nvp(args: argparse.Namespace, scale: Scale, work: Path, out: Path) -> dict:
    store = frames_store(args.video, work, out, "nvp_clip", scale.frames, scale.nvp_size)
    config = write_config(work / "nvp.yaml", {"nvp": {
        "size": "S", "batch_size": scale.nvp_batch,
        "train": {"iterations": scale.nvp_steps, "log_every": scale.nvp_log_every,
                  "checkpoint_every": scale.nvp_log_every, "device": args.device}}}, args.video)
    run = work / "nvp"
    done, seconds = run_step("nvp_train", nvd("nvp-train", "--frames", str(store), "--out", str(run),
                                              "--config", str(config)), out, timeout=scale.nvp_budget_s)
    rows = read_log(run)
    points = [{"step": int(r["iteration"]), "psnr_db": r["psnr"], "wall_s": r["wall_time_s"]} for r in rows]
    last = points[-1] if points else None
    return {"finished": done, "seconds": seconds, "video": f"{scale.frames} x {scale.nvp_size[1]}x{scale.nvp_size[0]}",
            "batch": scale.nvp_batch, "points": points, "paper": PAPER["nvp"],
            "samples_per_s": last and last["step"] * scale.nvp_batch / last["wall_s"]}


def probe_step_s(args: argparse.Namespace, scale: Scale, model: str) -> float:
    """Median training-step seconds of ``model`` at this scale (bench.nerv, its own process)."""
    height, width = scale.nerv_size
    case = argparse.Namespace(steps=5, frames=scale.frames, size=scale.nerv_model_size, height=height, width=width,
                              threads=None)
    return run_nerv_case(model, None, case, args.device)["median_s"]


def part_nerv(args: argparse.Namespace, scale: Scale, work: Path, out: Path) -> dict:
    store = frames_store(args.video, work, out, "nerv_clip", scale.frames, scale.nerv_size)
    steps = {model: probe_step_s(args, scale, model) for model in ("hnerv", "hnerv_boost")}
    # An epoch is one step per frame plus the log row's render of every frame (about a third).
    epoch_s = max(steps.values()) * scale.frames * 1.4
    epochs = max(1, min(scale.nerv_max_epochs, int(scale.nerv_budget_s / epoch_s)))
    config = write_config(work / "nerv.yaml", {"nerv": {
        "model_size": scale.nerv_model_size, "epochs": epochs, "eval_every": max(1, epochs // 5),
        "checkpoint_every": epochs, "train": {"device": args.device}}}, args.video)
    result = {"video": f"{scale.frames} x {scale.nerv_size[1]}x{scale.nerv_size[0]}", "epochs": epochs,
              "probe_step_s": steps, "paper": PAPER["nerv"], "models": {}}
    for model in ("hnerv", "hnerv_boost"):
        done, seconds = run_step(f"nerv_train_{model}", nvd(
            "nerv-train", "--model", model, "--frames", str(store), "--out", str(work / model),
            "--config", str(config)), out, timeout=4 * scale.nerv_budget_s)
        rows = read_log(work / model)
        result["models"][model] = {
            "finished": done, "seconds": seconds, "epochs_logged": [int(r["iteration"]) // scale.frames for r in rows],
            "psnr_db": rows[-1]["psnr"] if rows else None, "ms_ssim": rows[-1].get("ms_ssim") if rows else None,
            "epoch_s": rows[-1]["wall_time_s"] / epochs if rows and done else None}
    return result


def part_codec(args: argparse.Namespace, scale: Scale, work: Path, out: Path) -> dict:
    model = work / "hnerv_boost" / "model.pt"
    if not model.exists():
        raise RuntimeError("no trained HNeRV-Boost (the nerv part trains it)")
    store = work / "nerv_clip" / "frames.zarr"
    config = write_config(work / "codec.yaml", {"nerv_compress": {
        "targets": [scale.codec_target_bpp], "epochs": scale.codec_epochs, "eval_every": 1,
        "checkpoint_every": scale.codec_epochs}}, args.video)
    stream = work / "hnerv_boost.nvd"
    done, encode_s = run_step("encode", nvd("encode", "--model", str(model), "--frames", str(store),
                                            "--out", str(stream), "--config", str(config),
                                            "--device", args.device), out)
    if not done:
        raise RuntimeError(f"nvd encode failed: {out / 'encode.log'}")
    pixels = scale.frames * scale.nerv_size[0] * scale.nerv_size[1]
    result = {"target_bpp": scale.codec_target_bpp, "cem_epochs": scale.codec_epochs, "encode_s": encode_s,
              "bytes": stream.stat().st_size, "bpp": stream.stat().st_size * 8 / pixels, "decode": {}}
    for device in dict.fromkeys((args.device, "cpu")):
        done, _ = run_step(f"decode_{device}", nvd("decode", str(stream), "--stats", "--device", device), out)
        if done:
            stats = json.loads((out / f"decode_{device}.log").read_text().strip().splitlines()[-1])
            result["decode"][device] = {**stats, "frames_per_s": stats["frames"] / stats["seconds"]}
    return result


def environment(device: str) -> dict:
    import torch

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [f"GPU checks on {env.get('gpu', env['device'])}, torch {env['torch']}, Python {env['python']}, "
             f"{report['date']}", ""]
    nvp = report["parts"].get("nvp", {})
    if "points" in nvp:
        lines += [f"NVP-S, {nvp['video']}, batch {nvp['batch']:,} (paper: {nvp['paper']}):", "",
                  "| step | PSNR (dB) | wall (s) |", "|---|---|---|"]
        lines += [f"| {p['step']:,} | {p['psnr_db']:.2f} | {p['wall_s']:.0f} |" for p in nvp["points"]]
        if not nvp["finished"]:
            lines += ["", f"stopped at its budget ({nvp['seconds']:.0f} s)"]
        if nvp["samples_per_s"]:
            lines += ["", f"{nvp['samples_per_s']:,.0f} samples/s"]
        lines.append("")
    nerv = report["parts"].get("nerv", {})
    if "models" in nerv:
        lines += [f"HNeRV vs HNeRV-Boost, {nerv['video']}, {nerv['epochs']} epochs each (paper: {nerv['paper']}):",
                  "", "| model | epoch (s) | PSNR (dB) | MS-SSIM |", "|---|---|---|---|"]
        for name, m in nerv["models"].items():
            epoch = f"{m['epoch_s']:.2f}" if m["epoch_s"] else "-"
            psnr = f"{m['psnr_db']:.2f}" if m["psnr_db"] is not None else "-"
            ssim = f"{m['ms_ssim']:.4f}" if m["ms_ssim"] is not None else "-"
            lines.append(f"| {name} | {epoch} | {psnr} | {ssim} |")
        lines.append("")
    codec = report["parts"].get("codec", {})
    if "decode" in codec:
        decode = ", ".join(f"{d['frames_per_s']:.1f} frames/s on {k}" for k, d in codec["decode"].items())
        lines += [f"HNeRV-Boost file (CEM {codec['cem_epochs']} epochs towards {codec['target_bpp']} bpp): "
                  f"{codec['bytes']:,} bytes, {codec['bpp']:.4f} bpp; decoding {decode}", ""]
    lines += [f"{name}: FAILED: {part['error']}" for name, part in report["parts"].items() if "error" in part]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="results and logs")
    parser.add_argument("--video", type=Path, default=Path(".gpu/bunny.mp4"), help="Big Buck Bunny (make gpu-pack)")
    parser.add_argument("--work", type=Path, default=None, help="stores and runs (default OUT/../gpu_work)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: no such video (make gpu-pack copies Big Buck Bunny there)")
    scale = SCALES[args.scale]
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or args.out.parent / "gpu_work"
    work.mkdir(parents=True, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "environment": environment(args.device),
              "scale": {"name": args.scale, **asdict(scale)}, "parts": {}}
    functions = {"nvp": part_nvp, "nerv": part_nerv, "codec": part_codec}
    for name in args.parts:
        start = time.perf_counter()
        try:
            report["parts"][name] = functions[name](args, scale, work, args.out)
        except Exception as exc:  # noqa: BLE001 - a failed part is reported, the others run
            report["parts"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        report["parts"][name]["part_s"] = time.perf_counter() - start
        (args.out / "gpu_report.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (args.out / "gpu_report.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
