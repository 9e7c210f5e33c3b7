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

Each engine serves its model with the encoder context the model recorded
(``whisper.model_context``: a transformers ``config.json`` or an export's
``decode_options.json``; none recorded: padded to 30 s), unless told otherwise. Under
``clip`` a clip's features are the first ``context.frames_for_samples(len(clip))`` frames of
its 30 s window, and the clips of one call are encoded in groups of one context length,
their transcripts returned in the order given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.whisper import (
    CHUNK_LENGTH,
    N_FRAMES,
    N_SAMPLES,
    SAMPLE_RATE,
    DecodeOptions,
    EncoderContext,
    model_context,
)

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


def _features(processor, clips: Sequence[np.ndarray], n_frames: int = N_FRAMES) -> np.ndarray:
    """Log-mel features: the first ``n_frames`` of each clip's 30 s window.

    The extractor computes the whole window (its ``max - 8`` floor is the window's), and a
    shorter context is its first frames, as the pipeline's stored frames rebuild them.
    """
    for clip in clips:
        if clip.shape[0] > N_SAMPLES:
            raise ValueError(
                f"a clip of {clip.shape[0] / SAMPLE_RATE:.1f} s is over Whisper's {CHUNK_LENGTH} s "
                f"window; split long audio first (long_form.transcribe_audio)"
            )
    window = processor.feature_extractor(
        list(clips), sampling_rate=SAMPLE_RATE, return_tensors="np"
    ).input_features.astype(np.float32)
    return window if n_frames == window.shape[-1] else np.ascontiguousarray(window[..., :n_frames])


class TransformersEngine:
    """A transformers ``WhisperForConditionalGeneration``: greedy or beam, batched."""

    kind = TRANSFORMERS

    def __init__(
        self,
        model_dir: str | Path,
        language: ModelLanguage,
        options: DecodeOptions,
        settings: EngineSettings,
        context: EncoderContext | None = None,
    ) -> None:
        import torch
        from transformers.utils import logging

        from swedish_transcriber.evaluation.transcription import load_model
        from swedish_transcriber.own_context import own_context

        logging.set_verbosity_error()  # generate()'s notices about Whisper's own defaults
        torch.set_num_threads(settings.threads)
        self.model_dir = Path(model_dir)
        self.language = language
        self.options = options
        self.context = model_context(self.model_dir) if context is None else context
        self.model, self.processor = load_model(self.model_dir, language.language, language.task)
        # An encoder that takes fewer than 3000 frames; at 3000 it is transformers' own code.
        own_context(self.model)

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[str]:
        from swedish_transcriber.evaluation.transcription import transcribe_features

        def run(group: list[np.ndarray], frames: int) -> list[str]:
            return transcribe_features(
                self.model,
                self.processor,
                _features(self.processor, group, frames),
                self.language.language,
                self.language.task,
                self.options,
                [clip.shape[0] / SAMPLE_RATE for clip in group],
            )

        return by_context(clips, self.context, run) if clips else []

    def generate_ids(self, clips: Sequence[np.ndarray]) -> list[list[int]]:
        """The new token ids of one plain pass (no guards, no end token), as CTranslate2's.

        For comparing the two engines token for token; ``transcribe`` is the guarded path.
        """
        import torch

        tokenizer = self.processor.tokenizer
        prompt = tokenizer.convert_tokens_to_ids(
            [
                "<|startoftranscript|>",
                f"<|{self.language.language}|>",
                f"<|{self.language.task}|>",
                "<|notimestamps|>",
            ]
        )
        eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")

        @torch.no_grad()
        def run(group: list[np.ndarray], frames: int) -> list[list[int]]:
            inputs = torch.as_tensor(_features(self.processor, group, frames))
            out = self.model.generate(
                inputs.to(self.model.device, dtype=self.model.dtype),
                language=self.language.language,
                task=self.language.task,
                max_new_tokens=self.options.max_new_tokens,
                num_beams=self.options.num_beams,
                do_sample=False,
            )
            rows = []
            for ids in out.tolist():
                ids = ids[len(prompt) :] if ids[: len(prompt)] == prompt else ids
                rows.append(ids[: ids.index(eot)] if eot in ids else ids)
            return rows

        return by_context(clips, self.context, run) if clips else []


def load_engine(
    model_dir: str | Path,
    language: ModelLanguage,
    options: DecodeOptions,
    settings: EngineSettings,
    context: EncoderContext | None = None,
) -> Engine:
    """The engine that ``model_dir`` needs, loaded and ready.

    ``options.batch_size`` is for the caller (how many clips it hands ``transcribe`` at once).
    ``context``: what the encoder sees; None (the page) serves the model with the context it
    recorded (``whisper.model_context``), a given one overrides it (benchmarks, comparisons).
    The CTranslate2 engine lives in its own module and imports neither torch nor
    transformers: a page that only ever runs ``models/ct2`` never loads them.
    """
    kind = model_kind(model_dir)
    if kind == CTRANSLATE2:
        from swedish_transcriber.serving.ct2_engine import CTranslate2Engine

        return CTranslate2Engine(model_dir, language, options, settings, context)
    return TransformersEngine(model_dir, language, options, settings, context)
