"""Training on each clip's own context: length buckets, the collator, the encoder cache, a run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from swedish_transcriber.model.collator import (
    TEACHER_COLUMN,
    TEACHER_FEATURES,
    TEACHER_OUTPUTS,
    SpeechSeq2SeqCollator,
)
from swedish_transcriber.model.encoder_cache import COLUMN, build
from swedish_transcriber.model.training.length_buckets import LengthBuckets
from swedish_transcriber.model.training.trainer import teacher_part, without_teacher
from swedish_transcriber.own_context import own_context
from swedish_transcriber.whisper import CONTEXT_KEY, N_FRAMES, EncoderContext
from tests.messages import raises_naming
from tests.repo_params import dotted, write_params
from tests.stage_runs import read_json, train_stage
from tests.tiny import SPECIAL_IDS, feature_table, tiny_whisper

CLIP5 = EncoderContext("clip", 5.0)


def test_buckets_hold_one_length_and_every_row_once():
    lengths = [500, 600, 500, 700, 500, 600, 500, 3000, 500]
    buckets = LengthBuckets(lengths, batch_size=2, seed=1, shuffle=True)
    batches = list(buckets)
    assert len(batches) == len(buckets) == 6  # 5 rows of 500 -> 3 batches, 600 -> 1, 1, 1
    assert sorted(r for b in batches for r in b) == list(range(len(lengths)))
    assert all(len({lengths[r] for r in b}) == 1 for b in batches)
    again = LengthBuckets(lengths, batch_size=2, seed=1, shuffle=True)
    assert list(again) == batches  # a function of seed and epoch alone: resumable
    again.set_epoch(1)
    assert list(again) != batches
    buckets.sampler.set_epoch(1)  # where accelerate's DDP wrapper sets it
    assert list(buckets) == list(again)


def test_eval_buckets_are_in_order():
    buckets = LengthBuckets([600, 500, 600, 500], batch_size=8, seed=0, shuffle=False)
    assert list(buckets) == [[1, 3], [0, 2]]


def rows(n: int) -> list[dict]:
    table = feature_table(n, seed=0, split="train").with_format("numpy")
    return [table[i] for i in range(n)]


def collator(**kwargs) -> SpeechSeq2SeqCollator:
    return SpeechSeq2SeqCollator(
        pad_token_id=SPECIAL_IDS["pad_token_id"],
        decoder_start_token_id=SPECIAL_IDS["decoder_start_token_id"],
        **kwargs,
    )


def test_collator_pads_to_the_batch_context_and_gives_the_teacher_the_window():
    batch = rows(3)  # 152, 252 and 352 own frames
    plain = collator()(batch)
    assert plain["input_features"].shape[-1] == N_FRAMES
    clip = collator(context=CLIP5, teacher_padded=True)(batch)
    assert clip["input_features"].shape == (3, 80, 500)
    assert torch.equal(clip["input_features"], plain["input_features"][..., :500])
    assert torch.equal(clip[TEACHER_FEATURES], plain["input_features"])
    assert torch.equal(clip["labels"], plain["labels"])
    student, teacher = without_teacher(clip), teacher_part(clip)
    assert TEACHER_FEATURES not in student and teacher["input_features"].shape[-1] == N_FRAMES


def test_collator_refuses_stored_states_of_two_lengths():
    batch = [
        {"encoder_hidden_states": np.zeros((250, 8)), "labels": [1, 2]},
        {"encoder_hidden_states": np.zeros((300, 8)), "labels": [1, 2]},
    ]
    with raises_naming(ValueError, "[250, 300]", "model.training.length_buckets"):
        collator()(batch)


@torch.no_grad()
def test_clip_cache_holds_each_clips_own_states_and_the_teachers_window(tmp_path):
    model = own_context(tiny_whisper())
    table = feature_table(5, seed=0, split="train")  # 152 .. 552 own frames
    context = EncoderContext("clip", 0.0)
    cached = build(model, table, tmp_path / "c", "fp", 4, torch.device("cpu"), None, context, True)
    states = cached.with_format("numpy")
    frames = table.with_format("numpy")
    for i in range(len(table)):
        own = frames[i]["input_features"]
        width = context.frames(len(own))
        got = states[i][COLUMN]
        assert got.shape == (width // 2, 64)
        # Each clip alone, padded to its own context: not to its batch mates'.
        from swedish_transcriber.data.features import pad_features

        window = pad_features([own], [frames[i]["pad_value"]], width)
        want = model.get_encoder()(torch.from_numpy(window)).last_hidden_state[0]
        np.testing.assert_array_equal(got, want.to(torch.float16).numpy())
        assert states[i][TEACHER_COLUMN].shape == (N_FRAMES // 2, 64)
    batch = collator()([states[i] for i in (0,)])
    assert batch[TEACHER_OUTPUTS].last_hidden_state.shape == (1, N_FRAMES // 2, 64)


@pytest.mark.slow  # trains in a subprocess
@pytest.mark.parametrize("teacher_context", ["padded", "student"])
def test_clip_training_records_its_context(tiny_repo, teacher_context):
    write_params(tiny_repo, dotted("whisper", {"context": "clip", "min_context_seconds": 5.0}))
    write_params(
        tiny_repo,
        {
            "train.trainable": ["cross_attention"],
            "train.distill": {
                "weight": 1.0,
                "temperature": 2.0,
                "teacher_context": teacher_context,
            },
        },
    )
    train_stage(tiny_repo)
    config = json.loads((tiny_repo / "models/trained/config.json").read_text())
    assert config[CONTEXT_KEY] == CLIP5.record()
    summary = read_json(tiny_repo / "dvclive" / "metrics.json")
    assert summary["train"]["distill_kl"] > 0 and np.isfinite(summary["eval"]["loss"])
    caches = list((tiny_repo / "checkpoints/encoder_cache").glob("context_*/train"))
    assert len(caches) == 1  # the clip cache has its own key and folder
