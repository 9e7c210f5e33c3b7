"""CPU inference: transformers (greedy, batched) against the CTranslate2 int8 export.

Usage (repo root, .venv active; needs models/finetuned/ from `dvc repro train` and
models/ct2/ from `dvc repro export`):

    python benchmarks/inference.py                 # all 94 test clips, 3 timed runs, 2 threads
    python benchmarks/inference.py --clips 16 --repeats 1   # a quick look

Engines (each in its own fresh subprocess, so that its peak memory is its own alone):

* ``transformers``: ``TransformersEngine`` on ``models/finetuned``;
* ``ct2-int8``: ``CTranslate2Engine`` on ``models/ct2``, int8 (the page's fast engine);
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

Targets (issue): the CTranslate2 int8 path at least 3x the transformers path's speed, with the
same transcript words on at least 95 % of the test clips. Results go to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from swedish_transcriber.evaluation.normalizer import normalize  # noqa: E402
from swedish_transcriber.whisper import SAMPLE_RATE  # noqa: E402

TEST_TABLE = REPO / "data/validated/test.parquet"
DEFAULT_OUT = REPO / "benchmarks/results/inference.json"
RECORDING_SECONDS = 60.0
GAP_SECONDS = 0.5
SPEED_TARGET = 3.0  # CTranslate2 int8 at least this many times the transformers speed
AGREEMENT_TARGET = 0.95  # ... with the same words on at least this share of test clips
BASELINE = "transformers"
TARGET_ENGINE = "ct2-int8"
CONTENTION_LIMIT = 0.10  # other processes' share of the CPUs during timed runs worth a warning


@dataclass(frozen=True)
class EngineSpec:
    """One row of the benchmark: which model directory, and how CTranslate2 computes."""

    name: str
    model_dir: str  # relative to the repo root
    ct2_compute_type: str = "int8"  # ignored by the transformers engine
    missing_hint: str = ""
    # Export ``models/finetuned`` with this quantization for the run, instead of model_dir.
    export: str | None = None


ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(BASELINE, "models/finetuned", missing_hint="run `dvc repro train`"),
        EngineSpec(TARGET_ENGINE, "models/ct2", "int8", "run `dvc repro export`"),
        EngineSpec("ct2-int8-weights-float32", "models/ct2", "float32", "run `dvc repro export`"),
        EngineSpec(
            "ct2-float32", "models/finetuned", "float32", "run `dvc repro train`", "float32"
        ),
    )
}


# --------------------------------------------------------------------------- pure helpers


@dataclass(frozen=True)
class Recording:
    """The speed benchmark's audio: whole clips with silent gaps, exactly ``seconds`` long."""

    audio: np.ndarray
    clip_indices: tuple[int, ...]  # which input clips it holds, in order
    spans: tuple[tuple[int, int], ...]  # each clip's [start, end) in samples
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.audio.shape[0] / self.sample_rate

    @property
    def speech_seconds(self) -> float:
        return sum(end - start for start, end in self.spans) / self.sample_rate


def build_recording(
    clips: Sequence[np.ndarray],
    seconds: float = RECORDING_SECONDS,
    gap_seconds: float = GAP_SECONDS,
    sample_rate: int = SAMPLE_RATE,
) -> Recording:
    """Clips in order, ``gap_seconds`` of silence between them, cut at a gap to ``seconds``.

    Only whole clips go in: the first clip that would run past ``seconds`` is left out and
    the rest is silence, so no word is cut in half (a half word would be transcribed
    differently by each engine by chance, not by merit). Every engine gets the same samples.
    """
    total = int(round(seconds * sample_rate))
    gap = int(round(gap_seconds * sample_rate))
    if total <= 0 or gap < 0:
        raise ValueError(f"need seconds > 0 and gap_seconds >= 0, got {seconds}, {gap_seconds}")
    spans: list[tuple[int, int]] = []
    indices: list[int] = []
    position = 0
    filled = False
    for i, clip in enumerate(clips):
        start = position + gap if spans else 0
        end = start + int(clip.shape[0])
        if end > total:
            filled = True
            break
        spans.append((start, end))
        indices.append(i)
        position = end
    if not filled:
        raise ValueError(
            f"the clips add up to only {position / sample_rate:.1f} s with gaps; "
            f"{seconds:g} s are needed"
        )
    if not spans:
        raise ValueError(f"the first clip alone is longer than {seconds:g} s")
    audio = np.zeros(total, dtype=np.float32)
    for (start, end), i in zip(spans, indices, strict=True):
        audio[start:end] = clips[i]
    return Recording(audio, tuple(indices), tuple(spans), sample_rate)


