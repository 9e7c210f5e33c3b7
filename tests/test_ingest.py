"""Ingest: measuring clips and quarantining the ones that cannot be decoded."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from swedish_transcriber.data.commonvoice import ReleaseError
from swedish_transcriber.data.ingest import MeasureSettings, ingest_release
from swedish_transcriber.data.manifest import COLUMNS
from tests.dvc_stages import stage_command
from tests.repo_params import repo_params

MEASURE = repo_params("ingest.measure", MeasureSettings)


def test_measures_every_clip_and_quarantines_undecodable_ones(make_release):
    root = make_release(
        {
            "train": [
                {"path": "good1.mp3", "_seconds": 1.5},
                {"path": "corrupt.mp3", "_clip": "corrupt"},
                {"path": "empty.mp3", "_clip": "empty"},
                {"path": "gone.mp3", "_clip": "missing"},
                {"path": "silent.mp3", "_clip": "silent"},
            ],
            "dev": [{"path": "good2"}],
            "test": [{"path": "good3.mp3", "_seconds": 3.0}],
        }
    )
    result = ingest_release(root, max_clips=0, seed=1, settings=MEASURE, num_proc=2)
    train = result.splits["train"]
    assert list(train.columns) == list(COLUMNS)
    assert sorted(train["path"]) == ["good1.mp3", "silent.mp3"]
    good = train.set_index("path").loc["good1.mp3"]
    assert good["duration"] == pytest.approx(1.5, abs=0.06)
    assert good["sample_rate"] == 48_000
    assert 0.05 < good["peak"] <= 1.0 and 0 < good["rms"] < good["peak"]
    assert good["silence_ratio"] < 0.2 and good["clipping_ratio"] == 0.0
    silent = train.set_index("path").loc["silent.mp3"]
    assert silent["silence_ratio"] == 1.0 and silent["peak"] < 1e-3
    assert result.splits["dev"]["path"].tolist() == ["good2.mp3"]
    assert result.splits["test"]["duration"].iloc[0] == pytest.approx(3.0, abs=0.06)

    quarantine = pd.concat(result.quarantine, ignore_index=True).set_index("path")
    assert sorted(quarantine.index) == ["corrupt.mp3", "empty.mp3", "gone.mp3"]
    assert "cannot decode audio" in quarantine.loc["corrupt.mp3", "reason"]
    assert "empty (0 bytes)" in quarantine.loc["empty.mp3", "reason"]
    assert "missing" in quarantine.loc["gone.mp3", "reason"]
    # Each reason names the TSV line and the clip file.
    assert "train.tsv: line 3:" in quarantine.loc["corrupt.mp3", "reason"]
    assert "clips/corrupt.mp3" in quarantine.loc["corrupt.mp3", "reason"]
    assert set(quarantine["stage"]) == {"ingest"}


def test_max_clips_is_a_deterministic_subset(make_release):
    root = make_release({"train": [{"path": f"c{i}.mp3", "_seconds": 0.5} for i in range(8)]})
    settings = MEASURE
    a = ingest_release(root, max_clips=3, seed=5, settings=settings).splits["train"]
    b = ingest_release(root, max_clips=3, seed=5, settings=settings, num_proc=2).splits["train"]
    assert len(a) == 3 and a["path"].tolist() == b["path"].tolist()


def test_release_dir_that_does_not_exist(tmp_path):
    with pytest.raises(ReleaseError, match="data.raw_dir is not a directory"):
        ingest_release(tmp_path / "nope", 0, 0, MEASURE)


def test_stage_fails_cleanly_on_a_broken_tsv(repo_copy, tmp_path):
    repo = repo_copy()
    raw = repo / "data/raw/demo"
    raw.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (raw / f"{split}.tsv").write_text("client_id\tpath\n", encoding="utf-8")
    proc = subprocess.run(stage_command("ingest", repo), cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "ingest: error:" in proc.stderr and "train.tsv: missing required column" in proc.stderr
    assert "Traceback" not in proc.stderr
    # Nothing half-written.
    assert not (repo / "data/manifest").exists()
    assert not (repo / "data/quarantine/ingest").exists()
