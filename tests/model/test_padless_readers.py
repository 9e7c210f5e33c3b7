"""Every reader of stored log-mel rows hands the model the 30 s window featurize used to store.

featurize stores a clip's own frames and a pad value (``features.pad_features`` rebuilds the
window; ``test_features`` checks it against the extractor). Here: the encoder cache, the
transcription of a table and the transcribe stage's CTranslate2 path each see exactly the
windows stacked as the old tables held them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from swedish_transcriber.data.features import stored_frames_of
from swedish_transcriber.whisper import N_FRAMES, DecodeOptions, EncoderContext
from tests.tiny import feature_table, tiny_whisper


def windows(table) -> np.ndarray:
    """The rows' windows as featurize stored them before: mels x 3000, float16, stacked."""
    out = []
    for row in table.with_format("numpy"):
        own = np.asarray(row["input_features"], np.float16)
        full = np.full((own.shape[1], N_FRAMES), row["pad_value"], np.float16)
        full[:, : len(own)] = own.T
        out.append(full)
    return np.stack(out).astype(np.float32)


def test_rows_are_stored_without_their_padding():
    table = feature_table(3, seed=0, split="test")
    frames = [len(f) for f in table.with_format("numpy")["input_features"]]
    assert frames == [152, 252, 352]  # 1.5, 2.5 and 3.5 s of 3000 frames
    assert windows(table).shape == (3, 80, N_FRAMES)


@torch.no_grad()
def test_encoder_cache_encodes_the_padded_windows(tmp_path):
    from swedish_transcriber.model.encoder_cache import build

    model = tiny_whisper().eval()
    table = feature_table(3, seed=0, split="train")
    cached = build(model, table, tmp_path / "cache", "f" * 64, 2, torch.device("cpu"))
    expected = model.get_encoder()(torch.from_numpy(windows(table))).last_hidden_state
    got = torch.as_tensor(np.asarray(cached.with_format("numpy")["encoder_hidden_states"]))
    assert torch.equal(got, expected.to(torch.float16))
    lower = build(model, table, tmp_path / "lower", "l" * 64, 3, torch.device("cpu"), 1)
    states = model.get_encoder()(torch.from_numpy(windows(table)), output_hidden_states=True)
    got = torch.as_tensor(np.asarray(lower.with_format("numpy")["encoder_lower_states"]))
    assert torch.equal(got, states.hidden_states[1].to(torch.float16))


def test_transcribe_table_decodes_the_padded_windows(monkeypatch):
    from swedish_transcriber.evaluation import transcription

    seen = []

    def fake(model, processor, features, language, task, options, durations):
        seen.append((np.asarray(features), list(durations)))
        return ["x"] * len(durations)

    monkeypatch.setattr(transcription, "transcribe_features", fake)
    table = feature_table(3, seed=0, split="test")
    options = DecodeOptions.plain(batch_size=2, num_beams=1, max_new_tokens=10)
    assert (
        transcription.transcribe_table(
            None, None, table, options, "sv", "transcribe", EncoderContext.padded()
        )
        == ["x"] * 3
    )
    assert [len(d) for _, d in seen] == [2, 1]
    got = np.concatenate([f for f, _ in seen])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, windows(table))
    assert sum((d for _, d in seen), []) == table["duration"]


def test_transcribe_stage_feeds_ct2_the_padded_windows(monkeypatch):
    from swedish_transcriber.model.source import ModelLanguage
    from swedish_transcriber.serving.engines import ctranslate2_engine, stored_features

    seen = []

    class Engine:
        def __init__(self, *args) -> None:
            pass

        def transcribe_features(self, features, durations):
            seen.append(np.asarray(features))
            return ["y"] * len(durations)

    monkeypatch.setattr(ctranslate2_engine, "CTranslate2Engine", Engine)
    options = DecodeOptions.plain(batch_size=2, num_beams=1, max_new_tokens=10)
    transcribe = stored_features.ct2_transcriber(
        Path("models/ct2"), ModelLanguage(language="sv", task="transcribe"), options
    )
    table = feature_table(3, seed=1, split="test")
    assert transcribe(table) == ["y"] * 3
    got = np.concatenate(seen)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, windows(table))


def test_transcribe_table_buckets_clip_contexts_and_keeps_row_order(monkeypatch):
    from swedish_transcriber.evaluation import transcription

    seen = []

    def fake(model, processor, features, language, task, options, durations):
        seen.append(np.asarray(features).shape)
        return [f"{d:.3f}" for d in durations]

    monkeypatch.setattr(transcription, "transcribe_features", fake)
    table = feature_table(5, seed=1, split="test")
    context = EncoderContext("clip", 0.0)
    frames = stored_frames_of(table)
    options = DecodeOptions.plain(batch_size=8, num_beams=1, max_new_tokens=10)
    texts = transcription.transcribe_table(None, None, table, options, "sv", "transcribe", context)
    assert texts == [f"{d:.3f}" for d in table["duration"]]  # table order, whatever the batches
    # One batch per context length, each as long as its clips' rounded context.
    assert sorted(shape[2] for shape in seen) == sorted({context.frames(n) for n in frames})
    assert all(shape[2] < N_FRAMES for shape in seen)


def test_context_batches_padded_are_plain_consecutive_batches():
    from swedish_transcriber.evaluation.transcription import context_batches

    got = context_batches([10, 3000, 5, 700, 1], EncoderContext.padded(), 2)
    assert got == [(N_FRAMES, [0, 1]), (N_FRAMES, [2, 3]), (N_FRAMES, [4])]
    clip = context_batches([10, 3000, 5, 700, 1], EncoderContext("clip", 0.0), 2)
    assert clip == [(100, [0, 2]), (100, [4]), (700, [3]), (3000, [1])]
