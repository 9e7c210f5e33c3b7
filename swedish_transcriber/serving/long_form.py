"""Transcribing audio of any length: cut it into chunks of at most 30 s at pauses.

Whisper hears 30 s at a time. Cutting blindly every 30 s splits words, and both halves come
out wrong; cutting at the quietest moment does not. So the audio is first split into speech
regions (20 ms frames above a loudness threshold; pauses shorter than ``min_pause`` do not
split), regions are packed into chunks of at most ``chunk_seconds``, and a region longer
than that is cut at its quietest frame. Silence between chunks is never sent to the model:
Whisper invents text for silence. Each chunk becomes one timestamped segment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from swedish_transcriber.audio import frame_levels_db
from swedish_transcriber.serving.engines.contract import Engine
from swedish_transcriber.whisper import CHUNK_LENGTH, FRAME_SECONDS, SAMPLE_RATE


@dataclass(frozen=True)
class ChunkPlan:
    """How to cut (params ``app.chunks``): the longest chunk, pauses, loudness, context."""

    chunk_seconds: float  # chunks are at most this long (at most Whisper's window)
    min_pause: float  # seconds of quiet that separate speech regions
    # 20 ms frames quieter than this are pauses; a clip with nothing louder is silent.
    silence_threshold_db: float
    padding: float  # seconds of context kept around speech at each cut

    def __post_init__(self) -> None:
        if not 1.0 <= self.chunk_seconds <= CHUNK_LENGTH:
            raise ValueError(
                f"chunk_seconds must be between 1 and {CHUNK_LENGTH} (Whisper's window), "
                f"got {self.chunk_seconds}"
            )
        if self.min_pause < 0 or self.padding < 0:
            raise ValueError("min_pause and padding must be >= 0")


@dataclass(frozen=True)
class Segment:
    """One chunk's transcript and where it lies in the audio (seconds)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    """A whole recording: its segments in order, and their text joined."""

    segments: tuple[Segment, ...]
    duration: float

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text).strip()


def _speech_regions(levels: np.ndarray, plan: ChunkPlan) -> list[tuple[int, int]]:
    """Runs of loud frames ``[first, last)``, pauses shorter than ``min_pause`` bridged."""
    loud = np.flatnonzero(levels >= plan.silence_threshold_db)
    if loud.size == 0:
        return []
    max_gap = int(round(plan.min_pause / FRAME_SECONDS))
    regions: list[tuple[int, int]] = []
    start = prev = int(loud[0])
    for i in loud[1:]:
        i = int(i)
        if i - prev > max_gap:
            regions.append((start, prev + 1))
            start = i
        prev = i
    regions.append((start, prev + 1))
    return regions


def _split_long(levels: np.ndarray, first: int, last: int, limit: int) -> list[tuple[int, int]]:
    """Cut a region longer than ``limit`` frames at its quietest frames (latest half)."""
    pieces = []
    while last - first > limit:
        lo, hi = first + limit // 2, first + limit
        cut = lo + int(np.argmin(levels[lo:hi]))
        pieces.append((first, cut))
        first = cut
    pieces.append((first, last))
    return pieces


def plan_chunks(
    audio: np.ndarray, plan: ChunkPlan, sample_rate: int = SAMPLE_RATE
) -> list[tuple[int, int]]:
    """Sample ranges ``[start, end)`` to transcribe, each at most ``plan.chunk_seconds``."""
    levels = frame_levels_db(audio, sample_rate, FRAME_SECONDS)
    frame = int(round(FRAME_SECONDS * sample_rate))
    limit = int(plan.chunk_seconds / FRAME_SECONDS)
    pad = int(round(plan.padding / FRAME_SECONDS))
    pieces: list[tuple[int, int]] = []
    for first, last in _speech_regions(levels, plan):
        pieces += _split_long(levels, first, last, max(1, limit - 2 * pad))
    chunks: list[tuple[int, int]] = []
    for first, last in pieces:  # pack regions into chunks while they fit
        if chunks and last - chunks[-1][0] + 2 * pad <= limit:
            chunks[-1] = (chunks[-1][0], last)
        else:
            chunks.append((first, last))
    n_frames = len(levels)
    out: list[tuple[int, int]] = []
    previous_end = 0
    for first, last in chunks:  # context around each chunk, never overlapping the last one
        lo = max(first - pad, previous_end)
        hi = min(n_frames, last + pad, lo + limit)
        out.append((lo * frame, min(audio.shape[0], hi * frame)))
        previous_end = hi
    return out


def transcribe_audio(
    audio: np.ndarray,
    engine: Engine,
    plan: ChunkPlan,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> Transcript:
    """Transcribe ``audio`` chunk by chunk; ``progress(done, total)`` after every batch."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"audio must be {SAMPLE_RATE} Hz, got {sample_rate}")
    ranges = plan_chunks(audio, plan, sample_rate)
    texts: list[str] = []
    if progress:
        progress(0, len(ranges))
    for i in range(0, len(ranges), max(1, batch_size)):
        batch = ranges[i : i + batch_size]
        texts += engine.transcribe([audio[a:b] for a, b in batch])
        if progress:
            progress(len(texts), len(ranges))
    segments = tuple(
        Segment(a / sample_rate, b / sample_rate, text)
        for (a, b), text in zip(ranges, texts, strict=True)
    )
    return Transcript(segments=segments, duration=audio.shape[0] / sample_rate)
