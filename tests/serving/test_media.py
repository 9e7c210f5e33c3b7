"""Decoding the demo page's uploads: every accepted format, and every way an upload is bad."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import soundfile as sf

from swedish_transcriber.audio import AudioError
from swedish_transcriber.serving.media import (
    AUDIO_TYPES,
    VIDEO_TYPES,
    MediaLimits,
    decode,
    is_silent,
    too_short,
    trim,
    upload_limit_mb,
    wav_bytes,
)
from swedish_transcriber.serving.page import load_config
from tests.media_files import encode, tone, video_without_audio
from tests.messages import raises_naming
from tests.repo_params import REPO

LIMITS = MediaLimits(
    max_upload_mb=5.0,
    max_seconds=20.0,
    min_seconds=0.1,
    max_samples=115_200_000,
    max_concurrent_decodes=2,
    max_concurrent_transcriptions=2,
)


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
    ("data", "facts"),
    [  # beside the file's name: its size, or what it is not
        (b"", ["0 bytes"]),
        (b"this is a text file, not a recording\n" * 20, ["audio or video"]),
        (b"ID3\x03\x00\x00\x00" + bytes(range(256)) * 8, []),
    ],
    ids=["empty", "text", "corrupt"],
)
def test_unusable_files_get_a_clear_error(data, facts):
    with raises_naming(AudioError, "clip.mp3", *facts):
        decode(data, "clip.mp3", LIMITS)


def test_truncated_file_is_refused_or_shorter_but_never_crashes():
    data = encode(tone(3.0, 16_000), 16_000, "flac")
    try:
        out = decode(data[: len(data) // 2], "half.flac", LIMITS)
    except AudioError as exc:
        assert "half.flac" in str(exc)
    else:
        assert 0 < out.shape[0] < 3 * 16_000


def test_video_without_sound_is_refused():
    with raises_naming(AudioError, "silent-film.mp4", "audio track", "video"):  # what it holds
        decode(video_without_audio(), "silent-film.mp4", LIMITS)


def test_size_limit():
    data = encode(tone(2.0, 16_000), 16_000, "wav")
    small = dataclasses.replace(LIMITS, max_upload_mb=0.01)
    with raises_naming(AudioError, "big.wav", "0.01 MB"):  # the file and the limit
        decode(data, "big.wav", small)


def test_duration_limit_stops_decoding_early():
    data = encode(tone(25.0, 16_000), 16_000, "flac")
    with raises_naming(AudioError, "long.flac", "20 s"):  # the file and the limit
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
    with raises_naming(AudioError, "1.00 s"):  # the end, at the start
        trim(audio, 1.0, 1.0)
    with raises_naming(AudioError, "3.50", "4.00"):  # the range, after the clip's 3 s
        trim(audio, 3.5, 4.0)


def test_wav_preview_round_trips():
    audio = tone(1.0, 16_000)
    back, rate = sf.read(io.BytesIO(wav_bytes(audio)), dtype="float32")
    assert rate == 16_000 and back.shape == audio.shape
    np.testing.assert_allclose(back, audio, atol=1e-4)


def noise(frames: int, channels: int, seed: int = 0) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal((frames, channels)).astype(np.float32)


def file_bytes(audio: np.ndarray, sample_rate: int, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("channels", [3, 6, 8, 9, 16])
@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_any_channel_count_is_averaged(channels, fmt):
    """8+ channels once crashed the server (PyAV's planar to_ndarray); now any count mixes down."""
    if fmt == "FLAC" and channels > 8:
        channels = 8  # FLAC holds at most 8 channels
    audio = noise(16_000, channels)
    out = decode(file_bytes(audio, 16_000, fmt), f"many.{fmt.lower()}", LIMITS)
    assert out.shape == (16_000,)
    np.testing.assert_allclose(out, audio.mean(axis=1), atol=2e-4)


def test_one_hertz_flac_is_refused_before_decoding():
    """A 1 KB FLAC at 1 Hz once took 6 GB: refused at its sample rate now, in a blink."""
    import resource
    import time

    data = file_bytes(np.zeros((200_000, 4), np.float32), 1, "FLAC")
    assert len(data) < 2_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    with raises_naming(AudioError, "bomb.flac", "1 Hz"):
        decode(data, "bomb.flac", LIMITS)
    assert time.perf_counter() - began < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def test_long_audio_at_a_low_rate_is_refused_at_the_frame_that_passes_the_limit():
    """The budget is charged per frame before resampling: 4 kHz x 30 s never reaches 16 kHz."""
    data = file_bytes(np.zeros((4_000 * 30, 2), np.float32), 4_000, "FLAC")
    with raises_naming(AudioError, "long.flac", "20 s"):  # the file and the limit
        decode(data, "long.flac", LIMITS)


@pytest.mark.parametrize("rate", [2_000, 400_000])
def test_sample_rates_outside_the_sane_range_are_refused(rate):
    data = file_bytes(noise(rate // 4, 1), rate)
    with raises_naming(AudioError, "odd-rate.wav", f"{rate} Hz"):
        decode(data, "odd-rate.wav", LIMITS)


@pytest.mark.parametrize("rate", [4_000, 8_000, 44_100, 384_000])
def test_sane_rates_are_resampled_to_16k(rate):
    out = decode(file_bytes(noise(rate, 2), rate), "rate.wav", LIMITS)
    assert abs(out.shape[0] - 16_000) <= 16


def test_a_clip_too_short_to_transcribe_gets_a_message():
    """A 20 ms clip once went to the model and came back as invented text."""
    data = file_bytes(tone(0.02, 16_000), 16_000)
    with raises_naming(AudioError, "short.wav", "0.020 s"):  # the file and its length
        decode(data, "short.wav", LIMITS)
    assert decode(data, "short.wav", dataclasses.replace(LIMITS, min_seconds=0.0)).shape == (320,)
    assert too_short(np.zeros(1_600, np.float32), LIMITS) == ""
    assert "0.03 s" in too_short(np.zeros(500, np.float32), LIMITS)


def test_streamlit_upload_limit_follows_params():
    """Streamlit refuses uploads over server.maxUploadSize before the page sees them."""
    import tomllib

    from swedish_transcriber.serving import page

    assert page.REPO == REPO  # the page reads the repo's params.yaml when started plainly
    limits = load_config(REPO / "params.yaml").app.limits
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] == upload_limit_mb(limits)
    assert upload_limit_mb(dataclasses.replace(LIMITS, max_upload_mb=50.0)) == 50
    assert upload_limit_mb(dataclasses.replace(LIMITS, max_upload_mb=2.5)) == 3
    assert upload_limit_mb(dataclasses.replace(LIMITS, max_upload_mb=0.01)) == 1


def test_min_seconds_is_checked_in_the_params():
    from swedish_transcriber.params import section

    shipped = section("app.limits", MediaLimits)
    assert dataclasses.replace(shipped, min_seconds=0.25).min_seconds == 0.25
    for bad in (-0.1, shipped.max_seconds):
        with pytest.raises(ValueError, match="min_seconds"):
            dataclasses.replace(shipped, min_seconds=bad)
