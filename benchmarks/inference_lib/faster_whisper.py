"""faster-whisper as an engine of the benchmarks: the same export, decoding as ours does.

faster-whisper (1.2.1) runs the same CTranslate2 ``models/ct2`` export with its own log-mel
and its own token suppression. It is set to decode like the page's engine: the language and
task forced, greedy or beam as params say, temperature 0 without fallback (no
compression-ratio, log-prob or no-speech checks), no timestamps, no VAD, no previous text.
One chunk per ``transcribe`` call, as faster-whisper works.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from swedish_transcriber.whisper import EncoderContext

PROMPT_TOKENS = 4  # <|startoftranscript|><|sv|><|transcribe|><|notimestamps|>
# ``WhisperModel.transcribe`` set to decode as our engine: one pass at temperature 0 (no
# fallback, so no compression-ratio, log-prob or no-speech checks), no timestamps, no VAD,
# no previous text as a prompt.
AS_OUR_ENGINE: dict[str, object] = {
    "best_of": 1,
    "temperature": 0.0,
    "compression_ratio_threshold": None,
    "log_prob_threshold": None,
    "no_speech_threshold": None,
    "condition_on_previous_text": False,
    "without_timestamps": True,
    "vad_filter": False,
    "word_timestamps": False,
}


class FasterWhisperEngine:
    """An ``Engine`` (``serving.engines``) over ``faster_whisper.WhisperModel``."""

    kind = "faster-whisper"
    context = EncoderContext.padded()  # faster-whisper pads every clip to the 30 s window

    def __init__(
        self,
        model_dir: str | Path,
        language: str,
        task: str,
        num_beams: int,
        max_new_tokens: int,
        threads: int,
        compute_type: str = "int8",
    ) -> None:
        from faster_whisper import WhisperModel

        self.model_dir = Path(model_dir)
        self.model = WhisperModel(
            str(self.model_dir), device="cpu", compute_type=compute_type, cpu_threads=threads
        )
        self.language, self.task, self.num_beams = language, task, num_beams
        # CTranslate2's Whisper stops after max_length // 2 new tokens, and our engine asks for
        # max_length = 2 * max_new_tokens; faster-whisper passes len(prompt) + max_new_tokens.
        # The same max_length makes the same cap.
        self.max_new_tokens = 2 * max_new_tokens - PROMPT_TOKENS

    def transcribe_with_tokens(self, clips: Sequence[np.ndarray]) -> tuple[list[str], list[int]]:
        """Each clip's text and the number of tokens generated for it."""
        texts: list[str] = []
        tokens: list[int] = []
        for clip in clips:
            segments, _ = self.model.transcribe(
                clip,
                language=self.language,
                task=self.task,
                beam_size=self.num_beams,
                max_new_tokens=self.max_new_tokens,
                **AS_OUR_ENGINE,
            )
            segments = list(segments)  # a generator: decoding happens here
            texts.append(" ".join(seg.text.strip() for seg in segments).strip())
            tokens.append(sum(len(seg.tokens) for seg in segments))
        return texts, tokens

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[str]:
        return self.transcribe_with_tokens(clips)[0]
