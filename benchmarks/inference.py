"""CPU inference: transformers (greedy, batched) against the CTranslate2 int8 export.

Usage (repo root, .venv active; needs models/finetuned/ from `dvc repro train` and
models/ct2/ from `dvc repro export`):

    python benchmarks/inference.py                 # all 94 test clips, 3 timed runs, 2 threads
    python benchmarks/inference.py --clips 16 --repeats 1   # a quick look

Engines (each in its own fresh subprocess, so that its peak memory is its own alone):

* ``transformers``: ``TransformersEngine`` on ``models/finetuned``;
* ``ct2-int8``: ``CTranslate2Engine`` on ``models/ct2``, int8 (the page's fast engine),
  every chunk padded to Whisper's 30 s window (as the page served every model before
  ``whisper.context``);
* ``ct2-int8-own-context``: the same export on each chunk's own log-mel frames
  (``whisper.context: clip``): the context the export records, or ``clip`` at
  ``--min-context-seconds`` for an export that records padded (an untrained model);
* ``ct2-int8-weights-float32``: the same export computed in float32. Its weights are the int8
  ones dequantized (still rounded), but activations are no longer quantized on the fly and
  the matrix products are float32: how much of the int8 row's difference from transformers
  is int8 arithmetic, and how much the weights' rounding;
* ``ct2-float32``: a float32 export of ``models/finetuned`` made for the run (what
  ``export.quantization: float32`` would build): the engine alone, no rounding at all.

Speed: a deterministic 60.0 s recording (test clips in parquet order, 0.5 s of silence between
them, whole clips only, silence-padded to exactly 60 s) goes through the page's long-audio path
(``long_form.transcribe_audio``, cut and decoded as ``params.yaml``'s ``app`` section says):
one warm-up, then ``--repeats`` timed runs; the median gives the real-time factor
(audio seconds per wall second). Peak RSS (``ru_maxrss``) is taken after the speed runs.
Agreement: every test clip (``--clips`` limits them) transcribed by each engine; the share of
clips whose normalized words equal the transformers path's, and each engine's test WER_norm.

Short clips: every test clip of at most ``--short-seconds`` (5) transcribed alone, as the page
gets a short upload, with the page's duration cap (``inference_lib.short_clips``): seconds per
audio second, speed-up over faster-whisper on the same export, WER_norm.

The table gives each engine's speed-up over the transformers path and the share of test clips
with the same words; a second table the short clips. Results go to ``--out`` as JSON.

This file is the command (settings, the parent that spawns and compares the workers); its
parts are in ``benchmarks/inference_lib/``: ``recording`` (the 60 s recording), ``compare``
(agreement, speed-up, table) and ``worker`` (the engines and one engine's measurement); memory,
CPU, versions and the fresh worker processes in ``benchmarks/lib/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.inference_lib.compare import BASELINE, contention, markdown_table, summarize
from benchmarks.inference_lib.recording import GAP_SECONDS, RECORDING_SECONDS
from benchmarks.inference_lib.settings import decode_settings
from benchmarks.inference_lib.short_clips import (
    DEFAULT_MIN_CONTEXT_SECONDS,
    SHORT_SECONDS,
    short_table,
)
from benchmarks.inference_lib.worker import ENGINES, FASTER_WHISPER, TEST_TABLE, run_worker
from benchmarks.lib import workers
from benchmarks.lib.checkout import REPO
from benchmarks.lib.machine import versions
from benchmarks.lib.report import write_report

DEFAULT_OUT = REPO / "benchmarks/results/inference.json"


# --------------------------------------------------------------------------- parent


def check_inputs(names: Sequence[str]) -> None:
    """Fail early, saying which stage builds what is missing."""
    problems = []
    if not TEST_TABLE.is_file():
        problems.append(f"{TEST_TABLE.relative_to(REPO)} is missing: run `dvc repro validate`")
    for name in names:
        spec = ENGINES[name]
        model_dir = REPO / spec.model_dir
        weights = "model.bin" if spec.model_dir == "models/ct2" else "model.safetensors"
        if not (model_dir / weights).is_file():
            problems.append(f"{spec.model_dir}/{weights} is missing ({name}): {spec.missing_hint}")
    if problems:
        sys.exit("benchmark inputs missing:\n  " + "\n  ".join(dict.fromkeys(problems)))


def spawn_worker(name: str, argv: list[str], threads: int) -> dict[str, Any]:
    """Run one engine in a fresh interpreter, so no other engine's memory counts against it.

    An engine with ``export`` set gets its export made first, in the worker's scratch folder
    and in a process of its own, so that the conversion's memory does not count against the
    engine either.
    """
    spec = ENGINES[name]

    def export(scratch: Path) -> list[str]:
        exported = scratch / "model"
        convert = (
            "import sys; from swedish_transcriber.model.export import export_ct2; "
            "export_ct2(sys.argv[1], sys.argv[2], sys.argv[3])"
        )
        source = str(REPO / spec.model_dir)
        command = [sys.executable, "-c", convert, source, str(exported), spec.export]
        subprocess.run(command, check=True, cwd=REPO)
        return ["--model-dir", str(exported)]

    prepare = export if spec.export else None
    return workers.spawn_worker(__file__, name, argv, threads, cwd=REPO, prepare=prepare)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=list(ENGINES),
        default=list(ENGINES),
        help="engines to run; speed-up and agreement are relative to transformers, run first",
    )
    parser.add_argument("--clips", type=int, default=0, help="test clips to compare; 0 = all")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--threads", type=int, help="CPU threads per engine (app.engine)")
    parser.add_argument("--batch-size", type=int, help="long-form chunks per call (app.decode)")
    parser.add_argument("--num-beams", type=int, help="1 = greedy (params app.decode)")
    parser.add_argument("--max-new-tokens", type=int, help="params app.decode.max_new_tokens")
    parser.add_argument(
        "--agreement-batch-size", type=int, default=8, help="test clips per model call"
    )
    parser.add_argument(
        "--short-seconds",
        type=float,
        default=SHORT_SECONDS,
        help="short clips (one per call, as the page gets them): at most this long",
    )
    parser.add_argument(
        "--min-context-seconds",
        type=float,
        default=DEFAULT_MIN_CONTEXT_SECONDS,
        help="ct2-int8-own-context: the minimum context when the export records padded",
    )
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON results")
    parser.add_argument("--worker", choices=list(ENGINES), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)  # a worker's on-the-fly export
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.clips < 0 or args.agreement_batch_size < 1:
        parser.error("--repeats and --agreement-batch-size must be >= 1, --clips >= 0")
    if not 0 <= args.min_context_seconds <= 30:
        parser.error("--min-context-seconds must be in [0, 30]")
    return args


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The flags a worker needs to measure exactly what the parent was asked to."""
    argv = ["--clips", str(args.clips), "--repeats", str(args.repeats)]
    argv += ["--agreement-batch-size", str(args.agreement_batch_size), "--params", args.params]
    argv += ["--short-seconds", str(args.short_seconds)]
    argv += ["--min-context-seconds", str(args.min_context_seconds)]
    for flag, value in (
        ("--threads", args.threads),
        ("--batch-size", args.batch_size),
        ("--num-beams", args.num_beams),
        ("--max-new-tokens", args.max_new_tokens),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def main(argv: Sequence[str] | None = None, spawn: Callable[..., dict] = spawn_worker) -> None:
    args = parse_args(argv)
    settings = decode_settings(Path(args.params), args)
    if args.worker:
        result = run_worker(args.worker, settings, args)
        Path(args.worker_out).write_text(json.dumps(result), encoding="utf-8")
        return

    names = [BASELINE] + [n for n in args.engines if n != BASELINE]
    names = [n for n in names if n in args.engines]
    check_inputs(names)
    print(
        f"settings: {json.dumps(settings)}; {args.repeats} timed runs after a warm-up; "
        f"test clips batched {args.agreement_batch_size} at a time",
        flush=True,
    )
    results = {name: spawn(name, _forwarded(args), settings["threads"]) for name in names}
    summary = summarize(results)
    first = next(iter(results.values()))
    clips = first["test_clips"]
    table = markdown_table(summary.rows, clips)
    print()
    print(table)
    print()
    short = short_table(results, FASTER_WHISPER)
    if short.count("\n") > 1:
        print(f"test clips of at most {args.short_seconds:g} s, one per call:\n\n{short}\n")
    warnings = contention(results, os.cpu_count() or 1)
    for line in warnings:
        print(line)
    print()
    for name, r in results.items():
        print(
            f"{name}: 60 s recording ({r['recording_clips']} clips, "
            f"{r['recording_speech_seconds']:.1f} s of clip audio) in {r['recording_chunks']} "
            f"chunks, WER_norm {r['long_form_wer_norm']:.4f}, warm-up "
            f"{r['warmup_seconds']:.2f} s, runs {', '.join(f'{s:.2f}' for s in r['run_seconds'])} s"
            f" (own CPU {', '.join(f'{s:.1f}' for s in r['run_cpu_seconds'])} s)"
            f", deterministic {r['long_form_deterministic']}; RSS before model load "
            f"{r['rss_before_load_mb']:.0f} MB, after test clips "
            f"{r['peak_rss_after_test_clips_mb']:.0f} MB; {clips} test clips "
            f"({r['test_audio_seconds']:.0f} s) in {r['test_seconds']:.1f} s"
        )
    for row in summary.rows:
        if row["engine"] != BASELINE and row["speedup"] is not None:
            print(
                f"{row['engine']}: words differ from {BASELINE} on "
                f"{len(row['differing_clips'])}/{clips} test clips "
                f"(word difference rate {row['word_difference_rate']:.4f}); "
                f"60 s transcript same words: {row['long_form_same_words']}"
            )

    report = {
        "settings": settings,
        "repeats": args.repeats,
        "agreement_batch_size": args.agreement_batch_size,
        "recording": {"seconds": RECORDING_SECONDS, "gap_seconds": GAP_SECONDS},
        "environment": versions(),
        "rows": summary.rows,
        "contention_warnings": warnings,
        "engines": results,
        "table_markdown": table,
        "short_table_markdown": short,
    }
    write_report(args.out, report)


if __name__ == "__main__":
    main()
