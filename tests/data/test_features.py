"""featurize: log-mel features and labels, and the quarantine of what Whisper cannot take."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swedish_transcriber.data.features import (
    KEEP_COLUMNS,
    FeatureSettings,
    featurize_split,
    load_processor,
    pad_features,
    stored_frames,
)
from swedish_transcriber.data.ingest import MeasureSettings, ingest_release
from swedish_transcriber.whisper import CHUNK_LENGTH, N_FRAMES, N_TEXT_CTX, SAMPLE_RATE
from tests.messages import assert_names, raises_naming
from tests.releases import build_release
from tests.repo_params import repo_params


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> pd.DataFrame:
    """Four clips (one over Whisper's window) ingested once for the module (never changed)."""
    root = build_release(
        tmp_path_factory.mktemp("features_release"),
        {
            "train": [
                {"path": "a.mp3", "sentence": "Hej, hur mår du?", "_seconds": 1.0},
                {"path": "b.mp3", "sentence": "Tåget till Umeå går klockan sju.", "_seconds": 2.0},
                {"path": "long.mp3", "sentence": "En mycket lång mening.", "_seconds": 31.0},
                {"path": "c.mp3", "sentence": "Vi ses i morgon!", "_seconds": 1.5},
            ]
        },
    )
    return ingest_release(root, 0, 0, repo_params("ingest.measure", MeasureSettings)).splits[
        "train"
    ]


@pytest.fixture
def manifest(ingested) -> pd.DataFrame:
    """The module's ingested manifest, this test's own copy."""
    return ingested.copy(deep=True)


def test_features_labels_and_quarantine(manifest, processor_dir):
    processor = load_processor(processor_dir, "sv", "transcribe")
    settings = repo_params("features", FeatureSettings, num_proc=1, batch_size=2)
    table, quarantined = featurize_split(manifest, processor, settings)
    assert table["path"] == ["a.mp3", "b.mp3", "c.mp3"]
    rows = table.with_format("numpy")[:]
    feats = pad_features(rows["input_features"], rows["pad_value"])
    assert feats.shape == (3, 80, N_FRAMES)
    assert table.features["input_features"].dtype == "float16"  # stored; read back as float32
    # Only the clip's own frames are stored: 1 s, 2 s and 1.5 s of audio.
    assert [len(f) for f in rows["input_features"]] == [
        stored_frames(n) for n in table["input_length"]
    ]
    assert table["input_length"] == [16_000, 32_000, 24_000]
    # Same numbers as the processor computes directly on the decoded audio.
    from swedish_transcriber.audio import load_audio

    direct = processor.feature_extractor(
        load_audio(manifest["audio_file"][1]), sampling_rate=SAMPLE_RATE, return_tensors="np"
    )
    np.testing.assert_allclose(feats[1].astype(np.float32), direct.input_features[0], atol=2e-3)
    tok = processor.tokenizer
    prefix = tok.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|sv|>", "<|transcribe|>", "<|notimestamps|>"]
    )
    for labels, sentence in zip(table["labels"], table["sentence"], strict=True):
        assert labels[:4] == prefix and labels[-1] == tok.eos_token_id
        assert tok.decode(labels, skip_special_tokens=True) == sentence
    assert table["gender"] == list(manifest["gender"][[0, 1, 3]])
    assert list(quarantined["path"]) == ["long.mp3"]
    assert_names(quarantined["reason"].iloc[0], "31.0 s", f"{CHUNK_LENGTH} s")


def test_parallel_matches_serial_and_long_labels_are_quarantined(manifest, processor_dir):
    processor = load_processor(processor_dir, "sv", "transcribe")
    manifest = manifest.copy()
    manifest.loc[3, "sentence"] = "och " * (N_TEXT_CTX + 1)  # one token a word, and the prompt
    serial, q1 = featurize_split(
        manifest,
        processor,
        repo_params(
            "features",
            FeatureSettings,
            num_proc=1,
            batch_size=1,
            dtype="float32",
        ),
    )
    parallel, q2 = featurize_split(
        manifest,
        processor,
        repo_params(
            "features",
            FeatureSettings,
            num_proc=2,
            batch_size=1,
            dtype="float32",
        ),
    )
    assert serial["path"] == parallel["path"] == ["a.mp3", "b.mp3"]
    for one, two in zip(serial.with_format("numpy"), parallel.with_format("numpy"), strict=True):
        np.testing.assert_array_equal(one["input_features"], two["input_features"])
        assert one["pad_value"] == two["pad_value"]
    assert sorted(q1["path"]) == sorted(q2["path"]) == ["c.mp3", "long.mp3"]
    assert_names(q1.set_index("path").loc["c.mp3", "reason"], N_TEXT_CTX)


