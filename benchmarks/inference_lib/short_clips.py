"""Short clips as the page gets them: one clip per call, each capped by its duration.

An upload of a few seconds is one chunk, so the page hands its engine one clip at a time;
faster-whisper transcribes one clip per call too. Both generate at most the page's cap for
the clip (``decoding.token_cap``: ``ceil(seconds * max_tokens_per_second) + slack``) in one
pass at temperature 0, so a looping model costs both the same number of tokens. Speed is wall
seconds per audio second over all clips of at most ``--short-seconds``; WER_norm is scored
against the clips' references. This is where ``whisper.context: clip`` pays: a 3 s clip
padded to 30 s spends nine tenths of the encoder (and of the decoder's cross-attention) on
padding.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.inference_lib.faster_whisper import PROMPT_TOKENS
from benchmarks.lib.machine import cpu_during, cpu_note
from swedish_transcriber.decoding import token_cap
from swedish_transcriber.whisper import SAMPLE_RATE, DecodeOptions, EncoderContext, model_context

SHORT_SECONDS = 5.0  # the "short clip": the demo's clips average 3.1 s
OWN_CONTEXT = "ct2-int8-own-context"  # the page's engine on each clip's own frames
# Whisper never trained on short contexts loops below about 10 s of context (issue 20's
# table); a model that records a clip context is served with its own minimum instead.
DEFAULT_MIN_CONTEXT_SECONDS = 10.0
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


def serving_context(model_dir: str | Path, own: bool, min_context_seconds: float) -> EncoderContext:
    """The context a benchmark row serves its export with.

    ``own`` False: padded, the 30 s window (the engine as it was before the knob). ``own``
    True: the clip context the export records (what the page would use), or ``clip`` at
    ``min_context_seconds`` for an export that records padded (an untrained model).
    """
    if not own:
        return EncoderContext.padded()
    recorded = model_context(model_dir)
    return recorded if recorded.is_clip else EncoderContext("clip", min_context_seconds)


def load_pairs(folder: str | Path) -> tuple[list[np.ndarray], list[str], list[str]]:
    """A folder of ``<id>.<audio>`` + ``<id>.txt`` pairs (``../shared/eval/real-sv``), name order.

    The clips at 16 kHz mono, their reference lines and their file names; an audio file
    without its ``.txt`` is an error naming it.
    """
    from swedish_transcriber.audio import load_audio

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    clips, references = [], []
    for path in files:
        text = path.with_suffix(".txt")
        if not text.is_file():
            raise FileNotFoundError(f"{path}: no reference {text.name} beside it")
        clips.append(load_audio(path, SAMPLE_RATE))
        references.append(text.read_text(encoding="utf-8").strip())
    return clips, references, [p.name for p in files]


def short_indices(clips: Sequence[np.ndarray], limit: float = SHORT_SECONDS) -> list[int]:
    """The clips of at most ``limit`` seconds, in order."""
    return [i for i, clip in enumerate(clips) if clip.shape[0] <= limit * SAMPLE_RATE]


def cap_options(settings: dict[str, Any]) -> DecodeOptions:
    """One pass at temperature 0 with the page's duration cap (params ``app.decode``)."""
    plain = DecodeOptions.plain(settings["batch_size"], settings["num_beams"], 1)
    return replace(
        plain,
        max_new_tokens=settings["max_new_tokens"],
        max_tokens_per_second=settings["max_tokens_per_second"],
        max_tokens_slack=settings["max_tokens_slack"],
    )


def transcribe_capped(engine, clip: np.ndarray, cap: int) -> tuple[str, int]:
    """One clip's text and its number of new tokens, generated to at most ``cap`` tokens."""
    if engine.kind == "faster-whisper":
        # faster-whisper asks CTranslate2 for len(prompt) + max_new_tokens; ours for 2 * cap:
        # CTranslate2's Whisper stops after max_length // 2 new tokens either way.
        engine.max_new_tokens = 2 * cap - PROMPT_TOKENS
        texts, tokens = engine.transcribe_with_tokens([clip])
        return texts[0], tokens[0]
    engine.options = replace(engine.options, max_new_tokens=cap)
    [ids] = engine.generate_ids([clip])
    if engine.kind == "ctranslate2":
        return engine.tokens.decode(ids).strip(), len(ids)
    return engine.processor.tokenizer.decode(ids, skip_special_tokens=True).strip(), len(ids)


