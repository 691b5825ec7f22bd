"""The NeRV family's codec: a CEM-quantised model as one container file, and back to frames.

File (nvd.compression.container, family "nerv"). Header fields besides the container's own
(video: T, H, W, fps)::

    nerv_format   NERV_FORMAT (a newer one is refused)
    model         the preset name ("hnerv_boost", ...)
    model_config  the solved model config (run.model_fields: channel_width set, boost left to
                  the name), from which the decoder builds the model
    tensors       one entry per quantised tensor, in coding order:
                  [name, shape, scale, offset, mean, std, low, high]
                  (scale, offset: float32 values; mean, std, low, high: its Gaussian,
                  nvd.compression.ans.GaussianSide; floats written as their shortest float32
                  decimal, read back to the same float32)

Payload "ans": every tensor's codes in one ANS stream (nvd.compression.ans). The tensors are
the model's counted parameters (by name; HNeRV's encoder is not in the file) and, for HNeRV,
the embeddings [T, C, rows, cols] under cem.EMBEDDING_NAME. Nothing from the training run is
read at decode time.

Bit-exactness: the decoder turns codes into tensors with cem.dequantise (float32 on the CPU),
the same function the encoder's evaluation uses (``build_decoded`` on the exported tensors),
so decoded tensors equal the encoder's bit for bit and, on the same device, so do the frames.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nvd.compression.ans import (
    GaussianSide,
    decode_tensors,
    encode_tensors,
    fit_gaussian,
    float32,
    gaussian_bits,
    short_float32,
)
from nvd.compression.container import ContainerError, EncodedVideo, to_bytes
from nvd.core.devices import resolve_device
from nvd.core.errors import ConfigError
from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.cem import EMBEDDING_NAME, QuantisedTensor, dequantise, render_quantised
from nvd.models.nerv.config import ModelConfig, model_config
from nvd.models.nerv.factory import build_model
from nvd.models.nerv.objective import RENDER_CHUNK
from nvd.models.nerv.run import model_fields

FAMILY = "nerv"
NERV_FORMAT = 1
PAYLOAD = "ans"


@dataclass
class DecodedNeRV:
    """A decoded model ready to render: the model (dequantised counted tensors, eval mode) and,
    for HNeRV, its embeddings [T, C, rows, cols], on one device."""

    model: NeRVFamilyModel
    embeddings: Tensor | None
    fps: float

    @property
    def num_frames(self) -> int:
        return self.model.num_frames


def video_info(num_frames: int, height: int, width: int, fps: float) -> dict[str, Any]:
    """The container's video fields."""
    return {"frames": int(num_frames), "height": int(height), "width": int(width), "fps": float(fps)}


def _sides(tensors: Sequence[QuantisedTensor]) -> list[GaussianSide]:
    return [fit_gaussian(t.codes.numpy()) for t in tensors]


def predicted_bits(tensors: Sequence[QuantisedTensor]) -> float:
    """The entropy model's bits for every tensor's codes (the payload before the coder's flush)."""
    return sum(gaussian_bits(t.codes.numpy(), side) for t, side in zip(tensors, _sides(tensors)))


def encode_nerv(model_cfg: ModelConfig, video: Mapping[str, Any], tensors: Sequence[QuantisedTensor]
                ) -> EncodedVideo:
    """The file of a quantised model: ``model_cfg`` the solved config (model.cfg), ``video``
    as ``video_info``, ``tensors`` from cem (CEMTask.export)."""
    sides = _sides(tensors)
    entries = [[t.name, list(t.codes.shape), short_float32(t.scale), short_float32(t.offset), *side.to_json()]
               for t, side in zip(tensors, sides)]
    stream = encode_tensors([t.codes.numpy() for t in tensors], sides)
    header = {"nerv_format": NERV_FORMAT, "model": model_cfg.name, "model_config": model_fields(model_cfg),
              "tensors": entries}
    return EncodedVideo(FAMILY, dict(video), header, {PAYLOAD: stream})


def side_bits(encoded: EncodedVideo) -> int:
    """Bits of the file other than the payloads: prefix, header (and so the side information)."""
    return 8 * (len(to_bytes(encoded)) - sum(len(p) for p in encoded.payloads.values()))


