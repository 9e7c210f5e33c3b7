"""One engine measured in its own fresh process: load, the 60 s recording, the test clips."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.inference_lib.compare import BASELINE, PAGE_ENGINE
from benchmarks.inference_lib.faster_whisper import FasterWhisperEngine
from benchmarks.inference_lib.recording import build_recording
from benchmarks.inference_lib.settings import chunk_plan
from benchmarks.inference_lib.short_clips import (
    OWN_CONTEXT,
    context_label,
    measure_short,
    serving_context,
    short_indices,
)
from benchmarks.lib.checkout import REPO
from benchmarks.lib.machine import cpu_during, cpu_note
from benchmarks.lib.memory import peak_rss_mb
from swedish_transcriber.whisper import SAMPLE_RATE as WHISPER_SAMPLE_RATE

FASTER_WHISPER = "faster-whisper"
TEST_TABLE = REPO / "data/validated/test.parquet"


@dataclass(frozen=True)
class EngineSpec:
    """One row of the benchmark: which model directory, and how CTranslate2 computes."""

    name: str
    model_dir: str  # relative to the repo root
    ct2_compute_type: str = "int8"  # ignored by the transformers engine
    missing_hint: str = ""
    # Export ``models/finetuned`` with this quantization for the run, instead of model_dir.
    export: str | None = None
    # Served with each clip's own frames (short_clips.serving_context); else padded to 30 s.
    own_context: bool = False


ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(BASELINE, "models/finetuned", missing_hint="run `dvc repro train`"),
        EngineSpec(PAGE_ENGINE, "models/ct2", "int8", "run `dvc repro export`"),
        # The same export on each clip's own frames (whisper.context: clip).
        EngineSpec(OWN_CONTEXT, "models/ct2", "int8", "run `dvc repro export`", own_context=True),
        EngineSpec("ct2-int8-weights-float32", "models/ct2", "float32", "run `dvc repro export`"),
        EngineSpec(
            "ct2-float32", "models/finetuned", "float32", "run `dvc repro train`", "float32"
        ),
        # The peer: faster-whisper on the page's export, decoding as the page's engine does.
        EngineSpec(FASTER_WHISPER, "models/ct2", "int8", "run `dvc repro export`"),
    )
}


def load_test_clips() -> tuple[list[np.ndarray], list[str], list[str]]:
    """Every test clip decoded to 16 kHz, its reference sentence and its file, in table order."""
    import pandas as pd

    from swedish_transcriber.audio import load_audio

    table = pd.read_parquet(TEST_TABLE, columns=["audio_file", "sentence"])
    files = [str(f) for f in table["audio_file"]]
    audio = [load_audio(REPO / f if not Path(f).is_absolute() else f) for f in files]
    return audio, [str(s) for s in table["sentence"]], files


def _log(name: str, message: str) -> None:
    print(f"[{name}] {message}", file=sys.stderr, flush=True)


def run_worker(name: str, settings: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Measure one engine in this (fresh) process; the parent compares the engines."""
    from swedish_transcriber.evaluation.scoring import scores
    from swedish_transcriber.model.source import ModelLanguage
    from swedish_transcriber.serving.engines.contract import EngineSettings
    from swedish_transcriber.serving.engines.factory import load_engine
    from swedish_transcriber.serving.long_form import plan_chunks, transcribe_audio
    from swedish_transcriber.whisper import DecodeOptions

    spec = ENGINES[name]
    audio, references, _ = load_test_clips()
    recording = build_recording(audio)
    recording_reference = " ".join(references[i] for i in recording.clip_indices)
    rss_before_load = peak_rss_mb()
    language = ModelLanguage(settings["language"], settings["task"])
    # One pass, no fallback: the same work as faster-whisper's row (without_timestamps, one
    # temperature), so the engines are compared on equal terms.
    options = DecodeOptions.plain(
        batch_size=settings["batch_size"],
        num_beams=settings["num_beams"],
        max_new_tokens=settings["max_new_tokens"],
    )
    engine_settings = EngineSettings(settings["threads"], spec.ct2_compute_type)
    plan = chunk_plan(settings)
    model_dir = Path(args.model_dir) if args.model_dir else REPO / spec.model_dir
    start = time.perf_counter()
    if name == FASTER_WHISPER:
        engine = FasterWhisperEngine(
            model_dir,
            language.language,
            language.task,
            options.num_beams,
            options.max_new_tokens,
            engine_settings.threads,
            spec.ct2_compute_type,
        )
    else:
        context = serving_context(model_dir, spec.own_context, args.min_context_seconds)
        engine = load_engine(model_dir, language, options, engine_settings, context)
    load_seconds = time.perf_counter() - start
    _log(name, f"loaded {spec.model_dir} ({engine.kind}) in {load_seconds:.2f} s")

    def long_form() -> tuple[str, float]:
        start = time.perf_counter()
        transcript = transcribe_audio(recording.audio, engine, plan, options.batch_size)
        return transcript.text, time.perf_counter() - start

    text, warmup = long_form()
    _log(name, f"warm-up on {recording.seconds:g} s: {warmup:.2f} s")
    runs: list[float] = []
    cpu: list[float] = []
    others: list[float | None] = []
    texts: list[str] = []
    for i in range(args.repeats):
        (text, seconds), own, other = cpu_during(long_form)
        runs.append(seconds)
        cpu.append(own)
        others.append(other)
        texts.append(text)
        _log(name, f"run {i + 1}/{args.repeats}: {seconds:.2f} s ({cpu_note(own, other)})")
    rss_speed = peak_rss_mb()

    clips = audio[: args.clips] if args.clips else audio
    refs = references[: len(clips)]
    batch = args.agreement_batch_size
    test_transcripts: list[str] = []
    start = time.perf_counter()
    for i in range(0, len(clips), batch):
        test_transcripts += engine.transcribe(clips[i : i + batch])
        _log(name, f"test clips {len(test_transcripts)}/{len(clips)}")
    test_seconds = time.perf_counter() - start
    test_scores = scores(refs, test_transcripts)
    short = short_indices(clips, args.short_seconds)
    short_result = measure_short(
        engine,
        [clips[i] for i in short],
        [refs[i] for i in short],
        settings,
        args.repeats,
        lambda message: _log(name, message),
    )
    context = getattr(engine, "context", None)
    return {
        "engine": name,
        "context": "padded" if context is None else context_label(context),
        **short_result,
        "model_dir": str(model_dir.relative_to(REPO))
        if model_dir.is_relative_to(REPO)
        else f"{spec.model_dir} exported to {spec.export}",
        "kind": engine.kind,
        "ct2_compute_type": spec.ct2_compute_type if engine.kind == "ctranslate2" else None,
        "load_seconds": load_seconds,
        "recording_seconds": recording.seconds,
        "recording_chunks": len(plan_chunks(recording.audio, plan)),
        "recording_clips": len(recording.clip_indices),
        "recording_speech_seconds": recording.speech_seconds,
        "warmup_seconds": warmup,
        "run_seconds": runs,
        "run_cpu_seconds": cpu,
        "run_other_cpu_seconds": others,
        "long_form_text": texts[-1],
        "long_form_deterministic": set(texts) == {text},
        "long_form_wer_norm": scores([recording_reference], [texts[-1]])["wer_norm"],
        "rss_before_load_mb": rss_before_load,
        "peak_rss_mb": rss_speed,
        "peak_rss_after_test_clips_mb": peak_rss_mb(),
        "test_clips": len(clips),
        "test_audio_seconds": sum(c.shape[0] for c in clips) / WHISPER_SAMPLE_RATE,
        "test_seconds": test_seconds,
        "test_transcripts": test_transcripts,
        "test_wer_norm": test_scores["wer_norm"],
        "test_wer": test_scores["wer"],
    }
