"""Decoding, resampling and measuring audio: the one decoder of the pipeline and the page.

Whisper listens at 16 kHz mono; Common Voice ships 48 kHz (older releases) or 32 kHz MP3.
Two libraries decode, behind the same checks and the same error:

- files of the pipeline (``read_audio``/``load_audio``): ``soundfile`` (libsndfile >= 1.1
  decodes MP3 itself) and one ``soxr`` resampling of the whole clip, so the features the model
  is trained and scored on stay bit for bit what they were (PyAV's MP3 decoder differs from
  mpg123 by ~1e-6);
- uploads of the demo page (``decode_bytes``): PyAV, which ships ffmpeg's libraries in its
  wheel and so reads any audio or video container without a system ffmpeg.

Whatever decodes, every block passes one ``_Collector``: the sample rate must be sane, the
block's duration and its samples x channels are charged to the budget *before* it is
converted or resampled (a 1 Hz FLAC is refused at its first frame instead of being blown up
to 16 kHz), channels are averaged from a packed array (PyAV's planar ``to_ndarray`` reads a
bad pointer for 8+ channels and crashes the process), and empty, NaN, too short or too long
audio is an ``AudioError`` naming the file.

``decode_bytes`` bounds its memory by the file, not by how the file is cut into frames: a
packed frame (PCM, FLAC) is read in place and mixed down a slice at a time, so one 48 MB
Matroska packet of 8-channel PCM costs one working slice on top of ffmpeg's own frame, not
several float copies of it (issue 19: +526 MB per upload before). The samples x channels a
file's header announces are checked before the first frame is decoded (an 8-channel 384 kHz
FLAC of 599 s of silence is refused at once, not after 13 s of CPU).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from swedish_transcriber.whisper import FRAME_SECONDS
from swedish_transcriber.whisper import SAMPLE_RATE as WHISPER_SAMPLE_RATE

# Rates outside this range are no real recording (telephone is 8 kHz, studio 384 kHz at most)
# and a 1 Hz rate turns a 1 KB file into hours of audio.
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 384_000
# The most a file of the pipeline may hold; Common Voice clips are ~5 s.
MAX_FILE_SECONDS = 600.0
MAX_FILE_SAMPLES = 1 << 27  # all channels together: 512 MB as float32
# Frames mixed down at a time from a decoded frame: the one working buffer of decode_bytes
# (64 Ki frames: 2 MB of float32 for 8 channels).
SLICE_FRAMES = 1 << 16
# Packed sample formats read in place: dtype, and the offset and scale that map them to
# [-1, 1) as ffmpeg's own conversion to float does. Others (planar ones) are converted first.
_PACKED: dict[str, tuple[str, float, float]] = {
    "u8": ("u1", 128.0, 1 / 128),
    "s16": ("<i2", 0.0, 1 / 32768),
    "s32": ("<i4", 0.0, 1 / 2**31),
    "flt": ("<f4", 0.0, 1.0),
    "dbl": ("<f8", 0.0, 1.0),
}


class AudioError(ValueError):
    """Audio that cannot be used: missing, empty, corrupt, unknown format, too long or short.

    The message names the file and says what is wrong, so a stage can quarantine the clip
    with it as the reason and the page can show it as it is.
    """


class _Collector:
    """The checks every decoded block passes, whichever library decoded it."""

    def __init__(
        self,
        name: str,
        max_seconds: float,
        target_rate: int | None = None,
        max_samples: int = MAX_FILE_SAMPLES,
    ) -> None:
        self.name = name
        self.max_seconds = max_seconds
        self.max_samples = max_samples  # samples x channels, all blocks together
        self.target_rate = target_rate
        self.rate: int | None = None  # rate of the blocks so far
        self.seconds = 0.0  # decoded duration so far
        self.samples = 0  # decoded samples x channels so far
        self.chunks: list[np.ndarray] = []
        self._stream: soxr.ResampleStream | None = None

    def check_rate(self, rate: int) -> None:
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise AudioError(
                f"{self.name}: the sample rate is {rate} Hz; only "
                f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz is accepted (the file is broken or "
                f"is no recording)"
            )

    def check_work(self, samples: int, channels: int, rate: int) -> None:
        """Refuse a file whose samples x channels pass ``max_samples`` (before decoding it)."""
        if samples > self.max_samples:
            raise AudioError(
                f"{self.name}: the file holds {samples:,} samples ({channels} channel(s) at "
                f"{rate} Hz); the limit is {self.max_samples:,} (e.g. fewer channels, a lower "
                f"sample rate or a shorter clip)"
            )

    def charge(self, frames: int, rate: int, channels: int = 1) -> None:
        """Refuse ``frames`` more frames of ``channels`` at ``rate`` if they would pass the
        duration limit or the samples x channels limit; else count them."""
        self.check_rate(rate)
        if self.seconds + frames / rate > self.max_seconds:
            raise AudioError(
                f"{self.name}: the audio is longer than the limit of {self.max_seconds:g} s; "
                f"trim it first"
            )
        self.check_work(self.samples + frames * channels, channels, rate)
        self.seconds += frames / rate
        self.samples += frames * channels

    def add(self, block: np.ndarray, rate: int) -> None:
        """Charge ``block`` (frames x channels, float32) to the budget, then keep it as mono.

        Channels are averaged (ffmpeg's own downmix would scale stereo by 1/sqrt(2) instead),
        so an upload is mixed as the corpus always was.
        """
        frames = int(block.shape[0])
        channels = int(block.shape[1]) if block.ndim == 2 else 1
        self.charge(frames, rate, channels)
        if frames == 0:
            return
        mono = block.mean(axis=1) if block.ndim == 2 and block.shape[1] > 1 else block.reshape(-1)
        self.add_mono(mono, rate)

    def add_mono(self, mono: np.ndarray, rate: int) -> None:
        """Keep already charged mono samples at ``rate``, resampled to the target rate."""
        if rate != self.rate:
            self._flush()
            self.rate = rate
            if self.target_rate is not None and rate != self.target_rate:
                self._stream = soxr.ResampleStream(rate, self.target_rate, 1, "float32", "HQ")
        if self._stream is not None:
            mono = self._stream.resample_chunk(np.ascontiguousarray(mono, dtype=np.float32))
        else:  # a copy: ``mono`` may be a view of a decoder's frame, which ffmpeg reuses
            mono = np.array(mono, dtype=np.float32)
        self.chunks.append(mono)

    def _flush(self) -> None:
        if self._stream is not None:
            self.chunks.append(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
            self._stream = None

    def finish(self, min_seconds: float = 0.0) -> np.ndarray:
        """The mono samples, after the checks on the whole clip."""
        self._flush()
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        self.chunks = []
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.shape[0] == 0:
            raise AudioError(f"{self.name}: the audio has no samples")
        if self.seconds < min_seconds:
            raise AudioError(
                f"{self.name}: the audio is only {self.seconds:.3f} s long; at least "
                f"{min_seconds:g} s is needed to transcribe speech"
            )
        if not np.isfinite(audio).all():
            raise AudioError(f"{self.name}: the audio contains invalid (NaN or infinite) samples")
        return audio


def _libsndfile_reason(exc: sf.LibsndfileError) -> str:
    """What libsndfile's error means for a file that exists.

    libsndfile says "File does not exist or is not a regular file" (SFE_BAD_FILE, code 7)
    for an existing file its MP3 reader cannot make sense of; quoting that would send whoever
    reads the quarantine report looking for a missing file.
    """
    if getattr(exc, "code", None) == 7:
        return "not audio in a format libsndfile reads, or corrupt (no audio stream found)"
    return (getattr(exc, "error_string", "") or str(exc)).strip().rstrip(".")


def read_audio(path: str | Path, max_seconds: float = MAX_FILE_SECONDS) -> tuple[np.ndarray, int]:
    """Decode a file to mono float32 in [-1, 1] at its own sample rate.

    The header's length is checked before anything is allocated, so a file that claims hours
    of audio is refused at once. The file is then read in one piece, as ``sf.read`` does:
    libsndfile's MP3 decoder gives slightly different samples after a block boundary when
    read in blocks, and the pipeline's samples must stay what they were.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: clip file is missing")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: clip file is empty (0 bytes)")
    collector = _Collector(str(path), max_seconds)
    try:
        with sf.SoundFile(path) as fh:
            rate = int(fh.samplerate)
            collector.check_rate(rate)
            if fh.frames / rate > max_seconds:
                collector.charge(fh.frames, rate)  # refuses, with the duration's message
            if fh.frames * fh.channels > MAX_FILE_SAMPLES:
                raise AudioError(
                    f"{path}: {fh.frames} frames x {fh.channels} channels is more than the "
                    f"{MAX_FILE_SAMPLES} samples a clip may hold"
                )
            collector.add(fh.read(dtype="float32", always_2d=True), rate)
    except sf.LibsndfileError as exc:
        raise AudioError(f"{path}: cannot decode audio: {_libsndfile_reason(exc)}") from exc
    except (RuntimeError, TypeError) as exc:
        raise AudioError(f"{path}: cannot decode audio ({exc})") from exc
    return collector.finish(), rate


def decode_bytes(
    data: bytes,
    name: str,
    *,
    max_bytes: int,
    max_seconds: float,
    min_seconds: float = 0.0,
    sample_rate: int = WHISPER_SAMPLE_RATE,
    max_samples: int = MAX_FILE_SAMPLES,
) -> np.ndarray:
    """The first audio track of any audio or video file in ``data``, as mono at ``sample_rate``.

    Bounded before and while decoding: the header's duration and samples x channels are
    checked before the first frame (``max_seconds``, ``max_samples``), every frame is charged
    to both budgets before it is converted (headers may lie), and a frame is mixed down in
    slices of :data:`SLICE_FRAMES`, so peak memory is ffmpeg's packet and frame, one slice and
    the output, whatever the frame size.
    """
    import av

    if not data:
        raise AudioError(f"{name}: the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise AudioError(
            f"{name}: the file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:g} MB"
        )
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="replace")
    except (av.FFmpegError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise AudioError(
            f"{name}: not an audio or video file that can be decoded ({_ffmpeg_reason(exc)})"
        ) from exc
    collector = _Collector(name, max_seconds, sample_rate, max_samples)
    with container:
        if not container.streams.audio:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
            raise AudioError(f"{name}: the file has no audio track (it holds {kinds})")
        stream = container.streams.audio[0]
        if stream.codec_context is None:  # ffmpeg has no decoder for it
            raise AudioError(f"{name}: the audio track is in an unknown or unsupported codec")
        _check_header(container, stream, collector)
        converter: tuple[tuple[str, str, int], av.AudioResampler] | None = None
        try:
            for frame in container.decode(stream):
                channels = frame.layout.nb_channels
                collector.charge(frame.samples, frame.sample_rate, channels)  # before any work
                if frame.samples == 0:
                    continue
                if frame.format.name in _PACKED:  # PCM, FLAC: read in place
                    _collect_packed(frame, collector)
                    continue
                # Planar frames (MP3, AAC, Vorbis: small ones) are converted to packed float
                # first, which keeps every channel in one plane: no per-channel pointers.
                setup = (frame.format.name, frame.layout.name, frame.sample_rate)
                if converter is None or converter[0] != setup:
                    if converter is not None:
                        _collect(converter[1].resample(None), collector)
                    converter = (setup, av.AudioResampler(format="flt"))
                _collect(converter[1].resample(frame), collector)
            if converter is not None:
                _collect(converter[1].resample(None), collector)
        except (av.FFmpegError, ValueError, OSError) as exc:
            if isinstance(exc, AudioError):
                raise
            raise AudioError(
                f"{name}: the audio is corrupt and cannot be decoded ({_ffmpeg_reason(exc)})"
            ) from exc
    return collector.finish(min_seconds)


def _check_header(container, stream, collector: _Collector) -> None:
    """Refuse, before decoding, a file whose header announces too much work.

    The duration is the stream's (or else the container's); the channels and rate are the
    codec's. A header that understates them is caught frame by frame instead.
    """
    rate = stream.codec_context.sample_rate
    if not rate:
        return
    collector.check_rate(rate)
    seconds = 0.0
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1_000_000  # AV_TIME_BASE
    channels = stream.codec_context.layout.nb_channels or 1
    if seconds > 0:
        collector.check_work(int(seconds * rate) * channels, channels, rate)


def _collect_packed(frame, collector: _Collector) -> None:
    """Mix a packed frame (already charged) down to mono in place, a slice at a time.

    The frame's samples are read where ffmpeg put them (no copy); each slice of
    :data:`SLICE_FRAMES` frames is averaged over its channels in float32 and scaled as
    ffmpeg's float conversion would, then resampled.
    """
    dtype, offset, scale = _PACKED[frame.format.name]
    channels = frame.layout.nb_channels
    samples = np.frombuffer(frame.planes[0], dtype=dtype, count=frame.samples * channels)
    samples = samples.reshape(frame.samples, channels)
    for start in range(0, frame.samples, SLICE_FRAMES):
        block = samples[start : start + SLICE_FRAMES]
        mono = block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0]
        mono = np.asarray(mono, dtype=np.float32)
        if offset:
            mono = mono - np.float32(offset)
        if scale != 1.0:
            mono = mono * np.float32(scale)
        collector.add_mono(mono, frame.sample_rate)


