"""The inference benchmark's pure helpers: the 60 s recording, agreement, the table.

No model is loaded: the engines' numbers are made up, so that what is checked is the
arithmetic that turns them into the table and the pass/miss lines.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from benchmarks.inference_lib import compare, recording
from tests.messages import raises_naming
from tests.repo_params import PARAMS_FILE, REPO, dotted, write_params

SR = 16_000


def _load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "inference_benchmark", REPO / "benchmarks/inference.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()  # the command: main() and the parent's helpers


def _clip(seconds: float, value: float) -> np.ndarray:
    return np.full(int(round(seconds * SR)), value, dtype=np.float32)


# ---------------------------------------------------------------- the 60 s recording


def test_recording_is_exactly_sixty_seconds_of_whole_clips_with_silent_gaps():
    clips = [_clip(7.0, 0.1 * (i + 1)) for i in range(10)]  # 70 s of audio
    rec = recording.build_recording(clips, seconds=60.0, gap_seconds=0.5, sample_rate=SR)

    assert rec.audio.shape == (60 * SR,)
    assert rec.audio.dtype == np.float32
    assert rec.seconds == 60.0
    # 8 clips + 7 gaps = 59.5 s fit; a 9th would end at 67.5 s, so it is left out whole.
    assert rec.clip_indices == tuple(range(8))
    assert rec.spans[0] == (0, 7 * SR)
    for (_, end), (start, _) in zip(rec.spans, rec.spans[1:], strict=False):
        assert start - end == SR // 2
        assert not rec.audio[end:start].any()  # the gap is digital silence
    for (start, end), i in zip(rec.spans, rec.clip_indices, strict=True):
        np.testing.assert_array_equal(rec.audio[start:end], clips[i])  # clips uncut
    last_end = rec.spans[-1][1]
    assert last_end == int(59.5 * SR)
    assert not rec.audio[last_end:].any()  # padded with silence up to 60 s
    assert rec.speech_seconds == pytest.approx(56.0)


def test_recording_that_ends_exactly_on_a_clip_needs_no_padding():
    clips = [_clip(10.0, 0.5), _clip(19.5, 0.25), _clip(29.5, 0.75), _clip(1.0, 0.9)]
    rec = recording.build_recording(clips, seconds=60.0, gap_seconds=0.5, sample_rate=SR)
    assert rec.audio.shape == (60 * SR,)
    assert rec.clip_indices == (0, 1, 2)
    assert rec.spans[-1][1] == 60 * SR
    assert rec.audio[-1] == np.float32(0.75)


def test_recording_stops_at_the_first_clip_that_does_not_fit():
    """Clips go in in order; a later short clip that would fit is not pulled forward."""
    lengths = [25.0, 20.0, 10.0, 20.0, 1.0]
    clips = [_clip(seconds, 0.1 * (i + 1)) for i, seconds in enumerate(lengths)]
    originals = [c.copy() for c in clips]
    rec = recording.build_recording(clips, seconds=60.0, gap_seconds=0.5, sample_rate=SR)
    # 25 s, gap, 20 s, gap, 10 s ends at 56 s; the 20 s clip would end at 76.5 s.
    assert rec.clip_indices == (0, 1, 2)
    assert rec.spans == ((0, 25 * SR), (int(25.5 * SR), int(45.5 * SR)), (46 * SR, 56 * SR))
    assert rec.speech_seconds == pytest.approx(55.0)
    assert not rec.audio[56 * SR :].any()  # the 1 s clip is not used: silence to the end
    rec.audio[:] = 1.0  # the recording is a copy: the clips stay as they were
    for clip, original in zip(clips, originals, strict=True):
        np.testing.assert_array_equal(clip, original)


def test_recording_refuses_too_little_audio():
    with raises_naming(ValueError, "60 s"):  # the length asked for
        recording.build_recording([_clip(10.0, 0.1)] * 5, seconds=60.0, sample_rate=SR)


def test_recording_refuses_a_first_clip_longer_than_the_recording():
    with raises_naming(ValueError, "first clip", f"{recording.RECORDING_SECONDS:g} s"):
        recording.build_recording([_clip(61.0, 0.1), _clip(1.0, 0.1)], sample_rate=SR)


# ---------------------------------------------------------------- agreement


def test_agreement_compares_normalized_words_clip_by_clip():
    baseline = ["Hej, världen!", "Spårvagnen går.", "Tre katter", ""]
    other = ["hej världen", "Sparvagnen går", "tre  katter.", ""]
    agree = compare.agreement(baseline, other)
    assert agree.clips == 4
    assert agree.same == 3  # punctuation and case do not count; å vs a does
    assert agree.differing == (1,)
    assert agree.fraction == pytest.approx(0.75)
    assert agree.word_edits == 1
    assert agree.baseline_words == 6
    assert agree.word_difference_rate == pytest.approx(1 / 6)


def test_agreement_counts_insertions_and_deletions():
    agree = compare.agreement(["ett två tre", "fyra"], ["ett tre", "fyra fem sex"])
    assert agree.same == 0
    assert agree.word_edits == 1 + 2


def test_agreement_needs_the_same_clips():
    with raises_naming(ValueError, "baseline", 2, 1):  # the two counts
        compare.agreement(["a", "b"], ["a"])


@pytest.mark.parametrize(
    ("ref", "hyp", "edits"),
    [([], [], 0), (["a"], [], 1), ([], ["a", "b"], 2), (["a", "b", "c"], ["a", "x", "c"], 1)],
)
def test_word_edits_is_levenshtein_over_words(ref, hyp, edits):
    assert compare.word_edits(ref, hyp) == edits


# ---------------------------------------------------------------- the table


def _result(runs, load=1.0, rss=500.0, transcripts=("a b", "c d"), wer=0.2):
    return {
        "load_seconds": load,
        "run_seconds": list(runs),
        "recording_seconds": 60.0,
        "peak_rss_mb": rss,
        "test_transcripts": list(transcripts),
        "test_wer_norm": wer,
        "long_form_text": " ".join(transcripts),
    }


def test_summary_speedup_uses_medians_and_agreement_counts_clips():
    results = {
        "transformers": _result([20.0, 30.0, 21.0], transcripts=["a b", "c d", "e", "f"]),
        "ct2-int8": _result([6.0, 7.0, 100.0], transcripts=["a b", "c x", "e", "f"]),
        "ct2-int8-weights-float32": _result(
            [10.0, 10.0, 10.0], transcripts=["a b", "c d", "e", "f"]
        ),
    }
    summary = compare.summarize(results)
    rows = {row["engine"]: row for row in summary.rows}

    assert rows["transformers"]["wall_seconds"] == 21.0
    assert rows["transformers"]["rtf"] == pytest.approx(60 / 21)
    assert rows["transformers"]["speedup"] == pytest.approx(1.0)
    assert rows["transformers"]["same_words"] == 1.0
    assert rows["ct2-int8"]["wall_seconds"] == 7.0  # the 100 s outlier does not count
    assert rows["ct2-int8"]["speedup"] == pytest.approx(3.0)
    assert rows["ct2-int8"]["same_words"] == pytest.approx(0.75)
    assert rows["ct2-int8"]["differing_clips"] == [1]
    assert rows["ct2-int8"]["long_form_same_words"] is False
    assert rows["ct2-int8-weights-float32"]["same_words"] == 1.0


def test_summary_without_the_baseline_compares_nothing():
    summary = compare.summarize({"ct2-int8": _result([5.0])})
    assert summary.rows[0]["speedup"] is None
    assert summary.rows[0]["same_words"] is None
    assert "| n/a | 500 | n/a |" in compare.markdown_table(summary.rows, clips=2)


def test_markdown_table_has_one_row_per_engine_with_every_column():
    results = {
        "transformers": _result([12.0], load=2.5, rss=812.4, wer=0.31234),
        "ct2-int8": _result([3.0], load=0.5, rss=301.6, transcripts=("a b", "x")),
    }
    table = compare.markdown_table(compare.summarize(results).rows, clips=2).splitlines()
    assert len(table) == 4
    assert all(line.count("|") == 9 for line in table)
    assert "% of 2 test clips" in table[0]
    assert table[2] == "| transformers | 2.50 | 12.00 | 5.00 | 1.00x | 812 | 100.0 | 0.3123 |"
    assert table[3] == "| ct2-int8 | 0.50 | 3.00 | 20.00 | 4.00x | 302 | 50.0 | 0.2000 |"


def test_contention_warns_only_when_other_processes_took_a_real_share():
    quiet = {"run_seconds": [10.0, 10.0], "run_other_cpu_seconds": [0.5, 1.0]}
    busy = {"run_seconds": [10.0, 10.0], "run_other_cpu_seconds": [9.0, 11.0]}
    unknown = {"run_seconds": [10.0], "run_other_cpu_seconds": [None]}
    # 1.5 of 40 CPU seconds is 3.75 %; 20 of 40 is 50 %.
    warnings = compare.contention({"a": quiet, "b": busy, "c": unknown}, cpus=2)
    assert len(warnings) == 1
    assert "b's timed runs" in warnings[0] and "50%" in warnings[0]


# ---------------------------------------------------------------- the parent process


def test_main_compares_workers_and_writes_json(tmp_path, capsys, monkeypatch):
    """The parent with fake workers: the order, the flags it forwards, the JSON it writes."""
    monkeypatch.setattr(bench, "check_inputs", lambda names: None)  # no models needed
    changes = {"model": {"language": "sv", "task": "transcribe"}, "app.engine.threads": 3}
    changes |= dotted("app.decode", {"batch_size": 4, "max_new_tokens": 100})
    params = write_params(tmp_path, changes, base=PARAMS_FILE, only=("decode", "app", "review"))
    calls = []

    def fake_spawn(name, argv, threads):
        calls.append((name, argv, threads))
        return _result([12.0] if name == "transformers" else [4.0]) | {
            "run_cpu_seconds": [20.0],
            "run_other_cpu_seconds": [0.0],
            "test_clips": 2,
            "test_audio_seconds": 5.0,
            "test_seconds": 1.0,
            "recording_clips": 16,
            "recording_speech_seconds": 52.0,
            "recording_chunks": 3,
            "long_form_wer_norm": 0.1,
            "warmup_seconds": 13.0,
            "long_form_deterministic": True,
            "rss_before_load_mb": 200.0,
            "peak_rss_after_test_clips_mb": 600.0,
        }

    out = tmp_path / "sub" / "inference.json"
    bench.main(
        ["--engines", "ct2-int8", "transformers", "--clips", "2", "--threads", "2"]
        + ["--params", str(params), "--out", str(out)],
        spawn=fake_spawn,
    )
    assert [c[0] for c in calls] == ["transformers", "ct2-int8"]  # baseline first
    assert all(c[2] == 2 for c in calls)  # --threads overrides params' app.threads
    argv = calls[0][1]
    assert argv[argv.index("--clips") + 1] == "2"
    assert argv[argv.index("--params") + 1] == str(params)
    printed = capsys.readouterr().out
    assert "| ct2-int8 |" in printed and "| 3.00x |" in printed
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["settings"]["batch_size"] == 4  # read from params' app section
    assert report["settings"]["max_new_tokens"] == 100
    assert report["settings"]["threads"] == 2
    rows = {row["engine"]: row for row in report["rows"]}
    assert rows["ct2-int8"]["speedup"] == pytest.approx(3.0)
    assert rows["ct2-int8"]["same_words"] == 1.0
    assert [row["engine"] for row in report["rows"]] == ["transformers", "ct2-int8"]


# ---------------------------------------------------------------- short clips, own context


def test_short_table_gives_speed_per_audio_second_against_faster_whisper():
    from benchmarks.inference_lib import short_clips

    def short(seconds_per_audio_second, context, wer):
        return {
            "context": context,
            "short_clips": 56,
            "short_audio_seconds": 182.5,
            "short_seconds_per_audio_second": seconds_per_audio_second,
            "short_cpu_seconds_per_audio_second": 2 * seconds_per_audio_second,
            "short_tokens": 900,
            "short_at_cap": 3,
            "short_wer_norm": wer,
            "short_cer_norm": wer / 2,
        }

    results = {
        "ct2-int8": short(0.1, "padded", 0.4),
        "ct2-int8-own-context": short(0.025, "clip >= 10 s", 0.45),
        "faster-whisper": short(0.1, "padded", 0.4),
        "transformers": {"context": "padded", "short_clips": 0},  # no short clips: no row
    }
    table = short_clips.short_table(results, "faster-whisper").splitlines()
    assert len(table) == 5
    assert table[3] == (
        "| ct2-int8-own-context | clip >= 10 s | 56 | 182.5 | 0.0250 | 4.00x | 0.0500 | 4.00x "
        "| 900 | 3 | 0.450 | 0.225 |"
    )
    assert "| 1.00x |" in table[4]


def test_own_context_rows_serve_the_recorded_clip_context_or_the_minimum(tmp_path):
    from benchmarks.inference_lib.short_clips import serving_context
    from swedish_transcriber.whisper import CONTEXT_KEY, EncoderContext

    padded = EncoderContext.padded()
    assert serving_context(tmp_path, own=False, min_context_seconds=5.0) == padded
    assert serving_context(tmp_path, own=True, min_context_seconds=5.0) == EncoderContext(
        "clip", 5.0
    )
    trained = EncoderContext("clip", 2.0)
    (tmp_path / "decode_options.json").write_text(
        json.dumps({CONTEXT_KEY: trained.record()}), encoding="utf-8"
    )
    assert serving_context(tmp_path, own=True, min_context_seconds=5.0) == trained
    assert serving_context(tmp_path, own=False, min_context_seconds=5.0) == padded


def test_pairs_need_their_reference(tmp_path):
    from benchmarks.inference_lib.short_clips import load_pairs, short_indices
    from swedish_transcriber.audio import write_audio

    write_audio(tmp_path / "b.wav", np.zeros(6 * SR, np.float32), SR)
    write_audio(tmp_path / "a.wav", np.zeros(2 * SR, np.float32), SR)
    (tmp_path / "a.txt").write_text("hej\n", encoding="utf-8")
    with raises_naming(FileNotFoundError, tmp_path / "b.wav", "b.txt"):  # the clip, its text
        load_pairs(tmp_path)
    (tmp_path / "b.txt").write_text("då\n", encoding="utf-8")
    clips, references, names = load_pairs(tmp_path)
    assert names == ["a.wav", "b.wav"] and references == ["hej", "då"]
    assert short_indices(clips, 5.0) == [0]


def test_chunks_are_cut_as_the_page_cuts_them():
    from benchmarks.inference_lib.settings import chunk_plan, decode_settings
    from swedish_transcriber.serving.page import load_config

    settings = decode_settings(PARAMS_FILE, bench.parse_args([]))
    assert chunk_plan(settings) == load_config(PARAMS_FILE).app.chunks
