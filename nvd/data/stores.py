"""Zarr v3 stores: the cache between pipeline stages.

Every stage writes one store per video. A store is built under a temporary sibling path,
gets its provenance (stage, config, code version), its manifest (every chunk file with its
size and crc32c, and a content fingerprint: nvd.data.verify) and a completion mark last, and
only then is moved into place (nvd.core.publish). Readers refuse a store without the mark, so
a stage killed mid-write never feeds a later stage half a result, and one whose chunks are not
those of the manifest (a chunk deleted or truncated), so a damaged store is never read as
zeros. A chunk that fails to decode raises StoreError naming the store, array and chunk.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from nvd import __version__
from nvd.core.errors import StoreError
from nvd.core.publish import publishing
from nvd.data.verify import (
    COMPLETE_KEY,
    MANIFEST_KEY,
    PROVENANCE_KEY,
    build_manifest,
    corrupt_chunks,
    describe_problems,
    rerun_hint,
    store_fingerprint,
    store_problems,
)

__all__ = ["COMPLETE_KEY", "MANIFEST_KEY", "PROVENANCE_KEY", "write_store", "open_store", "verify_store",
           "store_fingerprint", "content_fingerprint", "new_array", "provenance", "default_compressor"]


def default_compressor() -> BloscCodec:
    """Blosc/zstd level 1 with bit shuffle.

    Measured on 480p frames and float16 DIS flow: as small as zstd level 5 with byte
    shuffle (within 5%, smaller on frames) at 2.5x the write speed (~9 ms per 480p chunk),
    which matters because stages write while they compute.
    """
    return BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle")


@contextmanager
def write_store(
    path: str | os.PathLike, stage: str, config: Mapping[str, Any], code_version: str
) -> Iterator[zarr.Group]:
    """Create the store for ``stage`` at ``path`` atomically (nvd.core.publish).

    Yields an empty group at a temporary path. When the block exits normally the provenance,
    the manifest (the store's files are read once for their crc32c; nvd.data.verify) and the
    completion mark are written and the group is moved to ``path`` (replacing an older
    store). When the block raises, the temporary store is removed and ``path`` is left
    untouched.
    """
    with publishing(path, folder=True, create=False) as tmp:
        group = zarr.open_group(store=str(tmp), mode="w", zarr_format=3)
        yield group
        manifest = build_manifest(tmp)  # after the body's attributes, which the fingerprint covers
        group.attrs.update({
            PROVENANCE_KEY: {
                "stage": stage,
                "config": _jsonable(config),
                "code_version": code_version,
                "nvd_version": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            },
            MANIFEST_KEY: manifest,
            COMPLETE_KEY: True,
        })


def open_store(path: str | os.PathLike, stage: str | None = None) -> zarr.Group:
    """Open a finished store for reading, after the cheap check (nvd.data.verify).

    Raises StoreError naming the path when it does not exist, is not a Zarr group, lacks the
    completion mark (an interrupted write) or the manifest (an older store), was written by
    another stage, or a chunk of its manifest is missing or has another size (naming the
    array and chunk). Reading an array of the returned group raises StoreError naming the
    store, array and chunk when a chunk does not decode.
    """
    verify_store(path, stage, full=False)
    try:
        group = zarr.open_group(store=str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a non-store folder
        raise StoreError(f"{path}: not a readable Zarr group ({exc})") from exc
    return _CheckedGroup.of(group, Path(path))


def verify_store(path: str | os.PathLike, stage: str | None = None, *, full: bool = True) -> None:
    """Check the store at ``path`` against its manifest; StoreError naming the store and every
    damaged array and chunk (a few of them) when it fails.

    ``full`` (``nvd verify``) recomputes each chunk's crc32c, which catches a chunk altered in
    place at the same size; without it only the presence and size of each chunk are checked.
    """
    problems = store_problems(path, stage, full=full)
    if problems:
        raise StoreError(f"{describe_problems(path, problems)}. {rerun_hint(path).capitalize()}.")


def content_fingerprint(path: str | os.PathLike, stage: str) -> str:
    """The content fingerprint of a finished ``stage`` store (after the cheap check): what a
    training run's identity records of each store it reads."""
    verify_store(path, stage, full=False)
    fingerprint = store_fingerprint(path)
    assert fingerprint is not None, "verify_store refuses a store without a manifest"
    return fingerprint


class _CheckedGroup(zarr.Group):
    """A read-only group whose arrays name the store, array and chunk when a chunk fails to decode."""

    @classmethod
    def of(cls, group: zarr.Group, path: Path) -> "_CheckedGroup":
        checked = cls(group._async_group)
        object.__setattr__(checked, "_nvd_path", path)
        return checked

    def __getitem__(self, key: str) -> Any:
        node = super().__getitem__(key)
        if isinstance(node, zarr.Array):
            return _CheckedArray.of(node, self._nvd_path)
        if isinstance(node, zarr.Group):
            return _CheckedGroup.of(node, self._nvd_path)
        return node


def _decode_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def read(self: "_CheckedArray", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (StoreError, IndexError, TypeError):  # a bad selection is the caller's, not the store's
            raise
        except Exception as exc:  # the codecs raise RuntimeError, ValueError, ... for a damaged chunk
            name = self.path
            damaged = corrupt_chunks(self._nvd_path, name)
            found = "; ".join(damaged[:5]) if damaged else "no chunk fails its checksum"
            raise StoreError(f"{self._nvd_path}: array '{name}' does not decode ({type(exc).__name__}: {exc}); "
                             f"{found}. {rerun_hint(self._nvd_path).capitalize()}.") from exc

    return read


class _CheckedArray(zarr.Array):
    """zarr.Array whose reads raise StoreError naming store, array and chunk on a decode error."""

    @classmethod
    def of(cls, array: zarr.Array, path: Path) -> "_CheckedArray":
        checked = cls(array._async_array)
        checked._nvd_path = path
        return checked

    __getitem__ = _decode_errors(zarr.Array.__getitem__)
    get_basic_selection = _decode_errors(zarr.Array.get_basic_selection)
    get_orthogonal_selection = _decode_errors(zarr.Array.get_orthogonal_selection)
    get_mask_selection = _decode_errors(zarr.Array.get_mask_selection)
    get_coordinate_selection = _decode_errors(zarr.Array.get_coordinate_selection)
    get_block_selection = _decode_errors(zarr.Array.get_block_selection)


def new_array(
    group: zarr.Group,
    name: str,
    shape: Sequence[int],
    dtype: np.dtype | str,
    chunks: Sequence[int],
    dimension_names: Sequence[str],
) -> zarr.Array:
    """Create a compressed array in ``group``; chunks are clipped to the shape (min 1)."""
    chunks = tuple(max(1, min(c, s)) for c, s in zip(chunks, shape))
    return group.create_array(
        name,
        shape=tuple(shape),
        dtype=dtype,
        chunks=chunks,
        compressors=default_compressor(),
        dimension_names=tuple(dimension_names),
        fill_value=0,
    )


def provenance(group: zarr.Group) -> dict[str, Any]:
    """The provenance block a finished store carries (stage, config, code version, ...)."""
    return dict(group.attrs.get(PROVENANCE_KEY, {}))


def _jsonable(value: Any) -> Any:
    """Config values as JSON-safe builtins (tuples -> lists, paths -> str)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    return value
