"""Manifests as ingest writes them: the one manifest-row factory, and a validate-stage repo."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from swedish_transcriber.data.manifest import COLUMNS, conform_with_release, write_split
from swedish_transcriber.data.validation import ValidationSettings
from tests.repo_params import write_params

GOOD_SENTENCE = "Hej, hur mår du i dag?"  # 22 characters: 7.3 chars/s over 3 s

# The validate settings the validation tests reason about (round numbers, not the repo's).
SETTINGS = ValidationSettings(
    min_duration=0.5,
    max_duration=30.0,
    allowed_characters="a-zA-ZåäöÅÄÖéÉüÜ .,?!:;'\"()\\-",
    min_chars_per_second=3.0,
    max_chars_per_second=30.0,
    max_silence_ratio=0.8,
    max_fail_rate=0.25,
    max_duration_mismatch=0.5,
)


def manifest_row(split: str, n: int, **overrides: Any) -> dict[str, Any]:
    """One valid manifest row of ``split`` (the n-th of its TSV, so ``tsv_row`` is n + 2): 3 s
    of a 48 kHz clip with a good sentence; ``overrides`` replace any column (or break it)."""
    values: dict[str, Any] = {
        "split": split,
        "path": f"common_voice_sv-SE_{split}_{n}.mp3",
        "audio_file": f"data/raw/test/clips/common_voice_sv-SE_{split}_{n}.mp3",
        "sentence": GOOD_SENTENCE,
        "client_id": f"speaker-{split}-{n % 2}",
        "gender": "female",
        "age": "twenties",
        "accent": "",
        "locale": "sv-SE",
        "up_votes": 2,
        "down_votes": 0,
        "duration": 3.0,
        "sample_rate": 48_000,
        "peak": 0.5,
        "rms": 0.1,
        "silence_ratio": 0.2,
        "clipping_ratio": 0.0,
        "tsv_file": f"data/raw/test/{split}.tsv",
        "tsv_row": n + 2,
    }
    values.update(overrides)
    return values


def manifest(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A typed manifest (as ingest writes it) from rows."""
    if not rows:
        return conform_with_release(
            pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})
        )
    return conform_with_release(pd.DataFrame(rows))


def validate_repo(root: Path, splits: dict[str, pd.DataFrame], **validate: Any) -> None:
    """A scratch repo root for the validate stage: ``SETTINGS`` (``validate`` changed) as its
    params and ``splits`` as data/manifest."""
    write_params(root, base={"validate": {**dataclasses.asdict(SETTINGS), **validate}})
    for split, frame in splits.items():
        write_split(frame, root / "data" / "manifest", split)
