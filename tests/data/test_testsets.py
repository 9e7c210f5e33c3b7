"""Named test sets: each layout's reader, the testset stage end to end, and every bad input.

All data is made here (wav files written with soundfile, TSVs written by hand); the processor
is the tiny one of conftest (base's real tokenizer, 80 mels).
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages import testset as stage
from swedish_transcriber.audio import write_audio
from swedish_transcriber.data.features import (
    FeatureSettings,
    featurize_split,
    load_processor,
    load_split,
    schema,
)
from swedish_transcriber.data.testset_features import copy_featurized, featurize_testset
from swedish_transcriber.data.testset_readers import (
    ROW_COLUMNS,
    read_commonvoice,
    read_fleurs,
    read_pairs,
    read_testset,
)
from swedish_transcriber.data.testsets import TestSet, TestSetError, TestSetParams, check_names
from swedish_transcriber.params import ParamsError, section
from swedish_transcriber.stage import main
from tests.media_files import tone
from tests.messages import assert_a_line_names, assert_names, raises_naming
from tests.repo_params import PARAMS_FILE, REPO, repo_params, write_params
from tests.tiny import feature_table

SENTENCES = ("Det regnar i Göteborg.", "Tåget till Malmö är försenat.", "Kan du stänga fönstret?")


def write_pair(folder: Path, stem: str, text: str | bytes | None, seconds: float = 1.0, seed=0):
    """``<stem>.wav`` (16 kHz tone) and, unless ``text`` is None, ``<stem>.txt``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_audio(folder / f"{stem}.wav", tone(seconds, 16_000, seed=seed), 16_000)
    if isinstance(text, bytes):
        (folder / f"{stem}.txt").write_bytes(text)
    elif text is not None:
        (folder / f"{stem}.txt").write_text(text, encoding="utf-8")


def pairs_folder(root: Path) -> Path:
    folder = root / "pairs"
    for i, sentence in enumerate(SENTENCES):
        write_pair(folder, f"clip{i}", f"  {sentence}\n", seconds=1.0 + i / 2, seed=i)
    (folder / "README.md").write_text("# not a clip\n", encoding="utf-8")
    return folder


