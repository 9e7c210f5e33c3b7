"""The retrain stage (the review loop's automatic mode, review.auto_exclude_top_fraction) on a
tiny random Whisper: which clips leave (train clips only, copies with them, a reviewer's
decision wins), the pass-on at fraction 0, a second training without them that reuses the
train stage's encoder outputs, and clear errors."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import datasets
import pandas as pd
import pytest

from swedish_transcriber.model.training.fine_tune import kept_rows, origin
from swedish_transcriber.params import ParamsError, section
from swedish_transcriber.review.auto import COLUMNS, excluded_train_clips, read_queue
from swedish_transcriber.review.decisions import Decision, write_decisions
from swedish_transcriber.review.params import ReviewParams
from tests.dvc_stages import stage_command
from tests.repo_params import dotted, write_params
from tests.stage_runs import git_commit_all, read_json, run, train_stage, weights

TRAIN = [f"train_{i:03d}.mp3" for i in range(12)]  # save_tiny_features' train paths
DEV = [f"dev_{i:03d}.mp3" for i in range(4)]


def queue_of(paths: list[str]) -> pd.DataFrame:
    """A ranked queue: ``paths`` in order, most suspicious first."""
    n = len(paths)
    return pd.DataFrame(
        {
            "rank": range(1, n + 1),
            "path": paths,
            "split": [p.split("_")[0] for p in paths],
            "suspicion": [1.0 - i / (n + 1) for i in range(n)],
        }
    )


# A dev clip and train clips interleaved: the fraction is of the train clips only.
ORDER = [DEV[0], TRAIN[5], TRAIN[2], DEV[1], TRAIN[9], *TRAIN[:2], *TRAIN[3:5], *TRAIN[6:9]]
ORDER += [*TRAIN[10:], *DEV[2:]]


def test_augmented_copies_follow_their_original():
    assert origin("a/x.mp3") == "x" and origin("x.aug2.flac") == "x"
    assert origin("x.augmented.flac") == "x.augmented"  # not a copy's name
    table = datasets.Dataset.from_dict({"path": ["x.mp3", "x.aug1.flac", "y.mp3", "y.aug1.flac"]})
    assert kept_rows(table, frozenset({"x.mp3"})) == [2, 3]
    assert kept_rows(table, frozenset()) == [0, 1, 2, 3]


def test_the_top_train_clips_leave_and_dev_clips_never_do():
    queue = queue_of(ORDER)
    out = excluded_train_clips(queue, TRAIN + ["train_005.aug1.flac"], 0.25)
    assert list(out.columns) == list(COLUMNS)
    assert out["path"].tolist() == [TRAIN[5], TRAIN[2], TRAIN[9]]  # ceil(0.25 * 12) = 3
    assert out["rank"].tolist() == [2, 3, 5]  # the queue's ranks, dev rows between them
    assert out["reason"].str.startswith("auto:").all()
    assert excluded_train_clips(queue, TRAIN, 0.0).empty


def test_a_reviewers_decision_wins():
    keep = [Decision(path=TRAIN[2], action="keep", reason="listened: fine")]
    out = excluded_train_clips(queue_of(ORDER), TRAIN, 0.25, keep)
    assert out["path"].tolist() == [TRAIN[5], TRAIN[9]]  # not widened to make up for it


def test_fraction_out_of_range_is_a_clear_error(tmp_path):
    write_params(tmp_path, {"review.auto_exclude_top_fraction": 1.0})
    with pytest.raises((ParamsError, ValueError), match="auto_exclude_top_fraction"):
        section("review", ReviewParams, tmp_path / "params.yaml")


def test_a_missing_queue_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="dvc repro rank"):
        read_queue(tmp_path / "review_queue.parquet")


def test_a_fraction_on_an_empty_queue_is_a_clear_error(tmp_path, monkeypatch):
    """The rank stage writes an empty queue while nobody asks for it; a fraction above 0 on
    such a queue (a stale one) stops, naming the queue and the param, before any training."""
    import stages.retrain

    write_params(tmp_path, {"review.auto_exclude_top_fraction": 0.25})
    queue = tmp_path / "review_queue.parquet"
    queue_of([]).to_parquet(queue, index=False)
    monkeypatch.chdir(tmp_path)
    paths = [tmp_path / name for name in ("base", "features", "trained")]
    rest = [tmp_path / n for n in ("decisions.tsv", "ckpt", "curated", "own", "excluded.csv")]
    with pytest.raises(ValueError, match=r"review_queue.parquet: .*empty.*auto_exclude_top_fr"):
        stages.retrain.run(*paths, queue, *rest)
    assert not (tmp_path / "curated").exists() and not (tmp_path / "excluded.csv").exists()


def retrain_stage(repo: Path, check: bool = True):
    return run(stage_command("retrain", repo), repo, check=check)


@pytest.mark.slow  # trains twice in subprocesses
def test_retrain_passes_on_or_trains_without_the_top(tiny_repo):
    repo = tiny_repo
    train_stage(repo)
    (repo / "reports").mkdir(exist_ok=True)
    queue_of(ORDER).to_parquet(repo / "reports" / "review_queue.parquet", index=False)
    decisions = repo / "data" / "review" / "decisions.tsv"
    write_decisions(decisions, [Decision(path=TRAIN[2], action="keep", reason="fine")])

    # Fraction 0 (the repo's default): models/trained goes on as it is, no training.
    out = retrain_stage(repo)
    curated, trained = repo / "models" / "curated", repo / "models" / "trained"
    names = sorted(p.name for p in trained.iterdir())
    assert sorted(p.name for p in curated.iterdir()) == names
    assert all(filecmp.cmp(trained / n, curated / n, shallow=False) for n in names)
    listed = pd.read_csv(repo / "reports" / "auto_excluded.csv")
    assert list(listed.columns) == list(COLUMNS) and listed.empty
    assert read_json(repo / "checkpoints-curated" / "retrain.json")["excluded"] == 0
    assert "nothing excluded" in out.stdout

    # A quarter: the two top train clips the reviewer did not keep leave; training runs again
    # on the stored encoder outputs of the train stage (none are made for this run).
    write_params(repo, dotted("review", {"auto_exclude_top_fraction": 0.25}))
    git_commit_all(repo)
    out = retrain_stage(repo)
    listed = pd.read_csv(repo / "reports" / "auto_excluded.csv")
    assert listed["path"].tolist() == [TRAIN[5], TRAIN[9]]
    assert "2 of 12 rows excluded" in out.stdout
    info = read_json(curated / "train_info.json")
    assert info["excluded_clips"] == sorted([TRAIN[5], TRAIN[9]])
    assert info["steps"] == read_json(trained / "train_info.json")["steps"]
    assert not (repo / "checkpoints-curated" / "encoder_cache").exists()
    assert not (repo / "checkpoints-curated" / "retrain.json").exists()
    assert (repo / "checkpoints-curated" / "dvclive" / "metrics.json").is_file()
    a, b = weights(trained), weights(curated)
    assert any(not a[k].equal(b[k]) for k in a)  # other data, other weights
    assert "excluded_clips" not in read_json(trained / "train_info.json")


@pytest.mark.slow
def test_an_unreadable_decisions_file_stops_the_retrain(tiny_repo):
    repo = tiny_repo
    shutil.copytree(repo / "models" / "base", repo / "models" / "trained")
    (repo / "reports").mkdir(exist_ok=True)
    queue_of(ORDER).to_parquet(repo / "reports" / "review_queue.parquet", index=False)
    decisions = repo / "data" / "review" / "decisions.tsv"
    decisions.parent.mkdir(parents=True, exist_ok=True)
    decisions.write_bytes(b"path\taction\tsentence\treason\ttime\n\xff\xfe\n")
    proc = retrain_stage(repo, check=False)
    assert proc.returncode != 0 and "decisions.tsv" in proc.stderr
    assert not (repo / "models" / "curated").exists()
