"""NVP as a real codec: the paper's compression of the learned features into one file.

Encoding a trained model (``encode_nvp``), on top of the 8-bit min/max quantisation of
quantise.py (one [low, high] per (plane, level, feature) and per sparse-grid feature):

- keyframe planes: each plane's level images, every feature of every level, tiled into one
  8-bit grayscale mosaic (``mosaic_layout``) and coded as a JPEG with that plane's qscale
  (the paper: 2, 3, 3 for the (row, col), (t, row), (t, col) planes). One image per plane
  rather than one per level keeps the JPEG headers (about 600 bytes each) from dominating
  small videos; every tile starts on the 8 x 8 block grid and is padded by edge replication,
  so no DCT block mixes two tiles;
- sparse grid [T, S, S, F]: one HEVC video (libx265 in 4:0:0, no B-frames) of T frames of
  S x S per feature, at the point's CRF; raw elementary streams, no mp4 around them;
- decoder (the modulated SIREN): its parameters in float32 or float16, in state-dict order;
- side information: every group's float32 [low, high] bounds.

The container header holds NVPConfig and the codec settings, so ``decode_nvp`` rebuilds the
model from the file alone; both the compress job's evaluation and ``nvd decode`` go through
it, so the frames scored are the frames any decoder of the file gets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nvd.compression import ffmpeg
from nvd.compression.container import EncodedVideo
from nvd.core.errors import InputError
from nvd.models.nvp.codec_config import NVPCodecConfig, NVPPoint
from nvd.models.nvp.config import N_PLANES, NVPConfig
from nvd.models.nvp.grids import PLANE_NAMES
from nvd.models.nvp.model import NVP
from nvd.models.nvp.objective import render_video
from nvd.models.nvp.quantise import QuantisedFeatures, QuantisedGroups, quantise_features

FAMILY = "nvp"
BLOCK = 8  # JPEG's DCT block: tiles start on its grid
DECODER_DTYPES = {"float32": np.float32, "float16": np.float16}  # codec_config.DECODER_PRECISIONS


# ---------------------------------------------------------------------------- the plane mosaics


def _round_up(n: int, to: int) -> int:
    return -(-n // to) * to


@dataclass(frozen=True)
class Tile:
    """Where one (level, feature) image of a plane sits in the plane's mosaic."""

    level: int
    feature: int
    top: int
    rows: int
    cols: int


def mosaic_layout(shapes: Sequence[tuple[int, int]], features: int) -> tuple[list[Tile], int, int]:
    """The tiles of one plane (its levels' (rows, cols), ``features`` per level) stacked top
    to bottom, level-major, each on the block grid: (tiles, mosaic height, mosaic width)."""
    width = _round_up(max(cols for _, cols in shapes), BLOCK)
    tiles, top = [], 0
    for level, (rows, cols) in enumerate(shapes):
        for feature in range(features):
            tiles.append(Tile(level, feature, top, rows, cols))
            top += _round_up(rows, BLOCK)
    return tiles, top, width


def pack_plane(images: Sequence[np.ndarray], tiles: Sequence[Tile], height: int, width: int) -> np.ndarray:
    """uint8 images [rows, cols] (one per tile) -> the mosaic [height, width], each padded
    by edge replication to its block-aligned slot and the mosaic's width."""
    mosaic = np.empty((height, width), np.uint8)
    for image, tile in zip(images, tiles):
        slot = _round_up(tile.rows, BLOCK)
        mosaic[tile.top:tile.top + slot] = np.pad(image, ((0, slot - tile.rows), (0, width - tile.cols)), mode="edge")
    return mosaic


def unpack_plane(mosaic: np.ndarray, tiles: Sequence[Tile]) -> list[np.ndarray]:
    """The inverse of pack_plane: each tile's [rows, cols] image."""
    return [mosaic[t.top:t.top + t.rows, :t.cols] for t in tiles]


# ---------------------------------------------------------------------------- encode, decode


def _decoder_bytes(model: NVP, dtype: str) -> bytes:
    arrays = [p.detach().cpu().float().numpy().astype(DECODER_DTYPES[dtype]).ravel()
              for p in model.decoder.state_dict().values()]
    return np.concatenate(arrays).tobytes()


def _load_decoder(model: NVP, data: bytes, dtype: str) -> None:
    values = np.frombuffer(data, DECODER_DTYPES[dtype])
    state, offset = {}, 0
    for name, tensor in model.decoder.state_dict().items():
        n = tensor.numel()
        if offset + n > values.size:
            raise InputError(f"nvp codec: the decoder payload is too short for parameter {name}")
        state[name] = torch.from_numpy(values[offset:offset + n].astype(np.float32)).view(tensor.shape)
        offset += n
    if offset != values.size:
        raise InputError("nvp codec: the decoder payload has more values than the model's decoder")
    model.decoder.load_state_dict(state)


def _level_groups(model: NVP, codes: QuantisedFeatures, plane: int) -> list[QuantisedGroups]:
    levels = len(model.planes.sides)
    return list(codes.levels[plane * levels:(plane + 1) * levels])


