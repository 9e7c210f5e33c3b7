"""The pipeline's side of the one decoder: the same samples as before, and clear refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from swedish_transcriber.audio import AudioError, load_audio, read_audio
from swedish_transcriber.data.demo_corpus import Speaker, Utterance, synthesise
from tests.media_files import write_clip
from tests.messages import assert_names, raises_naming


def decoded_before(path: Path, sample_rate: int = 16_000) -> np.ndarray:
    """What ``load_audio`` returned before the decoders were merged (commit 8eac892)."""
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if sr == sample_rate:
        return mono
    return soxr.resample(mono, sr, sample_rate, quality="HQ").astype(np.float32, copy=False)


def test_demo_corpus_clips_decode_to_the_very_same_samples(tmp_path):
    """The model's metrics rest on these samples: an espeak-ng MP3 at 48 kHz, as the corpus has."""
    speaker = Speaker("anna", "sv+f3", "female", "thirties", 160, 55, "train", "Stockholmska")
    utterance = Utterance(
        "clip.mp3", "Mormor bakar kanelbullar varje lördag.", speaker, 170, 50, 2, 0
    )
    clip = tmp_path / "clip.mp3"
    synthesise(utterance, clip, 48_000, shutil.which("espeak-ng") or "espeak-ng")
    assert sf.info(clip).samplerate == 48_000
    new, before = load_audio(clip), decoded_before(clip)
    assert new.shape[0] > 16_000 and new.dtype == np.float32
    np.testing.assert_array_equal(new, before)


@pytest.mark.parametrize(("fmt", "channels", "rate"), [("MP3", 1, 32_000), ("FLAC", 2, 44_100)])
def test_longer_and_stereo_files_decode_to_the_same_samples(tmp_path, fmt, channels, rate):
    """Past 65536 frames (where reading MP3 in blocks drifts by ~1e-6) and stereo too."""
    path = tmp_path / f"clip.{fmt.lower()}"
    rng = np.random.default_rng(1)
    sf.write(path, 0.1 * rng.standard_normal((3 * rate, channels)), rate, format=fmt)
    np.testing.assert_array_equal(load_audio(path), decoded_before(path))
    clip = write_clip(tmp_path / "tone.mp3", seconds=3.0)
    np.testing.assert_array_equal(load_audio(clip), decoded_before(clip))


def test_corrupt_clip_says_what_is_wrong_not_that_it_is_missing(tmp_path):
    """libsndfile calls an MP3 it cannot parse "File does not exist"; the reason must not."""
    path = tmp_path / "corrupt.mp3"
    path.write_bytes(b"ID3\x03\x00\x00\x00" + bytes(range(256)) * 8)
    with pytest.raises(AudioError) as info:
        read_audio(path)
    message = str(info.value)
    assert_names(message, path, "corrupt")
    assert "does not exist" not in message


def test_unsupported_format_names_the_problem(tmp_path):
    path = tmp_path / "clip.flac"
    path.write_bytes(b"fLaC" + bytes(100))
    with raises_naming(AudioError, path, "unimplemented format"):  # libsndfile's reason
        read_audio(path)


def test_missing_and_empty_clips(tmp_path):
    with raises_naming(AudioError, tmp_path / "nowhere.mp3", "missing"):
        read_audio(tmp_path / "nowhere.mp3")
    (tmp_path / "empty.mp3").write_bytes(b"")
    with raises_naming(AudioError, tmp_path / "empty.mp3", "0 bytes"):
        read_audio(tmp_path / "empty.mp3")


def test_a_one_hertz_file_is_refused_before_resampling(tmp_path):
    """200,000 samples at 1 Hz would become 3.2e9 samples at 16 kHz."""
    path = tmp_path / "bomb.flac"
    sf.write(path, np.zeros((200_000, 4), np.float32), 1, format="FLAC")
    with raises_naming(AudioError, path, "1 Hz"):
        load_audio(path)


def test_the_hard_duration_cap_stops_reading(tmp_path):
    path = tmp_path / "long.flac"
    sf.write(path, np.zeros((8_000 * 5, 1), np.float32), 8_000, format="FLAC")
    assert read_audio(path)[0].shape == (40_000,)
    with raises_naming(AudioError, path, "2 s"):  # the limit
        read_audio(path, max_seconds=2.0)


def test_nan_samples_are_refused(tmp_path):
    path = tmp_path / "nan.wav"
    audio = np.zeros(1_000, np.float32)
    audio[10] = np.nan
    sf.write(path, audio, 16_000, subtype="FLOAT")
    with raises_naming(AudioError, path, "NaN"):
        read_audio(path)
