"""featurize: log-mel features and labels, and the quarantine of what Whisper cannot take."""

from __future__ import annotations

import numpy as np
import pytest

from swedish_transcriber.data.features import FeatureSettings, featurize_split, load_processor
from swedish_transcriber.data.ingest import MeasureSettings, ingest_release
from swedish_transcriber.whisper import CHUNK_LENGTH, N_FRAMES, N_TEXT_CTX, SAMPLE_RATE
from tests.repo_params import repo_params


@pytest.fixture
def manifest(make_release):
    root = make_release(
        {
            "train": [
                {"path": "a.mp3", "sentence": "Hej, hur mår du?", "_seconds": 1.0},
                {"path": "b.mp3", "sentence": "Tåget till Umeå går klockan sju.", "_seconds": 2.0},
                {"path": "long.mp3", "sentence": "En mycket lång mening.", "_seconds": 31.0},
                {"path": "c.mp3", "sentence": "Vi ses i morgon!", "_seconds": 1.5},
            ]
        }
    )
    return ingest_release(root, 0, 0, repo_params("ingest.measure", MeasureSettings)).splits[
        "train"
    ]


def test_features_labels_and_quarantine(manifest, processor_dir):
    processor = load_processor(processor_dir, "sv", "transcribe")
    settings = repo_params("features", FeatureSettings, num_proc=1, batch_size=2)
    table, quarantined = featurize_split(manifest, processor, settings)
    assert table["path"] == ["a.mp3", "b.mp3", "c.mp3"]
    feats = table.with_format("numpy")[:]["input_features"]
    assert feats.shape == (3, 80, N_FRAMES)
    assert table.features["input_features"].dtype == "float16"  # stored; read back as float32
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
    assert "31.0 s, over features.max_audio_seconds" in quarantined["reason"].iloc[0]


def test_parallel_matches_serial_and_long_labels_are_quarantined(manifest, processor_dir):
    processor = load_processor(processor_dir, "sv", "transcribe")
    manifest = manifest.copy()
    manifest.loc[3, "sentence"] = "och " * 30
    serial, q1 = featurize_split(
        manifest,
        processor,
        repo_params(
            "features",
            FeatureSettings,
            num_proc=1,
            batch_size=1,
            max_label_tokens=20,
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
            max_label_tokens=20,
            dtype="float32",
        ),
    )
    assert serial["path"] == parallel["path"] == ["a.mp3", "b.mp3"]
    np.testing.assert_array_equal(
        serial.with_format("numpy")[:]["input_features"],
        parallel.with_format("numpy")[:]["input_features"],
    )
    assert sorted(q1["path"]) == sorted(q2["path"]) == ["c.mp3", "long.mp3"]
    assert "over features.max_label_tokens (20)" in q1.set_index("path").loc["c.mp3", "reason"]


def test_empty_split_gives_empty_table(processor_dir):
    from swedish_transcriber.data.manifest import empty_manifest

    processor = load_processor(processor_dir, "sv", "transcribe")
    table, quarantined = featurize_split(
        empty_manifest(), processor, repo_params("features", FeatureSettings)
    )
    assert len(table) == 0 and "input_features" in table.column_names and quarantined.empty


def test_missing_processor_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the base_model stage first"):
        load_processor(tmp_path, "sv", "transcribe")


def test_bad_dtype_param():
    with pytest.raises(ValueError, match="dtype must be float16 or float32"):
        repo_params("features", FeatureSettings, dtype="int8")
    with pytest.raises(ValueError, match="Whisper's window"):
        repo_params("features", FeatureSettings, max_audio_seconds=CHUNK_LENGTH + 1)
    with pytest.raises(ValueError, match="Whisper's decoder length"):
        repo_params("features", FeatureSettings, max_label_tokens=N_TEXT_CTX + 1)
