"""The speed benchmark's audio: a deterministic 60 s recording of whole test clips."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from swedish_transcriber.whisper import SAMPLE_RATE as WHISPER_SAMPLE_RATE

RECORDING_SECONDS = 60.0
GAP_SECONDS = 0.5


@dataclass(frozen=True)
class Recording:
    """The speed benchmark's audio: whole clips with silent gaps, exactly ``seconds`` long."""

    audio: np.ndarray
    clip_indices: tuple[int, ...]  # which input clips it holds, in order
    spans: tuple[tuple[int, int], ...]  # each clip's [start, end) in samples
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.audio.shape[0] / self.sample_rate

    @property
    def speech_seconds(self) -> float:
        return sum(end - start for start, end in self.spans) / self.sample_rate


def build_recording(
    clips: Sequence[np.ndarray],
    seconds: float = RECORDING_SECONDS,
    gap_seconds: float = GAP_SECONDS,
    sample_rate: int = WHISPER_SAMPLE_RATE,
) -> Recording:
    """Clips in order, ``gap_seconds`` of silence between them, cut at a gap to ``seconds``.

    Only whole clips go in: the first clip that would run past ``seconds`` is left out and
    the rest is silence, so no word is cut in half (a half word would be transcribed
    differently by each engine by chance, not by merit). Every engine gets the same samples.
    """
    total = int(round(seconds * sample_rate))
    gap = int(round(gap_seconds * sample_rate))
    if total <= 0 or gap < 0:
        raise ValueError(f"need seconds > 0 and gap_seconds >= 0, got {seconds}, {gap_seconds}")
    spans: list[tuple[int, int]] = []
    indices: list[int] = []
    position = 0
    filled = False
    for i, clip in enumerate(clips):
        start = position + gap if spans else 0
        end = start + int(clip.shape[0])
        if end > total:
            filled = True
            break
        spans.append((start, end))
        indices.append(i)
        position = end
    if not filled:
        raise ValueError(
            f"the clips add up to only {position / sample_rate:.1f} s with gaps; "
            f"{seconds:g} s are needed"
        )
    if not spans:
        raise ValueError(f"the first clip alone is longer than {seconds:g} s")
    audio = np.zeros(total, dtype=np.float32)
    for (start, end), i in zip(spans, indices, strict=True):
        audio[start:end] = clips[i]
    return Recording(audio, tuple(indices), tuple(spans), sample_rate)
