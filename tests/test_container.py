"""The compressed-model container: header parsing, exact payloads, refusal of bad files."""

from __future__ import annotations

import struct
import zlib

import pytest

from nvd.compression.container import (
    FORMAT_VERSION,
    ContainerError,
    EncodedVideo,
    bits_per_pixel,
    from_bytes,
    read_container,
    to_bytes,
    write_container,
)

VIDEO = {"frames": 4, "height": 6, "width": 10, "fps": 24.0}


def encoded() -> EncodedVideo:
    return EncodedVideo("nerv", VIDEO, {"nerv": {"model": "hnerv", "scales": [0.5, 1e-3]}},
                        {"weights": bytes(range(256)) * 3, "empty": b"", "embeddings": b"\x00\x01"})


def test_round_trip_keeps_header_and_payloads_exactly(tmp_path):
    path = tmp_path / "v.nvd"
    size = write_container(path, encoded())
    back = read_container(path)
    assert size == path.stat().st_size
    assert back.family == "nerv" and dict(back.video) == VIDEO
    assert back.header == {"nerv": {"model": "hnerv", "scales": [0.5, 1e-3]}}
    assert dict(back.payloads) == dict(encoded().payloads)
    assert list(back.payloads) == ["weights", "empty", "embeddings"]  # order kept


def test_the_size_counts_every_byte_and_bpp_is_over_the_video():
    data = to_bytes(encoded())
    payload = sum(len(p) for p in encoded().payloads.values())
    assert len(data) > payload  # the header is part of the rate
    assert bits_per_pixel(len(data), VIDEO) == pytest.approx(8 * len(data) / (4 * 6 * 10))


def test_truncated_files_are_refused_naming_what_is_missing():
    data = to_bytes(encoded())
    with pytest.raises(ContainerError, match="truncated: payload 'embeddings'"):
        from_bytes(data[:-1], "clip.nvd")
    with pytest.raises(ContainerError, match="clip.nvd: truncated: the header"):
        from_bytes(data[:20], "clip.nvd")
    with pytest.raises(ContainerError, match="not an nvd compressed file"):
        from_bytes(b"", "clip.nvd")


def test_corruption_is_found_in_the_header_and_in_each_payload():
    data = bytearray(to_bytes(encoded()))
    flipped = bytearray(data)
    flipped[-2] ^= 0x40  # inside the last payload
    with pytest.raises(ContainerError, match="payload 'embeddings' does not match its checksum"):
        from_bytes(bytes(flipped))
    flipped = bytearray(data)
    flipped[15] ^= 0x01  # inside the compressed header
    with pytest.raises(ContainerError, match="header's checksum"):
        from_bytes(bytes(flipped))
    with pytest.raises(ContainerError, match="unexpected bytes after the last payload"):
        from_bytes(bytes(data) + b"\x00")
    with pytest.raises(ContainerError, match="no NVDC magic"):
        from_bytes(b"PNG!" + bytes(data[4:]))


def test_a_newer_format_version_is_refused_with_the_versions():
    data = bytearray(to_bytes(encoded()))
    data[4] = FORMAT_VERSION + 1
    with pytest.raises(ContainerError, match=f"format version {FORMAT_VERSION + 1} is newer than this nvd reads"):
        from_bytes(bytes(data))


def test_a_file_of_another_family_is_refused():
    with pytest.raises(ContainerError, match="holds a nerv model, not nvp"):
        from_bytes(to_bytes(encoded()), family="nvp")


def test_a_header_without_the_video_size_is_refused():
    text = zlib.compress(b'{"family":"nvp","video":{"frames":0,"height":2,"width":2,"fps":1},"payloads":[]}')
    data = struct.pack("<4sBII", b"NVDC", FORMAT_VERSION, len(text), zlib.crc32(text)) + text
    with pytest.raises(ContainerError, match="video size is invalid"):
        from_bytes(data)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ContainerError, match="no such compressed file"):
        read_container(tmp_path / "absent.nvd")


def test_writing_is_atomic_and_leaves_no_partial_file_on_failure(tmp_path):
    bad = EncodedVideo("other", VIDEO, {}, {})
    with pytest.raises(ValueError, match="unknown family"):
        write_container(tmp_path / "x.nvd", bad)
    assert list(tmp_path.iterdir()) == []
