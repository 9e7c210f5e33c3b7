"""What the demo page does with an upload or a microphone recording, around the decoder.

The page takes anything ffmpeg can read (wav, mp3, flac, ogg, m4a; the audio track of mp4,
webm, mkv). Decoding itself is ``swedish_transcriber.audio.decode_bytes``, the decoder the
pipeline shares; here are the page's limits and what it does with the decoded clip. Every way
an upload can be unusable (empty, not media at all, corrupt, no audio track, too big, too
long, too short, silent) is an ``AudioError`` whose message the page shows as it is, so one
bad file never takes the page down.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import io
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from swedish_transcriber.audio import WHISPER_SAMPLE_RATE, AudioError, decode_bytes, frame_levels_db

AUDIO_TYPES: tuple[str, ...] = ("wav", "mp3", "flac", "ogg", "m4a")
VIDEO_TYPES: tuple[str, ...] = ("mp4", "webm", "mkv")


@dataclass(frozen=True)
class MediaLimits:
    """What the page accepts (params.yaml ``app.limits``): file size, duration, the work a
    file may ask for, and how many uploads the server decodes at once.

    (How loud speech is, for refusing a silent clip, is ``app.chunks.silence_threshold_db``:
    the same threshold that finds pauses.)
    """

    max_upload_mb: float  # larger uploads are refused with a message
    max_seconds: float  # longer audio is refused (trim it first)
    min_seconds: float  # shorter clips are refused: Whisper invents text for them
    max_samples: int  # samples x channels: refused from the header, before decoding
    max_concurrent_decodes: int  # across all sessions of the server; the others wait
    max_concurrent_transcriptions: int  # likewise, for the model's work on a decoded clip

    def __post_init__(self) -> None:
        if self.max_upload_mb <= 0 or self.max_seconds <= 0:
            raise ValueError("max_upload_mb and max_seconds must be > 0")
        if not 0 <= self.min_seconds < self.max_seconds:
            raise ValueError("min_seconds must be >= 0 and below max_seconds")
        if self.max_samples < self.max_seconds * WHISPER_SAMPLE_RATE:
            raise ValueError(
                f"max_samples must allow at least max_seconds of 16 kHz mono "
                f"({self.max_seconds * WHISPER_SAMPLE_RATE:.0f}), got {self.max_samples}"
            )
        if self.max_concurrent_decodes < 1 or self.max_concurrent_transcriptions < 1:
            raise ValueError(
                "max_concurrent_decodes and max_concurrent_transcriptions must be >= 1"
            )


def decode(
    data: bytes, name: str, limits: MediaLimits, sample_rate: int = WHISPER_SAMPLE_RATE
) -> np.ndarray:
    """The first audio track of ``data`` as mono float32 at ``sample_rate``, within ``limits``."""
    return decode_bytes(
        data,
        name,
        max_bytes=int(limits.max_upload_mb * 1e6),
        max_seconds=limits.max_seconds,
        min_seconds=limits.min_seconds,
        sample_rate=sample_rate,
        max_samples=limits.max_samples,
    )


def upload_limit_mb(limits: MediaLimits) -> int:
    """Streamlit's upload limit (whole megabytes) for ``app.max_upload_mb``: rounded up.

    Streamlit's browser side counts a megabyte as 10**6 bytes, as the page does (2**20 in a
    browser on Windows), and refuses bigger files with its own message; its server counts
    2**20 bytes. So neither refuses a file the page accepts, and what slips past the browser
    is refused by ``decode``, by name.
    """
    return max(1, math.ceil(limits.max_upload_mb))


def too_short(
    audio: np.ndarray, limits: MediaLimits, sample_rate: int = WHISPER_SAMPLE_RATE
) -> str:
    """Why a (trimmed) clip is too short to transcribe, or "" when it is long enough."""
    seconds = audio.shape[0] / sample_rate
    if seconds >= limits.min_seconds:
        return ""
    return (
        f"the clip is only {seconds:.2f} s long; at least {limits.min_seconds:g} s is needed "
        f"to transcribe speech"
    )


def is_silent(
    audio: np.ndarray, threshold_db: float, sample_rate: int = WHISPER_SAMPLE_RATE
) -> bool:
    """True when no 20 ms frame reaches ``threshold_db``: nothing to transcribe.

    Whisper invents text for silence ("Tack för att ni tittade!"), so the page says the clip
    is silent instead of showing a made-up transcript.
    """
    return audio.shape[0] == 0 or float(frame_levels_db(audio, sample_rate).max()) < threshold_db


def trim(
    audio: np.ndarray, start: float, end: float, sample_rate: int = WHISPER_SAMPLE_RATE
) -> np.ndarray:
    """The part of ``audio`` between ``start`` and ``end`` seconds (clamped to the clip)."""
    if end <= start:
        raise AudioError(f"the trim end ({end:.2f} s) must be after its start ({start:.2f} s)")
    first = max(0, int(round(start * sample_rate)))
    last = min(audio.shape[0], int(round(end * sample_rate)))
    if last <= first:
        raise AudioError(f"nothing left after trimming to {start:.2f}-{end:.2f} s")
    return audio[first:last]


def wav_bytes(audio: np.ndarray, sample_rate: int = WHISPER_SAMPLE_RATE) -> bytes:
    """16-bit WAV of ``audio``, for the page's preview player."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# One semaphore per kind of work and server process (Streamlit runs every session as a thread
