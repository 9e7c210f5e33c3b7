"""Whisper's log-mel features in numpy alone, read off a model directory's feature settings.

The CTranslate2 engine needs the same 80 (or 128) x 3000 log-mel frames that transformers'
``WhisperFeatureExtractor`` computes, but importing transformers (and with it torch) costs the
page about half a gigabyte of memory for a few lines of arithmetic. The recipe is Whisper's:
pad or trim the clip to the 30 s window, a centred STFT (reflect padding, a periodic Hann
window of ``n_fft`` points, hop ``hop_length``), power spectrum, Slaney-normalised mel filters
from 0 to 8 kHz, ``log10`` floored at 1e-10, every value raised to at least the clip's maximum
minus 8 (an 80 dB range), then ``(x + 4) / 4``. The last STFT frame is dropped so the window
gives exactly ``nb_max_frames`` frames. A shorter encoder context (``whisper.context: clip``)
takes the first frames of that window, computing only the frames it needs. Only numpy is
imported here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from swedish_transcriber.whisper import (
    CHUNK_LENGTH,
    HOP_LENGTH,
    N_FFT,
    N_FRAMES,
    N_MELS,
    N_SAMPLES,
    SAMPLE_RATE,
)

WHISPER_MAX_HZ = 8000.0  # Whisper's filters stop at 8 kHz, whatever the sampling rate


@dataclass(frozen=True)
class MelSettings:
    """A Whisper feature extractor's settings (``preprocessor_config.json``)."""

    n_mels: int = N_MELS
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    sampling_rate: int = SAMPLE_RATE
    n_samples: int = N_SAMPLES  # the 30 s window
    n_frames: int = N_FRAMES
    # (n_fft // 2 + 1, n_mels). None: computed (Slaney), as transformers always does: it
    # ignores filters stored in the config, which older exports wrote (the same filters).
    mel_filters: np.ndarray | None = None

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> MelSettings:
        """The settings in ``model_dir/preprocessor_config.json``; a clear error if absent."""
        path = Path(model_dir) / "preprocessor_config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{model_dir}: no Whisper processor (preprocessor_config.json)")
        config = json.loads(path.read_text(encoding="utf-8"))
        if config.get("dither", 0.0):
            # Dither adds random noise (a training-time augmentation): features would no
            # longer be deterministic, nor equal to what the model was evaluated with.
            raise ValueError(f"{path}: dither {config['dither']} is not supported (use 0.0)")
        sampling_rate = int(config.get("sampling_rate", SAMPLE_RATE))
        hop_length = int(config.get("hop_length", HOP_LENGTH))
        window = int(config.get("chunk_length", CHUNK_LENGTH)) * sampling_rate
        n_samples = int(config.get("n_samples", window))
        filters = config.get("mel_filters")
        settings = cls(
            n_mels=int(config.get("feature_size", N_MELS)),
            n_fft=int(config.get("n_fft", N_FFT)),
            hop_length=hop_length,
            sampling_rate=sampling_rate,
            n_samples=n_samples,
            n_frames=int(config.get("nb_max_frames", n_samples // hop_length)),
            mel_filters=None if filters is None else np.asarray(filters, dtype=np.float64),
        )
        expected = (settings.n_fft // 2 + 1, settings.n_mels)
        if settings.mel_filters is None or settings.mel_filters.shape == expected:
            return settings
        if settings.mel_filters.shape == expected[::-1]:  # older exports: (n_mels, bins)
            return replace(settings, mel_filters=settings.mel_filters.T)
        raise ValueError(
            f"{path}: mel_filters has shape {settings.mel_filters.shape}, expected {expected}"
        )


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz * 3.0 / 200.0
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) * 27.0 / np.log(6.4)
    return np.where(hz >= 1000.0, log, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """The inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * 200.0 / 3.0
    log = 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0))
    return np.where(mel >= 15.0, log, linear)


def slaney_mel_filters(
    n_mels: int, n_fft: int, sampling_rate: int, max_hz: float = WHISPER_MAX_HZ
) -> np.ndarray:
    """Triangular filters, ``(n_fft // 2 + 1, n_mels)``, each of unit area (Slaney norm).

    The filters' corners are ``n_mels + 2`` points evenly spaced on the mel scale from 0 Hz
    to ``max_hz``; each filter rises from one corner to the next and falls to the third.
    """
    fft_hz = np.linspace(0.0, sampling_rate / 2, n_fft // 2 + 1)
    corners = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(max_hz), n_mels + 2))
    widths = np.diff(corners)
    distance = corners[None, :] - fft_hz[:, None]  # (bins, n_mels + 2)
    rising = -distance[:, :-2] / widths[:-1]
    falling = distance[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (corners[2:] - corners[:-2]))[None, :]


class LogMel:
    """Clips (16 kHz mono float) to Whisper's input features, ``(batch, n_mels, n_frames)``."""

    def __init__(self, settings: MelSettings) -> None:
        self.settings = settings
        s = settings
        filters = (
            s.mel_filters
            if s.mel_filters is not None
            else slaney_mel_filters(s.n_mels, s.n_fft, s.sampling_rate)
        )
        self.filters = np.ascontiguousarray(filters.T, dtype=np.float32)  # (n_mels, bins)
        # Periodic Hann, as torch.hann_window and transformers' window_function use.
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(s.n_fft) / s.n_fft)).astype(
            np.float32
        )

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> LogMel:
        return cls(MelSettings.from_model_dir(model_dir))

    def check_lengths(self, clips: Sequence[np.ndarray]) -> None:
        """Refuse a clip over the window: trimming it would silently lose its end."""
        for clip in clips:
            if clip.shape[0] > self.settings.n_samples:
                raise ValueError(
                    f"a clip of {clip.shape[0] / self.settings.sampling_rate:.1f} s is over "
                    f"Whisper's {self.settings.n_samples / self.settings.sampling_rate:g} s "
                    f"window; split long audio first (long_form.transcribe_audio)"
                )

    def one(self, clip: np.ndarray, n_frames: int | None = None) -> np.ndarray:
        """One clip's features, ``(n_mels, n_frames)`` float32 (default: the whole window).

        A shorter ``n_frames`` (``whisper.context: clip``) gives exactly the first
        ``n_frames`` frames of the window's features, not features of a shorter window: the
        ``max - 8`` floor is taken over every frame that touches the clip, even those past
        ``n_frames``, and the STFT reflects the window's zeros at the clip's end. That is what
        the pipeline's stored frames and ``pad_value`` rebuild (``features.pad_features``), so
        the page feeds a model what it was trained and evaluated on.
        """
        s = self.settings
        n_frames = s.n_frames if n_frames is None else int(n_frames)
        if not 1 <= n_frames <= s.n_frames:
            raise ValueError(f"n_frames must be in [1, {s.n_frames}], got {n_frames}")
        audio = np.zeros(s.n_samples, dtype=np.float32)
        n = min(int(clip.shape[0]), s.n_samples)
        audio[:n] = np.asarray(clip, dtype=np.float32).reshape(-1)[:n]
        half = s.n_fft // 2
        padded = np.pad(audio, half, mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(padded, s.n_fft)[:: s.hop_length]
        # Frames that hold only the zero padding have zero power: skip their FFTs (a 5 s
        # chunk needs a sixth of them). The centred STFT's last frame is dropped.
        used = min(s.n_frames, -(-(n + half) // s.hop_length))
        spectrum = np.fft.rfft(frames[:used] * self.window, axis=-1)
        power = spectrum.real**2 + spectrum.imag**2  # (used, bins)
        # The window's other frames are all at the 1e-10 floor, below every used frame: they
        # never raise the maximum, so the frames computed here give the window's maximum.
        width = s.n_frames if n_frames == s.n_frames else max(used, n_frames)
        mel = np.zeros((s.n_mels, width), dtype=np.float32)
        mel[:, :used] = self.filters @ power.T.astype(np.float32)
        log_mel = np.log10(np.maximum(mel, 1e-10))
        log_mel = np.maximum(log_mel, log_mel.max() - 8.0)
        return ((log_mel[:, :n_frames] + 4.0) / 4.0).astype(np.float32)

    def __call__(self, clips: Sequence[np.ndarray], n_frames: int | None = None) -> np.ndarray:
        """A batch of features; each clip zero-padded to the window (none may be longer).

        ``n_frames``: the first that many frames of each clip's window (all by default).
        """
        self.check_lengths(clips)
        width = self.settings.n_frames if n_frames is None else int(n_frames)
        out = np.empty((len(clips), self.settings.n_mels, width), np.float32)
        for i, clip in enumerate(clips):
            out[i] = self.one(clip, width)
        return out
