"""The validation suite: each expectation catches its bad row, good rows pass untouched.

GX is slow to import and to set up, so the suite runs once per module over one manifest that
holds a bad row for every expectation (``suite_run``); the tests then inspect that result.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace

import pandas as pd
import pytest
import yaml

from swedish_transcriber.data.manifest import (
    COLUMNS,
    RELEASE_COLUMNS,
    SPLITS,
    write_split,
)
from swedish_transcriber.data.validation import (
    ValidationGateError,
    ValidationSettings,
    enforce_max_fail_rate,
    validate_manifest_dir,
    validate_manifests,
)
from swedish_transcriber.params import ParamsError, section
from swedish_transcriber.review.apply import ORIGINAL_COLUMN
from swedish_transcriber.review.decisions import Decision, DecisionsError, write_decisions
from swedish_transcriber.stage import main, parse_paths
from tests.dvc_stages import stage_args
from tests.manifests import SETTINGS, manifest, manifest_row, validate_repo
from tests.messages import assert_a_line_names, assert_names, raises_naming
from tests.repo_params import PARAMS_FILE, write_params

LONG_SENTENCE = "Det här är en ganska lång mening om vädret i Sverige. " * 4  # ~216 chars


# The bad rows, by what breaks them; every other row is good.
BAD_TRAIN = {
    "too_long": {"duration": 45.02, "sentence": LONG_SENTENCE},
    "empty_sentence": {"sentence": "   "},
    "euro": {"sentence": "Det kostar mycket €"},
    "hash": {"sentence": "Hej #svenska"},
    "dup_first": {"path": "dup.mp3"},
    "votes": {"up_votes": 1, "down_votes": 3},
    "fast": {"sentence": "Hej hej hej hej hej hej hej hej hej hej", "duration": 0.6},
    "silent": {"silence_ratio": 1.0},
    "overlap": {"client_id": "speaker-test-0"},
    "two": {"up_votes": 0, "down_votes": 1, "silence_ratio": 0.95},
    "dup_bad_first": {"path": "dup2.mp3", "sentence": "Hej #ett två tre"},
    "reported": {"reported": "data/raw/test/reported.tsv: line 3: offensive-language"},
    "mismatch": {"listed_duration": 4.0, "listed_duration_row": 9},  # measured 3.0 s
}


@pytest.fixture(scope="module")
def splits() -> dict[str, pd.DataFrame]:
    train = [manifest_row("train", i) for i in range(40)]
    # clip_durations.tsv disagrees by 0.3 s: MP3 decoders differ, within tolerance.
    train[1] = manifest_row("train", 1, listed_duration=3.3, listed_duration_row=2)
    for i, overrides in enumerate(BAD_TRAIN.values(), start=len(train)):
        train.append(manifest_row("train", i, **overrides))
    dev = [manifest_row("dev", i) for i in range(8)] + [manifest_row("dev", 8, path="dup.mp3")]
    test = [manifest_row("test", i) for i in range(8)] + [manifest_row("test", 8, path="dup2.mp3")]
    return {"train": manifest(train), "dev": manifest(dev), "test": manifest(test)}


@pytest.fixture(scope="module")
def suite_run(splits, tmp_path_factory):
    docs = tmp_path_factory.mktemp("docs")
    return validate_manifests(splits, SETTINGS, docs)


def reason_of(result, split: str, tsv_row: int) -> str:
    q = result.quarantined
    hit = q[(q["split"] == split) & (q["tsv_row"] == tsv_row)]
    assert len(hit) == 1, f"{split} line {tsv_row} is not quarantined once: {len(hit)}"
    return str(hit["reason"].iloc[0])


def bad_line(name: str) -> int:
    """The TSV line of the bad train row ``name``."""
    return 40 + list(BAD_TRAIN).index(name) + 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [  # the expectation, and the value, bound, file or line the reason names
        ("too_long", ["expect_column_values_to_be_between(duration)", "45.02 s", "[0.5, 30.0]"]),
        ("empty_sentence", ["expect_column_values_to_match_regex(sentence)", "'   '"]),
        ("euro", ["expect_column_values_to_not_match_regex(sentence)", "allowed_characters"]),
        ("hash", ["'#'", "U+0023"]),
        ("votes", ["expect_column_pair_values_a_to_be_greater_than_b(up_votes, down_votes)"]),
        ("fast", ["expect_column_values_to_be_between(chars_per_second)", "65.00 chars/s"]),
        ("silent", ["expect_column_values_to_be_between(silence_ratio)", "1.00", 0.8]),
        ("overlap", ["test", "TRAIN"]),  # the speaker is in test; the train row goes
        (
            "reported",
            [
                "expect_column_value_lengths_to_equal(reported)",
                "data/raw/test/reported.tsv",
                "line 3",
                "offensive-language",
            ],
        ),
        (
            "mismatch",
            [
                "expect_column_values_to_be_between(duration_mismatch)",
                "data/raw/test/clip_durations.tsv",
                "line 9",
                "3.00 s",  # measured
                "4.00 s",  # listed
                "0.5 s",  # the tolerance
            ],
        ),
    ],
)
def test_each_expectation_catches_its_row(suite_run, name, expected):
    assert_names(reason_of(suite_run, "train", bad_line(name)), *expected)


def test_euro_reason_names_the_character(suite_run):
    assert "'€' (U+20AC EURO SIGN)" in reason_of(suite_run, "train", bad_line("euro"))


def test_speaker_overlap_keeps_the_test_set_intact(suite_run, splits):
    pd.testing.assert_frame_equal(
        suite_run.passed["test"].iloc[:8], splits["test"].iloc[:8].reset_index(drop=True)
    )
    assert "speaker-test-0" not in set(suite_run.passed["train"]["client_id"])


def test_duplicate_path_keeps_first_and_quarantines_later(suite_run):
    assert "dup.mp3" in set(suite_run.passed["train"]["path"])
    reason = reason_of(suite_run, "dev", 10)
    # The check, the clip, and where its kept copy is: split and line.
    unique = "expect_column_values_to_be_unique(path)"
    assert_names(reason, unique, "'dup.mp3'", "train", f"line {bad_line('dup_first')}", "kept")


def test_duplicate_path_keeps_the_valid_copy_when_the_first_is_bad(suite_run):
    # The train copy fails the character check; the later test copy is the one kept.
    assert "dup2.mp3" in set(suite_run.passed["test"]["path"])
    reason = reason_of(suite_run, "train", bad_line("dup_bad_first"))
    assert_names(reason, "expect_column_values_to_not_match_regex(sentence)")
    assert_names(reason, "expect_column_values_to_be_unique(path)", "'dup2.mp3'", "test")


def test_a_row_failing_two_expectations_lists_both(suite_run):
    reason = reason_of(suite_run, "train", bad_line("two"))
    parts = reason.split("; ")
    assert len(parts) == 2, reason
    assert parts[0].startswith("expect_column_pair_values_a_to_be_greater_than_b")
    assert parts[1] == "expect_column_values_to_be_between(silence_ratio): 0.95 > 0.8"


def test_empty_sentence_is_not_also_counted_as_too_slow(suite_run):
    assert "chars_per_second" not in reason_of(suite_run, "train", bad_line("empty_sentence"))


def test_good_rows_pass_untouched(suite_run, splits):
    for split in SPLITS:
        good = splits[split].iloc[:8].reset_index(drop=True)
        pd.testing.assert_frame_equal(suite_run.passed[split].iloc[:8], good)
        assert list(suite_run.passed[split].columns) == [*COLUMNS, *RELEASE_COLUMNS]
    # All 40 good train rows passed, and only the bad ones were quarantined.
    assert len(suite_run.passed["train"]) == 40 + 1  # dup_first is kept
    quarantined_train = suite_run.quarantined[suite_run.quarantined["split"] == "train"]
    assert sorted(quarantined_train["tsv_row"]) == sorted(
        bad_line(n) for n in BAD_TRAIN if n != "dup_first"
    )


def test_quarantine_has_manifest_columns_and_release_location(suite_run):
    q = suite_run.quarantined
    assert list(q.columns) == [*COLUMNS, *RELEASE_COLUMNS, "stage", "reason"]
    assert set(q["stage"]) == {"validate"}
    assert q["tsv_file"].notna().all() and (q["tsv_row"] > 1).all()


def test_report_counts(suite_run):
    report = suite_run.report
    assert report["total"] == 53 + 9 + 9
    assert report["failed"] == 12 + 1  # 12 bad train rows (dup_first kept) + the dev duplicate
    assert report["passed"] == report["total"] - report["failed"]
    assert report["fail_rate"] == pytest.approx(13 / 71, abs=1e-6)
    assert report["failed_duration_in_range"] == 1
    assert report["failed_sentence_not_blank"] == 1
    assert report["failed_sentence_allowed_characters"] == 3  # euro, hash, dup_bad_first
    assert report["failed_path_unique"] == 2
    assert report["duplicate_paths"] == 2
    assert report["failed_votes_up_ge_down"] == 2
    assert report["failed_chars_per_second_in_range"] == 1
    assert report["failed_silence_ratio_max"] == 2
    assert report["failed_speaker_not_in_train_and_test"] == 1
    assert report["failed_duration_not_null"] == 0
    assert report["failed_sentence_not_reported"] == 1
    assert report["failed_duration_matches_listed"] == 1
    assert (report["train_total"], report["train_failed"]) == (53, 12)
    assert (report["dev_total"], report["dev_failed"], report["test_failed"]) == (9, 1, 0)
    assert all(isinstance(v, int | float) for v in report.values())
    json.dumps(report)


def test_data_docs_index_exists_and_works_offline(suite_run):
    index = suite_run.docs_index
    assert index is not None and index.is_file()
    text = index.read_text(encoding="utf-8")
    assert 'id="offline-index"' in text
    pages = list((index.parent / "validations").rglob("*.html"))
    assert len(pages) == 1
    assert pages[0].relative_to(index.parent).as_posix() in text
    assert (index.parent / "expectations" / "swedish_manifest.html").is_file()


def test_nulls_are_caught_not_skipped():
    bad = manifest([manifest_row("train", 0), manifest_row("train", 1)])
    bad["sentence"] = bad["sentence"].astype("string")
    bad.loc[0, "sentence"] = pd.NA
    bad.loc[1, "duration"] = float("nan")
    result = validate_manifests({"train": bad, "dev": manifest([]), "test": manifest([])}, SETTINGS)
    reasons = list(result.quarantined["reason"])
    assert reasons[0] == "expect_column_values_to_not_be_null(sentence): sentence is missing (null)"
    assert reasons[1].startswith("expect_column_values_to_not_be_null(duration)")
    assert result.report["dev_total"] == 0 and result.docs_index is None


def test_gate_message_gives_rate_threshold_and_counts(suite_run):
    with pytest.raises(ValidationGateError) as info:
        enforce_max_fail_rate(suite_run, 0.1, where="see reports/")
    message = str(info.value)
    assert_names(message, 13, 71, "18.3%", "validate.max_fail_rate", "10.0%")
    assert_a_line_names(message, "expect_column_values_to_not_match_regex(sentence)", 3)
    assert message.endswith("see reports/")
    enforce_max_fail_rate(suite_run, 0.25)  # within the threshold: no error


def test_settings_reject_bad_thresholds():
    # The key, the value as written and, for the ']', how to write it.
    key = ("params.yaml", "validate.allowed_characters")
    with raises_naming(ParamsError, *key, repr("a-]"), "'\\]'"):
        replace(SETTINGS, allowed_characters="a-]")
    with raises_naming(ParamsError, *key, repr("a-z\\")):
        replace(SETTINGS, allowed_characters="a-z\\")
    assert replace(SETTINGS, allowed_characters="]a-z\\]").disallowed_regex == "[^]a-z\\]]"
    with raises_naming(ParamsError, "validate", "min_duration", "max_duration", 31.0, 30.0):
        replace(SETTINGS, min_duration=31.0)
    with raises_naming(ParamsError, "validate.max_duration_mismatch", 0.0):
        replace(SETTINGS, max_duration_mismatch=0.0)


# --------------------------------------------------------------------------------------------
# The stage, run in a scratch repo root


def test_params_section_is_read_strictly(tmp_path):
    """The repo's section is read value for value (no default wins); an unknown key is an error."""
    repo_params = PARAMS_FILE
    raw = yaml.safe_load(repo_params.read_text("utf-8"))["validate"]
    assert dataclasses.asdict(section("validate", ValidationSettings, repo_params)) == raw
    params = tmp_path / "params.yaml"
    write_params(params, base={"validate": {**raw, "min_snr": 3}})
    with pytest.raises(ParamsError, match="min_snr"):
        section("validate", ValidationSettings, params)


