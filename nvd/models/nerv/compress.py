"""The NeRV family's rate points (rule ``nerv_compress``): fine-tune a trained model with CEM for
a target bpp, write it as a file, decode that file and score what it decodes to.

``nerv_compress_job``, for one model and one rate point (``{point}``, e.g. "bpp0.1", from
``nerv_compress.targets``):

1. load the trained model (run.load_nerv: refuses a model of another video or task);
2. fine-tune it with CEM (cem.py) in ``work_dir``, resuming; the run's identity holds the
   source model file's sha256, the frames store's fingerprint, the CEM settings with the
   target and code_version("nerv_compress"); a checkpoint of another run there is stale
   (the workflow reruns the job only when those change) and is discarded;
3. encode (codec.py) and write the container to ``work_dir/stream.nvd``;
4. read that file back, decode and render it as ``nvd decode`` does and score it against the
   frames (nvd.eval.metrics.video_quality); time and measure ``nvd decode`` of the file in a
   new process (nvd.compression.measure.measure_decode: decode_fps, decode_peak_mb);
5. publish ``out_dir`` (nvd.compression.outputs.publish_compressed): ``stream.nvd`` (the same
   bytes), ``rec.mp4`` (the decoded video) and ``metrics.json``::

       method, kind "neural", family "nerv", point, target_bpp,
       points: [{bytes, bits, bpp (the file's size over T*H*W), bpp_predicted (the entropy
                 model's bits + the exact header and side bits), psnr, ms_ssim, lpips, flip,
                 encode_time_s (source training + fine-tuning + coding), decode_fps,
                 decode_peak_mb}],
       psnr_before (the unquantised model), frames, height, width, fps, fine_tune {epochs,
       iterations, time_s, init_bits, source_train_time_s}, config, code_version

Fine-tuning runs on ``nerv_compress.train.device``; decoding and scoring on the job's
``device``. Only the ``nerv_compress`` section is read: the model file carries its own config.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nvd.compression.codecs import decode_frames
from nvd.compression.container import read_container, write_container
from nvd.compression.measure import measure_decode
from nvd.compression.outputs import publish_compressed, rate_point, video_fields
from nvd.core.devices import resolve_device
from nvd.core.errors import InputError
from nvd.core.layout import STREAM_NAME
from nvd.core.versioning import code_version
from nvd.data.loader import frames_uint8
from nvd.eval.metrics import psnr, video_quality
from nvd.eval.outputs import check_replaceable, video_fps
from nvd.models.nerv.cem import CEMTask
from nvd.models.nerv.codec import FAMILY, encode_nerv, predicted_bits, side_bits, video_info
from nvd.models.nerv.codec_config import CEMConfig, cem_config, target_of
from nvd.models.nerv.objective import render_frames
from nvd.models.nerv.run import load_nerv
from nvd.train.loop import TrainResult, seed_everything, train
from nvd.train.runs import discarding_stale, file_digest, input_fingerprints

log = logging.getLogger("nvd")
STAGE = "nerv_compress"


def compress_identity(model_path: str | os.PathLike, frames_store: str | os.PathLike, cfg: CEMConfig,
                      target: float) -> dict[str, Any]:
    """What makes two fine-tunes the same run (see the module docstring)."""
    return {"source_model": file_digest(model_path), "inputs": input_fingerprints({"frames": frames_store}),
            "config": cfg.identity(target), "code_version": code_version(STAGE)}


def fine_tune(model_path: str | os.PathLike, frames_store: str | os.PathLike, cfg: CEMConfig, target: float,
              work_dir: str | os.PathLike) -> tuple[CEMTask, TrainResult, dict[str, Any]]:
    """Fine-tune the model at ``model_path`` for ``target`` bpp in ``work_dir`` (resuming; a
    stale checkpoint there is discarded). Returns (the task, holding the fine-tuned state;
    the loop's result; the source model's meta with its training time)."""
    identity = compress_identity(model_path, frames_store, cfg, target)

    def attempt() -> tuple[CEMTask, TrainResult, dict[str, Any]]:
        device = resolve_device(cfg.train.device)
        model, saved = load_nerv(model_path, device, frames_store)
        if saved.variant.get("task", "regression") != "regression":
            raise InputError(f"{model_path}: a {saved.variant['task']} model; only models of the whole "
                             "video (regression) are compressed")
        frames = frames_uint8(frames_store, device)
        video = video_info(*frames.shape[:3], video_fps(frames_store))
        seed_everything(cfg.train.seed)
        task = CEMTask(model, frames, cfg, target, saved.meta["config"]["loss"],
                       side_bits=lambda tensors: side_bits(encode_nerv(model.cfg, video, tensors)))
        log.info("%s: CEM for %g bpp from %.2f initial bits per value, %d epochs", saved.meta["config"]["model"],
                 target, task.init_bits, cfg.epochs)
        meta = {**identity, "init_bits": task.init_bits, "side_bits": task.side_bits}
        result = train(task, task.loop, work_dir, identity=identity, meta=meta)
        return task, result, {"model": saved.meta["config"]["model"], "train_time_s": saved.wall_time_s,
                              "code_version": saved.meta["code_version"], "video": video}

    return discarding_stale(attempt, work_dir)


@dataclass(frozen=True)
class EncodedFile:
    """A fine-tuned model written as one file, and what its encoding cost."""

    size: int  # bytes
    bits_predicted: float  # the entropy model's bits + the exact header and side bits
    coding_s: float  # export, entropy coding and writing
    result: TrainResult  # the fine-tuning
    source: dict[str, Any]  # fine_tune's source meta
    init_bits: float


def encode_file(model_path: str | os.PathLike, frames_store: str | os.PathLike, cfg: CEMConfig, target: float,
                work_dir: str | os.PathLike, out: str | os.PathLike) -> EncodedFile:
    """Fine-tune for ``target`` bpp in ``work_dir``, then write the file ``out`` (atomically)."""
    task, result, source = fine_tune(model_path, frames_store, cfg, target, work_dir)
    start = time.perf_counter()
    tensors = task.export()
    encoded = encode_nerv(task.model.cfg, source["video"], tensors)
    size = write_container(out, encoded)
    return EncodedFile(size, predicted_bits(tensors) + side_bits(encoded), time.perf_counter() - start, result,
                       source, task.init_bits)


def encode_nerv_file(model_path: str | os.PathLike, frames_store: str | os.PathLike, out: str | os.PathLike,
                     config: Mapping[str, Any], *, point: str | None = None, target_bpp: float | None = None,
                     work_dir: str | os.PathLike, device: str = "auto") -> EncodedFile:
    """``nvd encode`` of a NeRV-family model: the target ``target_bpp``, else rate point
    ``point`` of the config's ``nerv_compress`` section, else its first; fine-tuning on
    ``device`` unless the section names one."""
    values = dict(config.get("nerv_compress") or {})
    if target_bpp is not None:
        values["targets"] = [target_bpp]
    values.setdefault("train", {}).setdefault("device", device)
    cfg = cem_config(values)
    target = target_of(cfg, point) if point is not None and target_bpp is None else float(cfg.targets[0])
    return encode_file(model_path, frames_store, cfg, target, work_dir, out)


@torch.no_grad()
def unquantised_psnr(model_path: str | os.PathLike, frames_store: str | os.PathLike,
                     device: torch.device) -> float:
    """PSNR of the trained model before any quantisation, over every frame."""
    model, _ = load_nerv(model_path, device, frames_store)
    frames = frames_uint8(frames_store, device)
    rendered = render_frames(model, torch.arange(frames.shape[0], device=device), frames)
    return psnr(rendered.clamp(0, 1), frames.float() / 255)


def nerv_compress_job(inputs: Mapping[str, str], out_dir: str, work_dir: str, sections: Mapping[str, Any],
                      point: str, lpips_weights: str | None, device: str, method: str | None = None,
                      measure: bool = True) -> dict[str, Any]:
    """One rate point of one model (see the module docstring): inputs ``model`` (the trained
    model.pt) and ``frames`` (its video's frames store); ``method`` names the model in the
    metrics (the workflow's model folder, e.g. ``hnerv_boost_3M``; None: the model's name);
    ``measure``: time ``nvd decode`` in a new process (False: decode_fps and decode_peak_mb
    stay null)."""
    cfg = cem_config(sections.get("nerv_compress"))
    target = target_of(cfg, point)
    check_replaceable(out_dir)
    model_path, frames_store = inputs["model"], inputs["frames"]
    score_device = resolve_device(device)
    psnr_before = unquantised_psnr(model_path, frames_store, score_device)
    stream_path = Path(work_dir) / STREAM_NAME
    coded = encode_file(model_path, frames_store, cfg, target, work_dir, stream_path)

    # Everything below comes from the written file alone, decoded as nvd decode does.
    rendered = decode_frames(read_container(stream_path, family=FAMILY), score_device)
    video = coded.source["video"]
    truth = frames_uint8(frames_store, rendered.device).float() / 255
    quality = video_quality(rendered, truth, lpips_weights)
    decode_fps = decode_peak = None
    if measure:
        stats = measure_decode(stream_path, str(score_device))
        decode_fps, decode_peak = stats.fps, stats.peak_rss_mb
    pixels = video["frames"] * video["height"] * video["width"]
    fine_tuning = coded.result
    metrics = {
        "method": method or coded.source["model"], "kind": "neural", "family": FAMILY, "point": point,
        "target_bpp": target,
        "points": [rate_point(coded.size, video, quality,
                              encode_time_s=coded.source["train_time_s"] + fine_tuning.wall_time_s + coded.coding_s,
                              decode_fps=decode_fps, decode_peak_mb=decode_peak,
                              bpp_predicted=coded.bits_predicted / pixels)],
        "psnr_before": psnr_before, **video_fields(video),
        "fine_tune": {"epochs": cfg.epochs, "iterations": fine_tuning.iterations, "time_s": fine_tuning.wall_time_s,
                      "init_bits": coded.init_bits, "coding_time_s": coded.coding_s,
                      "source_train_time_s": coded.source["train_time_s"]},
        "config": {**cfg.identity(target), "models": None if cfg.models is None else list(cfg.models),
                   "targets": list(cfg.targets)},
        "code_version": {"training": coded.source["code_version"], "compress": code_version(STAGE)},
    }
    publish_compressed(out_dir, stream_path.read_bytes(), metrics, rendered.cpu(), video["fps"])
    log.info("%s %s: %d bytes, %.4f bpp (predicted %.4f), PSNR %.2f dB (%.2f before quantisation)",
             coded.source["model"], point, coded.size, metrics["points"][0]["bpp"], coded.bits_predicted / pixels,
             quality["psnr"] or float("inf"), psnr_before)
    return metrics
