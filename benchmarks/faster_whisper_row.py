"""faster-whisper beside the page's CTranslate2 engine: the same export, the same chunks.

Usage (repo root, .venv active with the ``dev`` extras; needs ``models/ct2`` from
``dvc repro export`` and ``data/validated/test.parquet`` from ``dvc repro validate``):

    python benchmarks/faster_whisper_row.py                    # 3 timed runs, params' app settings
    python benchmarks/faster_whisper_row.py --model-dir /tmp/tiny-ct2 --synthetic --repeats 1
    python benchmarks/faster_whisper_row.py --model-dir /tmp/base-ct2 --audio-dir /tmp/tts
    python benchmarks/faster_whisper_row.py --model-dir /tmp/base-ct2 \
        --pairs-dir ../shared/eval/real-sv --min-context-seconds 10   # + short clips, WER

Engines (each in its own fresh subprocess, so that its peak memory is its own alone):

* ``ct2-int8``: the page's ``CTranslate2Engine`` (numpy log-mel, ``tokenizers``; no torch),
  chunks batched ``app.decode.batch_size`` at a time as the page sends them;
* ``ct2-int8-own-context``: the same engine with ``whisper.context: clip``: each chunk's own
  log-mel frames (rounded up to whole seconds, at least a minimum) instead of the 30 s
  window. The context is the one the export records; an export that records ``padded`` (an
  untrained model) gets ``clip`` at ``--min-context-seconds``. ``ct2-int8`` is served padded
  whatever the export records, as the page served every model before the knob;
* ``faster-whisper``: faster-whisper's ``WhisperModel(model dir, device="cpu",
  compute_type="int8", cpu_threads=app.engine.threads)``, one chunk per ``transcribe`` call (it has
  no batched call for given chunks), set to decode as our engine does: language and task
  forced, beam ``app.decode.num_beams``, temperature 0 without fallback (no compression-ratio,
  log-prob or no-speech thresholds), no timestamps, no VAD, no previous text as a prompt,
  and the same cap on new tokens. Two differences remain: faster-whisper computes its own
  log-mel and suppresses its own list of non-speech and special tokens.

Both get the 60 s recording of ``benchmarks/inference.py`` (test clips with 0.5 s gaps; or,
with ``--synthetic``, speech-like tones for a model that is not trained, e.g. the tiny test
model; with ``--audio-dir``, that folder's files in name order), cut by
``long_form.plan_chunks`` with params.yaml's ``app`` settings. One warm-up run, then
``--repeats`` timed runs; the record per engine has the wall seconds of each run, the tokens
generated (per chunk and in all), CPU seconds (own, and other processes' on the machine: a
shared CPU makes the numbers noisy) and the peak RSS after the runs. The table gives wall
seconds per audio second and per generated token. Results go to ``--out`` as JSON.

With ``--pairs-dir`` (audio files with a ``.txt`` reference each, e.g. ``../shared/eval/real-sv``)
the recording is made of that folder's clips, and each engine also transcribes every clip of
at most ``--short-seconds`` (5) alone, as the page gets a short upload
(``inference_lib.short_clips``): seconds per audio second, speed-up over faster-whisper and
WER_norm / CER_norm against the references.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.inference_lib import compare, worker
from benchmarks.inference_lib.faster_whisper import FasterWhisperEngine
from benchmarks.inference_lib.recording import build_recording
from benchmarks.inference_lib.settings import chunk_plan, decode_settings
from benchmarks.inference_lib.short_clips import (
    DEFAULT_MIN_CONTEXT_SECONDS,
    OWN_CONTEXT,
    SHORT_SECONDS,
    context_label,
    load_pairs,
    measure_short,
    serving_context,
    short_indices,
    short_table,
)
from benchmarks.lib import machine, workers
from benchmarks.lib.checkout import REPO
from benchmarks.lib.memory import peak_rss_mb
from benchmarks.lib.report import write_report
from swedish_transcriber.whisper import SAMPLE_RATE as WHISPER_SAMPLE_RATE

DEFAULT_OUT = REPO / "benchmarks/results/faster_whisper_row.json"
DEFAULT_MODEL = "models/ct2"
OURS = "ct2-int8"
FASTER_WHISPER = "faster-whisper"
ENGINES = (OURS, OWN_CONTEXT, FASTER_WHISPER)
MORE_PACKAGES = ("faster-whisper", "tokenizers")  # beside machine.versions()


def synthetic_clips(n: int = 40, seed: int = 0) -> list[np.ndarray]:
    """Speech-like clips of 2-6 s (harmonics, syllable-rate loudness, a little noise)."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(n):
        t = np.arange(int(rng.uniform(2.0, 6.0) * WHISPER_SAMPLE_RATE)) / WHISPER_SAMPLE_RATE
        f0 = rng.uniform(100, 220)
        voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))
        envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
        clips.append(0.15 * voice * envelope + 0.01 * rng.standard_normal(t.shape))
    return [c.astype(np.float32) for c in clips]