def test_stage_writes_outputs(splits, tmp_path, monkeypatch):
    from stages import validate as stage

    validate_repo(tmp_path, splits)
    monkeypatch.chdir(tmp_path)
    main(stage.run, stage_args("validate"))
    paths = parse_paths(stage.run, stage_args("validate"))
    for split in SPLITS:
        out = pd.read_parquet(tmp_path / paths["out_dir"] / f"{split}.parquet")
        assert list(out.columns) == [*COLUMNS, *RELEASE_COLUMNS, ORIGINAL_COLUMN]
        assert set(out[ORIGINAL_COLUMN]) <= {""}  # no decisions file: nothing fixed
    q = pd.read_parquet(tmp_path / paths["quarantine_dir"] / "quarantine.parquet")
    assert len(q) == 13
    assert (tmp_path / paths["quarantine_dir"] / "quarantine.tsv").is_file()
    report = json.loads((tmp_path / paths["report"]).read_text("utf-8"))
    assert report["failed"] == 13
    assert "release" not in report  # manifests without release.json (not made by ingest)
    assert (tmp_path / paths["docs_dir"] / "index.html").is_file()
    assert not (tmp_path / "gx").exists()
    leftovers = [p.name for p in tmp_path.rglob(".*tmp-*")]
    assert not leftovers


