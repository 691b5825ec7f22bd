"""What a complete store holds, and whether the store on disk still holds it.

When a stage finishes writing a store (``nvd.data.stores.write_store``) the store's files are
walked once and a manifest goes into its attributes (``attrs["nvd_manifest"]``):

- ``arrays``: per array (its path in the store), ``{chunk key: [size in bytes, crc32c]}`` of
  every chunk file written (the key is the file's path under the array's folder, e.g.
  ``c/3/0/0/0``; a chunk Zarr left unwritten because it holds only the fill value is absent
  from the manifest and must stay absent);
- ``fingerprint``: ``sha256:<hex>`` over every array's metadata and chunk checksums and the
  store's attributes other than the provenance (which holds the time of writing). Two stores
  with equal fingerprints hold the same data; training runs record the fingerprint of every
  store they read (their identity), so a checkpoint is only resumed on exactly these inputs.

Checks:

- cheap (``store_problems(path)``, every ``open_store`` and the workflow when it builds the
  DAG): the completion mark, the manifest, and every chunk file present with its recorded size
  (no file read; one ``stat`` per file);
- full (``full=True``: ``nvd verify``, ``nvd summary --verify``): also the crc32c of every
  chunk and the fingerprint of the metadata.

``quarantine_invalid_stores`` moves a store that fails the cheap check aside, so the workflow
sees it missing and rebuilds it and everything downstream.

Torch- and Zarr-free: the workflow imports this when it builds the DAG.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

COMPLETE_KEY = "nvd_complete"
PROVENANCE_KEY = "nvd"
MANIFEST_KEY = "nvd_manifest"
MANIFEST_FORMAT = 1
METADATA_NAME = "zarr.json"
INVALID_TAG = ".invalid-"
# keys of the root attributes that are not content: provenance (time-stamped), the mark, the manifest
_NOT_CONTENT = (PROVENANCE_KEY, COMPLETE_KEY, MANIFEST_KEY)
_SHOWN = 5  # problems named in one error message


def rerun_hint(path: str | os.PathLike) -> str:
    return (f"rerun the stage that writes {Path(path).name} (the workflow moves a damaged store aside and "
            "rebuilds it, with everything downstream)")


# ---------------------------------------------------------------------------- writing


def build_manifest(root: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the store at ``root`` as it is on disk (each chunk file read once)."""
    import google_crc32c

    root = Path(root)
    arrays: dict[str, dict[str, list[int]]] = {}
    for array, folder in _array_folders(root).items():
        chunks: dict[str, list[int]] = {}
        for key, (file, _) in _chunk_files(folder).items():
            data = file.read_bytes()
            chunks[key] = [len(data), google_crc32c.value(data)]
        arrays[array] = dict(sorted(chunks.items()))
    manifest = {"format": MANIFEST_FORMAT, "arrays": arrays}
    manifest["fingerprint"] = _fingerprint(root, arrays)
    return manifest