def load_clips(args: argparse.Namespace) -> list[np.ndarray]:
    """The clips the 60 s recording is made of: synthetic, a folder's files, or the test set."""
    from swedish_transcriber.audio import load_audio

    if args.synthetic:
        return synthetic_clips()
    if args.pairs_dir:
        return load_pairs(args.pairs_dir)[0]
    if args.audio_dir:
        files = sorted(p for p in Path(args.audio_dir).iterdir() if p.is_file())
        return [load_audio(f) for f in files]
    return worker.load_test_clips()[0]


def ms_per_token(wall_seconds: float, tokens: int) -> float | None:
    return 1000 * wall_seconds / tokens if tokens else None


# --------------------------------------------------------------------------- engines


def load_ours(model_dir: Path, s: dict[str, Any], own: bool = False) -> tuple[Callable, Any]:
    """The page's engine; returns chunks -> (texts, tokens per chunk), batched as the page.

    ``own``: served with each chunk's own frames (``short_clips.serving_context``).
    """
    from swedish_transcriber.model.source import ModelLanguage
    from swedish_transcriber.serving.engines.contract import EngineSettings
    from swedish_transcriber.serving.engines.factory import load_engine
    from swedish_transcriber.whisper import DecodeOptions

    engine = load_engine(
        model_dir,
        ModelLanguage(s["language"], s["task"]),
        # Unguarded, as faster-whisper runs here (one pass, no fallback).
        DecodeOptions.plain(s["batch_size"], s["num_beams"], s["max_new_tokens"]),
        EngineSettings(s["threads"], "int8"),
        serving_context(model_dir, own, s["min_context_seconds"]),
    )

    def run(chunks: list[np.ndarray]) -> tuple[list[str], list[int]]:
        texts: list[str] = []
        tokens: list[int] = []
        for i in range(0, len(chunks), s["batch_size"]):
            for ids in engine.generate_ids(chunks[i : i + s["batch_size"]]):
                texts.append(engine.tokens.decode(ids).strip())  # as engine.transcribe does
                tokens.append(len(ids))
        return texts, tokens

    return run, engine


def load_own_context(model_dir: Path, s: dict[str, Any]) -> tuple[Callable, Any]:
    """The page's engine on each chunk's own frames."""
    return load_ours(model_dir, s, own=True)


def load_faster_whisper(model_dir: Path, s: dict[str, Any]) -> tuple[Callable, Any]:
    """faster-whisper on the same export, one chunk per call, decoding as our engine."""
    engine = FasterWhisperEngine(
        model_dir, s["language"], s["task"], s["num_beams"], s["max_new_tokens"], s["threads"]
    )
    return engine.transcribe_with_tokens, engine


LOADERS = {OURS: load_ours, OWN_CONTEXT: load_own_context, FASTER_WHISPER: load_faster_whisper}


# --------------------------------------------------------------------------- worker


