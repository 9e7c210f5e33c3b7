"""dvc.yaml names every module a stage runs, and the package imports only downwards.

DVC reruns a stage when one of its deps changes; a module that a stage imports but does not
list would change the stage's output without DVC noticing (a stale ``dvc repro``). So the
modules are computed here from the code itself: the ``import`` statements (all of them, also
inside functions) of the stage's script, transitively over the project's modules, with the
``__init__.py`` of every package on the way (Python runs those too). A dep covers a module when
it is the module's file or a folder above it.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.repo_params import REPO

PACKAGES = ("swedish_transcriber", "stages")  # the project's importable top-level packages
# Layers of swedish_transcriber, lowest first: a module may import its own layer and below.
# The top-level modules (params, stage, atomic, audio, ...) are layer 0 whatever their name.
LAYERS = ("data", "evaluation", "model", "review", "serving")


def module_file(name: str) -> Path | None:
    """The file of project module ``name`` (``a.b`` -> a/b.py or a/b/__init__.py), or None."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = REPO.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def imported_names(path: Path) -> tuple[str, ...]:
    """Every module name ``path`` imports (absolute; ``from a import b`` gives a and a.b)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path)  # what a relative import is relative to
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    return tuple(names)


def project_imports(path: Path) -> set[Path]:
    """The project files ``path`` imports directly, with their packages' ``__init__.py``."""
    files: set[Path] = set()
    for name in imported_names(path):
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
            found = module_file(".".join(parts[:i]))
            if found is not None:
                files.add(found)
    return files


def closure(script: Path) -> dict[Path, Path]:
    """Every project file running ``script`` loads -> the file that first imported it."""
    start = module_name(script)
    seen: dict[Path, Path] = {script: script}
    parts = start.split(".")
    for i in range(1, len(parts)):  # python -m stages.x runs stages/__init__.py first
        package = module_file(".".join(parts[:i]))
        if package is not None:
            seen.setdefault(package, script)
    todo = list(seen)
    while todo:
        current = todo.pop()
        for found in project_imports(current):
            if found not in seen:
                seen[found] = current
                todo.append(found)
    return seen


def stage_commands() -> dict[str, tuple[str, list[str]]]:
    """Stage name -> (its ``cmd``, its deps), ``foreach`` stages under their template."""
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    out = {}
    for name, stage in pipeline["stages"].items():
        body = stage.get("do", stage)
        deps = [d if isinstance(d, str) else next(iter(d)) for d in body.get("deps", [])]
        out[name] = (str(body["cmd"]), deps)
    return out


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO)
    for dep in deps:
        if "${" in dep:  # data given by a param (raw audio dir, a model dir), not code
            continue
        dep_path = Path(dep.rstrip("/"))
        if rel == dep_path or dep_path in rel.parents:
            return True
    return False


STAGES = stage_commands()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_name_every_module_it_runs(stage):
    cmd, deps = STAGES[stage]
    match = re.search(r"-m\s+(stages\.\w+)", cmd)
    assert match, f"stage {stage}: cannot tell which module `{cmd}` runs (expected -m stages.X)"
    script = module_file(match.group(1))
    assert script is not None, f"stage {stage}: {match.group(1)} does not exist"
    missing = [
        f"{path.relative_to(REPO)} (imported by {via.relative_to(REPO)})"
        for path, via in sorted(closure(script).items())
        if not covered(path, deps)
    ]
    assert not missing, (
        f"dvc.yaml stage {stage!r} runs modules its deps do not name (add the file or a "
        f"folder above it): " + ", ".join(missing)
    )


def test_closure_follows_imports_transitively():
    """The walk itself: stages.validate reaches the suite through the package's __init__."""
    files = closure(REPO / "stages/validate.py")
    rel = {p.relative_to(REPO).as_posix() for p in files}
    assert {
        "stages/__init__.py",
        "swedish_transcriber/__init__.py",
        "swedish_transcriber/data/__init__.py",
        "swedish_transcriber/data/validation/__init__.py",
        "swedish_transcriber/data/validation/suite.py",
        "swedish_transcriber/data/manifest.py",
        "swedish_transcriber/params.py",
    } <= rel
    assert not any(r.startswith("swedish_transcriber/serving") for r in rel)
    assert not covered(
        REPO / "swedish_transcriber/data/validation/suite.py", ["swedish_transcriber/data/valid"]
    )
    assert covered(
        REPO / "swedish_transcriber/data/validation/suite.py", ["swedish_transcriber/data"]
    )


# --------------------------------------------------------------------------------------------
# Layering


def layer(path: Path) -> tuple[int, str]:
    """(rank, name) of a file of swedish_transcriber: 0 for the top-level modules."""
    parts = path.relative_to(REPO / "swedish_transcriber").parts
    if len(parts) == 1:
        return 0, "top-level"
    assert parts[0] in LAYERS, (
        f"swedish_transcriber/{parts[0]}/ is not in this test's LAYERS {LAYERS}: place it"
    )
    return LAYERS.index(parts[0]) + 1, parts[0]


PACKAGE_FILES = sorted((REPO / "swedish_transcriber").rglob("*.py"))


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_package_imports_only_downwards(path):
    """top-level < data < evaluation < model < review < serving; the top level imports none."""
    rank, name = layer(path)
    upward = []
    for target in sorted(project_imports(path)):
        if target.is_relative_to(REPO / "stages"):
            upward.append(f"{target.relative_to(REPO)} (a stage)")
            continue
        other_rank, other = layer(target)
        if other_rank > rank:
            upward.append(f"{target.relative_to(REPO)} ({other})")
    assert not upward, (
        f"{path.relative_to(REPO)} ({name}) imports from a higher layer: " + ", ".join(upward)
    )