def _fingerprint(root: Path, arrays: Mapping[str, Mapping[str, list[int]]]) -> str:
    """sha256 over the arrays' metadata and chunk checksums and the content attributes."""
    attrs = {k: v for k, v in _read_metadata(root).get("attributes", {}).items() if k not in _NOT_CONTENT}
    content = {
        "attributes": attrs,
        "arrays": {name: {"metadata": _read_metadata(root / name),
                          "chunks": {key: crc for key, (_, crc) in chunks.items()}}
                   for name, chunks in sorted(arrays.items())},
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------- checking


def read_attributes(path: str | os.PathLike) -> dict[str, Any]:
    """The root attributes of the store at ``path`` (read from its metadata file, no Zarr)."""
    return dict(_read_metadata(Path(path)).get("attributes", {}))


def store_fingerprint(path: str | os.PathLike) -> str | None:
    """The content fingerprint the store recorded when written (None without a manifest)."""
    manifest = read_attributes(path).get(MANIFEST_KEY)
    return manifest.get("fingerprint") if isinstance(manifest, Mapping) else None


def store_problems(path: str | os.PathLike, stage: str | None = None, *, full: bool = False) -> list[str]:
    """Why the store at ``path`` is not a complete ``stage`` store; empty when it is.

    Each problem is one line naming the array and chunk it concerns. Without ``full`` no chunk
    is read (presence and size only); with it every chunk's crc32c and the metadata's
    fingerprint are recomputed.
    """
    path = Path(path)
    if not path.exists():
        return ["store does not exist"]
    try:
        meta = _read_metadata(path)
    except (OSError, ValueError) as exc:
        return [f"not a readable Zarr group ({exc})"]
    if meta.get("node_type") != "group":
        return [f"not a Zarr group ({METADATA_NAME} has node_type {meta.get('node_type')!r})"]
    attrs = meta.get("attributes", {})
    if attrs.get(COMPLETE_KEY) is not True:
        return ["store is incomplete (no completion mark): the stage that writes it was interrupted "
                "or the store was altered"]
    found = attrs.get(PROVENANCE_KEY, {}).get("stage")
    if stage is not None and found != stage:
        return [f"expected a '{stage}' store, found a '{found}' store"]
    manifest = attrs.get(MANIFEST_KEY)
    if not isinstance(manifest, Mapping) or manifest.get("format") != MANIFEST_FORMAT:
        return ["store has no manifest of its chunks (written by an older nvd or another tool), so it "
                "cannot be checked"]
    recorded: Mapping[str, Mapping[str, list[int]]] = manifest.get("arrays", {})
    problems: list[str] = []
    on_disk = _array_folders(path)
    for array in sorted(on_disk.keys() - recorded.keys()):
        problems.append(f"array '{array}' is not in the store's manifest")
    for array, chunks in sorted(recorded.items()):
        folder = path / array
        if array not in on_disk:
            problems.append(f"array '{array}' is missing")
            continue
        sizes = {key: size for key, (_, size) in _chunk_files(folder).items()}
        for key, (size, crc) in chunks.items():
            if key not in sizes:
                problems.append(f"array '{array}', chunk '{key}': missing")
            elif sizes[key] != size:
                problems.append(f"array '{array}', chunk '{key}': {sizes[key]} bytes, {size} when written "
                                "(truncated or overwritten)")
            elif full:
                problems += _crc_problems(folder, array, {key: (size, crc)})
        for key in sorted(sizes.keys() - chunks.keys()):
            problems.append(f"array '{array}', chunk '{key}': not in the manifest (written after the store was "
                            "finished)")
    if full and not problems and _fingerprint(path, recorded) != manifest.get("fingerprint"):
        problems.append("metadata or attributes differ from those the store was written with (fingerprint "
                        "mismatch)")
    return problems


def corrupt_chunks(path: str | os.PathLike, array: str) -> list[str]:
    """The full check of one array: its chunks that are missing, resized or fail their crc32c."""
    path = Path(path)
    recorded = read_attributes(path).get(MANIFEST_KEY, {}).get("arrays", {}).get(array)
    if recorded is None:
        return []
    folder = path / array
    sizes = {key: size for key, (_, size) in _chunk_files(folder).items()} if folder.is_dir() else {}
    problems = [f"array '{array}', chunk '{k}': missing" for k in recorded if k not in sizes]
    problems += [f"array '{array}', chunk '{k}': {sizes[k]} bytes, {s} when written"
                 for k, (s, _) in recorded.items() if k in sizes and sizes[k] != s]
    intact = {k: v for k, v in recorded.items() if sizes.get(k) == v[0]}
    return problems + _crc_problems(folder, array, intact)


def describe_problems(path: str | os.PathLike, problems: list[str]) -> str:
    """One message naming the store and (up to a few of) its problems."""
    shown = "; ".join(problems[:_SHOWN]) + (f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else "")
    return f"{path}: {shown}"


def _crc_problems(folder: Path, array: str, chunks: Mapping[str, Any]) -> list[str]:
    import google_crc32c

    problems = []
    for key, (_, crc) in chunks.items():
        if google_crc32c.value((folder / key).read_bytes()) != crc:
            problems.append(f"array '{array}', chunk '{key}': checksum mismatch (crc32c), the chunk is corrupt")
    return problems


# ---------------------------------------------------------------------------- the workflow


def quarantine_invalid_stores(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, Path, str]]:
    """Move every store of ``paths`` that exists and fails the cheap check aside.

    A store fails when it lacks the completion mark or the manifest, or a chunk is missing or
    has another size than when written. It is renamed to ``.<name>.invalid-<UTC time>`` beside
    it (kept for inspection; delete it when done), so the workflow sees the store missing and
    rebuilds it and its dependents. The stage is taken from the name (``<stage>.zarr``).
    Returns (store, new name, reason) of each store moved, for the caller to report.
    """
    moved = []
    for path in map(Path, paths):
        if not path.exists():
            continue
        problems = store_problems(path, _stage_of(path))
        if not problems:
            continue
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        target = path.with_name(f".{path.name}{INVALID_TAG}{stamp}")
        os.rename(path, target)
        moved.append((path, target, describe_problems(path, problems).removeprefix(f"{path}: ")))
    return moved


def _stage_of(path: Path) -> str | None:
    from nvd.core.layout import DATA_STAGES

    return path.stem if path.suffix == ".zarr" and path.stem in DATA_STAGES else None


# ---------------------------------------------------------------------------- files


def _read_metadata(folder: Path) -> dict[str, Any]:
    with open(folder / METADATA_NAME, encoding="utf-8") as fh:
        meta = json.load(fh)
    if not isinstance(meta, dict):
        raise ValueError(f"{folder / METADATA_NAME} is not a JSON object")
    return meta


def _array_folders(root: Path) -> dict[str, Path]:
    """{array path in the store ('a' or 'sub/a'): folder} of every array under ``root``."""
    arrays: dict[str, Path] = {}

    def visit(folder: Path, prefix: str) -> None:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False) or entry.name.startswith("."):
                    continue
                sub = Path(entry.path)
                try:
                    node = _read_metadata(sub).get("node_type")
                except (OSError, ValueError):
                    continue
                name = f"{prefix}{entry.name}"
                if node == "array":
                    arrays[name] = sub
                elif node == "group":
                    visit(sub, f"{name}/")

    visit(root, "")
    return arrays


def _chunk_files(folder: Path) -> dict[str, tuple[Path, int]]:
    """{key: (file, size)} of every file under an array's folder but its metadata (hidden names skipped)."""
    found: dict[str, tuple[Path, int]] = {}

    def visit(current: str, prefix: str) -> None:
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    visit(entry.path, f"{prefix}{entry.name}/")
                elif not (prefix == "" and entry.name == METADATA_NAME):
                    found[f"{prefix}{entry.name}"] = (Path(entry.path), entry.stat(follow_symlinks=False).st_size)

    visit(str(folder), "")
    return found
