"""Long audio: cut at pauses into <= 30 s chunks, transcribed in batches with progress."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from swedish_transcriber.serving.long_form import (
    ChunkPlan,
    Segment,
    Transcript,
    plan_chunks,
    transcribe_audio,
)
from swedish_transcriber.serving.subtitles import timestamp, to_srt, to_txt
from swedish_transcriber.whisper import SAMPLE_RATE
from tests.media_files import tone
from tests.messages import raises_naming

SR = SAMPLE_RATE
# The algorithm's tests spell their plan out (the arithmetic below depends on it).
PLAN = ChunkPlan(chunk_seconds=30.0, min_pause=0.3, silence_threshold_db=-45.0, padding=0.1)


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    return tone(seconds, SR, seed=seed)


def pause(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


class FakeEngine:
    """Records the clips it is given and answers with their lengths."""

    kind = "fake"
    model_dir = None

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def transcribe(self, clips):
        self.calls.append([c.shape[0] for c in clips])
        return [f"{c.shape[0] / SR:.2f}s" for c in clips]


def test_short_clip_is_one_chunk_around_the_speech():
    audio = np.concatenate([pause(1.0), speech(3.0), pause(1.0)])
    [(start, end)] = plan_chunks(audio, PLAN)
    assert start == pytest.approx(0.9 * SR, abs=0.03 * SR)  # 0.1 s of padding kept
    assert end == pytest.approx(4.1 * SR, abs=0.03 * SR)


def test_silence_gives_no_chunks():
    assert plan_chunks(pause(5.0), PLAN) == []


def test_regions_are_packed_up_to_the_chunk_length_and_cut_at_pauses():
    # Six 4 s utterances with 1 s pauses: 29 s in all.
    parts = []
    for i in range(6):
        parts += [speech(4.0, seed=i), pause(1.0)]
    audio = np.concatenate(parts)
    one = plan_chunks(audio, replace(PLAN, chunk_seconds=30.0))
    assert len(one) == 1
    several = plan_chunks(audio, replace(PLAN, chunk_seconds=10.0))
    assert len(several) == 3  # two utterances (4 + 1 + 4 s plus padding) per chunk
    for start, end in several:
        assert end - start <= 10 * SR
        # every cut inside the audio lies in a pause: the samples at the cut are quiet
        if start > 0:
            assert np.abs(audio[start - 10 : start + 10]).max() < 0.05
        if end < audio.shape[0]:
            assert np.abs(audio[end - 10 : end + 10]).max() < 0.05
    assert [b for _, b in several] == sorted(b for _, b in several)
    assert all(several[i][1] <= several[i + 1][0] for i in range(len(several) - 1))


def test_continuous_speech_longer_than_the_window_is_cut_at_its_quietest_moment():
    audio = speech(70.0)
    dip = int(25.0 * SR)
    audio[dip : dip + int(0.1 * SR)] *= 0.01  # a short dip, too short to count as a pause
    chunks = plan_chunks(audio, replace(PLAN, min_pause=0.3))
    assert len(chunks) >= 3
    assert all(end - start <= 30 * SR for start, end in chunks)
    assert chunks[0][1] == pytest.approx(dip, abs=0.12 * SR)  # cut in the dip
    covered = sum(end - start for start, end in chunks)
    assert covered >= audio.shape[0] - 0.05 * SR  # nothing of the speech is left out


def test_transcribe_audio_batches_chunks_reports_progress_and_times_segments():
    parts = []
    for i in range(5):
        parts += [speech(5.0, seed=i), pause(2.0)]
    audio = np.concatenate(parts)  # 35 s
    engine = FakeEngine()
    progress: list[tuple[int, int]] = []
    out = transcribe_audio(
        audio,
        engine,
        replace(PLAN, chunk_seconds=13.0),
        batch_size=2,
        progress=lambda *p: progress.append(p),
    )
    n = len(out.segments)
    assert n == 3 and [len(c) for c in engine.calls] == [2, 1]
    assert progress == [(0, 3), (2, 3), (3, 3)]
    assert out.duration == pytest.approx(35.0)
    for segment in out.segments:
        assert segment.text == f"{segment.end - segment.start:.2f}s"
        assert 0 <= segment.start < segment.end <= 35.0
    assert out.text == " ".join(s.text for s in out.segments)


def test_transcribe_audio_of_silence_is_an_empty_transcript():
    engine = FakeEngine()
    out = transcribe_audio(pause(3.0), engine, PLAN, batch_size=2)
    assert out.segments == () and out.text == "" and engine.calls == []


def test_chunk_plan_refuses_windows_whisper_cannot_hear():
    with raises_naming(ValueError, "chunk_seconds", 45.0, 30):  # asked, and Whisper's window
        replace(PLAN, chunk_seconds=45.0)


def test_srt_and_txt():
    transcript = Transcript(
        segments=(
            Segment(0.5, 4.25, "Hej på dig."),
            Segment(4.25, 4.5, ""),
            Segment(3661.0, 3662.001, "En timme senare."),
        ),
        duration=3663.0,
    )
    assert timestamp(3661.0) == "01:01:01,000"
    assert timestamp(4.25, ".") == "00:00:04.250"
    assert to_srt(transcript) == (
        "1\n00:00:00,500 --> 00:00:04,250\nHej på dig.\n\n"
        "2\n01:01:01,000 --> 01:01:02,001\nEn timme senare.\n"
    )
    assert to_txt(transcript) == "Hej på dig.\nEn timme senare.\n"
    assert to_txt(Transcript((), 1.0)) == ""