def test_stage_over_max_fail_rate_fails_and_writes_no_data(splits, tmp_path, monkeypatch, capsys):
    from stages import validate as stage

    validate_repo(tmp_path, splits, max_fail_rate=0.1)
    monkeypatch.chdir(tmp_path)
    paths = parse_paths(stage.run, stage_args("validate"))
    with raises_naming(ValidationGateError, "18.3%", "validate.max_fail_rate"):
        stage.run(**paths)
    assert not (tmp_path / paths["out_dir"]).exists()
    assert not (tmp_path / paths["quarantine_dir"]).exists()
    # The report and the docs are there to look at.
    assert json.loads((tmp_path / paths["report"]).read_text("utf-8"))["fail_rate"] > 0.1
    assert (tmp_path / paths["docs_dir"]).joinpath("index.html").is_file()
    with pytest.raises(SystemExit) as exit_info:
        main(stage.run, stage_args("validate"))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("validate: error:")  # the stage's name first, then its message
    assert_names(err, 13, 71, "reports/validation.json", "reports/data_docs/index.html")


def test_data_docs_are_identical_for_identical_input(suite_run, splits, tmp_path):
    """DVC must see an unchanged reports/data_docs when the data did not change."""
    again = tmp_path / "docs"
    validate_manifests(splits, SETTINGS, again)
    first = suite_run.docs_index.parent
    pages = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert pages == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for page in pages:
        assert (first / page).read_bytes() == (again / page).read_bytes(), page


