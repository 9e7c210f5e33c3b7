"""Whisper's fixed sizes, written once, and how to decode with it (``DecodeOptions``).

The constants follow openai/whisper's ``audio.py`` and ``ModelDimensions`` (names included),
derived from each other where Whisper derives them: every Whisper model hears 30 s of 16 kHz
audio as 3000 log-mel frames (10 ms hops), its encoder halves that to 1500 positions of
20 ms, and its decoder has 448 text positions. ``DecodeOptions`` is the one description of
a decoding run, in the spirit of openai/whisper's ``decoding.DecodingOptions``: the
``transcribe`` stage (params ``evaluate.decode``), the dev transcripts during training
(``train.generation``) and the demo page (``app.decode``) all read one.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE = 16_000  # Hz: what the feature extractor expects
CHUNK_LENGTH = 30  # seconds: the encoder's input window
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples in one window
N_FFT = 400  # samples per STFT window (25 ms)
N_MELS = 80  # mel bins of the multilingual models up to large-v2 (large-v3: 128)
HOP_LENGTH = 160  # samples between log-mel frames (10 ms)
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 log-mel frames in one window
N_SAMPLES_PER_TOKEN = HOP_LENGTH * 2  # the encoder's stride-2 convolution: 320 samples
# 20 ms: one encoder position. The project measures loudness (silence ratio, pauses) on
# frames of the same length.
FRAME_SECONDS = N_SAMPLES_PER_TOKEN / SAMPLE_RATE
N_TEXT_CTX = 448  # decoder positions (``max_target_positions``): prompt and transcript
# openai/whisper's default ``sample_len``: new tokens at most per window. CTranslate2's
# Whisper stops after ``max_length // 2`` new tokens, so this is also its ceiling.
SAMPLE_LEN = N_TEXT_CTX // 2  # 224


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode a batch of windows: batch size, search, and a cap on new tokens.

    Language and task are not here: they come from params ``model`` (the decoder prompt the
    labels were made with), so every decoding run of a model uses the same ones.
    """

    batch_size: int  # windows per model call
    num_beams: int  # 1 = greedy search
    # New tokens per window at most: a hallucinating model stops here instead of looping
    # (a full 30 s window of fast speech is about 150 tokens).
    max_new_tokens: int

    def __post_init__(self) -> None:
        for name in ("batch_size", "num_beams", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_new_tokens > SAMPLE_LEN:
            raise ValueError(
                f"max_new_tokens must be <= {SAMPLE_LEN} (half of Whisper's {N_TEXT_CTX} "
                f"decoder positions, as openai/whisper's sample_len), got {self.max_new_tokens}"
            )
