"""Fixtures of the model tests (training, its methods, the encoder context, CTranslate2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.repo_params import copy_repo, dotted, write_params
from tests.stage_runs import TINY_TRAIN, git_commit_all


@pytest.fixture(scope="session")
def tiny_repo_template(tmp_path_factory, tiny_inputs) -> Path:
    """``tiny_repo``'s files and first commit, made once a session (never written to): git
    compressing the tiny weights is most of what a repo costs to set up."""
    repo = copy_repo(tmp_path_factory.mktemp("tiny_repo_template") / "repo")
    for rel in ("models/base", "data/features"):
        shutil.copytree(tiny_inputs / rel, repo / rel)
    write_params(repo, dotted("train", TINY_TRAIN))
    git_commit_all(repo)
    return repo


@pytest.fixture
def tiny_repo(tmp_path, tiny_repo_template) -> Path:
    """A repo copy with a tiny models/base and tiny data/features, params set for speed, and
    one commit (a copy of the session's template, this test's own)."""
    return Path(shutil.copytree(tiny_repo_template, tmp_path / "repo", symlinks=True))