RELEASE = {
    "train_splits": ["train", "dev"],
    "dev_split": "test",
    "eval_split": "test",
    "reported_rows": 0,
    "invalidated_rows": 12,
    "other_rows": None,
    "clip_durations_rows": 30,
    "absent_files": ["other.tsv"],
}


def test_a_dev_role_that_is_the_eval_split_is_validated_once(tmp_path):
    """Trained on train+dev: dev (in training) is the test split; its rows are checked once."""
    train = manifest(
        [manifest_row("train", i) for i in range(4)] + [manifest_row("dev", i) for i in range(2)]
    )
    test = manifest([manifest_row("test", 0), manifest_row("test", 1, duration=45.0)])
    dev = test.assign(split="dev")
    for split, frame in {"train": train, "dev": dev, "test": test}.items():
        write_split(frame, tmp_path, split)
    (tmp_path / "release.json").write_text(json.dumps(RELEASE), "utf-8")
    result = validate_manifest_dir(tmp_path, SETTINGS)
    report = result.report
    # The same clips in dev and test are not duplicates; the bad test row is quarantined once.
    assert (report["total"], report["failed"], report["failed_path_unique"]) == (8, 1, 0)
    assert list(result.quarantined["split"]) == ["test"]
    assert (report["dev_total"], report["dev_passed"]) == (report["test_total"], 1)
    assert list(result.passed["dev"]["path"]) == list(result.passed["test"]["path"])
    assert set(result.passed["dev"]["split"]) == {"dev"}
    assert report["release"] == RELEASE
    json.dumps(report)

    write_split(test.iloc[:1].assign(split="dev"), tmp_path, "dev")
    # The file, the eval split it names, and the stage that makes it again.
    with raises_naming(ValueError, tmp_path / "release.json", "'test'", "ingest"):
        validate_manifest_dir(tmp_path, SETTINGS)