# of it), created on first use with the limit the params give; a changed limit gets a new one.
_SLOTS: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def work_slots(kind: str, limit: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore that lets ``limit`` jobs of ``kind`` run at once."""
    with _SLOTS_LOCK:
        if (kind, limit) not in _SLOTS:
            _SLOTS[kind, limit] = threading.BoundedSemaphore(limit)
        return _SLOTS[kind, limit]


def decode_slots(limit: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore that lets ``limit`` decodes run at once."""
    return work_slots("decode", limit)


@contextlib.contextmanager
def work_turn(
    kind: str,
    limit: int,
    on_wait: Callable[[float], None] = lambda waited: None,
    poll: float = 0.25,
) -> Iterator[float]:
    """Hold one of the ``limit`` slots of ``kind`` for the block; yield the seconds waited.

    While every slot is taken, ``on_wait(seconds waited)`` is called at once and then every
    ``poll`` seconds: the page shows a message there (and Streamlit may stop a session whose
    visitor left).
    """
    slots = work_slots(kind, limit)
    began = time.monotonic()
    if not slots.acquire(blocking=False):
        on_wait(0.0)
        while not slots.acquire(timeout=poll):
            on_wait(time.monotonic() - began)
    try:
        yield time.monotonic() - began
    finally:
        give_back_memory()
        slots.release()


def give_back_memory() -> None:
    """Return the C heap's free pages to the system (glibc ``malloc_trim``; elsewhere nothing).

    A decode or transcription frees tens of megabytes in chunks that glibc keeps in the
    session thread's arena; without this, every session thread keeps its own high-water mark
    and the server's RSS grows with the number of sessions, not with the work in flight.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None


def decode_turn(
    limit: int,
    on_wait: Callable[[float], None] = lambda waited: None,
    poll: float = 0.25,
) -> contextlib.AbstractContextManager[float]:
    """Hold one of the ``limit`` decode slots (params ``app.limits.max_concurrent_decodes``).

    Each decode holds its upload, ffmpeg's frame and the decoded clip in memory, so the
    server's peak grows with the number decoding at once, not with the number of sessions.
    """
    return work_turn("decode", limit, on_wait, poll)


def transcription_turn(
    limit: int,
    on_wait: Callable[[float], None] = lambda waited: None,
    poll: float = 0.25,
) -> contextlib.AbstractContextManager[float]:
    """Hold one of the ``limit`` transcription slots (``app.limits.max_concurrent_
    transcriptions``): each costs features, encoder outputs and decoding guards (about
    170 MB for a minute of noise), and 8 at once took +1.3 GB."""
    return work_turn("transcription", limit, on_wait, poll)
