"""The transformers engine: a ``WhisperForConditionalGeneration`` and its processor.

Its features are the processor's feature extractor's; its decoding is
:mod:`swedish_transcriber.evaluation.transcription`'s, the one the ``transcribe`` stage and
the dev transcripts in training use. torch and transformers load when the engine is made,
not when this module is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.serving.engines.contract import TRANSFORMERS, EngineSettings, by_context
from swedish_transcriber.whisper import (
    CHUNK_LENGTH,
    N_FRAMES,
    N_SAMPLES,
    SAMPLE_RATE,
    DecodeOptions,
    EncoderContext,
    model_context,
)


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