def test_stage_reports_the_release(splits, tmp_path, monkeypatch):
    from stages import validate as stage

    validate_repo(tmp_path, splits)
    release = {**RELEASE, "train_splits": ["train"], "dev_split": "dev"}
    (tmp_path / "data/manifest/release.json").write_text(json.dumps(release), "utf-8")
    monkeypatch.chdir(tmp_path)
    main(stage.run, stage_args("validate"))
    paths = parse_paths(stage.run, stage_args("validate"))
    report = json.loads((tmp_path / paths["report"]).read_text("utf-8"))
    assert report["release"] == release and report["dev_total"] == 9


# A reviewer's decisions (data/review/decisions.tsv), applied by the stage before the suite.


def _clean_rows(splits: dict[str, pd.DataFrame], result_passed: dict) -> tuple[str, str]:
    """Two train clips that pass the suite untouched: one to exclude, one to fix."""
    a, b = list(result_passed["train"]["path"][:2])
    return a, b


def test_stage_applies_review_decisions(splits, suite_run, tmp_path, monkeypatch):
    """Excluded: quarantined with the reviewer's reason; fixed: relabelled, original kept."""
    from stages import validate as stage

    excluded, fixed = _clean_rows(splits, suite_run.passed)
    validate_repo(tmp_path, splits)
    decisions = tmp_path / "data/review/decisions.tsv"
    write_decisions(
        decisions,
        [
            Decision(excluded, "exclude", reason="the speaker reads another sentence"),
            Decision(fixed, "fix", sentence="Ett rättat exempel.", reason="skipped words"),
        ],
    )
    monkeypatch.chdir(tmp_path)
    main(stage.run, stage_args("validate"))
    paths = parse_paths(stage.run, stage_args("validate"))
    train = pd.read_parquet(tmp_path / paths["out_dir"] / "train.parquet").set_index("path")
    assert excluded not in train.index
    original = suite_run.passed["train"].set_index("path").loc[fixed, "sentence"]
    assert train.loc[fixed, "sentence"] == "Ett rättat exempel."
    assert train.loc[fixed, ORIGINAL_COLUMN] == original
    assert len(train) == len(suite_run.passed["train"]) - 1
    q = pd.read_parquet(tmp_path / paths["quarantine_dir"] / "quarantine.parquet")
    by_review = q[q["path"] == excluded]
    assert list(by_review["reason"]) == ["excluded by review: the speaker reads another sentence"]
    assert list(by_review["stage"]) == ["curate"]
    assert len(q) == 13 + 1  # the suite's 13, and the excluded clip
    report = json.loads((tmp_path / paths["report"]).read_text("utf-8"))
    assert (report["curation"]["excluded"], report["curation"]["fixed"]) == (1, 1)
    assert report["failed"] == 13  # a reviewer's exclusion is not a failed expectation


@pytest.mark.parametrize(
    ("line", "expected"),
    [  # what the message names beside the file and line 2: the action, the key, the clip
        ("{a}\tdelete\t\tbad\t2026-11-28T10:00:00Z", ["'delete'"]),
        (
            "{a}\tfix\tHej 😀\tskipped words\t2026-11-28T10:00:00Z",
            ["validate.allowed_characters", "'😀'"],
        ),
        ("gone.mp3\texclude\t\tbad\t2026-11-28T10:00:00Z", ["'gone.mp3'"]),
    ],
)
def test_a_bad_decisions_file_stops_the_stage_and_writes_nothing(
    splits, suite_run, tmp_path, monkeypatch, line, expected
):
    from stages import validate as stage

    a, _ = _clean_rows(splits, suite_run.passed)
    validate_repo(tmp_path, splits)
    decisions = tmp_path / "data/review/decisions.tsv"
    decisions.parent.mkdir(parents=True)
    header = "path\taction\tsentence\treason\ttime\n"
    decisions.write_text(header + line.format(a=a) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    paths = parse_paths(stage.run, stage_args("validate"))
    with pytest.raises(DecisionsError) as info:
        stage.run(**paths)
    assert_a_line_names(info.value, "data/review/decisions.tsv", "line 2", *expected)
    for out in ("out_dir", "quarantine_dir"):
        assert not (tmp_path / paths[out]).exists()