@pytest.mark.parametrize("num_proc", [1, 2])
def test_a_scratch_folder_streams_the_rows_to_disk_with_the_same_result(
    manifest, processor_dir, tmp_path, num_proc
):
    """At release scale the map output must not live in RAM: with a scratch folder the table
    is memory-mapped from Arrow files there, and equal to the in-memory one."""
    processor = load_processor(processor_dir, "sv", "transcribe")
    settings = repo_params("features", FeatureSettings, num_proc=num_proc, batch_size=1)
    in_memory, q1 = featurize_split(manifest, processor, settings)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    on_disk, q2 = featurize_split(manifest, processor, settings, scratch)
    assert not in_memory.cache_files
    files = [Path(f["filename"]) for f in on_disk.cache_files]
    assert files and all(f.parent == scratch for f in files)
    assert on_disk["path"] == in_memory["path"] and list(q1["path"]) == list(q2["path"])
    for one, two in zip(in_memory.with_format("numpy"), on_disk.with_format("numpy"), strict=True):
        np.testing.assert_array_equal(one["input_features"], two["input_features"])
        assert one["pad_value"] == two["pad_value"] and list(one["labels"]) == list(two["labels"])


def test_empty_split_gives_empty_table(processor_dir):
    from swedish_transcriber.data.manifest import empty_manifest

    processor = load_processor(processor_dir, "sv", "transcribe")
    table, quarantined = featurize_split(
        empty_manifest(), processor, repo_params("features", FeatureSettings)
    )
    assert len(table) == 0 and "input_features" in table.column_names and quarantined.empty


def test_missing_processor_is_a_clear_error(tmp_path):
    facts = (tmp_path, "preprocessor_config.json", "dvc repro base_model")
    with raises_naming(FileNotFoundError, *facts):
        load_processor(tmp_path, "sv", "transcribe")


def test_bad_dtype_param():
    with raises_naming(ValueError, "dtype", "'int8'", "float16", "float32"):
        repo_params("features", FeatureSettings, dtype="int8")


# --------------------------------------------------------------------------------------------
# Stored without the padding: the model input rebuilt at batch time is the extractor's window


