"""Code versions: each rule's hash covers every nvd module its job can run, and only those."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nvd.core import versioning
from nvd.core.versioning import STAGE_ENTRIES, code_version, module_closure, stage_files

REPO = Path(__file__).resolve().parent.parent
RULE = re.compile(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", re.S | re.M)


def rule_stages() -> dict[str, tuple[str, Path]]:
    """{rule: (the stage its ``code=code_version(...)`` param names, its script)}."""
    found = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for name, body in RULE.findall(smk.read_text()):
            code = re.search(r'code=code_version\("(\w+)"\)', body)
            script = re.search(r'"\.\./scripts/(\w+\.py)"', body)
            if script:
                assert code, f"rule {name} ({smk.name}) runs a script but passes no code version"
                found[name] = (code.group(1), REPO / "scripts" / script.group(1))
    return found


def script_imports(script: Path) -> set[str]:
    """The nvd modules a script imports (``from nvd.x import y`` may import module nvd.x.y)."""
    modules = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nvd"):
            modules.add(node.module)
            modules.update(f"{node.module}.{a.name}" for a in node.names
                           if versioning.module_file(f"{node.module}.{a.name}"))
    return modules


def test_every_rule_script_is_named_after_its_rule_and_hashes_what_it_imports():
    stages = rule_stages()
    assert {"frames", "flow", "decompose", "evaluate", "train_hyper", "tables"} <= set(stages)
    for rule, (stage, script) in stages.items():
        assert script.name == f"{rule}.py", f"rule {rule} runs {script.name}"
        hashed = module_closure(STAGE_ENTRIES[stage])
        missing = module_closure(tuple(sorted(script_imports(script)))) - hashed
        assert not missing, f"rule {rule}: code_version('{stage}') does not hash {sorted(missing)}"


# Run by one fresh interpreter (cwd: the repo root, no nvd module loaded): each stage's entry
# modules are imported in a child forked for that stage alone, which reports the nvd modules
# then loaded. The third-party packages a child loaded are imported into the parent after it
# (none of them imports nvd: checked), so the next children fork with them loaded and only
# import nvd: one interpreter and one torch import instead of one per stage.
PROBE = r"""
import importlib, json, os, sys

def ours(name):
    return name == "nvd" or name.startswith("nvd.")

result = {}
for stage, entries in json.loads(sys.argv[1]).items():
    assert not any(ours(m) for m in sys.modules), "a preloaded package imported nvd"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: import this stage's entries, report, exit
        os.close(read)
        try:
            for entry in entries:
                importlib.import_module(entry)
            payload = {"nvd": sorted(m for m in sys.modules if ours(m)),
                       "others": sorted({m.partition(".")[0] for m in sys.modules if not ours(m)})}
        except BaseException as e:
            payload = {"error": f"{type(e).__name__}: {e}"}
        with os.fdopen(write, "w") as fh:
            json.dump(payload, fh)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        result[stage] = json.loads(fh.read() or '{"error": "the child died"}')
    os.waitpid(pid, 0)
    for name in result[stage].get("others", ()):
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:
                pass
with open(sys.argv[2], "w") as fh:
    json.dump(result, fh)
"""


@pytest.fixture(scope="module")
def loaded_at_run_time(tmp_path_factory) -> dict[str, dict]:
    """{stage: {"nvd": the nvd modules in sys.modules after importing its entries}}."""
    out = tmp_path_factory.mktemp("versioning") / "loaded.json"
    subprocess.run([sys.executable, "-c", PROBE, json.dumps(STAGE_ENTRIES), str(out)], check=True, cwd=REPO,
                   timeout=600)
    return json.loads(out.read_text())


@pytest.mark.parametrize("stage", sorted(STAGE_ENTRIES))
def test_hash_covers_every_module_the_stage_imports_at_run_time(stage, loaded_at_run_time):
    """What Python really loads when the stage's entry modules are imported is hashed."""
    loaded = loaded_at_run_time[stage]
    assert "error" not in loaded, loaded
    assert set(STAGE_ENTRIES[stage]) <= set(loaded["nvd"])
    assert set(loaded["nvd"]) <= module_closure(STAGE_ENTRIES[stage])


def test_lazy_backend_imports_are_hashed():
    """Backends imported inside functions (RAFT, Mask R-CNN, VideoMAE) change their stage's hash."""
    names = {p.relative_to(versioning.PACKAGE_DIR).as_posix() for p in stage_files("flow")}
    assert {"data/flow/raft.py", "core/devices.py", "data/flow/__init__.py"} <= names
    masks = {p.name for p in stage_files("masks")}
    assert {"maskrcnn.py", "detectron2.py", "annotations.py"} <= masks


def test_stages_hash_only_their_own_family():
    """A data stage does not rerun when a model family's code changes, nor frames for flow code."""
    frames = {p.relative_to(versioning.PACKAGE_DIR).as_posix() for p in stage_files("frames")}
    assert not any(name.startswith(("models/", "data/flow/")) for name in frames)
    decomposition = {p.relative_to(versioning.PACKAGE_DIR).as_posix() for p in stage_files("decomposition")}
    assert not any(name.startswith("models/hypernvd/") for name in decomposition)
    assert "models/hashing_nvd/evaluate.py" not in decomposition


def test_editing_an_imported_module_changes_the_hash(tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "nvd"
    shutil.copytree(versioning.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(versioning, "PACKAGE_DIR", copy)
    versioning.code_version.cache_clear()
    versioning.module_closure.cache_clear()
    before = {stage: code_version(stage) for stage in ("frames", "flow", "decomposition")}
    with (copy / "nn" / "encodings.py").open("a") as fh:
        fh.write("\n# an edit\n")
    versioning.code_version.cache_clear()
    after = {stage: code_version(stage) for stage in ("frames", "flow", "decomposition")}
    versioning.code_version.cache_clear()
    versioning.module_closure.cache_clear()
    assert after["decomposition"] != before["decomposition"]
    assert after["frames"] == before["frames"] and after["flow"] == before["flow"]


def test_unknown_stage_is_named():
    with pytest.raises(KeyError, match="unknown stage 'nope'"):
        stage_files("nope")
