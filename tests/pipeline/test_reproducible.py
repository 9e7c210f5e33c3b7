"""Stage outputs are a function of deps and params alone: two folders, the same bytes.

The demo pipeline's data stages run in two copies of the repo at different paths (one a
`git clone`, as a new user gets it); their ``dvc.lock`` files, and every git-tracked output
(reports/*.json, metrics/), must be identical.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.repo_params import copy_repo, dotted, write_params
from tests.stage_runs import GIT, TINY_TRAIN, TRACKED, git_commit_all, run

pytestmark = pytest.mark.slow

DATA_STAGES = ("corpus", "ingest", "validate", "augment", "featurize", "testset@demo_test")


def make_repo(path: Path, source: Path, changes) -> Path:
    """A git repo at ``path`` holding ``source``'s tracked files with ``changes`` to params."""
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    copy_repo(path, TRACKED)
    params = yaml.safe_load((path / "params.yaml").read_text(encoding="utf-8"))
    changes(params)
    (path / "params.yaml").write_text(
        yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(GIT + ["commit", "-qm", "repo"], cwd=path, check=True)
    if source != path:
        subprocess.run(["git", "clone", "-q", str(path), str(source)], check=True)
    return source


def lock(repo: Path) -> dict:
    return yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))


def outs(repo: Path) -> dict[str, str]:
    """Every stage's out and metric as ``stage: path -> md5`` from dvc.lock."""
    return {
        f"{stage}: {out['path']}": out.get("md5", "")
        for stage, spec in lock(repo)["stages"].items()
        for out in spec.get("outs", [])
    }


def small_data(params: dict) -> None:
    params["corpus"]["max_sentences"] = 20  # 32 train, 2 dev, 4 test clips
    params["data"]["max_clips"] = 8  # train clips ingested: two feature batches of 4
    params["augment"].update(enabled=True, copies=1)  # the augment stage writes audio too
    params["features"]["batch_size"] = 4  # two worker processes on the train split


def test_data_stages_write_the_same_bytes_in_two_folders(tmp_path):
    first = make_repo(tmp_path / "a", tmp_path / "a", small_data)
    # A fresh clone at a longer, different path.
    second = make_repo(tmp_path / "b-origin", tmp_path / "elsewhere" / "clone-of-b", small_data)
    for repo in (first, second):
        run([sys.executable, "-m", "dvc", "repro", *DATA_STAGES], repo)
    # Stage order in a new dvc.lock follows DVC's run order; a committed lock keeps its own.
    assert lock(first) == lock(second), {
        k: (v, outs(second).get(k)) for k, v in outs(first).items() if outs(second).get(k) != v
    }
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--", "reports", "metrics"],
        cwd=second,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in status.stdout.splitlines():  # git-tracked reports: the same bytes in both
        name = line[3:]
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_train_merge_export_write_the_same_bytes_in_two_folders(repo_copy, tiny_inputs):
    """The tiny random Whisper trained, merged and exported in two folders: the same files."""
    from tests.dvc_stages import stage_command

    repos = [repo_copy("first"), repo_copy("second-folder/with-a-longer-path")]
    for repo in repos:
        for rel in ("models/base", "data/features"):
            shutil.copytree(tiny_inputs / rel, repo / rel)
        write_params(repo, {**dotted("train", TINY_TRAIN), "merge.alpha": 0.5})
        git_commit_all(repo)
        run(stage_command("train", repo), repo)
        # The retrain stage at fraction 0 passes models/trained on (tests/model/test_retrain.py).
        shutil.copytree(repo / "models/trained", repo / "models/curated")
        run(stage_command("merge", repo), repo)
        run(stage_command("export", repo), repo)
    # checkpoints/ is scratch, not a DVC out: the Trainer's state there records wall times.
    stages = yaml.safe_load((repos[0] / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    outs = [
        o if isinstance(o, str) else next(iter(o))
        for st in stages.values()
        for o in st.get("outs", []) + st.get("do", {}).get("outs", [])
    ]
    assert not [o for o in outs if o.startswith("checkpoints")]
    for out in ("models/trained", "models/finetuned", "models/ct2", "dvclive"):
        first, second = tree(repos[0] / out), tree(repos[1] / out)
        assert first.keys() == second.keys(), out
        differ = [name for name in first if first[name] != second[name]]
        assert not differ, f"{out}: {differ}"
