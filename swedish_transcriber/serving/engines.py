"""Speech-to-text engines the page and the inference benchmark run: transformers or CTranslate2.

Both take 16 kHz clips of at most 30 s and return one transcript each, decoded the same way
as the ``transcribe`` stage: Swedish and the task forced (no language detection), no
timestamps, greedy or beam search, a cap on new tokens. Which engine a directory needs is
read off its files: a transformers checkpoint has ``model.safetensors`` beside its
``config.json``; a CTranslate2 model (``models/ct2``, made by the ``export`` stage) has
``model.bin``. Both carry the Whisper processor's files.

Pickled PyTorch weights (``pytorch_model.bin``) are refused: unpickling can run code, and the
page may be pointed at directories the operator did not write. transformers' own
``weights_only=True`` default is a second line, not the one this relies on.
CTranslate2's ``model.bin`` is its own binary format (no pickle) and is fine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from swedish_transcriber.audio import WHISPER_SAMPLE_RATE
from swedish_transcriber.data.features import load_processor

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


class CTranslate2Engine:
    """A CTranslate2 Whisper (``models/ct2``): the same decoding, int8 matrix products."""

    kind = CTRANSLATE2

    def __init__(self, model_dir: str | Path, options: DecodeOptions) -> None:
        import ctranslate2

        self.model_dir = Path(model_dir)
        self.options = options
        self.processor = load_processor(self.model_dir, options.language, options.task)
        self.model = ctranslate2.models.Whisper(
            str(self.model_dir),
            device="cpu",
            compute_type=options.ct2_compute_type,
            intra_threads=options.threads,
        )
        tokens = ["<|startoftranscript|>", f"<|{options.language}|>", f"<|{options.task}|>"]
        ids = self.processor.tokenizer.convert_tokens_to_ids([*tokens, "<|notimestamps|>"])
        if self.processor.tokenizer.unk_token_id in ids:
            raise ValueError(
                f"{self.model_dir}: the tokenizer has no token for language "
                f"{options.language!r} or task {options.task!r}"
            )
        self.prompt: list[int] = ids

    def generate_ids(self, clips: Sequence[np.ndarray]) -> list[list[int]]:
        """The new token ids of each clip's transcript (the prompt not included)."""
        import ctranslate2

        if not clips:
            return []
        features = ctranslate2.StorageView.from_array(
            np.ascontiguousarray(_features(self.processor, clips))
        )
        results = self.model.generate(
            features,
            [self.prompt] * len(clips),
            beam_size=self.options.num_beams,
            # CTranslate2's Whisper stops after max_length // 2 new tokens (measured; as
            # openai/whisper's sample_len = n_text_ctx // 2); transformers counts new tokens.
            max_length=2 * self.options.max_new_tokens,
        )
        return [list(r.sequences_ids[0]) for r in results]

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[str]:
        decode = self.processor.tokenizer.decode
        return [decode(ids, skip_special_tokens=True).strip() for ids in self.generate_ids(clips)]


def load_engine(model_dir: str | Path, options: DecodeOptions) -> Engine:
    """The engine that ``model_dir`` needs, loaded and ready."""
    kind = model_kind(model_dir)
    if kind == CTRANSLATE2:
        return CTranslate2Engine(model_dir, options)
    return TransformersEngine(model_dir, options)
