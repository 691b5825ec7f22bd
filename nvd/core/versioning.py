"""Code versions per stage: a hash of exactly the ``nvd`` source files a stage runs.

Snakemake does not see changes inside an imported package, so each rule passes
``code_version(stage)`` as a param: editing a stage's code reruns that stage and its
dependents and nothing else. The same hash is recorded in every store's provenance.

The files of a stage are derived, not listed: the stage's entry modules and every ``nvd``
module they import, transitively, read from the source (imports inside functions count, so
lazily imported backends are covered), with the ``__init__`` of each package on the way.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "nvd"
PACKAGE_DIR = Path(__file__).resolve().parent.parent

# The modules each stage's rules call into (and the job context of their script adapters:
# nvd.core.progress, or nvd.core.jobs for jobs that run torch); everything they import
# follows from these.
STAGE_ENTRIES: dict[str, tuple[str, ...]] = {
    "demo": ("nvd.core.progress", "nvd.data.demo"),
    "demo_edit": ("nvd.core.progress", "nvd.data.demo.edits"),
    "frames": ("nvd.core.progress", "nvd.data.frames"),
    "flow": ("nvd.core.progress", "nvd.data.flow"),
    "masks": ("nvd.core.progress", "nvd.data.masks"),
    "embedding": ("nvd.core.progress", "nvd.data.embedding"),
    "decomposition": ("nvd.core.jobs", "nvd.models.hashing_nvd.run"),
    "evaluation": ("nvd.core.jobs", "nvd.models.hashing_nvd.evaluate"),
    "edit": ("nvd.core.jobs", "nvd.models.hashing_nvd.edit"),
    "hypernet": ("nvd.core.jobs", "nvd.models.hypernvd.run"),
    "tables": ("nvd.core.progress", "nvd.models.hypernvd.tables"),
    "nvp": ("nvd.core.jobs", "nvd.models.nvp.run"),
    "nvp_evaluation": ("nvd.core.jobs", "nvd.models.nvp.evaluate"),
    "nvp_resampling": ("nvd.core.jobs", "nvd.models.nvp.resampling"),
    "nvp_tables": ("nvd.core.progress", "nvd.models.nvp.tables"),
    "nerv": ("nvd.core.jobs", "nvd.models.nerv.run"),
    "nerv_evaluation": ("nvd.core.jobs", "nvd.models.nerv.evaluate"),
    "nerv_tables": ("nvd.core.progress", "nvd.models.nerv.tables"),
    "nvp_compress": ("nvd.core.jobs", "nvd.models.nvp.compress"),
    "nerv_compress": ("nvd.core.jobs", "nvd.models.nerv.compress"),
    "codec_anchor": ("nvd.core.jobs", "nvd.compression.anchors"),
    "benchmark": ("nvd.core.progress", "nvd.compression.benchmark"),
    "paper_tables": ("nvd.core.progress", "nvd.eval.paper_tables"),
}


def module_file(module: str) -> Path | None:
    """The source file of an ``nvd`` module (a package's ``__init__.py``), None if no such module."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(module: str, path: Path) -> set[str]:
    """The ``nvd`` modules ``module`` (source at ``path``) imports anywhere in its body."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from nvd.x import y`` may import the submodule nvd.x.y
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in found if module_file(m) is not None}


def _with_parents(module: str) -> list[str]:
    """``nvd.a.b`` -> [nvd, nvd.a, nvd.a.b]: importing a module runs its packages' __init__."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@cache
def module_closure(entries: tuple[str, ...]) -> frozenset[str]:
    """Every ``nvd`` module that importing ``entries`` can reach, the entries included."""
    todo = [m for entry in entries for m in _with_parents(entry)]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = module_file(module)
        if path is None:
            raise KeyError(f"no module '{module}' in the nvd package")
        seen.add(module)
        for imported in _imported_modules(module, path):
            todo.extend(m for m in _with_parents(imported) if m not in seen)
    return frozenset(seen)


def stage_files(stage: str) -> list[Path]:
    """All source files hashed for ``stage``, sorted."""
    if stage not in STAGE_ENTRIES:
        raise KeyError(f"unknown stage '{stage}'; known: {sorted(STAGE_ENTRIES)}")
    return sorted({module_file(m) for m in module_closure(STAGE_ENTRIES[stage])})  # type: ignore[type-var]


@cache
def code_version(stage: str) -> str:
    """Short sha256 over the names and contents of the files ``stage`` runs."""
    digest = hashlib.sha256()
    for path in stage_files(stage):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