def fleurs_folder(root: Path, lines: list[str] | None = None, audio: bool = True) -> Path:
    """A FLEURS language folder: headerless test.tsv (7 fields) and audio/test/*.wav."""
    folder = root / "sv_se"
    (folder / "audio" / "test").mkdir(parents=True, exist_ok=True)
    if lines is None:
        lines = []
        for i, sentence in enumerate(SENTENCES):
            name = f"{1000 + i}.wav"
            samples = 16_000 + 4_000 * i
            if audio:
                write_audio(
                    folder / "audio" / "test" / name, tone(samples / 16_000, 16_000), 16_000
                )
            words = sentence.lower().strip(".?")
            gender = ("MALE", "FEMALE", "OTHER")[i]
            lines.append(
                f"{i}\t{name}\t{sentence}\t{words}\t{words.replace(' ', '|')}\t{samples}\t{gender}"
            )
    (folder / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def pairs_set(path: Path | str) -> TestSet:
    return TestSet("pairs", str(path), "", "real")


# --------------------------------------------------------------------------------------------
# Readers


def test_pairs_reader(tmp_path):
    rows, problems = read_pairs(pairs_folder(tmp_path))
    assert problems == []
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert list(rows["path"]) == ["clip0.wav", "clip1.wav", "clip2.wav"]
    assert list(rows["sentence"]) == list(SENTENCES)  # one line, outer whitespace gone
    assert rows["duration"].isna().all()  # a wav + txt pair does not state it
    assert all(Path(f).is_file() for f in rows["audio_file"])
    assert set(rows["gender"]) == {""}


def test_commonvoice_reader_keeps_speaker_metadata(make_release):
    release = make_release(
        {
            "test": [
                {
                    "sentence": "Hej på dig.",
                    "gender": "female_feminine",
                    "age": "twenties",
                    "accents": "Skånska",
                },
                {"sentence": "Vi ses i morgon!", "gender": "male_masculine", "age": "fifties"},
            ]
        }
    )
    rows, problems = read_commonvoice(release, "test")
    assert problems == []
    assert list(rows["sentence"]) == ["Hej på dig.", "Vi ses i morgon!"]
    assert list(rows["gender"]) == ["female", "male"]  # the manifest's one vocabulary
    assert list(rows["age"]) == ["twenties", "fifties"]
    assert list(rows["accent"]) == ["Skånska", ""]
    assert list(rows["client_id"]) == ["speaker-test-0", "speaker-test-1"]
    assert rows["source"].iloc[1] == f"{release / 'test.tsv'}: line 3"
    assert list(rows["path"]) == ["common_voice_sv-SE_test_0.mp3", "common_voice_sv-SE_test_1.mp3"]


def test_fleurs_reader(tmp_path):
    rows, problems = read_fleurs(fleurs_folder(tmp_path), "test")
    assert problems == []
    assert list(rows["path"]) == ["1000.wav", "1001.wav", "1002.wav"]
    assert list(rows["sentence"]) == list(SENTENCES)  # the raw (cased) transcription
    assert list(rows["duration"]) == [1.0, 1.25, 1.5]  # num_samples at 16 kHz
    assert list(rows["gender"]) == ["male", "female", "other"]


# --------------------------------------------------------------------------------------------
# Bad input: each fault names the set, the file and (where there is one) the line


def fault(name: str, test_set: TestSet) -> str:
    with pytest.raises(TestSetError) as info:
        read_testset(name, test_set)
    message = str(info.value)
    assert_names(message.splitlines()[0], repr(name), test_set.format, test_set.path)
    return message


def test_missing_set_path(tmp_path):
    message = fault("gone", pairs_set(tmp_path / "nowhere"))
    assert_names(message, tmp_path / "nowhere", "not found", "evaluate.sets.gone.path")


def test_every_pairing_fault_is_listed_at_once(tmp_path):
    folder = pairs_folder(tmp_path)
    write_pair(folder, "no_text", None)
    (folder / "no_audio.txt").write_text("Hej.\n", encoding="utf-8")
    write_pair(folder, "empty", "  \n\n")
    write_pair(folder, "two_lines", "Hej.\nDå.\n")
    write_pair(folder, "latin1", "Hej på dig.\n".encode("latin-1"))
    write_pair(folder, "twice", "Hej.\n")
    write_audio(folder / "twice.flac", tone(1.0, 16_000), 16_000)
    message = fault("mine", pairs_set(folder))
    assert_names(message.splitlines()[0], 6)  # the count of faults
    expected = [  # each fault on a line of its own: the file, the line, the file it lacks
        (folder / "no_text.wav", "no_text.txt"),
        (folder / "no_audio.txt", "no_audio.wav"),
        (folder / "empty.txt", "line 1", "empty"),
        (folder / "two_lines.txt", "line 2"),
        (folder / "latin1.txt", "line 1", "UTF-8"),
        (folder / "twice.txt", "twice.flac", "twice.wav"),
    ]
    for facts in expected:
        assert_a_line_names(message, *facts)


def test_empty_pairs_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    message = fault("mine", pairs_set(tmp_path / "empty"))
    assert_names(message, tmp_path / "empty", "<id>.wav", "<id>.txt")  # what it looks for


def test_commonvoice_faults_name_the_tsv_line(make_release):
    release = make_release(
        {
            "test": [
                {"sentence": "Hej."},
                {"sentence": ""},
                {"path": "gone.mp3", "_clip": "missing"},
                {"path": "common_voice_sv-SE_test_0.mp3", "sentence": "Igen."},
                {"_line": "only\ttwo"},
            ]
        }
    )
    tsv = release / "test.tsv"
    message = fault("cv", TestSet("commonvoice", str(release), "test", "real"))
    assert_a_line_names(message, tsv, "line 3", "common_voice_sv-SE_test_1.mp3", "sentence")
    assert_a_line_names(message, tsv, "line 4", release / "clips" / "gone.mp3", "not found")
    assert_a_line_names(message, tsv, "line 5", "common_voice_sv-SE_test_0.mp3", "line 2")
    assert_a_line_names(message, tsv, "line 6", 13, 2)  # fields expected and found


def test_missing_split_tsv(make_release, tmp_path):
    release = make_release({"test": [{"sentence": "Hej."}]})
    message = fault("cv", TestSet("commonvoice", str(release), "other", "real"))
    assert_names(message, release / "other.tsv", "not found")
    message = fault("fl", TestSet("fleurs", str(fleurs_folder(tmp_path)), "dev", "real"))
    assert_names(message, tmp_path / "sv_se" / "dev.tsv", "not found")


def test_fleurs_faults(tmp_path):
    folder = fleurs_folder(
        tmp_path,
        lines=[
            "1\t1.wav\tHej.\thej\thej\t16000",
            "2\t2.wav\t \t\t\t16000\tMALE",
            "3\t3.wav\tHej.\thej\thej\tmany\tMALE",
            "4\t4.wav\tHej.\thej\thej\t16000\tFEMALE",
        ],
    )
    tsv = folder / "test.tsv"
    message = fault("fl", TestSet("fleurs", str(folder), "test", "real"))
    assert_a_line_names(message, tsv, "line 1", 7)  # the fields expected
    assert_a_line_names(message, tsv, "line 2", "2.wav", "transcription")
    assert_a_line_names(message, tsv, "line 3", "num_samples", "'many'")
    assert_a_line_names(message, tsv, "line 4", folder / "audio" / "test" / "4.wav", "not found")
    shutil.rmtree(folder / "audio" / "test")
    (folder / "audio" / "test.tar.gz").write_bytes(b"")
    message = fault("fl", TestSet("fleurs", str(folder), "test", "real"))
    # The missing folder, and the archive to extract there.
    audio = folder / "audio"
    assert_names(message, audio / "test", "not found", "extract", audio / "test.tar.gz")


def test_name_clashes(tmp_path):
    a = pairs_set("../shared/eval/real-sv")
    with raises_naming(ValueError, "'real'", "'again'"):
        check_names({"real": a, "again": pairs_set("../shared/eval/./real-sv")})
    with raises_naming(ValueError, "'Real'", "lower case"):
        check_names({"Real": a})
    check_names({"real": a, "other": pairs_set("other")})
    # A name given twice in params.yaml would silently be one set (PyYAML keeps the last).
    params = tmp_path / "params.yaml"
    params.write_text(
        "evaluate:\n  sets:\n"
        "    real: {format: pairs, path: a, split: '', speech: real}\n"
        "    real: {format: pairs, path: b, split: '', speech: real}\n",
        encoding="utf-8",
    )
    with raises_naming(ParamsError, params, "'real'", "line 3"):  # and where it was first
        section("evaluate", TestSetParams, params, subset=True)


# --------------------------------------------------------------------------------------------
# The stage, as dvc.yaml runs it


def stage_argv(name: str) -> list[str]:
    """dvc.yaml's ``testset`` command for set ``name`` (``${key}`` filled), after the module."""
    cmd = yaml.safe_load((REPO / "dvc.yaml").read_text("utf-8"))["stages"]["testset"]["do"]["cmd"]
    argv = shlex.split(cmd.replace("${key}", name))
    return argv[argv.index("-m") + 2 :]


@pytest.fixture
def stage_repo(tmp_path, monkeypatch, processor_dir):
    """A run directory: the repo's params with ``sets``, models/base = the tiny processor."""

    def build(sets: dict[str, dict[str, str]]) -> Path:
        changes = {"evaluate.sets": sets, "features.num_proc": 1}
        write_params(tmp_path, changes, base=PARAMS_FILE)
        (tmp_path / "models").mkdir(exist_ok=True)
        if not (tmp_path / "models" / "base").exists():
            (tmp_path / "models" / "base").symlink_to(processor_dir)
        monkeypatch.chdir(tmp_path)
        return tmp_path

    return build


def assert_feature_table(table, processor_dir):
    """The featurize stage's schema and labels, column for column."""
    stored = {k: v for k, v in schema(80, "float16").items() if k != "reason"}
    assert table.features == stored
    assert table.column_names == list(stored)
    tok = load_processor(processor_dir, "sv", "transcribe").tokenizer
    for labels, sentence in zip(table["labels"], table["sentence"], strict=True):
        assert tok.decode(labels, skip_special_tokens=True) == sentence


def test_stage_builds_a_pairs_set(stage_repo, processor_dir, capsys):
    root = stage_repo(
        {"mine": {"format": "pairs", "path": "eval/mine", "split": "", "speech": "real"}}
    )
    pairs_folder(root / "eval").rename(root / "eval" / "mine")
    main(stage.run, stage_argv("mine"))
    table = load_split(Path("data/testsets"), "mine")
    assert table["path"] == ["clip0.wav", "clip1.wav", "clip2.wav"]
    assert_feature_table(table, processor_dir)
    assert table["duration"] == pytest.approx([1.0, 1.5, 2.0])  # decoded, at 16 kHz
    assert table["input_length"] == [16_000, 24_000, 32_000]
    assert_a_line_names(capsys.readouterr().out, "testset", "mine", 3, "4.5 s")
    assert not list(root.rglob(".*tmp-*"))


def test_stage_commonvoice_set_matches_featurize(stage_repo, make_release, processor_dir):
    release = make_release(
        {
            "test": [
                {"sentence": "Hej på dig.", "gender": "female_feminine", "_seconds": 1.0},
                {"sentence": "Tåget till Umeå går klockan sju.", "_seconds": 2.0},
            ]
        }
    )
    stage_repo(
        {"cv": {"format": "commonvoice", "path": str(release), "split": "test", "speech": "real"}}
    )
    main(stage.run, stage_argv("cv"))
    table = load_split(Path("data/testsets"), "cv")
    assert_feature_table(table, processor_dir)
    assert table["gender"] == ["female", ""] and table["split"] == ["test", "test"]
    # The very numbers the featurize stage computes for the same clips.
    from swedish_transcriber.data.ingest import MeasureSettings, ingest_split

    manifest, _ = ingest_split(
        release, "test", 0, 0, repo_params("ingest.measure", MeasureSettings)
    )
    settings = repo_params("features", FeatureSettings, num_proc=1)
    reference, _ = featurize_split(
        manifest, load_processor(processor_dir, "sv", "transcribe"), settings
    )
    assert reference.features == table.features
    for column in ("path", "sentence", "labels", "input_length"):
        assert reference[column] == table[column]
    for ours, theirs in zip(
        reference.with_format("numpy"), table.with_format("numpy"), strict=True
    ):
        np.testing.assert_array_equal(ours["input_features"], theirs["input_features"])
        assert ours["pad_value"] == theirs["pad_value"]
    assert table["duration"] == pytest.approx(reference["duration"], abs=1e-3)


def test_stage_builds_a_fleurs_set(stage_repo, processor_dir):
    root = stage_repo(
        {
            "fleurs_sv": {
                "format": "fleurs",
                "path": "fleurs/sv_se",
                "split": "test",
                "speech": "real",
            }
        }
    )
    fleurs_folder(root / "fleurs")
    main(stage.run, stage_argv("fleurs_sv"))
    table = load_split(Path("data/testsets"), "fleurs_sv")
    assert_feature_table(table, processor_dir)
    assert table["duration"] == [1.0, 1.25, 1.5]  # num_samples / 16 kHz, as the TSV says
    assert table["input_length"] == [16_000, 20_000, 24_000]
    assert table["gender"] == ["male", "female", "other"]


def test_stage_copies_a_featurized_split(stage_repo, processor_dir):
    root = stage_repo(
        {
            "demo_test": {
                "format": "features",
                "path": "data/features",
                "split": "test",
                "speech": "synthetic",
            }
        }
    )
    # What featurize stores: its tables have no reason column (tiny.feature_table has one).
    table = feature_table(3, 0, "test").remove_columns("reason")
    table.save_to_disk(str(root / "data" / "features" / "test"))
    main(stage.run, stage_argv("demo_test"))
    table = load_split(Path("data/testsets"), "demo_test")
    original = load_split(Path("data/features"), "test")
    assert table.features == original.features and table["path"] == original["path"]
    assert_feature_table(table, processor_dir)


def test_stage_fails_whole_on_unreadable_audio(stage_repo, make_release, capsys):
    root = stage_repo(
        {"mine": {"format": "pairs", "path": "eval/mine", "split": "", "speech": "real"}}
    )
    folder = pairs_folder(root / "eval").rename(root / "eval" / "mine")
    (folder / "clip1.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    write_pair(folder, "long", "En mycket lång mening.", seconds=31.0)
    with pytest.raises(SystemExit) as info:
        main(stage.run, stage_argv("mine"))
    assert info.value.code == 1
    err = capsys.readouterr().err
    # The stage, the set and its 2 faults (after featurize's progress bars).
    assert_a_line_names(err, "testset", "'mine'", "pairs", "eval/mine", 2)
    assert_a_line_names(err, "eval/mine/clip1.wav")
    assert_a_line_names(err, "eval/mine/long.wav", "31.0 s", "30 s")
    assert not (root / "data" / "testsets" / "mine").exists()  # nothing half-written
    assert not list(root.rglob(".*tmp-*"))


def test_stage_commonvoice_unreadable_clip_names_the_line(stage_repo, make_release, capsys):
    release = make_release(
        {"test": [{"sentence": "Hej."}, {"sentence": "Då.", "_clip": "corrupt"}]}
    )
    stage_repo(
        {"cv": {"format": "commonvoice", "path": str(release), "split": "test", "speech": "real"}}
    )
    with pytest.raises(SystemExit):
        main(stage.run, stage_argv("cv"))
    err = capsys.readouterr().err
    assert_a_line_names(err, "'cv'", "commonvoice", release, "test")
    assert_a_line_names(err, release / "test.tsv", "line 3", release / "clips")


def test_stage_refuses_a_set_params_do_not_name(stage_repo, capsys):
    stage_repo({"mine": {"format": "pairs", "path": "eval/mine", "split": "", "speech": "real"}})
    with pytest.raises(SystemExit):
        main(stage.run, stage_argv("other"))
    # The set asked for, the key it was looked up in, and the sets there are.
    assert_names(capsys.readouterr().err, "'other'", "evaluate.sets", "mine")


def test_featurize_testset_needs_reader_rows(processor_dir):
    import pandas as pd

    with raises_naming(ValueError, "'x'", "sentence", "audio_file"):  # the missing columns
        featurize_testset(
            "x",
            pairs_set("p"),
            pd.DataFrame({"path": ["a"]}),
            load_processor(processor_dir, "sv", "transcribe"),
            repo_params("features", FeatureSettings),
        )


def test_copy_featurized_missing_split(tmp_path):
    with raises_naming(TestSetError, "'demo'", "features", tmp_path, "test"):
        copy_featurized(
            "demo", TestSet("features", str(tmp_path), "test", "synthetic"), tmp_path / "o"
        )


def test_dvc_yaml_stage_is_one_per_set():
    """foreach over the params' sets; deps name the set's folder, params its own keys."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text("utf-8"))["stages"]["testset"]
    assert spec["foreach"] == "${evaluate.sets}"
    assert "${item.path}" in spec["do"]["deps"] and "models/base" in spec["do"]["deps"]
    assert spec["do"]["outs"] == ["data/testsets/${key}"]
    assert "evaluate.sets.${key}.path" in spec["do"]["params"]