def encode_nvp(model: NVP, point: NVPPoint, cfg: NVPCodecConfig, fps: float) -> EncodedVideo:
    """The file of ``model`` at ``point`` (see the module docstring); ``fps``: the video's."""
    codes = quantise_features(model)
    feats = model.planes.features
    payloads: dict[str, bytes] = {}
    for plane, shapes in enumerate(model.planes.shapes):
        tiles, height, width = mosaic_layout(shapes, feats)
        groups = _level_groups(model, codes, plane)
        images = [groups[t.level].codes[t.feature].view(t.rows, t.cols).cpu().numpy() for t in tiles]
        payloads[f"plane_{PLANE_NAMES[plane]}"] = ffmpeg.encode_gray_jpeg(pack_plane(images, tiles, height, width),
                                                                         point.qscale[plane])
    sparse = model.sparse
    grid_codes = codes.sparse.codes.view(sparse.features, sparse.num_frames, sparse.size, sparse.size).cpu().numpy()
    for feature in range(sparse.features):
        payloads[f"sparse_{feature}"] = ffmpeg.encode_gray_hevc(grid_codes[feature], crf=point.crf,
                                                                preset=cfg.preset, fps=cfg.hevc_fps, bframes=0)
    bounds = [torch.stack((q.low, q.high), dim=1) for q in (*codes.levels, codes.sparse)]
    payloads["bounds"] = torch.cat(bounds).cpu().numpy().astype(np.float32).tobytes()
    payloads["decoder"] = _decoder_bytes(model, cfg.decoder_dtype)
    header = {"nvp": {"config": dataclasses.asdict(model.cfg), "point": dataclasses.asdict(point),
                      "preset": cfg.preset, "decoder_dtype": cfg.decoder_dtype}}
    video = {"frames": model.num_frames, "height": model.height, "width": model.width, "fps": float(fps)}
    return EncodedVideo(FAMILY, video, header, payloads)


def _bounds(data: bytes, count: int) -> list[tuple[Tensor, Tensor]]:
    values = np.frombuffer(data, np.float32)
    if values.size != 2 * count:
        raise InputError(f"nvp codec: expected {count} pairs of bounds, the file has {values.size / 2:g}")
    pairs = torch.from_numpy(values.copy()).view(-1, 2)
    return [(pairs[i, 0:1], pairs[i, 1:2]) for i in range(count)]


def _groups(codes: np.ndarray, bounds: Sequence[tuple[Tensor, Tensor]]) -> QuantisedGroups:
    """codes uint8 [G, N] with their G (low, high) pairs."""
    low = torch.cat([b[0] for b in bounds])
    high = torch.cat([b[1] for b in bounds])
    return QuantisedGroups(torch.from_numpy(np.ascontiguousarray(codes)), low, high)


def _payload(encoded: EncodedVideo, name: str) -> bytes:
    try:
        return encoded.payloads[name]
    except KeyError:
        raise InputError(f"nvp codec: the file has no payload '{name}' (payloads: {sorted(encoded.payloads)})") \
            from None


@torch.no_grad()
def decode_nvp(encoded: EncodedVideo, device: str | torch.device = "cpu") -> NVP:
    """The model the file holds (eval mode, on ``device``): dequantised features, decoder."""
    spec = encoded.header.get("nvp")
    if not isinstance(spec, Mapping):
        raise InputError("nvp codec: the header has no 'nvp' section")
    cfg = NVPConfig(**spec["config"])
    video = encoded.video
    model = NVP(int(video["frames"]), int(video["height"]), int(video["width"]), cfg)
    planes, sparse, feats = model.planes, model.sparse, model.planes.features
    levels = len(planes.sides)
    groups = N_PLANES * levels * feats + sparse.features
    bounds = _bounds(_payload(encoded, "bounds"), groups)
    table = planes.table.detach()
    for plane, shapes in enumerate(planes.shapes):
        tiles, height, width = mosaic_layout(shapes, feats)
        mosaic = ffmpeg.decode_gray_jpeg(_payload(encoded, f"plane_{PLANE_NAMES[plane]}"), height, width)
        images = unpack_plane(mosaic, tiles)
        for level, (rows, cols) in enumerate(shapes):
            first = (plane * levels + level) * feats
            level_codes = np.stack([images[level * feats + f].reshape(-1) for f in range(feats)])
            values = _groups(level_codes, bounds[first:first + feats]).dequantise()  # [F, rows * cols]
            start = planes.offsets[plane][level]
            table[start:start + rows * cols] = values.T
    grid_codes = np.stack([
        ffmpeg.decode_gray_hevc(_payload(encoded, f"sparse_{f}"), sparse.num_frames, sparse.size, sparse.size)
        .reshape(-1) for f in range(sparse.features)])
    values = _groups(grid_codes, bounds[groups - sparse.features:]).dequantise()  # [F, T * S * S]
    sparse.grid.detach().copy_(values.T.reshape(sparse.grid.shape))
    _load_decoder(model, _payload(encoded, "decoder"), spec["decoder_dtype"])
    return model.to(device).eval()


def render_nvp(encoded: EncodedVideo, device: str | torch.device = "cpu") -> Tensor:
    """The decoded video: float [T, H, W, 3] in [0, 1]."""
    return render_video(decode_nvp(encoded, device))

