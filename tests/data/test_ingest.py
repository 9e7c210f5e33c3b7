"""Ingest: measuring clips and quarantining the ones that cannot be decoded."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from swedish_transcriber.data.commonvoice import ReleaseError
from swedish_transcriber.data.ingest import MeasureSettings, ingest_release, ingest_split
from swedish_transcriber.data.manifest import COLUMNS, RELEASE_COLUMNS
from tests.dvc_stages import stage_command
from tests.messages import assert_a_line_names, raises_naming
from tests.releases import HEADER_NEW, write_tsv
from tests.repo_params import dotted, repo_params, write_params

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
    assert list(train.columns) == [*COLUMNS, *RELEASE_COLUMNS]
    assert set(train["release_split"]) == {"train"}
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
    with raises_naming(ReleaseError, tmp_path / "nope", "data.raw_dir", "data.source"):
        ingest_release(tmp_path / "nope", 0, 0, MEASURE)


def test_stage_fails_cleanly_on_a_broken_tsv(repo_copy, tmp_path):
    repo = repo_copy()
    raw = repo / "data/raw/demo"
    raw.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (raw / f"{split}.tsv").write_text("client_id\tpath\n", encoding="utf-8")
    proc = subprocess.run(stage_command("ingest", repo), cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ingest: error:")
    assert_a_line_names(proc.stderr, "data/raw/demo/train.tsv", "sentence")  # the missing column
    assert "Traceback" not in proc.stderr
    # Nothing half-written.
    assert not (repo / "data/manifest").exists()
    assert not (repo / "data/quarantine/ingest").exists()


def small_release(make_release):
    """Two clips per split, speakers per split; sentences name their clip."""
    return make_release(
        {
            split: [
                {"path": f"{split}{i}.mp3", "sentence": f"Mening {split} {i}.", "_seconds": 1.0}
                for i in range(2)
            ]
            for split in ("train", "dev", "test")
        }
    )


def test_every_optional_file_is_read_and_invalidated_and_other_stay_out(make_release):
    root = small_release(make_release)
    write_tsv(
        root / "reported.tsv",
        ["sentence_id", "sentence", "locale", "reason"],
        [["", "Mening dev 1.", "sv-SE", "grammar-or-spelling"]],
    )
    write_tsv(root / "clip_durations.tsv", ["clip", "duration[ms]"], [["train0.mp3", "3000"]])
    # Rejected and unreviewed clips, with audio on disk: no role may pick them up.
    for name in ("invalidated", "other"):
        row = {"client_id": "x", "path": f"{name}.mp3", "sentence": "Hej.", "locale": "sv-SE"}
        write_tsv(root / f"{name}.tsv", HEADER_NEW, [[row.get(c, "") for c in HEADER_NEW]])
        (root / "clips" / f"{name}.mp3").write_bytes((root / "clips" / "train0.mp3").read_bytes())
    result = ingest_release(root, 0, 0, MEASURE, train_splits=["train", "dev"], eval_split="test")
    everything = pd.concat(result.splits.values(), ignore_index=True)
    assert not {"invalidated.mp3", "other.mp3"} & set(everything["path"])
    assert result.release == {
        "train_splits": ["train", "dev"],
        "dev_split": "test",
        "eval_split": "test",
        "reported_rows": 1,
        "invalidated_rows": 1,
        "other_rows": 1,
        "clip_durations_rows": 1,
        "absent_files": [],
    }
    train = result.splits["train"].set_index("path")
    assert train.loc["dev1.mp3", "reported"].endswith("reported.tsv: line 2: grammar-or-spelling")
    assert train.loc["train0.mp3", "listed_duration"] == 3.0
    assert train.loc["train0.mp3", "listed_duration_row"] == 2
    assert train["listed_duration"].isna().sum() == 3


def test_a_release_without_optional_files(make_release):
    result = ingest_release(small_release(make_release), 0, 0, MEASURE)
    assert result.release["absent_files"] == [
        "reported.tsv",
        "invalidated.tsv",
        "other.tsv",
        "clip_durations.tsv",
    ]
    assert result.release["reported_rows"] is None
    for manifest in result.splits.values():
        assert (manifest["reported"] == "").all() and manifest["listed_duration"].isna().all()


def test_default_roles_are_the_release_splits_row_for_row(make_release):
    root = small_release(make_release)
    result = ingest_release(root, 0, 0, MEASURE)
    assert result.release["dev_split"] == "dev"
    for split in ("train", "dev", "test"):
        alone, _ = ingest_split(root, split, 0, 0, MEASURE)
        pd.testing.assert_frame_equal(result.splits[split], alone)
        assert list(alone["path"]) == [f"{split}0.mp3", f"{split}1.mp3"]
        assert set(alone["release_split"]) == {split}


def test_training_on_train_and_dev_evaluates_on_test_in_training(make_release):
    root = small_release(make_release)
    with open(root / "test.tsv", "a", encoding="utf-8") as fh:  # a broken line in test.tsv
        fh.write("only\ttwo\n")
    result = ingest_release(root, 0, 0, MEASURE, train_splits=["train", "dev"])
    train, dev, test = (result.splits[s] for s in ("train", "dev", "test"))
    assert list(train["path"]) == ["train0.mp3", "train1.mp3", "dev0.mp3", "dev1.mp3"]
    assert list(train["release_split"]) == ["train", "train", "dev", "dev"]
    assert set(train["split"]) == {"train"}
    # dev (evaluated during training) is the eval split, the same rows under its role name.
    assert list(dev["path"]) == list(test["path"]) == ["test0.mp3", "test1.mp3"]
    assert set(dev["split"]) == {"dev"} and set(test["split"]) == {"test"}
    assert set(dev["release_split"]) == {"test"}
    # The test split's broken line is quarantined once, under the test role.
    (bad,) = result.quarantine
    assert list(bad["split"]) == ["test"] and list(bad["release_split"]) == ["test"]


def test_eval_split_dev_leaves_the_release_test_split_unread(make_release):
    root = small_release(make_release)
    (root / "test.tsv").unlink()  # not read at all: no error
    result = ingest_release(root, 0, 0, MEASURE, train_splits=["train"], eval_split="dev")
    assert list(result.splits["test"]["path"]) == ["dev0.mp3", "dev1.mp3"]
    assert list(result.splits["dev"]["path"]) == ["dev0.mp3", "dev1.mp3"]
    assert result.release["dev_split"] == result.release["eval_split"] == "dev"


def test_max_clips_bounds_a_role_of_several_splits(make_release):
    root = small_release(make_release)
    result = ingest_release(root, 3, 7, MEASURE, train_splits=["train", "dev"])
    assert len(result.splits["train"]) == 3 and len(result.splits["test"]) == 2


def test_bad_split_choice_is_an_error_before_anything_is_read(tmp_path):
    tmp_path.joinpath("empty").mkdir()
    with raises_naming(ValueError, "eval_split", "'test'", "train_splits"):
        ingest_release(tmp_path / "empty", 0, 0, MEASURE, train_splits=["train", "test"])


def test_stage_writes_release_json_and_uses_the_split_params(make_release, repo_copy):
    import json

    root = small_release(make_release)
    repo = repo_copy()
    data = {"source": "commonvoice", "raw_dir": str(root), "train_splits": ["train", "dev"]}
    write_params(repo, dotted("data", {**data, "eval_split": "test"}))
    proc = subprocess.run(stage_command("ingest", repo), cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "train = train+dev, dev = test, test = test" in proc.stdout
    release = json.loads((repo / "data/manifest/release.json").read_text("utf-8"))
    assert release["train_splits"] == ["train", "dev"] and release["dev_split"] == "test"
    train = pd.read_parquet(repo / "data/manifest/train.parquet")
    assert list(train["release_split"]) == ["train", "train", "dev", "dev"]