def measure_short(
    engine,
    clips: Sequence[np.ndarray],
    references: Sequence[str],
    settings: dict[str, Any],
    repeats: int,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Time ``repeats`` passes over the clips (after one warm-up clip) and score the last."""
    from swedish_transcriber.evaluation.scoring import scores

    if not clips:
        return {"short_clips": 0}
    options = cap_options(settings)
    caps = [token_cap(clip.shape[0] / SAMPLE_RATE, options) for clip in clips]
    transcribe_capped(engine, clips[0], caps[0])  # warm-up: first-call allocations

    def one_pass() -> tuple[list[str], list[int], float]:
        texts, tokens = [], []
        start = time.perf_counter()
        for clip, cap in zip(clips, caps, strict=True):
            text, n = transcribe_capped(engine, clip, cap)
            texts.append(text)
            tokens.append(n)
        return texts, tokens, time.perf_counter() - start

    passes: list[float] = []
    cpu: list[float] = []  # own CPU seconds: steadier than wall time on a shared machine
    others: list[float | None] = []
    for r in range(repeats):
        (texts, tokens, seconds), own, other = cpu_during(one_pass)
        passes.append(seconds)
        cpu.append(own)
        others.append(other)
        log(
            f"short clips, pass {r + 1}/{repeats}: {seconds:.2f} s, {sum(tokens)} tokens "
            f"({cpu_note(own, other)})"
        )
    audio_seconds = sum(clip.shape[0] for clip in clips) / SAMPLE_RATE
    wall = statistics.median(passes)
    measured = scores(list(references), texts)
    return {
        "short_clips": len(clips),
        "short_audio_seconds": audio_seconds,
        "short_pass_seconds": passes,
        "short_pass_cpu_seconds": cpu,
        "short_pass_other_cpu_seconds": others,
        "short_seconds_per_audio_second": wall / audio_seconds,
        "short_cpu_seconds_per_audio_second": statistics.median(cpu) / audio_seconds,
        "short_tokens": sum(tokens),
        "short_at_cap": sum(n >= cap for n, cap in zip(tokens, caps, strict=True)),
        "short_transcripts": texts,
        "short_wer_norm": measured["wer_norm"],
        "short_cer_norm": measured["cer_norm"],
    }


def short_table(results: dict[str, dict[str, Any]], baseline: str) -> str:
    """Speed per audio second on short clips, against ``baseline`` (faster-whisper)."""
    base = results.get(baseline, {})
    lines = [
        "| engine | encoder context | clips | audio s | s per audio s | speed-up vs "
        f"{baseline} | CPU s per audio s | CPU speed-up | tokens | clips at the cap "
        "| WER_norm | CER_norm |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def ratio(r: dict[str, Any], key: str) -> str:
        return f"{base[key] / r[key]:.2f}x" if base.get(key) and r.get(key) else "n/a"

    for name, r in results.items():
        if not r.get("short_clips"):
            continue
        wall = r["short_seconds_per_audio_second"]
        cpu = r.get("short_cpu_seconds_per_audio_second")
        lines.append(
            f"| {name} | {r.get('context', 'padded')} | {r['short_clips']} | "
            f"{r['short_audio_seconds']:.1f} | {wall:.4f} | "
            f"{ratio(r, 'short_seconds_per_audio_second')} | "
            f"{'n/a' if cpu is None else f'{cpu:.4f}'} | "
            f"{ratio(r, 'short_cpu_seconds_per_audio_second')} | {r['short_tokens']} | "
            f"{r['short_at_cap']} | {r['short_wer_norm']:.3f} | {r['short_cer_norm']:.3f} |"
        )
    return "\n".join(lines)


def context_label(context: EncoderContext) -> str:
    """``padded`` or ``clip >= 10 s``: how a row's encoder context reads in a table."""
    return f"clip >= {context.min_context_seconds:g} s" if context.is_clip else "padded"
