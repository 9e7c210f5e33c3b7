"""Fixtures of the model tests (training, its methods, the encoder context, CTranslate2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.repo_params import dotted, write_params
from tests.stage_runs import TINY_TRAIN, git_commit_all


@pytest.fixture
def tiny_repo(repo_copy, tiny_inputs) -> Path:
    """A repo copy with a tiny models/base and tiny data/features, params set for speed."""
    repo = repo_copy()
    for rel in ("models/base", "data/features"):
        shutil.copytree(tiny_inputs / rel, repo / rel)
    write_params(repo, dotted("train", TINY_TRAIN))
    git_commit_all(repo)
    return repo
