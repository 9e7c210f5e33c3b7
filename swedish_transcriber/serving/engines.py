"""Speech-to-text engines the page and the inference benchmark run: transformers or CTranslate2.

Both take 16 kHz clips of at most 30 s and return one transcript each, decoded the same way
as the ``transcribe`` stage: Swedish and the task forced (no language detection), no
timestamps, greedy or beam search, a cap on new tokens. Which engine a directory needs is
read off its files: a transformers checkpoint has ``model.safetensors`` (or
``pytorch_model.bin``) beside its ``config.json``; a CTranslate2 model (``models/ct2``, made by
the ``export`` stage) has ``model.bin``. Both carry the Whisper processor's files. The
CTranslate2 engine is in :mod:`ct2_engine` (numpy features, ``tokenizers``: no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from swedish_transcriber.audio import WHISPER_SAMPLE_RATE

TRANSFORMERS = "transformers"
CTRANSLATE2 = "ctranslate2"


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode: language and task (params ``model``), search and limits (``app``)."""

    language: str = "sv"
    task: str = "transcribe"
    num_beams: int = 1
    max_new_tokens: int = 224  # a full 30 s window of fast speech is about 150 tokens
    threads: int = 2  # CPU threads for one transcription
    ct2_compute_type: str = "int8"  # how a CTranslate2 model runs: int8, int8_float32, float32


class Engine(Protocol):
    """Anything that turns a batch of 16 kHz clips (each <= 30 s) into transcripts."""

    kind: str
    model_dir: Path

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[str]: ...


def model_kind(model_dir: str | Path) -> str:
    """``transformers`` or ``ctranslate2``, from the files in ``model_dir``; else a clear error."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model directory")
    if (model_dir / "model.bin").is_file():
        kind = CTRANSLATE2
    elif any((model_dir / f).is_file() for f in ("model.safetensors", "pytorch_model.bin")):
        kind = TRANSFORMERS
    else:
        raise FileNotFoundError(
            f"{model_dir}: neither a transformers checkpoint (model.safetensors) nor a "
            f"CTranslate2 model (model.bin)"
        )
    if not (model_dir / "preprocessor_config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir}: no Whisper processor (preprocessor_config.json, tokenizer) beside "
            f"the weights"
        )
    return kind


def _features(processor, clips: Sequence[np.ndarray]) -> np.ndarray:
    """Log-mel features, each clip padded to Whisper's 30 s window."""
    for clip in clips:
        if clip.shape[0] > processor.feature_extractor.n_samples:
            raise ValueError(
                f"a clip of {clip.shape[0] / WHISPER_SAMPLE_RATE:.1f} s is over Whisper's 30 s "
                f"window; split long audio first (long_form.transcribe_audio)"
            )
    return processor.feature_extractor(
        list(clips), sampling_rate=WHISPER_SAMPLE_RATE, return_tensors="np"
    ).input_features.astype(np.float32)


class TransformersEngine:
    """A transformers ``WhisperForConditionalGeneration``: greedy or beam, batched."""

    kind = TRANSFORMERS

    def __init__(self, model_dir: str | Path, options: DecodeOptions) -> None:
        import torch
        from transformers.utils import logging

        from swedish_transcriber.evaluation.transcription import load_model

        logging.set_verbosity_error()  # generate()'s notices about Whisper's own defaults
        torch.set_num_threads(options.threads)
        self.model_dir = Path(model_dir)
        self.options = options
        self.model, self.processor = load_model(self.model_dir, options.language, options.task)

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[str]:
        from swedish_transcriber.evaluation.transcription import transcribe_features

        if not clips:
            return []
        o = self.options
        return transcribe_features(
            self.model,
            self.processor,
            _features(self.processor, clips),
            o.language,
            o.task,
            num_beams=o.num_beams,
            max_new_tokens=o.max_new_tokens,
        )


def load_engine(model_dir: str | Path, options: DecodeOptions) -> Engine:
    """The engine that ``model_dir`` needs, loaded and ready.

    The CTranslate2 engine lives in its own module and imports neither torch nor
    transformers: a page that only ever runs ``models/ct2`` never loads them.
    """
    kind = model_kind(model_dir)
    if kind == CTRANSLATE2:
        from swedish_transcriber.serving.ct2_engine import CTranslate2Engine

        return CTranslate2Engine(model_dir, options)
    return TransformersEngine(model_dir, options)