def words(text: str) -> list[str]:
    """The normalized word sequence that agreement and WER_norm compare."""
    return normalize(text).split()


def word_edits(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions), by jiwer."""
    import jiwer

    if not reference:  # jiwer cannot align against an empty reference
        return len(hypothesis)
    out = jiwer.process_words(" ".join(reference), " ".join(hypothesis))
    return out.substitutions + out.deletions + out.insertions


@dataclass(frozen=True)
class Agreement:
    """How often an engine writes the same normalized words as the baseline, clip by clip."""

    clips: int
    same: int
    differing: tuple[int, ...]  # clip indices whose words differ
    word_edits: int  # total word edits from the baseline's words to the engine's
    baseline_words: int

    @property
    def fraction(self) -> float:
        return self.same / self.clips if self.clips else float("nan")

    @property
    def word_difference_rate(self) -> float:
        """Word edits per baseline word: a WER of the engine against the baseline."""
        return self.word_edits / self.baseline_words if self.baseline_words else float("nan")


def agreement(baseline: Sequence[str], other: Sequence[str]) -> Agreement:
    """Compare two engines' transcripts of the same clips, in the same order."""
    if len(baseline) != len(other):
        raise ValueError(f"{len(baseline)} baseline transcripts but {len(other)} to compare")
    differing: list[int] = []
    edits = total = 0
    for i, (a, b) in enumerate(zip(baseline, other, strict=True)):
        wa, wb = words(a), words(b)
        if wa != wb:
            differing.append(i)
        edits += word_edits(wa, wb)
        total += len(wa)
    return Agreement(len(baseline), len(baseline) - len(differing), tuple(differing), edits, total)


@dataclass
class Summary:
    """The table's rows and the verdict on the two targets."""

    rows: list[dict[str, Any]]
    targets: dict[str, Any] = field(default_factory=dict)


def summarize(
    results: dict[str, dict[str, Any]],
    baseline: str = BASELINE,
    target_engine: str = TARGET_ENGINE,
) -> Summary:
    """Rows of the table from the workers' results, compared with the ``baseline`` engine.

    A worker result holds ``load_seconds``, ``run_seconds`` (timed runs of the 60 s
    recording), ``recording_seconds``, ``peak_rss_mb``, ``test_transcripts`` and
    ``test_wer_norm``. Without the baseline there is nothing to compare with: speed-up and
    agreement are None, and so is the verdict.
    """
    base = results.get(baseline)
    rows: list[dict[str, Any]] = []
    for name, r in results.items():
        wall = statistics.median(r["run_seconds"])
        row: dict[str, Any] = {
            "engine": name,
            "load_seconds": r["load_seconds"],
            "wall_seconds": wall,
            "rtf": r["recording_seconds"] / wall,
            "speedup": None,
            "peak_rss_mb": r["peak_rss_mb"],
            "same_words": None,
            "test_wer_norm": r.get("test_wer_norm"),
        }
        if base is not None:
            row["speedup"] = statistics.median(base["run_seconds"]) / wall
            agree = agreement(base["test_transcripts"], r["test_transcripts"])
            row["same_words"] = agree.fraction
            row["differing_clips"] = list(agree.differing)
            row["word_difference_rate"] = agree.word_difference_rate
            row["long_form_same_words"] = words(base["long_form_text"]) == words(
                r["long_form_text"]
            )
        rows.append(row)
    targets: dict[str, Any] = {
        "engine": target_engine,
        "speedup_target": SPEED_TARGET,
        "agreement_target": AGREEMENT_TARGET,
        "speedup": None,
        "same_words": None,
        "speedup_met": None,
        "agreement_met": None,
    }
    target_row = next((row for row in rows if row["engine"] == target_engine), None)
    if base is not None and target_row is not None:
        targets["speedup"] = target_row["speedup"]
        targets["same_words"] = target_row["same_words"]
        targets["speedup_met"] = target_row["speedup"] >= SPEED_TARGET
        targets["agreement_met"] = target_row["same_words"] >= AGREEMENT_TARGET
    return Summary(rows, targets)


