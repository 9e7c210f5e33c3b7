"""Decoding, resampling and measuring audio.

Whisper listens at 16 kHz mono; Common Voice ships 48 kHz (older releases) or 32 kHz MP3.
``soundfile`` (libsndfile >= 1.1) decodes and encodes MP3 itself and ``soxr`` resamples, so
no system ffmpeg is needed. Decoding errors are turned into ``AudioError`` naming the file,
so that a stage can quarantine the clip with that reason instead of crashing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from swedish_transcriber.whisper import FRAME_SECONDS
from swedish_transcriber.whisper import SAMPLE_RATE as WHISPER_SAMPLE_RATE


class AudioError(ValueError):
    """A clip could not be read: missing, empty, corrupt or in an unknown format."""


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file to mono float32 in [-1, 1] at its own sample rate."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: clip file is missing")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: clip file is empty (0 bytes)")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"{path}: cannot decode audio ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: audio has no samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    return np.ascontiguousarray(mono, dtype=np.float32), int(sr)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = WHISPER_SAMPLE_RATE) -> np.ndarray:
    """Resample mono float32 audio (a no-op when the rates agree)."""
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def load_audio(path: str | Path, sample_rate: int = WHISPER_SAMPLE_RATE) -> np.ndarray:
    """Decode ``path`` and resample it to ``sample_rate`` (Whisper's 16 kHz by default)."""
    audio, sr = read_audio(path)
    return resample(audio, sr, sample_rate)


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono audio; the format follows the extension (.mp3, .flac, .wav)."""
    path = Path(path)
    clipped = np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)
    if path.suffix.lower() == ".mp3":
        sf.write(path, clipped, sample_rate, format="MP3", subtype="MPEG_LAYER_III")
    else:
        sf.write(path, clipped, sample_rate)


def frame_rms(
    audio: np.ndarray, sample_rate: int, frame_seconds: float = FRAME_SECONDS
) -> np.ndarray:
    """RMS of each whole ``frame_seconds`` frame; a clip shorter than a frame is one frame.

    The one measure of loudness over time: validation's silence ratio, the demo page's
    silent-clip check and its cuts at pauses all use it, so "silent" means the same everywhere.
    """
    n = int(audio.shape[0])
    frame = max(1, int(round(frame_seconds * sample_rate)))
    n_frames = max(1, n // frame)
    frames = audio[: n_frames * frame].reshape(n_frames, -1) if n >= frame else audio[None, :]
    return np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))


def frame_levels_db(
    audio: np.ndarray, sample_rate: int = WHISPER_SAMPLE_RATE, frame_seconds: float = FRAME_SECONDS
) -> np.ndarray:
    """``frame_rms`` in dBFS (floor -120 dB)."""
    return 20.0 * np.log10(np.maximum(frame_rms(audio, sample_rate, frame_seconds), 1e-6))


@dataclass(frozen=True)
class AudioStats:
    """Measurements the validation suite uses to catch broken or unusable clips."""

    duration: float
    sample_rate: int
    peak: float
    rms: float
    silence_ratio: float
    clipping_ratio: float


def measure(
    audio: np.ndarray,
    sample_rate: int,
    silence_threshold_db: float,
    clipping_threshold: float,
    frame_seconds: float = FRAME_SECONDS,
) -> AudioStats:
    """Duration, peak, RMS, the fraction of silent 20 ms frames and of clipped samples."""
    n = int(audio.shape[0])
    duration = n / float(sample_rate)
    absolute = np.abs(audio)
    peak = float(absolute.max()) if n else 0.0
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if n else 0.0
    threshold = 10.0 ** (silence_threshold_db / 20.0)
    silence_ratio = float(np.mean(frame_rms(audio, sample_rate, frame_seconds) < threshold))
    clipping_ratio = float(np.mean(absolute >= clipping_threshold)) if n else 0.0
    return AudioStats(
        duration=duration,
        sample_rate=int(sample_rate),
        peak=peak,
        rms=rms,
        silence_ratio=silence_ratio,
        clipping_ratio=clipping_ratio,
    )
