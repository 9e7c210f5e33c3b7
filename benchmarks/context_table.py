"""The context table (docs/context.md): train and score one encoder context, stage by stage.

``python benchmarks/context_table.py OUT --context clip --min-seconds 10 [--teacher student]
[--set train.trainable=[encoder_top,decoder] --set merge.alpha=1.0]``
copies the repo's stages and package into OUT, links the built ``models/base``,
``data/features`` and ``data/testsets`` (run ``dvc repro testset`` first), sets params
``whisper`` (and ``train.distill.teacher_context``) there, and runs ``train``, ``merge`` and
``transcribe`` (zero-shot and fine-tuned, each model at its own context) and ``evaluate``,
timing each. The zero-shot model is also transcribed at the run's context
(``zero_shot_ctx``), to show what the context costs a model not trained for it. The same
row is one ``dvc exp run -S whisper.context=clip -S whisper.min_context_seconds=10``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.lib.checkout import REPO, copy_paths
from benchmarks.lib.params import add_set_argument, parse_sets, set_dotted

LINKED = ("models/base", "data/features", "data/testsets")


def stage(out: Path, name: str, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", f"stages.{name}", *args], cwd=out, check=True)
    return round(time.perf_counter() - started, 1)


def dvc_args(name: str) -> list[str]:
    """Stage ``name``'s arguments as dvc.yaml's ``cmd`` passes them (paths written once)."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"][name]
    words = spec["cmd"].split()
    return words[words.index(f"stages.{name}") + 1 :]


def zero_shot_at(out: Path, context: dict) -> float:
    """The base model transcribed at the run's context (not its own), as a transcribe stage."""
    code = (
        "import sys, json; from pathlib import Path;"
        "from swedish_transcriber.whisper import EncoderContext, CONTEXT_KEY;"
        "import shutil; src, dst = Path('models/base'), Path('models/base_ctx');"
        "shutil.copytree(src, dst, dirs_exist_ok=True);"
        "c = json.loads((dst / 'config.json').read_text());"
        f"c[CONTEXT_KEY] = {context!r};"
        "(dst / 'config.json').write_text(json.dumps(c))"
    )
    subprocess.run([sys.executable, "-c", code], cwd=out, check=True)
    return stage(
        out, "transcribe", "models/base_ctx", "data/testsets", "reports/transcripts/zero_shot_ctx"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--context", choices=("padded", "clip"), required=True)
    parser.add_argument("--min-seconds", type=float, default=10.0)
    parser.add_argument("--teacher", choices=("padded", "student"), default="padded")
    parser.add_argument(
        "--zero-shot-from",
        type=Path,
        help="another row's OUT: reuse its padded zero-shot transcripts",
    )
    add_set_argument(parser, "another param of the row (YAML value), as dvc exp run -S")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    copy_paths(("stages", "swedish_transcriber", "params.yaml"), out)
    for rel in LINKED:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        if not (out / rel).exists():
            (out / rel).symlink_to(REPO / rel)
    params = yaml.safe_load((out / "params.yaml").read_text(encoding="utf-8"))
    context = {"context": args.context, "min_context_seconds": args.min_seconds}
    params["whisper"] = context
    params["train"]["distill"]["teacher_context"] = args.teacher
    for key, value in parse_sets(args.set).items():
        set_dotted(params, key, value)
    params["evaluate"]["models"] = {
        "zero_shot": "models/base",
        "zero_shot_ctx": "models/base_ctx",
        "finetuned": "models/finetuned",
    }
    (out / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    seconds = {
        "train": stage(out, "train", "models/base", "data/features", "models/trained",
                       "checkpoints", "dvclive"),
        "merge": stage(out, "merge", "models/base", "models/trained", "models/finetuned"),
    }  # fmt: skip
    seconds["transcribe_finetuned"] = stage(
        out, "transcribe", "models/finetuned", "data/testsets", "reports/transcripts/finetuned"
    )
    if args.context == "clip":
        seconds["transcribe_zero_shot_ctx"] = zero_shot_at(out, context)
    else:
        del params["evaluate"]["models"]["zero_shot_ctx"]  # the same as zero_shot
        (out / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), "utf-8")
    done = args.zero_shot_from and args.zero_shot_from / "reports/transcripts/zero_shot"
    if done and done.is_dir() and not (out / "reports/transcripts/zero_shot").exists():
        shutil.copytree(done, out / "reports/transcripts/zero_shot")
    if not (out / "reports/transcripts/zero_shot").exists():
        seconds["transcribe_zero_shot"] = stage(
            out, "transcribe", "models/base", "data/testsets", "reports/transcripts/zero_shot"
        )
    seconds["evaluate"] = stage(out, "evaluate", *dvc_args("evaluate"))
    metrics = json.loads((out / "metrics/eval.json").read_text(encoding="utf-8"))
    row = {"whisper": context, "teacher_context": args.teacher, "set": args.set,
           "seconds": seconds, "metrics": metrics}  # fmt: skip
    (out / "context_row.json").write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
