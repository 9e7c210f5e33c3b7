"""Whisper's fixed sizes, written once, and how to decode with it (``DecodeOptions``).

The constants follow openai/whisper's ``audio.py`` and ``ModelDimensions`` (names included),
derived from each other where Whisper derives them: every Whisper model hears 30 s of 16 kHz
audio as 3000 log-mel frames (10 ms hops), its encoder halves that to 1500 positions of
20 ms, and its decoder has 448 text positions. ``DecodeOptions`` is the one description of
a decoding run, in the spirit of openai/whisper's ``decoding.DecodingOptions``: the
``transcribe`` stage (params ``evaluate.decode``), the dev transcripts during training
(``train.generation``) and the demo page (``app.decode``) all read one, each its own keys over
the shared params section ``decode``. Language and task (params ``model``) are checked here
too, and set on a generation config (:func:`set_language_and_task`): the model sources and the
CTranslate2 importer share them. Only :func:`language_code` reads transformers' language table,
on call: importing this module stays free of torch and transformers.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

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
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 log-mel frames
# ``context: clip`` rounds a clip's context up to whole seconds: a batch of clips with one
# rounded context shares a shape (length buckets), and a clip's encoder output depends on
# the clip alone, never on which clips it was batched with.
CONTEXT_STEP_FRAMES = FRAMES_PER_SECOND
CONTEXTS = ("padded", "clip")
# Where a model records the context it was trained for: a key of a transformers model's
# config.json, and of a CTranslate2 export's decode_options.json. A model without it (the
# base model, a hub model) was trained on padded windows.
CONTEXT_KEY = "encoder_context"


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode a batch of windows: batch size, search, caps on new tokens, and guards.

    Language and task are not here: they come from params ``model`` (the decoder prompt the
    labels were made with), so every decoding run of a model uses the same ones. The guards
    are openai/whisper's ``transcribe`` options with its values (temperature fallback,
    compression-ratio, log-probability and no-speech thresholds), plus a cap on new tokens
    by the clip's duration; :mod:`swedish_transcriber.decoding` applies them.
    """

    # params.yaml writes what every use shares once, as this top-level section; a use
    # (evaluate.decode, train.generation, app.decode) holds only its own keys
    # (swedish_transcriber.params reads the two together).
    SHARED_SECTION: ClassVar[str] = "decode"

    batch_size: int  # windows per model call
    num_beams: int  # 1 = greedy search (at temperature 0; sampling uses one beam)
    # New tokens per window at most: a hallucinating model stops here instead of looping
    # (a full 30 s window of fast speech is about 150 tokens).
    max_new_tokens: int
    # Decode at temperatures[0] (0.0: greedy/beam); a window that fails a threshold below is
    # decoded again at the next (sampling), until one passes or they run out.
    temperatures: tuple[float, ...]
    # zlib compression ratio of the text above this: repetitive, decode again; null: off.
    compression_ratio_threshold: float | None
    # Average log-probability of the tokens below this: unlikely, decode again; null: off.
    logprob_threshold: float | None
    # No-speech probability above this (and avg log-prob below logprob_threshold): silence,
    # the window's text is empty; null: off.
    no_speech_threshold: float | None
    # At most ceil(duration * max_tokens_per_second) + max_tokens_slack new tokens for a
    # clip of that many seconds (and never over max_new_tokens); null: max_new_tokens only.
    max_tokens_per_second: float | None
    max_tokens_slack: int
    seed: int  # the sampling seed of the fallback temperatures (deterministic decoding)

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperatures", tuple(float(t) for t in self.temperatures))
        for name in ("batch_size", "num_beams", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_new_tokens > SAMPLE_LEN:
            raise ValueError(
                f"max_new_tokens must be <= {SAMPLE_LEN} (half of Whisper's {N_TEXT_CTX} "
                f"decoder positions, as openai/whisper's sample_len), got {self.max_new_tokens}"
            )
        if not self.temperatures or any(not 0.0 <= t <= 2.0 for t in self.temperatures):
            raise ValueError(
                f"temperatures must list at least one temperature in [0, 2], got "
                f"{list(self.temperatures)}"
            )
        if self.compression_ratio_threshold is not None and self.compression_ratio_threshold <= 0:
            raise ValueError("compression_ratio_threshold must be > 0 (or null: off)")
        if self.logprob_threshold is not None and self.logprob_threshold > 0:
            raise ValueError("logprob_threshold must be <= 0, a log-probability (or null: off)")
        if self.no_speech_threshold is not None and not 0 <= self.no_speech_threshold <= 1:
            raise ValueError("no_speech_threshold must be a probability in [0, 1] (or null: off)")
        if self.max_tokens_per_second is not None and self.max_tokens_per_second <= 0:
            raise ValueError("max_tokens_per_second must be > 0 (or null: off)")
        if self.max_tokens_slack < 0:
            raise ValueError(f"max_tokens_slack must be >= 0, got {self.max_tokens_slack}")

    @classmethod
    def plain(cls, batch_size: int, num_beams: int, max_new_tokens: int) -> DecodeOptions:
        """One pass at temperature 0, no thresholds, no duration cap: decoding unguarded.

        For comparisons with other decoders (benchmarks, tests), not for transcripts.
        """
        return cls(
            batch_size=batch_size,
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            temperatures=(0.0,),
            compression_ratio_threshold=None,
            logprob_threshold=None,
            no_speech_threshold=None,
            max_tokens_per_second=None,
            max_tokens_slack=0,
            seed=0,
        )


def frames_touching(n_samples: int, n_frames: int = N_FRAMES) -> int:
    """Log-mel frames of the 30 s window whose STFT window reaches the clip's samples.

    The centred STFT's frame ``i`` covers samples ``i * HOP_LENGTH - N_FFT // 2`` onwards, so
    the frames up to ``ceil((n + N_FFT // 2) / HOP_LENGTH)`` hear the clip; the rest hear only
    the zero padding. ``featurize`` stores exactly these frames.
    """
    return min(n_frames, -(-(int(n_samples) + N_FFT // 2) // HOP_LENGTH))


@dataclass(frozen=True)
class EncoderContext:
    """How much of Whisper's 30 s window the encoder sees (params ``whisper``).

    ``padded``: every clip is padded to 30 s (3000 frames), as Whisper was trained. ``clip``:
    a clip's own frames, padded only to ``min_context_seconds`` and rounded up to whole
    seconds; the encoder's cost and the decoder's cross-attention then grow with the clip.
    Whisper untrained on short contexts loops below about 10 s (docs/context.md), so the
    minimum is a measured param, not a constant.
    """

    context: str  # padded | clip
    min_context_seconds: float  # clip: the shortest context (0 .. 30)

    def __post_init__(self) -> None:
        if self.context not in CONTEXTS:
            raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {self.context!r}")
        if not 0.0 <= self.min_context_seconds <= CHUNK_LENGTH:
            raise ValueError(
                f"min_context_seconds must be in [0, {CHUNK_LENGTH}] (Whisper's window), got "
                f"{self.min_context_seconds}"
            )

    @classmethod
    def padded(cls) -> EncoderContext:
        """Whisper's own: every window 30 s."""
        return cls(context="padded", min_context_seconds=float(CHUNK_LENGTH))

    @property
    def is_clip(self) -> bool:
        return self.context == "clip"

    def frames(self, n_frames: int) -> int:
        """Log-mel frames the encoder sees for a clip of ``n_frames`` own frames (even)."""
        if not self.is_clip:
            return N_FRAMES
        wanted = max(int(n_frames), round(self.min_context_seconds * FRAMES_PER_SECOND), 1)
        stepped = math.ceil(wanted / CONTEXT_STEP_FRAMES) * CONTEXT_STEP_FRAMES
        return min(N_FRAMES, stepped)

    def frames_for_samples(self, n_samples: int) -> int:
        """:meth:`frames` of a clip of ``n_samples`` 16 kHz samples.

        Counted as the pipeline stores a clip (:func:`frames_touching`), so the page gives a
        clip the context the transcribe stages give its stored features.
        """
        return self.frames(frames_touching(n_samples))

    def record(self) -> dict:
        """What a model directory stores under :data:`CONTEXT_KEY`."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: object, where: str | Path) -> EncoderContext:
        """The context a model recorded; a clear error naming the file if it is malformed."""
        if not isinstance(record, dict) or set(record) != {"context", "min_context_seconds"}:
            raise ValueError(f"{where}: {CONTEXT_KEY} must hold context and min_context_seconds")
        try:
            return cls(str(record["context"]), float(record["min_context_seconds"]))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {CONTEXT_KEY}: {exc}") from None


def model_context(model_dir: str | Path) -> EncoderContext:
    """The context a model directory was trained for (padded when it records none).

    A transformers checkpoint records it in ``config.json``, a CTranslate2 export in
    ``decode_options.json``; engines, the transcribe stages and the page serve each model
    with its own.
    """
    model_dir = Path(model_dir)
    for name in ("decode_options.json", "config.json"):
        path = model_dir / name
        if path.is_file():
            record = json.loads(path.read_text(encoding="utf-8")).get(CONTEXT_KEY)
            if record is not None:
                return EncoderContext.from_record(record, path)
    return EncoderContext.padded()


PADDED = EncoderContext.padded()  # Whisper's own context, the default of every engine


# --------------------------------------------------------------------------------------------
# Language and task: the decoder prompt every model of the project is tuned and decoded with

TASKS = ("transcribe", "translate")


def language_code(language: str) -> str:
    """``sv``, ``swedish`` or ``<|sv|>`` -> ``sv`` (Whisper's language codes)."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    key = language.strip().lower()
    if key.startswith("<|") and key.endswith("|>"):
        key = key[2:-2]
    if key in LANGUAGES:
        return key
    if key in TO_LANGUAGE_CODE:
        return TO_LANGUAGE_CODE[key]
    raise ValueError(
        f"unknown Whisper language {language!r}; use a code such as 'sv' or a name such as "
        f"'swedish'"
    )


def check_task(task: str) -> str:
    """``task`` itself if Whisper knows it (transcribe, translate); else a clear error."""
    if task not in TASKS:
        raise ValueError(f"unknown Whisper task {task!r}; expected one of {', '.join(TASKS)}")
    return task


def set_language_and_task(gen, language: str, task: str, where: str):
    """Make ``generate()`` transcribe ``language`` without being told (validated)."""
    code = language_code(language)
    check_task(task)
    lang_to_id = getattr(gen, "lang_to_id", None) or {}
    if getattr(gen, "is_multilingual", None) is False:
        raise ValueError(
            f"{where}: English-only Whisper model (generation config: is_multilingual false); "
            f"Swedish needs a multilingual checkpoint"
        )
    if not lang_to_id:
        raise ValueError(
            f"{where}: the generation config has no lang_to_id table (an English-only model or "
            f"an outdated generation_config.json), so the language cannot be set"
        )
    if f"<|{code}|>" not in lang_to_id:
        raise ValueError(f"{where}: language <|{code}|> is not among the model's languages")
    if not getattr(gen, "task_to_id", None) or task not in gen.task_to_id:
        raise ValueError(f"{where}: the generation config has no task_to_id entry for {task!r}")
    gen.language = code
    gen.task = task
    gen.forced_decoder_ids = None  # superseded by language/task; would be ignored anyway
    gen.return_timestamps = False
    return gen
