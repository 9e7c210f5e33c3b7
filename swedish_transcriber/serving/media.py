"""Decoding what a user hands the demo page: audio or video files, or a microphone recording.

The page takes anything ffmpeg can read (wav, mp3, flac, ogg, m4a; the audio track of mp4,
webm, mkv). PyAV ships ffmpeg's libraries in its wheel, so no system ffmpeg is needed. Every
way an upload can be unusable (empty, not media at all, corrupt, no audio track, too big,
too long, silent) is a ``MediaError`` whose message the page shows as it is, so one bad file
never takes the page down.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from swedish_transcriber.audio import WHISPER_SAMPLE_RATE, frame_levels_db

AUDIO_TYPES: tuple[str, ...] = ("wav", "mp3", "flac", "ogg", "m4a")
VIDEO_TYPES: tuple[str, ...] = ("mp4", "webm", "mkv")


class MediaError(ValueError):
    """An upload or recording cannot be transcribed; the message says why, for the user."""


@dataclass(frozen=True)
class MediaLimits:
    """What the page accepts (params.yaml ``app.limits``): file size and duration.

    (How loud speech is, for refusing a silent clip, is ``app.chunks.silence_threshold_db``:
    the same threshold that finds pauses.)
    """

    max_upload_mb: float  # larger uploads are refused with a message
    max_seconds: float  # longer audio is refused (trim it first)

    def __post_init__(self) -> None:
        if self.max_upload_mb <= 0 or self.max_seconds <= 0:
            raise ValueError("max_upload_mb and max_seconds must be > 0")


def decode(
    data: bytes, name: str, limits: MediaLimits, sample_rate: int = WHISPER_SAMPLE_RATE
) -> np.ndarray:
    """The first audio track of ``data`` as mono float32 at ``sample_rate``.

    Decoding stops as soon as the track is longer than ``limits.max_seconds``, so a
    three-hour video is refused in a second instead of being decoded into memory first.
    """
    import av

    if not data:
        raise MediaError(f"{name}: the file is empty (0 bytes)")
    size_mb = len(data) / 1e6
    if size_mb > limits.max_upload_mb:
        raise MediaError(
            f"{name}: the file is {size_mb:.1f} MB; the limit is {limits.max_upload_mb:g} MB"
        )
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(f"{name}: not an audio or video file that can be decoded ({exc})") from exc
    with container:
        if not container.streams.audio:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
            raise MediaError(f"{name}: the file has no audio track (it holds {kinds})")
        stream = container.streams.audio[0]
        # Channels are averaged here, as audio.read_audio does for the corpus (ffmpeg's own
        # mono downmix scales stereo by 1/sqrt(2) instead).
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)
        limit = int(limits.max_seconds * sample_rate)
        chunks: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().mean(axis=0))
                    total += chunks[-1].shape[0]
                if total > limit:
                    raise MediaError(
                        f"{name}: the audio is longer than the limit of "
                        f"{limits.max_seconds:g} s; trim it or raise app.max_seconds"
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().mean(axis=0))
        except (av.FFmpegError, ValueError, OSError) as exc:
            if isinstance(exc, MediaError):
                raise
            raise MediaError(f"{name}: the audio is corrupt and cannot be decoded ({exc})") from exc
    audio = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0)
    if audio.shape[0] == 0:
        raise MediaError(f"{name}: the audio track has no samples")
    if audio.shape[0] > limit:
        raise MediaError(
            f"{name}: the audio is longer than the limit of {limits.max_seconds:g} s; "
            f"trim it or raise app.max_seconds"
        )
    if not np.isfinite(audio).all():
        raise MediaError(f"{name}: the audio contains invalid (NaN or infinite) samples")
    return np.ascontiguousarray(audio)


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
        raise MediaError(f"the trim end ({end:.2f} s) must be after its start ({start:.2f} s)")
    first = max(0, int(round(start * sample_rate)))
    last = min(audio.shape[0], int(round(end * sample_rate)))
    if last <= first:
        raise MediaError(f"nothing left after trimming to {start:.2f}-{end:.2f} s")
    return audio[first:last]


def wav_bytes(audio: np.ndarray, sample_rate: int = WHISPER_SAMPLE_RATE) -> bytes:
    """16-bit WAV of ``audio``, for the page's preview player."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
