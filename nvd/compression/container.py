"""The compressed-model file: one self-describing container every neural codec writes.

Layout (all integers little-endian)::

    offset  size  field
    0       4     magic b"NVDC"
    4       1     format version (FORMAT_VERSION)
    5       4     n: length of the compressed header
    9       4     crc32 of those n bytes
    13      n     header: zlib-compressed UTF-8 JSON (below)
    13 + n  ...   the payloads, back to back, in the header's order; nothing after the last

The header is a JSON object with at least::

    family    "nvp" or "nerv" (nvd.models.<family>.codec decodes it)
    video     {"frames": T, "height": H, "width": W, "fps": float}
    payloads  [[name, length in bytes, crc32], ...]

and whatever else the family's decoder needs (its model config, quantisation side
information, the codec settings). Everything a decoder reads is in the file, so its size is
the honest rate: ``bits_per_pixel(size)`` = 8 * bytes / (T * H * W).

Reading checks the magic, the version, both checksums and every length, and raises
ContainerError naming the file and what is wrong: a truncated or corrupted file, a newer
format version, a file of another family. Writing is atomic (nvd.core.publish).
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nvd.core.errors import InputError
from nvd.core.publish import publish_with

MAGIC = b"NVDC"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<4sBII")  # magic, version, header length, header crc32
FAMILIES = ("nvp", "nerv")
SUFFIX = ".nvd"


class ContainerError(InputError):
    """A compressed file is not one this nvd can decode (truncated, corrupted, newer, other family)."""


@dataclass(frozen=True)
class EncodedVideo:
    """A compressed model in memory: the header (JSON-able) and the named payloads."""

    family: str
    video: Mapping[str, Any]  # {"frames", "height", "width", "fps"}
    header: Mapping[str, Any] = field(default_factory=dict)  # the family's own fields
    payloads: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def pixels(self) -> int:
        """T * H * W of the coded video."""
        return int(self.video["frames"]) * int(self.video["height"]) * int(self.video["width"])


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def to_bytes(encoded: EncodedVideo) -> bytes:
    """The file's bytes (see the module docstring)."""
    if encoded.family not in FAMILIES:
        raise ValueError(f"container: unknown family {encoded.family!r}, expected one of {FAMILIES}")
    reserved = {"family", "video", "payloads"} & set(encoded.header)
    if reserved:
        raise ValueError(f"container: header keys {sorted(reserved)} are set by the container")
    names = list(encoded.payloads)
    header = {
        "family": encoded.family,
        "video": {k: encoded.video[k] for k in ("frames", "height", "width", "fps")},
        **encoded.header,
        "payloads": [[name, len(encoded.payloads[name]), _crc(encoded.payloads[name])] for name in names],
    }
    text = json.dumps(header, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()
    packed = zlib.compress(text, 9)
    return b"".join([_PREFIX.pack(MAGIC, FORMAT_VERSION, len(packed), _crc(packed)), packed,
                     *(bytes(encoded.payloads[name]) for name in names)])


def write_container(path: str | os.PathLike, encoded: EncodedVideo) -> int:
    """Write ``encoded`` to ``path`` atomically; returns the file's size in bytes."""
    data = to_bytes(encoded)
    publish_with(path, lambda tmp: Path(tmp).write_bytes(data))
    return len(data)


def _fail(where: str, message: str) -> ContainerError:
    return ContainerError(f"{where}: {message}")


def _header(data: bytes, where: str) -> tuple[dict[str, Any], int]:
    if len(data) < _PREFIX.size:
        if not MAGIC.startswith(data[:4]) or not data:
            raise _fail(where, "not an nvd compressed file (no NVDC magic)")
        raise _fail(where, f"truncated: {len(data)} bytes, shorter than the {_PREFIX.size}-byte prefix")
    magic, version, length, crc = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise _fail(where, "not an nvd compressed file (no NVDC magic)")
    if version > FORMAT_VERSION:
        raise _fail(where, f"format version {version} is newer than this nvd reads ({FORMAT_VERSION}); "
                           "decode it with a newer nvd")
    if version < 1:
        raise _fail(where, f"unknown format version {version}")
    end = _PREFIX.size + length
    if len(data) < end:
        raise _fail(where, f"truncated: the header needs {length} bytes, the file ends {end - len(data)} "
                           "bytes short")
    packed = data[_PREFIX.size:end]
    if _crc(packed) != crc:
        raise _fail(where, "corrupted: the header's checksum does not match")
    try:
        header = json.loads(zlib.decompress(packed))
    except (zlib.error, ValueError) as exc:
        raise _fail(where, f"corrupted: the header does not decode ({exc})") from None
    if not isinstance(header, dict):
        raise _fail(where, "corrupted: the header is not a JSON object")
    missing = [key for key in ("family", "video", "payloads") if key not in header]
    if missing:
        raise _fail(where, f"the header lacks {missing}")
    return header, end


def from_bytes(data: bytes, where: str = "<bytes>", family: str | None = None) -> EncodedVideo:
    """Parse and check a file's bytes; ``family``: the family the caller can decode (a file of
    another family is refused). ``where`` names the file in messages."""
    header, offset = _header(bytes(data), where)
    found = header.pop("family")
    if found not in FAMILIES:
        raise _fail(where, f"unknown model family {found!r} (this nvd decodes {list(FAMILIES)})")
    if family is not None and found != family:
        raise _fail(where, f"holds a {found} model, not {family}")
    video = header.pop("video")
    try:
        if any(int(video[k]) < 1 for k in ("frames", "height", "width")):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise _fail(where, f"the header's video size is invalid: {video!r}") from None
    payloads: dict[str, bytes] = {}
    for entry in header.pop("payloads"):
        name, length, crc = entry
        end = offset + int(length)
        if end > len(data):
            raise _fail(where, f"truncated: payload '{name}' needs {length} bytes at offset {offset}, "
                               f"the file ends at {len(data)}")
        chunk = bytes(data[offset:end])
        if _crc(chunk) != crc:
            raise _fail(where, f"corrupted: payload '{name}' does not match its checksum")
        payloads[name] = chunk
        offset = end
    if offset != len(data):
        raise _fail(where, f"corrupted: {len(data) - offset} unexpected bytes after the last payload")
    return EncodedVideo(found, video, header, payloads)


def read_container(path: str | os.PathLike, family: str | None = None) -> EncodedVideo:
    """The checked contents of the file at ``path`` (see ``from_bytes``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ContainerError(f"{path}: no such compressed file") from None
    return from_bytes(data, str(path), family)


def bits_per_pixel(size_bytes: int, video: Mapping[str, Any]) -> float:
    """8 * size_bytes over the video's T * H * W."""
    return 8 * size_bytes / (int(video["frames"]) * int(video["height"]) * int(video["width"]))
