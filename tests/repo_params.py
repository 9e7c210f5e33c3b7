"""The repo's root and params.yaml, as tests' starting values (the dataclasses hold no defaults),
the one way tests write a changed params file, and a scratch copy of the repo's sources.

``REPO`` is the only place that knows where the tests live relative to the repo root: every
other module imports it rather than counting ``parents`` of its own path.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from swedish_transcriber.params import section

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / "params.yaml"

T = TypeVar("T")

# What a stage run needs of the repo (a scratch copy's sources). .dvcignore keeps the byte-code
# cache that a stage's Python writes next to the package out of every stage's deps.
SOURCES = ("params.yaml", "dvc.yaml", ".dvcignore", "stages", "swedish_transcriber", ".dvc")


def copy_repo(dest: Path, items: Sequence[str] = SOURCES) -> Path:
    """Copy the repo's ``items`` (tracked sources, by default ``SOURCES``) into ``dest``, to
    run stages there; an item the checkout lacks is left out."""
    for item in items:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(
                src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache")
            )
        elif src.exists():
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    return dest


def repo_params(name: str, cls: type[T], *, subset: bool = False, **changes: Any) -> T:
    """Section ``name`` (dotted for a nested one) of the repo's params.yaml, ``changes`` applied.

    ``subset`` is :func:`~swedish_transcriber.params.section`'s. ``dataclasses.replace`` runs
    ``__post_init__`` again, so a change that breaks a bound raises as it would in params.yaml.
    """
    return dataclasses.replace(section(name, cls, PARAMS_FILE, subset=subset), **changes)


def load_yaml(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """A params file as a plain dict (a fresh copy each call)."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def dotted(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as dotted keys under ``prefix``: ``dotted("train", {"max_steps": 2})`` is
    ``{"train.max_steps": 2}`` (to change some keys of a section and keep the rest)."""
    return {f"{prefix}.{key}": value for key, value in values.items()}


def with_params(params: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``params`` with each dotted key of ``changes`` set (made where missing)."""
    out = copy.deepcopy(dict(params))
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = copy.deepcopy(value)
    return out


def write_params(
    path: Path,
    changes: Mapping[str, Any] | None = None,
    *,
    base: Path | Mapping[str, Any] | None = None,
    only: tuple[str, ...] | None = None,
) -> Path:
    """Write a params file and return its path: the one params-override helper of the tests.

    ``path`` is the file (``.yaml``), or a folder to write ``params.yaml`` in. The starting
    values are ``base`` (a file or a dict): by default the file at ``path`` if it exists, else
    the repo's params.yaml. ``only`` keeps just those top-level sections; then each dotted key of
    ``changes`` is set (``{"train.max_steps": 2, "merge": {"alpha": 1.0}}``).
    """
    path = Path(path)
    if path.suffix not in (".yaml", ".yml"):
        path = path / "params.yaml"
    if base is None:
        base = path if path.exists() else PARAMS_FILE
    params = dict(base) if isinstance(base, Mapping) else load_yaml(Path(base))
    if only is not None:
        params = {name: params[name] for name in only}
    params = with_params(params, changes or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