def _parse_tensors(encoded: EncodedVideo) -> list[QuantisedTensor]:
    header = encoded.header
    entries = header["tensors"]
    sides, shapes = [], []
    for entry in entries:
        name, shape, scale, offset, *side = entry
        shapes.append((str(name), tuple(int(n) for n in shape), float32(scale), float32(offset)))
        sides.append(GaussianSide.from_json(side))
    codes = decode_tensors(encoded.payloads[PAYLOAD], sides, [math.prod(s[1]) for s in shapes])
    return [QuantisedTensor(name, torch.from_numpy(np.ascontiguousarray(c)).reshape(shape), scale, offset)
            for (name, shape, scale, offset), c in zip(shapes, codes)]


def _counted(model: NeRVFamilyModel) -> dict[str, torch.nn.Parameter]:
    skip = {id(p) for p in model.uncounted_parameters()}
    return {name: p for name, p in model.named_parameters() if id(p) not in skip}


def build_decoded(model_name: str, fields: Mapping[str, Any], video: Mapping[str, Any],
                  tensors: Sequence[QuantisedTensor], device: torch.device | str = "cpu") -> DecodedNeRV:
    """The model of ``model_name`` with ``fields`` (its solved config) for the video, its
    counted tensors (and embeddings) set to the dequantised ``tensors``, on ``device``.
    ValueError when the tensors do not match the model's (names, shapes)."""
    cfg = model_config(model_name, **dict(fields))
    if cfg.channel_width is None:
        raise ValueError(f"{model_name}: the model config has no channel_width")
    model = build_model(cfg, int(video["height"]), int(video["width"]), int(video["frames"]))
    counted = _counted(model)
    by_name = {t.name: t for t in tensors}
    expected = {name: tuple(p.shape) for name, p in counted.items()}
    if model.embedding_numel:
        expected[EMBEDDING_NAME] = (model.num_frames, *model.embedding_shape)
    found = {t.name: tuple(t.codes.shape) for t in tensors}
    if found != expected or len(by_name) != len(tensors):
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        wrong = sorted(n for n in set(found) & set(expected) if found[n] != expected[n])
        raise ValueError(f"{model_name}: the tensors do not fit the model (missing {missing[:3]}, unexpected "
                         f"{extra[:3]}, other shapes {wrong[:3]}); was it written by another nvd version?")
    with torch.no_grad():
        for name, param in counted.items():
            param.copy_(dequantise(by_name[name]))
    device = resolve_device(device) if isinstance(device, str) else device
    model = model.to(device, memory_format=torch.channels_last).eval()  # as trained: the fast layout
    embeddings = dequantise(by_name[EMBEDDING_NAME]).to(device) if EMBEDDING_NAME in by_name else None
    return DecodedNeRV(model, embeddings, float(video["fps"]))


def decode_nerv(encoded: EncodedVideo, device: torch.device | str = "cpu") -> DecodedNeRV:
    """Rebuild the model a "nerv" file holds (read with nvd.compression.container), on
    ``device``. ContainerError when the file is not a NeRV-family file this nvd decodes."""
    if encoded.family != FAMILY:
        raise ContainerError(f"holds a {encoded.family} model, not {FAMILY}")
    header = encoded.header
    version = header.get("nerv_format")
    if not isinstance(version, int) or version < 1:
        raise ContainerError(f"the nerv header has no valid nerv_format ({version!r})")
    if version > NERV_FORMAT:
        raise ContainerError(f"nerv format {version} is newer than this nvd reads ({NERV_FORMAT}); "
                             "decode it with a newer nvd")
    try:
        tensors = _parse_tensors(encoded)
        return build_decoded(header["model"], header["model_config"], encoded.video, tensors, device)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ContainerError(f"the nerv model does not decode: {exc}") from None


@torch.no_grad()
def render_decoded(decoded: DecodedNeRV, chunk: int = RENDER_CHUNK) -> Tensor:
    """Every frame of the decoded video: float [T, H, W, 3] in [0, 1] on the model's device.
    HNeRV decodes embedding i at frame i's normalised time; NeRV / E-NeRV draw frame i."""
    device = next(decoded.model.parameters()).device
    indices = torch.arange(decoded.num_frames, device=device)
    out = []
    for start in range(0, decoded.num_frames, chunk):
        part = indices[start:start + chunk]
        embeddings = None if decoded.embeddings is None else decoded.embeddings[start:start + chunk]
        out.append(render_quantised(decoded.model, part, embeddings).permute(0, 2, 3, 1))
    return torch.cat(out)
