"""Speech-to-text engines the page and the inference benchmark run: transformers or CTranslate2.

Both take 16 kHz clips of at most 30 s and return one transcript each, decoded the same way
as the ``transcribe`` stage: Swedish and the task forced (no language detection), no
timestamps, greedy or beam search, openai/whisper's guards against loops and silence, and a
cap on new tokens by the clip's duration (``whisper.DecodeOptions``, params ``app.decode``;
the guards are :mod:`swedish_transcriber.decoding`, shared by both engines). Threads and
CTranslate2's compute type are ``app.engine``. Which engine a directory needs is read off
its files: a transformers checkpoint has ``model.safetensors`` beside its ``config.json``;
a CTranslate2 model (``models/ct2``, made by the ``export`` stage) has ``model.bin``. Both
carry the Whisper processor's files.

Pickled PyTorch weights (``pytorch_model.bin``) are refused: unpickling can run code, and the
page may be pointed at directories the operator did not write. transformers' own
``weights_only=True`` default is a second line, not the one this relies on.
CTranslate2's ``model.bin`` is its own binary format (no pickle) and is fine.
The CTranslate2 engine is in :mod:`ct2_engine` (numpy features, ``tokenizers``: no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.whisper import CHUNK_LENGTH, N_SAMPLES, SAMPLE_RATE, DecodeOptions

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


def _features(processor, clips: Sequence[np.ndarray]) -> np.ndarray:
    """Log-mel features, each clip padded to Whisper's 30 s window."""
    for clip in clips:
        if clip.shape[0] > N_SAMPLES:
            raise ValueError(
                f"a clip of {clip.shape[0] / SAMPLE_RATE:.1f} s is over Whisper's {CHUNK_LENGTH} s "
                f"window; split long audio first (long_form.transcribe_audio)"
            )
    return processor.feature_extractor(
        list(clips), sampling_rate=SAMPLE_RATE, return_tensors="np"
    ).input_features.astype(np.float32)


class TransformersEngine:
    """A transformers ``WhisperForConditionalGeneration``: greedy or beam, batched."""

    kind = TRANSFORMERS

    def __init__(
        self,
        model_dir: str | Path,
        language: ModelLanguage,
        options: DecodeOptions,
        settings: EngineSettings,
    ) -> None:
        import torch
        from transformers.utils import logging

        from swedish_transcriber.evaluation.transcription import load_model

        logging.set_verbosity_error()  # generate()'s notices about Whisper's own defaults
        torch.set_num_threads(settings.threads)
        self.model_dir = Path(model_dir)
        self.language = language
        self.options = options
        self.model, self.processor = load_model(self.model_dir, language.language, language.task)

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[str]:
        from swedish_transcriber.evaluation.transcription import transcribe_features

        if not clips:
            return []
        return transcribe_features(
            self.model,
            self.processor,
            _features(self.processor, clips),
            self.language.language,
            self.language.task,
            self.options,
            [clip.shape[0] / SAMPLE_RATE for clip in clips],
        )


def load_engine(
    model_dir: str | Path,
    language: ModelLanguage,
    options: DecodeOptions,
    settings: EngineSettings,
) -> Engine:
    """The engine that ``model_dir`` needs, loaded and ready.

    ``options.batch_size`` is for the caller (how many clips it hands ``transcribe`` at once).
    The CTranslate2 engine lives in its own module and imports neither torch nor
    transformers: a page that only ever runs ``models/ct2`` never loads them.
    """
    kind = model_kind(model_dir)
    if kind == CTRANSLATE2:
        from swedish_transcriber.serving.ct2_engine import CTranslate2Engine

        return CTranslate2Engine(model_dir, language, options, settings)
    return TransformersEngine(model_dir, language, options, settings)