def clips_manifest(folder, clips: dict[str, np.ndarray]) -> pd.DataFrame:
    """A manifest of 16 kHz WAV clips (written losslessly, as float32)."""
    import soundfile as sf

    rows = []
    for name, audio in clips.items():
        sf.write(folder / name, audio, SAMPLE_RATE, subtype="FLOAT")
        rows.append(
            {c: "" for c in KEEP_COLUMNS}
            | {
                "split": "test",
                "path": name,
                "sentence": "Hej på dig.",
                "duration": len(audio) / SAMPLE_RATE,
                "audio_file": str(folder / name),
            }
        )
    return pd.DataFrame(rows)


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Noise under a slow envelope, ending in loud samples (the last frames see audio)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SAMPLE_RATE))
    envelope = 0.3 * (1.2 + np.sin(np.arange(n) / 800.0)) / 2.2
    return (envelope * rng.standard_normal(n)).clip(-1, 1).astype(np.float32)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_padded_input_is_the_extractors_window_bit_for_bit(tmp_path, processor_dir, dtype):
    """Clips of several lengths, a very short and an all-silent one, one near 30 s."""
    clips = {
        "short.wav": speech_like(0.05, 1),  # 800 samples: 7 frames
        "odd.wav": speech_like(1.23456, 2),  # not a whole number of hops
        "five.wav": speech_like(5.0, 3),
        "silent.wav": np.zeros(2 * SAMPLE_RATE, np.float32),
        "long.wav": speech_like(29.99, 4),  # its padded frames are not wholly in the zeros
    }
    processor = load_processor(processor_dir, "sv", "transcribe")
    settings = repo_params("features", FeatureSettings, num_proc=1, batch_size=8, dtype=dtype)
    table, quarantined = featurize_split(clips_manifest(tmp_path, clips), processor, settings)
    assert quarantined.empty and table["path"] == list(clips)
    rows = table.with_format("numpy")[:]
    got = pad_features(rows["input_features"], rows["pad_value"])
    assert got.dtype == np.float32 and got.shape == (len(clips), 80, N_FRAMES)
    # What featurize stored before, the whole window: the extractor on the same batch.
    window = processor.feature_extractor(
        list(clips.values()), sampling_rate=SAMPLE_RATE, return_tensors="np"
    ).input_features
    np.testing.assert_array_equal(got, window.astype(dtype).astype(np.float32))
    # Each clip alone gives the same numbers (within float rounding): the batch is no factor.
    for i, audio in enumerate(clips.values()):
        alone = processor.feature_extractor(
            audio, sampling_rate=SAMPLE_RATE, return_tensors="np"
        ).input_features[0]
        np.testing.assert_allclose(got[i], alone, atol=2e-3 if dtype == "float16" else 1e-5)
    frames = [len(f) for f in rows["input_features"]]
    assert frames == [7, 125, 502, 202, N_FRAMES]
    assert frames == [stored_frames(len(a)) for a in clips.values()]
    # The pad value is Whisper's floor: the clip's normalized maximum - 2, or -1.5 if silent.
    for i, name in enumerate(clips):
        rule = max(float(window[i].max()) - 2.0, -1.5)
        assert rows["pad_value"][i] == pytest.approx(rule, abs=1e-3 if dtype == "float16" else 1e-6)
        if name != "long.wav":
            assert np.all(window[i, :, frames[i] :].astype(dtype) == rows["pad_value"][i])
    assert rows["pad_value"][list(clips).index("silent.wav")] == -1.5
    assert np.all(got[list(clips).index("silent.wav")] == -1.5)


def test_a_five_second_clip_takes_at_most_120_kb_on_disk(tmp_path, processor_dir):
    """The saved Arrow table, per 5 s clip: 502 frames x 80 mels x 2 bytes and little else."""
    clips = {f"c{i}.wav": speech_like(5.0, i) for i in range(4)}
    (tmp_path / "clips").mkdir()
    processor = load_processor(processor_dir, "sv", "transcribe")
    settings = repo_params("features", FeatureSettings, num_proc=1, dtype="float16")
    table, _ = featurize_split(clips_manifest(tmp_path / "clips", clips), processor, settings)
    table.save_to_disk(str(tmp_path / "table"))
    size = sum(f.stat().st_size for f in (tmp_path / "table").glob("*.arrow"))
    assert 502 * 80 * 2 <= size / len(clips) <= 120_000


def test_pad_features_checks_its_rows():
    rows = [np.zeros((10, 80), np.float16), np.ones((3000, 80), np.float16)]
    batch = pad_features(rows, [-0.25, 0.5])
    assert batch.shape == (2, 80, N_FRAMES)
    assert np.all(batch[0, :, :10] == 0) and np.all(batch[0, :, 10:] == -0.25)
    assert np.all(batch[1] == 1)
    assert pad_features([], []).shape == (0, 80, N_FRAMES)
    with raises_naming(ValueError, 2, 1):  # the rows and the pad values
        pad_features(rows, [0.0])
    with raises_naming(ValueError, 0, "(80, 10)"):  # the row and its shape
        pad_features([np.zeros((80, 10))], [0.0])  # mels x frames: the old layout
    with raises_naming(ValueError, 0, "(3001, 80)", 3000):
        pad_features([np.zeros((3001, 80))], [0.0])


def test_a_table_in_the_old_padded_layout_is_a_clear_error(tmp_path):
    import datasets

    from swedish_transcriber.data.features import load_split

    old = {"input_features": [np.zeros((80, 3000), np.float16)], "labels": [[1, 2]]}
    datasets.Dataset.from_dict(old).save_to_disk(str(tmp_path / "dev"))
    with raises_naming(ValueError, tmp_path / "dev", "pad_value", "dvc repro featurize"):
        load_split(tmp_path, "dev")
