"""``nvd encode`` and ``nvd decode``: a trained model as one file, and the video back from it.

``nvd encode`` writes the container of nvd.compression.container for an NVP model (one rate
point of the ``nvp_compress`` section, or --qscale/--crf) or a NeRV-family model (quantisation-
aware fine-tuning to one target bpp of ``nerv_compress``, then ANS coding). ``nvd decode``
needs nothing but the file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nvd.cli.common import Command
from nvd.train.config import TrainConfig


def _family(model_path: str) -> str:
    from nvd.core.errors import InputError
    from nvd.train.loop import read_checkpoint

    meta = read_checkpoint(model_path).get("meta") or {}
    if "nvp_shape" in meta:
        return "nvp"
    if "nerv_shape" in meta:
        return "nerv"
    raise InputError(f"{model_path}: neither an NVP nor a NeRV-family model (nvd encode codes those)")


def _cmd_encode(args: argparse.Namespace) -> None:
    from nvd.compression.container import bits_per_pixel, read_container
    from nvd.core.config import load_config

    config = load_config(args.config) if args.config else {}
    family = _family(args.model)
    if family == "nvp":
        from nvd.compression.container import write_container
        from nvd.eval.outputs import video_fps
        from nvd.models.nvp.codec import encode_nvp
        from nvd.models.nvp.codec_config import NVPPoint, nvp_codec_config
        from nvd.models.nvp.run import load_nvp

        cfg = nvp_codec_config(config.get("nvp_compress"))
        if args.qscale is not None or args.crf is not None:
            default = NVPPoint()
            qscale = tuple(args.qscale) if args.qscale else default.qscale
            point = NVPPoint(qscale if len(qscale) == 3 else qscale * 3, default.crf if args.crf is None else args.crf)
        else:
            point = cfg.point(args.point) if args.point else cfg.points[0]
        model, _ = load_nvp(args.model, "cpu", args.frames)
        write_container(args.out, encode_nvp(model, point, cfg, video_fps(args.frames)))
    else:
        from nvd.models.nerv.compress import encode_nerv_file

        work = args.work or str(Path(args.out).with_suffix("")) + ".work"
        encode_nerv_file(args.model, args.frames, args.out, config, point=args.point, target_bpp=args.target_bpp,
                         work_dir=work, device=args.device)
    size = Path(args.out).stat().st_size
    video = read_container(args.out).video
    print(f"{args.out}: {family}, {size} bytes, {bits_per_pixel(size, video):.4f} bpp "
          f"({video['frames']} frames of {video['width']}x{video['height']})")


def _write_frames(out: str, frames, fps: float) -> None:
    """``frames`` float [T, H, W, 3] in [0, 1] -> an .mp4 (H.264, lossy), an .npy (uint8
    [T, H, W, 3], exact) or a folder of PNG frames (exact)."""
    import numpy as np

    from nvd.core.publish import publish_with, publishing
    from nvd.eval.outputs import to_uint8, write_clip

    path = Path(out)
    if path.suffix == ".mp4":
        write_clip(path, frames, fps)
    elif path.suffix == ".npy":
        publish_with(path, lambda tmp: np.save(tmp, to_uint8(frames)))
    elif path.suffix == "":
        import cv2

        with publishing(path, folder=True) as tmp:
            for i, frame in enumerate(to_uint8(frames)):
                cv2.imwrite(str(tmp / f"{i:05d}.png"), frame[:, :, ::-1])
    else:
        from nvd.core.errors import InputError

        raise InputError(f"{out}: write the video as .mp4, .npy or a folder (no suffix)")


def _cmd_decode(args: argparse.Namespace) -> None:
    from nvd.compression.codecs import timed_decode
    from nvd.compression.container import read_container
    from nvd.core.devices import resolve_device

    frames, seconds = timed_decode(args.file, resolve_device(args.device))
    if args.out:
        _write_frames(args.out, frames.cpu(), float(read_container(args.file).video["fps"]))
    if args.stats:
        print(json.dumps({"frames": int(frames.shape[0]), "seconds": seconds}))
    elif args.out:
        print(f"{args.out}: {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} decoded in {seconds:.2f} s")


def register(command: Command) -> None:
    p = command("encode", _cmd_encode, "Compress a trained NVP or NeRV-family model into one file (.nvd).")
    p.add_argument("--model", required=True, help="model.pt of nvd nvp-train or nvd nerv-train")
    p.add_argument("--frames", required=True, help="frames.zarr of the video it was trained on")
    p.add_argument("--out", required=True, help="the compressed file to write (.nvd)")
    p.add_argument("--config", default=None, help="workflow config whose nvp_compress / nerv, nerv_compress "
                                                  "sections to use")
    p.add_argument("--point", default=None, help="a rate point of the config (e.g. q2-3-3_crf21, bpp0.1); "
                                                 "default: the first")
    p.add_argument("--qscale", type=int, nargs="+", default=None, help="NVP: JPEG qscale, one or one per plane")
    p.add_argument("--crf", type=float, default=None, help="NVP: the sparse grid's HEVC CRF")
    p.add_argument("--target-bpp", type=float, default=None, help="NeRV family: the fine-tuning's target bpp")
    p.add_argument("--work", default=None, help="NeRV family: fine-tuning folder (resumes), default OUT.work")
    p.add_argument("--device", default=TrainConfig().device, help="cpu, cuda, cuda:N or auto")

    p = command("decode", _cmd_decode, "Rebuild the video from a compressed file alone.")
    p.add_argument("file", help="a file written by nvd encode (or stream.nvd of a compress folder)")
    p.add_argument("out", nargs="?", default=None, help="video.mp4 (H.264), frames.npy or a folder of PNG frames")
    p.add_argument("--device", default=TrainConfig().device, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--stats", action="store_true", help="print the frame count and decoding time as JSON")
