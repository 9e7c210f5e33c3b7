"""The encoder context knob: EncoderContext's frames, the own-context encoder, the record."""

from __future__ import annotations

import json

import pytest
import torch

from swedish_transcriber.own_context import OwnContextEncoder, own_context
from swedish_transcriber.params import ParamsError, section
from swedish_transcriber.whisper import (
    CONTEXT_KEY,
    N_FRAMES,
    EncoderContext,
    model_context,
)
from tests.messages import raises_naming
from tests.repo_params import write_params
from tests.tiny import tiny_whisper


def test_padded_is_always_the_window():
    ctx = EncoderContext.padded()
    assert [ctx.frames(n) for n in (0, 1, 250, 3000)] == [N_FRAMES] * 4


@pytest.mark.parametrize(
    ("min_seconds", "own", "want"),
    [
        (0.0, 0, 100),  # a clip of 0 frames gets the smallest context, never an error
        (0.0, 1, 100),
        (0.0, 101, 200),  # rounded up to whole seconds
        (1.0, 250, 300),
        (5.0, 250, 500),  # shorter than the minimum: padded to it
        (5.0, 999, 1000),
        (10.0, 2999, 3000),
        (10.0, 3000, 3000),
        (30.0, 10, 3000),
    ],
)
def test_clip_context_frames(min_seconds, own, want):
    assert EncoderContext("clip", min_seconds).frames(own) == want


def test_frames_for_samples_counts_the_frames_that_hear_the_clip():
    """As featurize stores a clip: frames up to ceil((n + 200) / 160), so the page and the
    transcribe stages give one clip one context."""
    ctx = EncoderContext("clip", 0.0)
    assert ctx.frames_for_samples(15_800) == 100  # (15800 + 200) / 160 = 100 frames
    assert ctx.frames_for_samples(15_801) == 200
    assert ctx.frames_for_samples(16_000) == 200  # 102 frames hear a 1 s clip


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"context": "own", "min_context_seconds": 5.0}, "context"),
        ({"context": "clip", "min_context_seconds": 31.0}, "min_context_seconds"),
        ({"context": "clip", "min_context_seconds": -1.0}, "min_context_seconds"),
    ],
)
def test_bad_context_params_name_the_key(tmp_path, monkeypatch, raw, key):

    write_params(tmp_path, base={"whisper": raw})
    monkeypatch.chdir(tmp_path)
    with raises_naming(ParamsError, "params.yaml", "whisper", key):
        section("whisper", EncoderContext)


def test_model_context_reads_the_record(tmp_path):
    assert model_context(tmp_path) == EncoderContext.padded()  # no record: padded
    ctx = EncoderContext("clip", 5.0)
    (tmp_path / "config.json").write_text(json.dumps({CONTEXT_KEY: ctx.record()}))
    assert model_context(tmp_path) == ctx
    (tmp_path / "config.json").write_text(json.dumps({CONTEXT_KEY: {"context": "x"}}))
    with raises_naming(ValueError, tmp_path / "config.json", "encoder_context"):  # file, key
        model_context(tmp_path)


def hand_sliced(model, features: torch.Tensor) -> torch.Tensor:
    """The reference: Whisper's encoder math written out, positions sliced by hand."""
    enc = model.get_encoder()
    x = torch.nn.functional.gelu(enc.conv1(features))
    x = torch.nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1)
    x = x + enc.embed_positions.weight[: x.shape[1]]
    for layer in enc.layers:
        x = layer(x, None, layer_head_mask=None)[0]
    return enc.layer_norm(x)


@torch.no_grad()
def test_encoder_matches_a_hand_sliced_reference():
    model = own_context(tiny_whisper())
    assert isinstance(model.get_encoder(), OwnContextEncoder)
    features = torch.randn(2, 80, 400)
    got = model.get_encoder()(features).last_hidden_state
    assert got.shape == (2, 200, 64)
    torch.testing.assert_close(got, hand_sliced(model, features), rtol=0, atol=0)
    hidden = model.get_encoder()(features, output_hidden_states=True).hidden_states
    assert len(hidden) == 3 and torch.equal(hidden[-1], got)


@torch.no_grad()
def test_full_window_is_bit_identical_to_transformers():
    plain = tiny_whisper()
    features = torch.randn(1, 80, N_FRAMES)
    want = plain.get_encoder()(features).last_hidden_state
    got = own_context(tiny_whisper()).get_encoder()(features).last_hidden_state
    assert torch.equal(got, want)


@torch.no_grad()
def test_generate_on_a_short_context():
    model = own_context(tiny_whisper())
    out = model.generate(torch.randn(1, 80, 300), max_new_tokens=3)
    assert out.shape[0] == 1


@pytest.mark.parametrize("frames", [0, 3, 3002])
def test_refuses_odd_or_oversized_inputs(frames):
    model = own_context(tiny_whisper())
    with raises_naming(ValueError, frames):
        model.get_encoder()(torch.randn(1, 80, frames))


def test_saves_and_loads_as_a_plain_checkpoint(tmp_path):
    from transformers import WhisperForConditionalGeneration

    model = own_context(tiny_whisper())
    model.save_pretrained(tmp_path)
    loaded = WhisperForConditionalGeneration.from_pretrained(tmp_path)
    assert type(loaded.get_encoder()).__name__ == "WhisperEncoder"
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [
        "WhisperForConditionalGeneration"
    ]
