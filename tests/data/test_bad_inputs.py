"""Every kind of bad clip and row, through the real ingest and validate stages.

Each bad row must end up in a quarantine table with a reason that names the file and the
line of the release it came from; the good rows must come through untouched.
"""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest

from tests.dvc_stages import stage_command
from tests.messages import assert_names
from tests.repo_params import write_params

GOOD = "Vi ses vid stationen i morgon bitti."
REPORTED = "Den här meningen är anmäld."


def write_tsv(path, rows):
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="utf-8")


def run_stage(repo, name):
    proc = subprocess.run(stage_command(name, repo), cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow  # runs the ingest and validate stages in subprocesses
def test_bad_clips_and_rows_are_quarantined_with_file_and_line(make_release, repo_copy):
    release = make_release(
        {
            "train": [
                {"path": "good0.mp3", "sentence": GOOD, "_seconds": 2.5},
                {"path": "good1.mp3", "sentence": GOOD, "_seconds": 2.5},
                {"path": "corrupt.mp3", "sentence": GOOD, "_clip": "corrupt"},
                {"path": "zero.mp3", "sentence": GOOD, "_clip": "empty"},
                {"path": "missing.mp3", "sentence": GOOD, "_clip": "missing"},
                {"path": "silent.mp3", "sentence": GOOD, "_clip": "silent", "_seconds": 2.5},
                {"path": "long.mp3", "sentence": GOOD, "_seconds": 45.0},
                {"path": "nosentence.mp3", "sentence": "", "_seconds": 2.5},
                {"path": "symbols.mp3", "sentence": "Det kostar 5 € #idag", "_seconds": 2.5},
                # Faults only the release's side files reveal (reported.tsv, clip_durations.tsv).
                {
                    "path": "reported.mp3",
                    "sentence": REPORTED,
                    "sentence_id": "s9",
                    "_seconds": 2.5,
                },
                {"path": "mismatch.mp3", "sentence": GOOD, "_seconds": 2.5},
            ],
            "dev": [{"path": "dev0.mp3", "sentence": GOOD, "_seconds": 2.5, "client_id": "d"}],
            "test": [{"path": "test0.mp3", "sentence": GOOD, "_seconds": 2.5, "client_id": "t"}],
        }
    )
    write_tsv(
        release / "reported.tsv",
        [["sentence_id", "sentence", "locale", "reason"], ["s9", REPORTED, "sv-SE", "offensive"]],
    )
    write_tsv(
        release / "clip_durations.tsv",
        [["clip", "duration[ms]"], ["good0.mp3", "2500"], ["mismatch.mp3", "6000"]],
    )
    # Rejected clips with audio on disk: counted, never read into a split.
    header = (release / "train.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")
    rejected = {"client_id": "x", "path": "rejected.mp3", "sentence": GOOD}
    write_tsv(release / "invalidated.tsv", [header, [rejected.get(c, "") for c in header]])
    (release / "clips/rejected.mp3").write_bytes((release / "clips/good0.mp3").read_bytes())
    repo = repo_copy()
    changes = {"data.source": "commonvoice", "data.raw_dir": str(release)}
    write_params(repo, {**changes, "validate.max_fail_rate": 0.9})
    run_stage(repo, "ingest")
    run_stage(repo, "validate")

    ingest_q = pd.read_parquet(repo / "data/quarantine/ingest/quarantine.parquet")
    validate_q = pd.read_parquet(repo / "data/quarantine/validate/quarantine.parquet")
    reasons = dict(zip(ingest_q["path"], ingest_q["reason"], strict=True))
    reasons.update(zip(validate_q["path"], validate_q["reason"], strict=True))
    expected = {
        "corrupt.mp3": "decode",
        "zero.mp3": "0 bytes",
        "missing.mp3": "missing",
        "silent.mp3": "silence_ratio",
        "long.mp3": "duration",
        "nosentence.mp3": "sentence",
        "symbols.mp3": "'€'",
        "reported.mp3": "reported",
        "mismatch.mp3": "6.00 s",  # what clip_durations.tsv lists
    }
    for path, fact in expected.items():
        assert path in reasons, f"{path} was not quarantined"
        assert_names(reasons[path], fact)
    for path in ("corrupt.mp3", "zero.mp3", "missing.mp3"):
        assert_names(reasons[path], "train.tsv", "line", f"clips/{path}")
    assert_names(reasons["reported.mp3"], "reported.tsv", "line 2", "offensive")
    assert_names(reasons["mismatch.mp3"], "clip_durations.tsv", "line 3")
    located = validate_q.set_index("path")
    assert located.loc["long.mp3", "tsv_file"].endswith("train.tsv")
    assert located.loc["long.mp3", "tsv_row"] == 8
    # The readable TSV beside the Parquet table holds the same rows.
    readable = pd.read_csv(repo / "data/quarantine/validate/quarantine.tsv", sep="\t")
    assert sorted(readable["path"]) == sorted(validate_q["path"])

    validated = pd.read_parquet(repo / "data/validated/train.parquet")
    assert sorted(validated["path"]) == ["good0.mp3", "good1.mp3"]
    # Nothing lost: every TSV row is either validated or quarantined.
    total = sum(
        len(pd.read_parquet(repo / f"data/validated/{s}.parquet")) for s in ("train", "dev", "test")
    )
    assert total + len(ingest_q) + len(validate_q) == 13
    validated_paths = {
        p
        for s in ("train", "dev", "test")
        for p in pd.read_parquet(repo / f"data/validated/{s}.parquet")["path"]
    }
    assert "rejected.mp3" not in validated_paths | set(ingest_q["path"]) | set(validate_q["path"])
    report = json.loads((repo / "reports/validation.json").read_text(encoding="utf-8"))
    assert report["failed_sentence_not_reported"] == 1
    assert report["failed_duration_matches_listed"] == 1
    assert report["release"]["invalidated_rows"] == 1
    assert report["release"]["absent_files"] == ["other.tsv"]
