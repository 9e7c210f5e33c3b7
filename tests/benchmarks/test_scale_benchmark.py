"""The scale benchmark's generator and accounting (benchmarks/scale_release.py, scale.py).

The generator is run on a few demo-like clips made here (tones as MP3, no espeak), at the
smallest N it accepts; the accounting on a hand-made workspace of manifests, quarantine
files and feature tables, so that a lost clip is seen as lost.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from benchmarks import scale
from benchmarks.scale_release import FAULTS, REPORTED_SENTENCE, build_release, cached_release
from swedish_transcriber.audio import AudioError, read_audio
from tests.messages import raises_naming

N = 20 * len(FAULTS)  # the smallest release the generator makes
SR = 48_000


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """A Common-Voice-layout demo corpus of six 1.5-3 s clips (validated.tsv + clips/)."""
    root = tmp_path_factory.mktemp("demo")
    (root / "clips").mkdir()
    rows = []
    for i in range(6):
        t = np.arange(int(SR * (1.5 + 0.3 * i))) / SR
        audio = 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
        name = f"common_voice_sv-SE_{40_000_001 + i}.mp3"
        sf.write(root / "clips" / name, audio.astype(np.float32), SR, format="MP3")
        rows.append({"client_id": "x", "path": name, "sentence": f"Det här är mening {i}."})
    with (root / "validated.tsv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory, demo_dir) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("release") / "r"
    out.mkdir()
    return out, build_release(N, 7, out, demo_dir, max_sources=6, workers=2)


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f.relative_to(root).as_posix().encode() + f.read_bytes())
    return digest.hexdigest()


def test_layout_of_a_current_release(release):
    root, summary = release
    for name in ("train", "dev", "test", "validated", "invalidated", "other"):
        rows = read_tsv(root / f"{name}.tsv")
        assert rows, name
        assert {"client_id", "path", "sentence_id", "sentence", "accents"} <= set(rows[0])
    splits = {s: read_tsv(root / f"{s}.tsv") for s in ("train", "dev", "test")}
    assert sum(len(r) for r in splits.values()) == N == summary["n"]
    validated = read_tsv(root / "validated.tsv")
    assert [r["path"] for r in validated] == [
        r["path"] for s in ("train", "dev", "test") for r in splits[s]
    ]
    reported = read_tsv(root / "reported.tsv")
    assert list(reported[0]) == ["sentence_id", "sentence", "locale", "reason"]
    durations = read_tsv(root / "clip_durations.tsv")
    assert list(durations[0]) == ["clip", "duration[ms]"]
    assert {d["clip"] for d in durations} == {p.name for p in (root / "clips").iterdir()}


def test_ids_are_unique_and_speakers_split_disjoint(release):
    root, _ = release
    listed = [
        r
        for s in ("train", "dev", "test", "invalidated", "other")
        for r in read_tsv(root / f"{s}.tsv")
    ]
    paths = [r["path"] for r in listed]
    assert len(paths) == len(set(paths))
    assert not any(p.startswith("common_voice_sv-SE_4000") for p in paths)  # new ids
    speakers = {
        s: {r["client_id"] for r in read_tsv(root / f"{s}.tsv")} for s in ("train", "dev", "test")
    }
    assert len(speakers["train"]) > 3
    assert not speakers["train"] & speakers["dev"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["dev"] & speakers["test"]
    for r in listed:
        assert r["sentence_id"] == hashlib.sha256(r["sentence"].encode()).hexdigest()


def test_planted_faults_are_there(release):
    root, summary = release
    faults = summary["faults"]
    assert set(faults) == set(FAULTS)
    train = {r["path"]: r for r in read_tsv(root / "train.tsv")}
    assert set(faults.values()) <= set(train)
    clips = root / "clips"
    assert not (clips / faults["missing_clip"]).exists()
    with pytest.raises(AudioError):
        read_audio(clips / faults["corrupt_mp3"])
    assert train[faults["empty_sentence"]]["sentence"] == ""
    long = train[faults["long_sentence"]]
    assert len(long["sentence"]) / sf.info(clips / long["path"]).duration > 30  # chars/s
    assert sf.info(clips / faults["short_clip"]).duration < 0.5
    reported = read_tsv(root / "reported.tsv")
    row = train[faults["reported_sentence"]]
    assert row["sentence"] == REPORTED_SENTENCE
    assert row["sentence_id"] in {r["sentence_id"] for r in reported}
    durations = {d["clip"]: int(d["duration[ms]"]) for d in read_tsv(root / "clip_durations.tsv")}
    mismatch = faults["duration_mismatch"]
    assert durations[mismatch] > 5 * 1000 * sf.info(clips / mismatch).duration
    # Every other clip's listed duration is its real one (within an MP3 frame).
    healthy = next(p for p in train if p not in faults.values())
    assert abs(durations[healthy] - 1000 * sf.info(clips / healthy).duration) < 30
    # Variants differ: speed and gain vary between copies of a source.
    sizes = {sf.info(clips / p).frames for p in list(train)[:40] if p not in faults.values()}
    assert len(sizes) > 5


def test_deterministic_by_seed(tmp_path, demo_dir, release):
    root, _ = release
    again = tmp_path / "again"
    again.mkdir()
    build_release(N, 7, again, demo_dir, max_sources=6, workers=1)
    assert tree_digest(again) == tree_digest(root)
    other = tmp_path / "other"
    other.mkdir()
    build_release(N, 8, other, demo_dir, max_sources=6, workers=1)
    assert tree_digest(other) != tree_digest(root)


def test_release_is_cached_by_n_and_seed(tmp_path, demo_dir):
    first, summary = cached_release(N, 3, tmp_path, demo_dir, max_sources=6, workers=1)
    stamp = (first / "release.json").stat().st_mtime_ns
    again, summary_again = cached_release(N, 3, tmp_path, demo_dir, max_sources=6, workers=1)
    assert again == first and summary_again == summary
    assert (first / "release.json").stat().st_mtime_ns == stamp  # not remade
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no tmp left


def test_too_small_n_is_refused(tmp_path, demo_dir):
    with raises_naming(ValueError, "--n", N - 1):  # the flag and its value
        build_release(N - 1, 1, tmp_path, demo_dir, max_sources=6)


# --- accounting ---------------------------------------------------------------------------


def fake_workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A release of 10 rows and a repo where 6 are featurized and 4 quarantined."""
    release = tmp_path / "release"
    release.mkdir()
    names = {
        "train": [f"c{i}.mp3" for i in range(6)],
        "dev": ["d0", ""],
        "test": ["t0.mp3", "t1.mp3"],
    }
    for split, paths in names.items():
        lines = ["client_id\tpath\tsentence"] + [f"x\t{p}\ts" for p in paths]
        (release / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    repo = tmp_path / "repo"
    validated = {
        "train": ["c0.mp3", "c1.mp3", "c2.mp3"],
        "dev": ["d0.mp3"],
        "test": ["t0.mp3", "t1.mp3"],
    }
    (repo / "data/validated").mkdir(parents=True)
    for split, paths in validated.items():
        pd.DataFrame({"path": paths, "duration": 2.0}).to_parquet(
            repo / f"data/validated/{split}.parquet"
        )
    q = repo / "data/quarantine"
    for stage, paths in {"ingest": ["c3.mp3"], "validate": ["c4.mp3"]}.items():
        (q / stage).mkdir(parents=True)
        pd.DataFrame({"path": paths, "reason": "bad"}).to_parquet(q / stage / "quarantine.parquet")
    # A stage that wrote only a TSV, and a row with no path (a malformed TSV line).
    (q / "other_check").mkdir()
    (q / "other_check/rows.tsv").write_text(
        "path\ttsv_file\ttsv_row\treason\n\tdev.tsv\t3\tmalformed\nc5.mp3\ttrain.tsv\t7\tx\n"
    )
    (q / "featurize").mkdir()
    pd.DataFrame({"path": ["t1.mp3"], "reason": "too long"}).to_parquet(
        q / "featurize/quarantine.parquet"
    )
    for split, paths in {
        "train": ["c0.mp3", "c1.mp3", "c2.mp3"],
        "dev": ["d0.mp3"],
        "test": ["t0.mp3"],
    }.items():
        datasets.Dataset.from_dict({"path": paths, "duration": [2.0] * len(paths)}).save_to_disk(
            str(repo / "data/features" / split)
        )
    return repo, release


def test_accounting_finds_nothing_lost(tmp_path):
    repo, release = fake_workspace(tmp_path)
    result = scale.account(repo, release, ["train", "dev", "test"])
    assert result["rows_read"] == 10
    assert result["validated_rows"] == 6
    assert result["quarantined_rows"] == {
        "featurize": 1,
        "ingest": 1,
        "other_check": 2,
        "validate": 1,
    }
    assert result["featurized_rows"] == 5
    assert result["lost_count"] == 0 and result["not_featurized_count"] == 0
    assert result["ok"]


def test_accounting_sees_a_lost_and_an_unfeaturized_clip(tmp_path):
    repo, release = fake_workspace(tmp_path)
    # c2 disappears from validation; t0 from the features.
    pd.DataFrame({"path": ["c0.mp3", "c1.mp3"], "duration": 2.0}).to_parquet(
        repo / "data/validated/train.parquet"
    )
    shutil.rmtree(repo / "data/features/test")  # t0 was its only row
    result = scale.account(repo, release, ["train", "dev", "test"])
    assert result["lost"] == ["c2.mp3"]
    assert result["not_featurized"] == ["t0.mp3"]
    assert not result["ok"]


def test_tsvs_read_follow_the_params():
    assert scale.read_tsv_names({"data": {}}) == ["train", "dev", "test"]
    params = {"data": {"train_splits": ["train", "other"], "eval_split": "dev"}}
    assert scale.read_tsv_names(params) == ["train", "dev", "test", "other"]


def test_disk_usage_counts_a_hardlinked_file_once(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "cache").mkdir()
    (tmp_path / "ws/a").write_bytes(b"x" * 100_000)
    os.link(tmp_path / "ws/a", tmp_path / "cache/a")
    (tmp_path / "cache/b").write_bytes(b"y" * 50_000)
    seen: set = set()
    ws, ws_apparent = scale.disk_usage([tmp_path / "ws"], seen)
    extra, extra_apparent = scale.disk_usage([tmp_path / "cache"], seen)
    assert ws_apparent == 100_000 and extra_apparent == 50_000
    assert ws >= 100_000 and 50_000 <= extra < 100_000


def run(n: int, per_clip: float, rss: float, per5: float, ok: bool, cache_extra: int) -> dict:
    stage = {"s_per_clip": per_clip}
    disk = {
        "workspace_bytes": 1000,
        "cache_bytes": 1000,
        "cache_not_in_workspace_bytes": cache_extra,
        "combined_bytes": 1000 + cache_extra,
    }
    return {
        "n": n,
        "stages": {s: stage for s in scale.STAGES},
        "total_s_per_clip": per_clip * 4,
        "peak_rss_bytes": rss,
        "features": {"bytes_per_5s_clip": per5, "bytes_per_clip": per5, "mean_clip_s": 5.0},
        "accounting": {
            "ok": ok,
            "clips_read": n,
            "validated_rows": n,
            "quarantined_rows": {},
            "lost_count": 0,
            "not_featurized_count": 0,
        },
        "cache_type": "hardlink",
        "disk": disk,
        "disk_after_relink": disk,
    }


def test_targets_pass_and_miss():
    good = scale.targets(
        [run(1000, 0.1, 1e9, 80_000, True, 0), run(20000, 0.11, 3e9, 80_000, True, 0)]
    )
    assert {c["result"] for c in good} == {"PASS"}
    bad = scale.targets(
        [run(1000, 0.1, 1e9, 80_000, True, 0), run(20000, 0.13, 5e9, 480_000, False, 1000)]
    )
    missed = [c["target"] for c in bad if c["result"] == "MISS"]
    assert any(t.startswith("time per clip featurize") for t in missed)
    assert any(t.startswith("time per clip total") for t in missed)
    assert any(t.startswith("peak RSS") for t in missed)
    assert any(t.startswith("features") and "20000" in t for t in missed)
    assert any(t.startswith("every listed clip") and "20000" in t for t in missed)
    assert any(t.startswith("DVC cache") and "20000" in t for t in missed)
    assert not any("1000 " in t or t.endswith("N=1000") for t in missed if "time" not in t)