def _cell(value: Any, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def markdown_table(rows: Sequence[dict[str, Any]], clips: int) -> str:
    """The results as a markdown table, one engine a row."""
    header = (
        "| engine | load s | wall s for 60 s | RTF | speed-up vs transformers | peak RSS MB "
        f"| same words as transformers (% of {clips} test clips) | test WER_norm |"
    )
    lines = [header, "|" + "---|" * 8]
    for row in rows:
        same = None if row["same_words"] is None else 100 * row["same_words"]
        speedup = _cell(row["speedup"], ".2f")
        lines.append(
            f"| {row['engine']} | {row['load_seconds']:.2f} | {row['wall_seconds']:.2f} "
            f"| {row['rtf']:.2f} | {speedup if speedup == 'n/a' else speedup + 'x'} "
            f"| {row['peak_rss_mb']:.0f} | {_cell(same, '.1f')} "
            f"| {_cell(row['test_wer_norm'], '.4f')} |"
        )
    return "\n".join(lines)


def verdict(targets: dict[str, Any]) -> list[str]:
    """One line per target, saying plainly whether it is met."""
    if targets["speedup"] is None:
        return [f"targets: not judged ({BASELINE} or {targets['engine']} was not run)"]
    met = {True: "MET", False: "MISSED"}
    return [
        f"target speed-up >= {targets['speedup_target']:g}x ({targets['engine']} vs "
        f"{BASELINE}): {targets['speedup']:.2f}x -> {met[targets['speedup_met']]}",
        f"target same words >= {100 * targets['agreement_target']:g}% of test clips: "
        f"{100 * targets['same_words']:.1f}% -> {met[targets['agreement_met']]}",
    ]


def contention(
    results: dict[str, dict[str, Any]], cpus: int, limit: float = CONTENTION_LIMIT
) -> list[str]:
    """Warnings for engines whose timed runs shared the machine with other busy processes.

    The share is other processes' CPU seconds over the CPU seconds the machine had during
    the runs (wall seconds x ``cpus``); above ``limit`` the timings are not to be trusted.
    """
    warnings = []
    for name, r in results.items():
        other = r.get("run_other_cpu_seconds") or []
        if not other or any(o is None for o in other):
            continue
        share = sum(other) / (sum(r["run_seconds"]) * max(1, cpus))
        if share > limit:
            warnings.append(
                f"WARNING: {name}'s timed runs shared the machine: other processes used "
                f"{100 * share:.0f}% of its {cpus} CPUs; rerun on an idle machine"
            )
    return warnings


# --------------------------------------------------------------------------- settings


def decode_settings(params_file: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Decode and chunking settings: the page's, CLI flags on top.

    ``params.yaml``'s ``model`` and ``app`` sections are read as strictly as the page reads them.
    """
    from swedish_transcriber.serving.page import load_config

    config = load_config(params_file)
    app = config.app
    settings = {
        "language": config.language.language,
        "task": config.language.task,
        "num_beams": app.decode.num_beams,
        "max_new_tokens": app.decode.max_new_tokens,
        "threads": app.engine.threads,
        "chunk_seconds": app.chunks.chunk_seconds,
        "min_pause": app.chunks.min_pause,
        "silence_threshold_db": app.chunks.silence_threshold_db,
        "padding": app.chunks.padding,
        "batch_size": app.decode.batch_size,
    }
    for key in ("num_beams", "max_new_tokens", "threads", "batch_size"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    return settings


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def own_cpu_seconds() -> float:
    """CPU seconds this process has used so far, all its threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy since boot (Linux ``/proc/stat``), or None.

    Minus this process's own CPU time over a timed run, it shows how much other work ran at
    the same time: a benchmark sharing 2 cores with a test suite measures the test suite.
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def load_test_clips() -> tuple[list[np.ndarray], list[str], list[str]]:
    """Every test clip decoded to 16 kHz, its reference sentence and its file, in table order."""
    import pandas as pd

    from swedish_transcriber.audio import load_audio

    table = pd.read_parquet(TEST_TABLE, columns=["audio_file", "sentence"])
    files = [str(f) for f in table["audio_file"]]
    audio = [load_audio(REPO / f if not Path(f).is_absolute() else f) for f in files]
    return audio, [str(s) for s in table["sentence"]], files


# --------------------------------------------------------------------------- worker


def _log(name: str, message: str) -> None:
    print(f"[{name}] {message}", file=sys.stderr, flush=True)


def run_worker(name: str, settings: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Measure one engine in this (fresh) process; the parent compares the engines."""
    from swedish_transcriber.evaluation.scoring import scores
    from swedish_transcriber.model.source import ModelLanguage
    from swedish_transcriber.serving.engines import EngineSettings, load_engine
    from swedish_transcriber.serving.long_form import ChunkPlan, plan_chunks, transcribe_audio
    from swedish_transcriber.whisper import DecodeOptions

    spec = ENGINES[name]
    audio, references, _ = load_test_clips()
    recording = build_recording(audio)
    recording_reference = " ".join(references[i] for i in recording.clip_indices)
    rss_before_load = peak_rss_mb()
    language = ModelLanguage(settings["language"], settings["task"])
    options = DecodeOptions(
        batch_size=settings["batch_size"],
        num_beams=settings["num_beams"],
        max_new_tokens=settings["max_new_tokens"],
    )
    engine_settings = EngineSettings(settings["threads"], spec.ct2_compute_type)
    plan = ChunkPlan(
        chunk_seconds=settings["chunk_seconds"],
        min_pause=settings["min_pause"],
        silence_threshold_db=settings["silence_threshold_db"],
        padding=settings["padding"],
    )
    model_dir = Path(args.model_dir) if args.model_dir else REPO / spec.model_dir
    start = time.perf_counter()
    engine = load_engine(model_dir, language, options, engine_settings)
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
        own, busy = own_cpu_seconds(), machine_busy_seconds()
        text, seconds = long_form()
        own = own_cpu_seconds() - own
        other = None if busy is None else max(0.0, machine_busy_seconds() - busy - own)
        runs.append(seconds)
        cpu.append(own)
        others.append(other)
        texts.append(text)
        _log(
            name,
            f"run {i + 1}/{args.repeats}: {seconds:.2f} s (own CPU {own:.1f} s"
            + ("" if other is None else f", other processes' CPU {other:.1f} s")
            + ")",
        )
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
    return {
        "engine": name,
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
        "test_audio_seconds": sum(c.shape[0] for c in clips) / SAMPLE_RATE,
        "test_seconds": test_seconds,
        "test_transcripts": test_transcripts,
        "test_wer_norm": test_scores["wer_norm"],
        "test_wer": test_scores["wer"],
    }


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

    An engine with ``export`` set gets its export made here first, in a temporary directory,
    so that the conversion's memory does not count against the engine either.
    """
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    spec = ENGINES[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
        cmd += ["--worker", name, "--worker-out", str(out)]
        if spec.export:
            # In its own process too: Linux carries a process's peak RSS across fork and exec,
            # so a parent that had loaded the model would inflate the worker's figure.
            exported = Path(tmp) / "model"
            convert = (
                "import sys; from swedish_transcriber.model.export import export_ct2; "
                "export_ct2(sys.argv[1], sys.argv[2], sys.argv[3])"
            )
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    convert,
                    str(REPO / spec.model_dir),
                    str(exported),
                    spec.export,
                ],
                check=True,
                cwd=REPO,
            )
            cmd += ["--model-dir", str(exported)]
        subprocess.run(cmd, check=True, env=env, cwd=REPO)
        return json.loads(out.read_text(encoding="utf-8"))


def versions() -> dict[str, str]:
    """Library versions and the machine, so a number can be traced to what produced it."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "machine": platform.platform()}
    for package in ("torch", "transformers", "ctranslate2", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    out["cpu_count"] = str(os.cpu_count())
    return out


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
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON results")
    parser.add_argument("--worker", choices=list(ENGINES), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)  # a worker's on-the-fly export
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.clips < 0 or args.agreement_batch_size < 1:
        parser.error("--repeats and --agreement-batch-size must be >= 1, --clips >= 0")
    return args


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The flags a worker needs to measure exactly what the parent was asked to."""
    argv = ["--clips", str(args.clips), "--repeats", str(args.repeats)]
    argv += ["--agreement-batch-size", str(args.agreement_batch_size), "--params", args.params]
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
    warnings = contention(results, os.cpu_count() or 1)
    for line in verdict(summary.targets) + warnings:
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

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "settings": settings,
        "repeats": args.repeats,
        "agreement_batch_size": args.agreement_batch_size,
        "recording": {"seconds": RECORDING_SECONDS, "gap_seconds": GAP_SECONDS},
        "environment": versions(),
        "rows": summary.rows,
        "targets": summary.targets,
        "contention_warnings": warnings,
        "engines": results,
        "table_markdown": table,
    }
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
