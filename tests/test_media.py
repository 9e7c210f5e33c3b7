"""Decoding the demo page's uploads: every accepted format, and every way an upload is bad."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from swedish_transcriber.serving.media import (
    AUDIO_TYPES,
    VIDEO_TYPES,
    MediaError,
    MediaLimits,
    decode,
    is_silent,
    trim,
    wav_bytes,
)
from tests.conftest import tone
from tests.media_files import encode, video_without_audio

LIMITS = MediaLimits(max_upload_mb=5.0, max_seconds=20.0)


@pytest.mark.parametrize("extension", AUDIO_TYPES + VIDEO_TYPES)
def test_every_accepted_format_decodes_to_16k_mono(extension):
    audio = tone(2.0, 22_050, seed=3)
    data = encode(audio, 22_050, extension)
    out = decode(data, f"clip.{extension}", LIMITS)
    assert out.dtype == np.float32 and out.ndim == 1
    # AAC and Opus add a few ms of priming/padding; the length is otherwise kept.
    assert abs(out.shape[0] / 16_000 - 2.0) < 0.1
    rms_in = float(np.sqrt(np.mean(audio**2)))
    rms_out = float(np.sqrt(np.mean(out**2)))
    assert rms_out == pytest.approx(rms_in, rel=0.25)


def test_stereo_is_mixed_down():
    left = tone(1.0, 16_000, seed=1)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([left, np.zeros_like(left)], axis=1), 16_000, format="WAV")
    out = decode(buffer.getvalue(), "stereo.wav", LIMITS)
    assert out.shape == left.shape
    np.testing.assert_allclose(out, left / 2, atol=2e-3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is a text file, not a recording\n" * 20, "not an audio or video file"),
        (b"ID3\x03\x00\x00\x00" + bytes(range(256)) * 8, "clip.mp3"),
    ],
    ids=["empty", "text", "corrupt"],
)
def test_unusable_files_get_a_clear_error(data, message):
    with pytest.raises(MediaError, match=message) as info:
        decode(data, "clip.mp3", LIMITS)
    assert "clip.mp3" in str(info.value)


def test_truncated_file_is_refused_or_shorter_but_never_crashes():
    data = encode(tone(3.0, 16_000), 16_000, "flac")
    try:
        out = decode(data[: len(data) // 2], "half.flac", LIMITS)
    except MediaError as exc:
        assert "half.flac" in str(exc)
    else:
        assert 0 < out.shape[0] < 3 * 16_000


def test_video_without_sound_is_refused():
    with pytest.raises(MediaError, match="no audio track"):
        decode(video_without_audio(), "silent-film.mp4", LIMITS)


def test_size_limit():
    data = encode(tone(2.0, 16_000), 16_000, "wav")
    small = MediaLimits(max_upload_mb=0.01, max_seconds=20.0)
    with pytest.raises(MediaError, match=r"0\.01 MB"):
        decode(data, "big.wav", small)


def test_duration_limit_stops_decoding_early():
    data = encode(tone(25.0, 16_000), 16_000, "flac")
    with pytest.raises(MediaError, match="longer than the limit of 20 s"):
        decode(data, "long.flac", LIMITS)


def test_silence_is_detected():
    assert is_silent(np.zeros(16_000, np.float32), -45.0)
    assert is_silent(1e-4 * np.ones(16_000, np.float32), -45.0)
    assert not is_silent(tone(1.0, 16_000), -45.0)
    speech_after_silence = np.concatenate([np.zeros(32_000, np.float32), tone(0.5, 16_000)])
    assert not is_silent(speech_after_silence, -45.0)


def test_trim_cuts_by_seconds_and_refuses_empty_ranges():
    audio = np.arange(48_000, dtype=np.float32)
    assert trim(audio, 0.5, 1.5).tolist() == audio[8_000:24_000].tolist()
    assert trim(audio, 2.0, 10.0).shape[0] == 16_000  # clamped to the clip
    with pytest.raises(MediaError, match="after its start"):
        trim(audio, 1.0, 1.0)
    with pytest.raises(MediaError, match="nothing left"):
        trim(audio, 3.5, 4.0)


def test_wav_preview_round_trips():
    audio = tone(1.0, 16_000)
    back, rate = sf.read(io.BytesIO(wav_bytes(audio)), dtype="float32")
    assert rate == 16_000 and back.shape == audio.shape
    np.testing.assert_allclose(back, audio, atol=1e-4)
