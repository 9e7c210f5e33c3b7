"""dvc.yaml's stage commands as argv, so tests run a stage exactly as ``dvc repro`` does.

Paths are written once, in dvc.yaml's ``cmd``; a test that ran ``python -m stages.x`` with
paths of its own could pass while dvc.yaml passes different ones.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import yaml

from tests.repo_params import REPO


def stage_command(stage: str, repo: Path = REPO) -> list[str]:
    """The command of ``stage`` (``transcribe@zero_shot`` for a foreach item) in ``repo``.

    ``${key}``, ``${item}`` and ``${section.key}`` are filled in as DVC does (params from
    ``repo``'s params.yaml); a leading ``python`` becomes this interpreter.
    """
    name, _, key = stage.partition("@")
    spec = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))["stages"][name]
    variables: dict[str, str] = {}

    def param(ref: str):
        found = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
        for part in ref.split("."):
            found = found[part]
        return found

    if "foreach" in spec:
        items = spec["foreach"]
        if isinstance(items, str):  # foreach: ${section.key}, a mapping in params.yaml
            items = param(re.fullmatch(r"\$\{([^}]+)\}", items).group(1))
        item = items[key]
        variables = {"key": key, "item": str(item)}
        if isinstance(item, dict):  # ${item.field} of a mapping item
            variables |= {f"item.{field}": str(v) for field, v in item.items()}
        spec = spec["do"]

    def value(match: re.Match[str]) -> str:
        ref = match.group(1)
        return variables[ref] if ref in variables else str(param(ref))

    argv = shlex.split(re.sub(r"\$\{([^}]+)\}", value, spec["cmd"]))
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


def stage_args(stage: str, repo: Path = REPO) -> list[str]:
    """The arguments after ``-m stages.<name>``: what the stage's ``main(argv)`` parses."""
    argv = stage_command(stage, repo)
    return argv[argv.index("-m") + 2 :]
