"""What every engine is, and which one a model directory needs.

Which engine a directory needs is read off its files: a transformers checkpoint has
``model.safetensors`` beside its ``config.json``; a CTranslate2 model (``models/ct2``, made by
the ``export`` stage) has ``model.bin``. Both carry the Whisper processor's files.

Pickled PyTorch weights (``pytorch_model.bin``) are refused: unpickling can run code, and the
page may be pointed at directories the operator did not write. transformers' own
``weights_only=True`` default is a second line, not the one this relies on.
CTranslate2's ``model.bin`` is its own binary format (no pickle) and is fine.

This module imports neither torch nor transformers: the CTranslate2 engine builds on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from swedish_transcriber.whisper import EncoderContext

T = TypeVar("T")

TRANSFORMERS = "transformers"
CTRANSLATE2 = "ctranslate2"
CT2_COMPUTE_TYPES = ("int8", "int8_float32", "int16", "float32")


@dataclass(frozen=True)
class EngineSettings:
    """How an engine runs on this machine (params ``app.engine``), not what it computes."""

    threads: int  # CPU threads for one transcription
    ct2_compute_type: str  # how a CTranslate2 model computes: one of CT2_COMPUTE_TYPES

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.ct2_compute_type not in CT2_COMPUTE_TYPES:
            raise ValueError(
                f"ct2_compute_type must be one of {', '.join(CT2_COMPUTE_TYPES)}, "
                f"got {self.ct2_compute_type!r}"
            )


class Engine(Protocol):
    """Anything that turns a batch of 16 kHz clips (each <= 30 s) into transcripts."""

    kind: str
    model_dir: Path
    context: EncoderContext  # what the encoder sees of each clip

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[str]: ...


# transformers' safetensors weights: one file, or an index of shards.
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


class ModelDirError(FileNotFoundError):
    """A directory that is not a usable model.

    ``reason`` says why without the directory's path, so the page can name the directory the
    way its visitor or params file wrote it instead of by its absolute path on the server.
    """

    def __init__(self, model_dir: str | Path, reason: str) -> None:
        super().__init__(f"{model_dir}: {reason}")
        self.reason = reason


def model_kind(model_dir: str | Path) -> str:
    """``transformers`` or ``ctranslate2``, from the files in ``model_dir``; else a clear error.

    Raises ``ModelDirError`` for a directory that is not a usable model; any other ``OSError``
    (unreadable, name too long) passes through.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirError(model_dir, "no such model directory")
    if (model_dir / "model.bin").is_file():
        kind = CTRANSLATE2
    elif any((model_dir / f).is_file() for f in SAFETENSORS_FILES):
        kind = TRANSFORMERS
    elif any((model_dir / f).is_file() for f in PICKLED_WEIGHTS):
        raise ModelDirError(
            model_dir,
            "only pickled PyTorch weights (pytorch_model.bin), which are not loaded: save the "
            "model as model.safetensors (save_pretrained(..., safe_serialization=True))",
        )
    else:
        raise ModelDirError(
            model_dir,
            "neither a transformers checkpoint (model.safetensors) nor a CTranslate2 model "
            "(model.bin)",
        )
    if not (model_dir / "preprocessor_config.json").is_file():
        raise ModelDirError(
            model_dir,
            "no Whisper processor (preprocessor_config.json, tokenizer) beside the weights",
        )
    return kind


def by_context(
    clips: Sequence[np.ndarray],
    context: EncoderContext,
    run: Callable[[list[np.ndarray], int], Sequence[T]],
) -> list[T]:
    """``run(group, frames)`` on each group of clips with one context length, in input order.

    One encoder call takes one input length. Under ``padded`` every clip is one group (the
    call as before); under ``clip`` each length bucket is its own call. The results come
    back in the order of ``clips``.
    """
    groups: dict[int, list[int]] = {}
    for i, clip in enumerate(clips):
        groups.setdefault(context.frames_for_samples(clip.shape[0]), []).append(i)
    out: list = [None] * len(clips)
    for frames, rows in groups.items():
        results = run([clips[i] for i in rows], frames)
        if len(results) != len(rows):
            raise RuntimeError(f"{len(results)} results for {len(rows)} clips")
        for i, result in zip(rows, results, strict=True):
            out[i] = result
    return out
