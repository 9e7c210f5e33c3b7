"""`dvc repro` end to end on a few clips, in a copy of the repo, with the embedded default."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.integration

TRACKED = (
    "params.yaml",
    "dvc.yaml",
    "pyproject.toml",
    ".dvcignore",
    "stages",
    "swedish_transcriber",
    ".dvc/config",
    ".dvc/.gitignore",
)


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # `python -m stages.X` in dvc.yaml must be this environment's python.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(cwd)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("pipeline")
    for item in TRACKED:
        src = REPO / item
        if not src.exists():
            continue
        if src.is_dir():
            shutil.copytree(src, repo / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (repo / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / item)
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["corpus"]["max_sentences"] = 20  # 32 train, 2 dev, 4 test clips
    params["data"]["max_clips"] = 6
    params["augment"]["copies"] = 1
    (repo / "params.yaml").write_text(
        yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    run([sys.executable, "-m", "dvc", "repro"], repo)
    return repo


def test_repro_builds_features_from_raw_audio(pipeline):
    import datasets

    train = datasets.load_from_disk(str(pipeline / "data/features/train"))
    test = datasets.load_from_disk(str(pipeline / "data/features/test"))
    # 6 originals (max_clips) plus one augmented copy each, minus anything quarantined.
    quarantined = sum(
        len(__import__("pandas").read_parquet(pipeline / f"data/quarantine/{s}/quarantine.parquet"))
        for s in ("ingest", "validate", "augment", "featurize")
    )
    assert len(train) + quarantined >= 12 and len(train) >= 8
    assert len(test) >= 1
    row = train.with_format("numpy")[0]
    assert row["input_features"].shape == (80, 3000)
    assert (pipeline / "models/base/config.json").is_file()
    report = json.loads((pipeline / "reports/validation.json").read_text(encoding="utf-8"))
    assert report, "validation report is empty"
    assert (pipeline / "reports/data_docs/index.html").is_file()
    assert (pipeline / "dvc.lock").is_file()


def test_second_repro_does_nothing(pipeline):
    proc = run([sys.executable, "-m", "dvc", "repro"], pipeline)
    out = proc.stdout + proc.stderr
    assert "didn't change, skipping" in out or "up to date" in out
    assert "Running stage" not in out


def test_dag_shows_the_whole_graph(pipeline):
    dot = run([sys.executable, "-m", "dvc", "dag", "--dot"], pipeline).stdout
    edges = {
        tuple(part.strip().strip('"') for part in line.strip().rstrip(";").split("->"))
        for line in dot.splitlines()
        if "->" in line
    }
    for edge in [
        ("base_model", "featurize"),
        ("corpus", "ingest"),
        ("ingest", "validate"),
        ("validate", "augment"),
        ("augment", "featurize"),
        ("validate", "featurize"),
    ]:
        assert edge in edges, f"{edge} missing from dvc dag: {sorted(edges)}"


def test_push_and_pull_through_a_local_remote(pipeline, tmp_path):
    """The README's remote workflow: push every output, lose it locally, pull it back."""
    remote = tmp_path / "remote"
    run([sys.executable, "-m", "dvc", "remote", "add", "-f", "-d", "local", str(remote)], pipeline)
    run([sys.executable, "-m", "dvc", "push"], pipeline)
    before = (pipeline / "data/features/train/dataset_info.json").read_bytes()
    shutil.rmtree(pipeline / "data/features")
    shutil.rmtree(pipeline / ".dvc/cache")
    run([sys.executable, "-m", "dvc", "pull"], pipeline)
    assert (pipeline / "data/features/train/dataset_info.json").read_bytes() == before
    status = run([sys.executable, "-m", "dvc", "status"], pipeline).stdout
    assert "up to date" in status