def run_worker(name: str, s: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Measure one engine in this (fresh) process."""
    from swedish_transcriber.serving.long_form import plan_chunks

    clips = load_clips(args)
    recording = build_recording(clips)
    ranges = plan_chunks(recording.audio, chunk_plan(s))
    chunks = [recording.audio[a:b] for a, b in ranges]
    model_dir = Path(args.model_dir)
    rss_before_load = peak_rss_mb()
    start = time.perf_counter()
    transcribe, engine = LOADERS[name](model_dir, s)
    load_seconds = time.perf_counter() - start
    context = getattr(engine, "context", None)

    def timed() -> tuple[list[str], list[int], float]:
        start = time.perf_counter()
        texts, tokens = transcribe(chunks)
        return texts, tokens, time.perf_counter() - start

    texts, tokens, warmup = timed()
    print(f"[{name}] warm-up {warmup:.2f} s, {sum(tokens)} tokens", file=sys.stderr, flush=True)
    runs: list[float] = []
    cpu: list[float] = []
    others: list[float | None] = []
    outputs: list[tuple[list[str], list[int]]] = []
    for i in range(args.repeats):
        (texts, tokens, seconds), own, other = machine.cpu_during(timed)
        runs.append(seconds)
        cpu.append(own)
        others.append(other)
        outputs.append((texts, tokens))
        print(
            f"[{name}] run {i + 1}/{args.repeats}: {seconds:.2f} s, {sum(tokens)} tokens "
            f"({machine.cpu_note(own, other)})",
            file=sys.stderr,
            flush=True,
        )
    short: dict[str, Any] = {}
    if args.pairs_dir:
        clips, references, _ = load_pairs(args.pairs_dir)
        keep = short_indices(clips, args.short_seconds)
        short = measure_short(
            engine,
            [clips[i] for i in keep],
            [references[i] for i in keep],
            s,
            args.repeats,
            lambda message: print(f"[{name}] {message}", file=sys.stderr, flush=True),
        )
    return {
        "engine": name,
        "context": "padded" if context is None else context_label(context),
        **short,
        "model_dir": str(model_dir),
        "compute_type": "int8",
        "batch_size": s["batch_size"] if name == OURS else 1,
        "load_seconds": load_seconds,
        "recording_seconds": recording.seconds,
        "recording_chunks": len(chunks),
        "chunk_seconds": [(b - a) / WHISPER_SAMPLE_RATE for a, b in ranges],
        "warmup_seconds": warmup,
        "run_seconds": runs,
        "run_cpu_seconds": cpu,
        "run_other_cpu_seconds": others,
        "generated_tokens": sum(tokens),
        "chunk_tokens": tokens,
        "chunk_texts": texts,
        "long_form_text": " ".join(t for t in texts if t),
        "deterministic": all(o == (texts, tokens) for o in outputs),
        "rss_before_load_mb": rss_before_load,
        "peak_rss_mb": peak_rss_mb(),
    }


# --------------------------------------------------------------------------- parent


def row(result: dict[str, Any]) -> dict[str, Any]:
    """One line of the table: speed per audio second and per generated token, memory."""
    wall = statistics.median(result["run_seconds"])
    cpu = statistics.median(result["run_cpu_seconds"])
    tokens = result["generated_tokens"]
    return {
        "engine": result["engine"],
        "context": result.get("context", "padded"),
        "load_seconds": result["load_seconds"],
        "wall_seconds": wall,
        "rtf": result["recording_seconds"] / wall,
        "seconds_per_audio_second": wall / result["recording_seconds"],
        "generated_tokens": tokens,
        "ms_per_token": ms_per_token(wall, tokens),
        # Own CPU time: less sensitive than wall time to other work on a shared machine.
        "cpu_ms_per_token": ms_per_token(cpu, tokens),
        "peak_rss_mb": result["peak_rss_mb"],
    }


def markdown_table(rows: Sequence[dict[str, Any]], seconds: float) -> str:
    lines = [
        f"| engine | encoder context | load s | wall s for {seconds:g} s | RTF | s per audio s "
        "| tokens | ms per token | CPU ms per token | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        wall, cpu = (
            "n/a" if r[k] is None else f"{r[k]:.1f}" for k in ("ms_per_token", "cpu_ms_per_token")
        )
        lines.append(
            f"| {r['engine']} | {r['context']} | {r['load_seconds']:.2f} | "
            f"{r['wall_seconds']:.2f} | "
            f"{r['rtf']:.1f} | {r['seconds_per_audio_second']:.3f} | {r['generated_tokens']} | "
            f"{wall} | {cpu} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def same_chunk_words(a: dict[str, Any], b: dict[str, Any]) -> int:
    """Chunks whose normalized words are the same in both engines' transcripts."""
    return sum(
        compare.words(x) == compare.words(y)
        for x, y in zip(a["chunk_texts"], b["chunk_texts"], strict=True)
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--model-dir", default=str(REPO / DEFAULT_MODEL), help="a CT2 export")
    parser.add_argument(
        "--synthetic", action="store_true", help="speech-like tones instead of the test clips"
    )
    parser.add_argument(
        "--audio-dir", help="audio files (name order) instead of the test clips, e.g. TTS speech"
    )
    parser.add_argument(
        "--pairs-dir",
        help="audio files with a .txt reference each (e.g. ../shared/eval/real-sv): the "
        "recording's clips, and the short clips transcribed one per call and scored",
    )
    parser.add_argument(
        "--short-seconds", type=float, default=SHORT_SECONDS, help="short clips: at most this"
    )
    parser.add_argument(
        "--min-context-seconds",
        type=float,
        default=DEFAULT_MIN_CONTEXT_SECONDS,
        help=f"{OWN_CONTEXT}: the minimum context when the export records padded",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--threads", type=int, help="CPU threads (app.engine.threads)")
    parser.add_argument("--batch-size", type=int, help="chunks per call of ours (app)")
    parser.add_argument("--num-beams", type=int, help="1 = greedy (params app.decode.num_beams)")
    parser.add_argument("--max-new-tokens", type=int, help="params app.decode.max_new_tokens")
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON results")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if not 0 <= args.min_context_seconds <= 30:
        parser.error("--min-context-seconds must be in [0, 30]")
    if args.pairs_dir and (args.synthetic or args.audio_dir):
        parser.error("--pairs-dir replaces --synthetic and --audio-dir")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = {
        **decode_settings(Path(args.params), args),
        "min_context_seconds": args.min_context_seconds,
    }
    if args.worker:
        result = run_worker(args.worker, settings, args)
        Path(args.worker_out).write_text(json.dumps(result), encoding="utf-8")
        return
    model_dir = Path(args.model_dir)
    if not (model_dir / "model.bin").is_file():
        sys.exit(f"{model_dir}/model.bin is missing: run `dvc repro export`")
    if not (args.synthetic or args.audio_dir or args.pairs_dir) and not worker.TEST_TABLE.is_file():
        sys.exit(f"{worker.TEST_TABLE} is missing: run `dvc repro validate` (or --synthetic)")
    forwarded = ["--repeats", str(args.repeats), "--params", args.params]
    forwarded += ["--model-dir", str(model_dir)] + (["--synthetic"] if args.synthetic else [])
    forwarded += ["--audio-dir", str(Path(args.audio_dir).resolve())] if args.audio_dir else []
    forwarded += ["--pairs-dir", str(Path(args.pairs_dir).resolve())] if args.pairs_dir else []
    forwarded += ["--short-seconds", str(args.short_seconds)]
    forwarded += ["--min-context-seconds", str(args.min_context_seconds)]
    for flag in ("threads", "batch_size", "num_beams", "max_new_tokens"):
        if getattr(args, flag) is not None:
            forwarded += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    print(f"settings: {json.dumps(settings)}; {args.repeats} timed runs after a warm-up")
    results = {
        name: workers.spawn_worker(__file__, name, forwarded, settings["threads"])
        for name in args.engines
    }
    rows = [row(r) for r in results.values()]
    first = next(iter(results.values()))
    table = markdown_table(rows, first["recording_seconds"])
    print()
    print(table)
    print()
    if OURS in results and FASTER_WHISPER in results:
        same = same_chunk_words(results[OURS], results[FASTER_WHISPER])
        print(f"chunks with the same normalized words: {same}/{first['recording_chunks']}")
    short = short_table(results, FASTER_WHISPER) if args.pairs_dir else ""
    if short:
        print(f"\nclips of at most {args.short_seconds:g} s, one per call:\n\n{short}\n")
    for name, r in results.items():
        print(
            f"{name}: {r['recording_chunks']} chunks, warm-up {r['warmup_seconds']:.2f} s, runs "
            f"{', '.join(f'{x:.2f}' for x in r['run_seconds'])} s (own CPU "
            f"{', '.join(f'{x:.1f}' for x in r['run_cpu_seconds'])} s, other processes' CPU "
            f"{', '.join('n/a' if x is None else f'{x:.1f}' for x in r['run_other_cpu_seconds'])}"
            f" s); tokens per chunk {r['chunk_tokens']}; RSS before load "
            f"{r['rss_before_load_mb']:.0f} MB; deterministic {r['deterministic']}"
        )
    audio = args.pairs_dir or args.audio_dir or "test clips (benchmarks/inference.py)"
    write_report(
        args.out,
        {
            "settings": settings,
            "repeats": args.repeats,
            "audio": "synthetic tones" if args.synthetic else audio,
            "short_seconds": args.short_seconds if args.pairs_dir else None,
            "short_table_markdown": short,
            "environment": machine.versions() | machine.package_versions(MORE_PACKAGES),
            "rows": rows,
            "engines": results,
            "table_markdown": table,
        },
    )


if __name__ == "__main__":
    main()