def _ffmpeg_reason(exc: Exception) -> str:
    """ffmpeg's words for what is wrong, without the errno and '<none>' file name PyAV adds."""
    return str(getattr(exc, "strerror", None) or exc).strip()


def _collect(frames: list, collector: _Collector) -> None:
    """Hand packed float PyAV frames (charged already, as decoded) to ``collector``."""
    for out in frames:
        if out.samples:
            _collect_packed(out, collector)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = WHISPER_SAMPLE_RATE) -> np.ndarray:
    """Resample mono float32 audio (a no-op when the rates agree)."""
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def load_audio(path: str | Path, sample_rate: int = WHISPER_SAMPLE_RATE) -> np.ndarray:
    """Decode ``path`` and resample it to ``sample_rate`` (Whisper's 16 kHz by default)."""
    audio, sr = read_audio(path)
    return resample(audio, sr, sample_rate)


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono audio; the format follows the extension (.mp3, .flac, .wav)."""
    path = Path(path)
    clipped = np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)
    if path.suffix.lower() == ".mp3":
        sf.write(path, clipped, sample_rate, format="MP3", subtype="MPEG_LAYER_III")
    else:
        sf.write(path, clipped, sample_rate)


def frame_rms(
    audio: np.ndarray, sample_rate: int, frame_seconds: float = FRAME_SECONDS
) -> np.ndarray:
    """RMS of each whole ``frame_seconds`` frame; a clip shorter than a frame is one frame.

    The one measure of loudness over time: validation's silence ratio, the demo page's
    silent-clip check and its cuts at pauses all use it, so "silent" means the same everywhere.
    """
    n = int(audio.shape[0])
    frame = max(1, int(round(frame_seconds * sample_rate)))
    n_frames = max(1, n // frame)
    frames = audio[: n_frames * frame].reshape(n_frames, -1) if n >= frame else audio[None, :]
    return np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))


def frame_levels_db(
    audio: np.ndarray, sample_rate: int = WHISPER_SAMPLE_RATE, frame_seconds: float = FRAME_SECONDS
) -> np.ndarray:
    """``frame_rms`` in dBFS (floor -120 dB)."""
    return 20.0 * np.log10(np.maximum(frame_rms(audio, sample_rate, frame_seconds), 1e-6))


@dataclass(frozen=True)
class AudioStats:
    """Measurements the validation suite uses to catch broken or unusable clips."""

    duration: float
    sample_rate: int
    peak: float
    rms: float
    silence_ratio: float
    clipping_ratio: float


def measure(
    audio: np.ndarray,
    sample_rate: int,
    silence_threshold_db: float,
    clipping_threshold: float,
    frame_seconds: float = FRAME_SECONDS,
) -> AudioStats:
    """Duration, peak, RMS, the fraction of silent 20 ms frames and of clipped samples."""
    n = int(audio.shape[0])
    duration = n / float(sample_rate)
    absolute = np.abs(audio)
    peak = float(absolute.max()) if n else 0.0
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if n else 0.0
    threshold = 10.0 ** (silence_threshold_db / 20.0)
    silence_ratio = float(np.mean(frame_rms(audio, sample_rate, frame_seconds) < threshold))
    clipping_ratio = float(np.mean(absolute >= clipping_threshold)) if n else 0.0
    return AudioStats(
        duration=duration,
        sample_rate=int(sample_rate),
        peak=peak,
        rms=rms,
        silence_ratio=silence_ratio,
        clipping_ratio=clipping_ratio,
    )
