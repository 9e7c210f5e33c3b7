"""The repo's params.yaml as tests' starting values: the dataclasses hold no defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from swedish_transcriber.params import section

PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"

T = TypeVar("T")


def repo_params(name: str, cls: type[T], *, subset: bool = False, **changes: Any) -> T:
    """Section ``name`` (dotted for a nested one) of the repo's params.yaml, ``changes`` applied.

    ``subset`` is :func:`~swedish_transcriber.params.section`'s. ``dataclasses.replace`` runs
    ``__post_init__`` again, so a change that breaks a bound raises as it would in params.yaml.
    """
    return dataclasses.replace(section(name, cls, PARAMS_FILE, subset=subset), **changes)
