"""The faster-whisper comparison row: both engines on the tiny export, the same token cap."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from swedish_transcriber.model.export import export_ct2
from tests.messages import raises_naming
from tests.repo_params import REPO
from tests.tiny import save_tiny_base


def _load_runner():
    spec = importlib.util.spec_from_file_location(
        "faster_whisper_row", REPO / "benchmarks/faster_whisper_row.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


def test_rows_give_speed_per_audio_second_and_per_token():
    result = {
        "engine": "x",
        "load_seconds": 1.0,
        "run_seconds": [3.0, 2.0, 4.0],
        "run_cpu_seconds": [5.0, 6.0, 4.0],
        "recording_seconds": 60.0,
        "generated_tokens": 400,
        "peak_rss_mb": 490.0,
    }
    row = runner.row(result)
    assert row["wall_seconds"] == 3.0 and row["rtf"] == 20.0
    assert row["seconds_per_audio_second"] == 0.05 and row["ms_per_token"] == 7.5
    assert row["cpu_ms_per_token"] == 12.5
    assert runner.row({**result, "generated_tokens": 0})["ms_per_token"] is None
    table = runner.markdown_table([row], 60.0)
    assert "| x | padded | 1.00 | 3.00 | 20.0 | 0.050 | 400 | 7.5 | 12.5 | 490 |" in table


@pytest.mark.slow  # a subprocess per engine (or a fresh interpreter): seconds each
def test_both_engines_decode_the_same_chunks_to_the_same_cap(tmp_path, capsys):
    """The tiny random model never stops: each chunk must end at max_new_tokens in both."""
    model = export_ct2(save_tiny_base(tmp_path / "tiny"), tmp_path / "ct2", "int8")
    assert model["quantization"] == "int8"
    out = tmp_path / "row.json"
    argv = ["--model-dir", str(tmp_path / "ct2"), "--synthetic", "--repeats", "1"]
    runner.main([*argv, "--max-new-tokens", "5", "--out", str(out)])
    report = json.loads(out.read_text(encoding="utf-8"))
    ours, theirs = report["engines"]["ct2-int8"], report["engines"]["faster-whisper"]
    assert ours["recording_seconds"] == pytest.approx(60.0)
    assert ours["chunk_seconds"] == theirs["chunk_seconds"] and ours["recording_chunks"] >= 2
    for engine in (ours, theirs):
        assert engine["chunk_tokens"] == [5] * engine["recording_chunks"]
        assert all(engine["chunk_texts"]) and engine["deterministic"]
        # >=: a worker forked from pytest starts from pytest's own peak (Linux keeps it).
        assert engine["peak_rss_mb"] >= engine["rss_before_load_mb"] > 0
    assert [r["engine"] for r in report["rows"]] == [
        "ct2-int8",
        "ct2-int8-own-context",
        "faster-whisper",
    ]
    assert [r["context"] for r in report["rows"]] == ["padded", "clip >= 10 s", "padded"]
    assert report["environment"]["faster-whisper"] == "1.2.1"
    assert "chunks with the same normalized words" in capsys.readouterr().out


def test_missing_export_is_named(tmp_path):
    with raises_naming(SystemExit, tmp_path / "model.bin", "dvc repro export"):
        runner.main(["--model-dir", str(tmp_path), "--synthetic", "--out", str(tmp_path / "o")])


def test_settings_come_from_params_with_flags_on_top(tmp_path):
    args = runner.parse_args(["--batch-size", "4"])
    settings = runner.decode_settings(REPO / "params.yaml", args)
    assert settings["batch_size"] == 4 and settings["language"] == "sv"
    bad = tmp_path / "params.yaml"
    bad.write_text("model: {language: sv}\n", encoding="utf-8")
    with raises_naming(ValueError, bad, "'app'"):
        runner.decode_settings(bad, args)
    assert Path(runner.DEFAULT_OUT).parent == REPO / "benchmarks/results"


def test_audio_dir_clips_come_in_name_order(tmp_path):
    from swedish_transcriber.audio import write_audio
    from tests.media_files import tone

    for name, seconds in (("b.wav", 2.0), ("a.wav", 1.0)):
        write_audio(tmp_path / name, tone(seconds, 16_000), 16_000)
    args = runner.parse_args(["--audio-dir", str(tmp_path)])
    assert [c.shape[0] for c in runner.load_clips(args)] == [16_000, 32_000]
    synthetic = runner.load_clips(runner.parse_args(["--synthetic"]))
    assert len(synthetic) == 40 and sum(c.shape[0] for c in synthetic) > 60 * 16_000


@pytest.mark.slow  # a subprocess per engine: seconds each
def test_pairs_dir_times_short_clips_one_per_call_and_scores_them(tmp_path, capsys):
    """The page's engine on each clip's own frames against faster-whisper, on short clips."""
    from swedish_transcriber.audio import write_audio
    from tests.media_files import tone

    export_ct2(save_tiny_base(tmp_path / "tiny"), tmp_path / "ct2", "int8")
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    lengths = [2.0, 7.0, 3.5, 8.0, 4.9, 9.0, 5.1, 9.0, 1.5, 9.0, 9.0]  # 68 s; 4 of <= 5 s
    for i, seconds in enumerate(lengths):
        write_audio(pairs / f"{i:02d}.wav", tone(seconds, 16_000, seed=i), 16_000)
        (pairs / f"{i:02d}.txt").write_text("det regnar i göteborg\n", encoding="utf-8")
    out = tmp_path / "row.json"
    argv = ["--model-dir", str(tmp_path / "ct2"), "--pairs-dir", str(pairs), "--repeats", "1"]
    runner.main([*argv, "--max-new-tokens", "50", "--min-context-seconds", "1", "--out", str(out)])
    report = json.loads(out.read_text(encoding="utf-8"))
    engines = report["engines"]
    caps = [24 + 16, 50, 50, 18 + 16]  # ceil(12 x seconds) + 16, at most --max-new-tokens
    for name, engine in engines.items():
        assert engine["short_clips"] == 4, name
        assert engine["short_audio_seconds"] == pytest.approx(2.0 + 3.5 + 4.9 + 1.5)
        # The random model never stops: every clip runs to its own cap (and no further).
        assert engine["short_tokens"] == sum(caps), name
        assert engine["short_at_cap"] == 4 and len(engine["short_transcripts"]) == 4
        assert engine["short_cer_norm"] >= 0 and engine["short_wer_norm"] >= 0
    assert engines["ct2-int8-own-context"]["context"] == "clip >= 1 s"
    assert "speed-up vs faster-whisper" in report["short_table_markdown"]
    assert "clips of at most 5 s, one per call" in capsys.readouterr().out
