"""Test audio: a speech-like signal, Common Voice-like clips, and audio and video files in every
format the demo page accepts, made on the fly with PyAV."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from swedish_transcriber.audio import write_audio


def tone(
    seconds: float, sample_rate: int = 48_000, amplitude: float = 0.3, seed: int = 0
) -> np.ndarray:
    """A speech-like test signal: a few harmonics with noise, syllable-rate amplitude."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 120 + 40 * rng.random()
    signal = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    noise = 0.02 * rng.standard_normal(t.shape)
    out = amplitude * signal * envelope / 2 + noise
    return out.astype(np.float32)


def write_clip(
    path: Path, seconds: float = 2.0, sample_rate: int = 48_000, seed: int = 0, silent: bool = False
) -> Path:
    """Write an MP3 clip like Common Voice's (48 kHz mono)."""
    audio = (
        np.zeros(int(seconds * sample_rate), np.float32)
        if silent
        else tone(seconds, sample_rate, seed=seed)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, audio, sample_rate)
    return path


# extension -> (container format, audio codec, video codec or None)
CONTAINERS: dict[str, tuple[str, str, str | None]] = {
    "m4a": ("ipod", "aac", None),
    "mp4": ("mp4", "aac", "mpeg4"),
    "webm": ("webm", "libopus", "libvpx"),
    "mkv": ("matroska", "aac", "mpeg4"),
}


def encode(audio: np.ndarray, sample_rate: int, extension: str) -> bytes:
    """``audio`` (mono float32) as a file of type ``extension``; video ones get a black picture."""
    if extension in ("wav", "flac", "ogg", "mp3"):
        buffer = io.BytesIO()
        fmt = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}[extension]
        sf.write(buffer, audio, sample_rate, format=fmt)
        return buffer.getvalue()
    container_format, audio_codec, video_codec = CONTAINERS[extension]
    rate = 48_000 if audio_codec == "libopus" else sample_rate
    if rate != sample_rate:
        from swedish_transcriber.audio import resample

        audio = resample(audio, sample_rate, rate)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as out:
        video = None
        if video_codec:
            video = out.add_stream(video_codec, rate=10)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream(audio_codec, rate=rate)
        sound.layout = "mono"
        frame_size = sound.codec_context.frame_size or 1024
        samples = np.asarray(audio, np.float32)
        n_frames = 0
        for start in range(0, samples.shape[0], frame_size):
            block = samples[start : start + frame_size]
            if block.shape[0] < frame_size:
                block = np.pad(block, (0, frame_size - block.shape[0]))
            frame = av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)
        if video is not None:
            seconds = samples.shape[0] / rate
            black = np.zeros((48, 64, 3), np.uint8)
            for i in range(max(1, int(seconds * 10))):
                picture = av.VideoFrame.from_ndarray(black, format="rgb24")
                picture.pts = i
                for packet in video.encode(picture):
                    out.mux(packet)
                n_frames += 1
            for packet in video.encode(None):
                out.mux(packet)
    return buffer.getvalue()


def video_without_audio(seconds: float = 1.0) -> bytes:
    """An mp4 with a picture and no sound."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for i in range(max(1, int(seconds * 10))):
            picture = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            picture.pts = i
            for packet in video.encode(picture):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return buffer.getvalue()
