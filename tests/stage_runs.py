"""Running stages and DVC in a scratch repo as a user does: subprocess helpers, the tiny train
params, and what a clean checkout tracks (shared by the model, pipeline and review tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from swedish_transcriber.model.training.fine_tune import KILL_AT_STEP_ENV
from swedish_transcriber.stage import main
from tests.dvc_stages import stage_args, stage_command
from tests.repo_params import copy_repo, dotted, load_yaml, write_params

# The train stage's mechanics on plain decoder training, not the repo's default recipe
# (cross-attention with distillation; tests/model/test_train_methods.py covers the methods).
TINY_TRAIN = {
    "trainable": ["decoder"],
    "distill": {"weight": 0.0, "temperature": 2.0, "teacher_context": "padded"},
    "max_steps": 6,
    "batch_size": 4,
    "logging_steps": 1,
    "eval_steps": 3,
    "save_steps": 2,
    "warmup_steps": 0,
    "learning_rate": 1e-2,
    # The repo's generation block (whisper's guards included), smaller.
    "generation": {
        **load_yaml()["train"]["generation"],
        "batch_size": 4,
        "max_new_tokens": 12,
    },
}

# What a clean checkout holds that `dvc repro` needs (copied into a scratch repo).
TRACKED = (
    "params.yaml",
    "dvc.yaml",
    "pyproject.toml",
    ".dvcignore",
    ".gitignore",
    "scripts",
    "stages",
    "swedish_transcriber",
    ".dvc/config",
    ".dvc/.gitignore",
    "data/review/decisions.tsv",  # a dependency of validate (the reviewer's decisions)
    "data/eval/real-sv",  # the real-speech test set (evaluate.sets.real_sv)
)

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def env_for(repo: Path, **extra: str) -> dict[str, str]:
    """This interpreter's environment for a stage in ``repo`` (``python`` is this python)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(repo)
    env.pop(KILL_AT_STEP_ENV, None)
    env.update(extra)
    return env


def run(cmd: list[str], repo: Path, check: bool = True, timeout: float = 1200, **extra: str):
    """``cmd`` in ``repo``; unless ``check`` is false, a failure shows the end of its output."""
    proc = subprocess.run(
        cmd, cwd=repo, env=env_for(repo, **extra), capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def train_stage(repo: Path, check: bool = True, **extra: str):
    return run(stage_command("train", repo), repo, check=check, **extra)


def git_commit_all(repo: Path) -> None:
    """A git repo with one commit (DVCLive and `dvc exp` need a HEAD)."""
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(GIT + ["commit", "-qm", "tiny"], cwd=repo, check=True)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def train_stage_error(repo: Path, capsys, monkeypatch) -> str:
    """The train stage's one-line error on ``repo``, after checking it started no work."""
    import stages.train

    monkeypatch.chdir(repo)
    with pytest.raises(SystemExit) as exc:
        main(stages.train.run, stage_args("train", repo))
    assert exc.value.code == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("train: error: "), err
    assert not (repo / "checkpoints").exists(), "work started before the check"
    assert not (repo / "models" / "trained").exists()
    return err


def assert_trains_alike_uncached(repo: Path) -> None:
    """Train ``repo`` again with ``train.cache_encoder_outputs: false`` and compare its final
    train and dev losses with the run just made from stored encoder outputs."""
    cached = read_json(repo / "dvclive" / "metrics.json")
    write_params(repo, dotted("train", {"cache_encoder_outputs": False}))
    train_stage(repo)
    live = read_json(repo / "dvclive" / "metrics.json")
    assert live["train"]["loss"] == pytest.approx(cached["train"]["loss"], rel=1e-3)
    assert live["eval"]["loss"] == pytest.approx(cached["eval"]["loss"], rel=1e-3)


# One greedy pass per clip: whisper-base zero-shot on espeak audio is unlikely at every
# temperature, and the fallback (tests/model/test_decoding.py) would decode each clip six times.
GREEDY = {"temperatures": [0.0]}


def small_pipeline(repo: Path, change: Callable[[dict], None] | None = None) -> Path:
    """The repo's tracked sources in ``repo``, on a few clips, after one `dvc repro`, committed.

    20 sentences (32 train, 2 dev, 4 test clips), 6 of them ingested, one augmented copy each,
    4 training steps, 3 test clips per set, greedy decoding; ``change`` edits the params dict
    after that (another model, another recipe).
    """
    copy_repo(repo, TRACKED)
    params = load_yaml()
    params["corpus"]["max_sentences"] = 20
    params["data"]["max_clips"] = 6
    params["augment"].update(enabled=True, copies=1)  # exercise the augment stage too
    params["train"].update(
        learning_rate=5e-4,
        max_steps=4,
        batch_size=4,
        logging_steps=1,
        eval_steps=2,
        save_steps=2,
        warmup_steps=0,
        eval_max_clips=2,
        generation={
            **params["train"]["generation"],
            **GREEDY,
            "batch_size": 4,
            "max_new_tokens": 24,
        },
    )
    params["evaluate"]["max_clips"] = 3
    params["evaluate"]["decode"].update(GREEDY, max_new_tokens=32)
    params["evaluate"]["bootstrap"]["resamples"] = 999
    params["review"]["rank"]["max_new_tokens"] = 24
    if change is not None:
        change(params)
    (repo / "params.yaml").write_text(
        yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    git_commit_all(repo)
    run([sys.executable, "-m", "dvc", "repro"], repo)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(GIT + ["commit", "-qm", "baseline results"], cwd=repo, check=True)
    return repo
