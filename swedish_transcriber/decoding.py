"""Decoding that does not loop: openai/whisper's guards, written once, without torch.

A fine-tuned Whisper can fall into a loop on a real clip ("sex" and then "jjjjjjj…" until the
token cap). openai/whisper's ``transcribe`` guards every 30 s window in three ways, and both
engines here (transformers, torch-free CTranslate2) use the same ones, from this module:

* **temperature fallback** (``decode_with_fallback`` in whisper's transcribe.py): decode at
  ``temperatures[0]`` (0.0: greedy or beam search); a window whose text compresses too well
  (zlib ratio > ``compression_ratio_threshold``: repetition) or whose average token
  log-probability is below ``logprob_threshold`` is decoded again at the next temperature
  (sampling), until one passes or the temperatures run out (then the last is kept);
* **no-speech check**: a window whose ``<|nospeech|>`` / ``<|nocaptions|>`` probability
  (at the ``<|startoftranscript|>`` position, as whisper and CTranslate2 read it) is over
  ``no_speech_threshold`` *and* whose average log-probability is under ``logprob_threshold``
  is silence: its text is empty;
* **a cap by duration** (this project's, on top of ``max_new_tokens``): a clip of ``d`` seconds
  gets at most ``ceil(d * max_tokens_per_second) + max_tokens_slack`` new tokens, so a loop on
  a 2 s clip stops after a few dozen tokens instead of 224.

The engines supply one function, ``decode(windows, temperature, caps, seed) -> [Attempt]``;
everything that decides is here, as pure functions over an attempt's tokens, summed
log-probability, no-speech probability and text.
"""

from __future__ import annotations

import enum
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from swedish_transcriber.whisper import DecodeOptions


def compression_ratio(text: str) -> float:
    """UTF-8 length over zlib-compressed length (whisper's ``utils.compression_ratio``).

    A loop ("jjjjjjjj…", "och och och …") compresses far better than language: its ratio
    climbs past whisper's 2.4 while ordinary sentences stay near 1-1.5.
    """
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def token_cap(duration: float, options: DecodeOptions) -> int:
    """New tokens at most for a clip of ``duration`` seconds: the duration rule and the cap.

    ``min(max_new_tokens, ceil(duration * max_tokens_per_second) + max_tokens_slack)``;
    ``max_tokens_per_second: null`` leaves only ``max_new_tokens``.
    """
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(
            f"a clip's duration must be a finite number of seconds >= 0, got {duration}"
        )
    if options.max_tokens_per_second is None:
        return options.max_new_tokens
    by_duration = math.ceil(round(duration * options.max_tokens_per_second, 6))
    return max(1, min(options.max_new_tokens, by_duration + options.max_tokens_slack))


@dataclass(frozen=True)
class Attempt:
    """One decoding of one window: what came out and how sure the model was.

    ``sum_logprob`` is the summed log-probability of the new tokens *and* of the end token
    when the window ended with one (whisper's ``sum_logprobs``); ``tokens`` excludes it.
    """

    tokens: tuple[int, ...]  # new token ids, the end token excluded
    text: str
    sum_logprob: float
    no_speech_prob: float  # probability of the no-speech token at <|startoftranscript|>
    temperature: float

    @property
    def avg_logprob(self) -> float:
        """Whisper's ``avg_logprob``: ``sum_logprob / (len(tokens) + 1)`` (the end counted)."""
        return self.sum_logprob / (len(self.tokens) + 1)

    @property
    def compression_ratio(self) -> float:
        return compression_ratio(self.text)


class Verdict(enum.Enum):
    """What becomes of an attempt."""

    ACCEPT = "accept"  # keep its text
    RETRY = "retry"  # repetitive or unlikely: decode again at the next temperature
    SILENT = "silent"  # no speech: the window's text is empty


def needs_fallback(attempt: Attempt, options: DecodeOptions) -> bool:
    """Too repetitive (compression ratio) or too unlikely (average log-probability)."""
    ratio, logprob = options.compression_ratio_threshold, options.logprob_threshold
    return (ratio is not None and attempt.compression_ratio > ratio) or (
        logprob is not None and attempt.avg_logprob < logprob
    )


def is_silent(attempt: Attempt, options: DecodeOptions) -> bool:
    """Whisper's skip rule: no-speech probability over its threshold, and not a confident text.

    With ``logprob_threshold: null`` the no-speech probability decides alone (as whisper).
    """
    if options.no_speech_threshold is None or attempt.no_speech_prob <= options.no_speech_threshold:
        return False
    return options.logprob_threshold is None or attempt.avg_logprob < options.logprob_threshold


def judge(attempt: Attempt, options: DecodeOptions) -> Verdict:
    """Accept, retry at the next temperature, or call the window silent (whisper's order).

    Silence wins over a fallback when the log-probability threshold is set: a silent window
    is not decoded again (whisper: "don't fall back if the segment is silent").
    """
    if options.logprob_threshold is not None and is_silent(attempt, options):
        return Verdict.SILENT
    if needs_fallback(attempt, options):
        return Verdict.RETRY
    return Verdict.SILENT if is_silent(attempt, options) else Verdict.ACCEPT


# decode(window indices, temperature, caps of those windows, seed) -> one attempt per window
Decoder = Callable[[Sequence[int], float, Sequence[int], int], list[Attempt]]


def decode_with_fallback(
    durations: Sequence[float], decode: Decoder, options: DecodeOptions
) -> list[Attempt]:
    """Each window's final attempt: the first that passes, or its last temperature's.

    Only the windows that failed are decoded again, together, at the next temperature; the
    sampling seed of temperature ``i`` is ``options.seed + i``, so the outcome is fixed by
    the inputs, the batch and the params.
    """
    caps = [token_cap(d, options) for d in durations]
    final: list[Attempt | None] = [None] * len(durations)
    pending = list(range(len(durations)))
    for i, temperature in enumerate(options.temperatures):
        if not pending:
            break
        attempts = decode(pending, temperature, [caps[j] for j in pending], options.seed + i)
        if len(attempts) != len(pending):
            raise RuntimeError(f"the decoder returned {len(attempts)} attempts for {len(pending)}")
        retry = []
        for j, attempt in zip(pending, attempts, strict=True):
            final[j] = attempt
            if judge(attempt, options) is Verdict.RETRY:
                retry.append(j)
        pending = retry
    return [a for a in final if a is not None]


def final_text(attempt: Attempt, options: DecodeOptions) -> str:
    """The window's transcript: empty when it is silence, else the attempt's text, stripped."""
    return "" if is_silent(attempt, options) else attempt.text.strip()


def transcripts(durations: Sequence[float], decode: Decoder, options: DecodeOptions) -> list[str]:
    """The guarded transcript of every window (see ``decode_with_fallback``)."""
    return [final_text(a, options) for a in decode_with_fallback(durations, decode, options)]
