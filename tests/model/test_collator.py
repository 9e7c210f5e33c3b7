"""Collation for training: padding masked with -100, start-of-transcript not duplicated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swedish_transcriber.model.collator import IGNORE_INDEX, SpeechSeq2SeqCollator
from tests.messages import raises_naming
from tests.tiny import tiny_whisper

SOT, SV, TRANSCRIBE, NOTS, EOT = 50258, 50273, 50359, 50363, 50257


@pytest.fixture(scope="module")
def tiny_model():
    """A tiny randomly initialised multilingual Whisper (the real vocabulary size)."""
    return tiny_whisper()


def rows():
    """Two rows as featurize stores them: a clip's own frames (frames x mels), a pad value."""
    ramp = np.linspace(-1.0, 1.0, 250 * 80).reshape(250, 80)
    return [
        {
            "input_features": np.zeros((100, 80), np.float16),
            "pad_value": -1.5,
            "labels": [SOT, SV, TRANSCRIBE, NOTS, 100, 200, EOT],
        },
        {
            "input_features": ramp.astype(np.float16),
            "pad_value": np.float32(np.float16(-1.0 - 1 / 3)),  # as stored: a float16 value
            "labels": [SOT, SV, TRANSCRIBE, NOTS, 300, EOT],
        },
    ]


def window(row) -> np.ndarray:
    """The row's 30 s window as featurize stored it before (mels x 3000, float16)."""
    full = np.full((80, 3000), row["pad_value"], np.float16)
    full[:, : len(row["input_features"])] = row["input_features"].T
    return full


def test_pads_with_ignore_index_and_drops_start_token():
    batch = SpeechSeq2SeqCollator(pad_token_id=EOT, decoder_start_token_id=SOT)(rows())
    assert batch["input_features"].shape == (2, 80, 3000)
    assert batch["input_features"].dtype == torch.float32
    # The same tensor as the whole stored windows stacked (the collator before padless rows).
    expected = torch.stack([torch.as_tensor(window(r)).to(torch.float32) for r in rows()])
    assert torch.equal(batch["input_features"], expected)
    assert batch["labels"].tolist() == [
        [SV, TRANSCRIBE, NOTS, 100, 200, EOT],
        [SV, TRANSCRIBE, NOTS, 300, EOT, IGNORE_INDEX],
    ]


def test_decoder_sees_start_token_once(tiny_model):
    batch = SpeechSeq2SeqCollator(pad_token_id=EOT, decoder_start_token_id=SOT)(rows())
    from transformers.models.whisper.modeling_whisper import shift_tokens_right

    decoder_inputs = shift_tokens_right(batch["labels"], EOT, SOT)
    assert decoder_inputs[0, :2].tolist() == [SOT, SV]


def test_loss_is_the_mean_cross_entropy_of_each_real_next_token(tiny_model):
    """The batch loss, by hand: each row alone, decoder fed its tokens up to t, target t+1.

    A label shift off by one, a start token left in, or padding counted would each change it.
    """
    batch = SpeechSeq2SeqCollator(pad_token_id=EOT, decoder_start_token_id=SOT)(rows())
    nll, targets_seen = torch.tensor(0.0), 0
    with torch.no_grad():
        loss = tiny_model(**batch).loss
        for row in rows():
            ids = torch.tensor(row["labels"])
            features = torch.as_tensor(window(row)).float()[None]
            logits = tiny_model(input_features=features, decoder_input_ids=ids[None, :-1]).logits
            nll += torch.nn.functional.cross_entropy(logits[0], ids[1:], reduction="sum")
            targets_seen += len(ids) - 1
    assert targets_seen == 6 + 5
    torch.testing.assert_close(loss, nll / targets_seen, rtol=1e-5, atol=1e-6)


def test_padding_does_not_change_the_loss(tiny_model):
    """The padded row's loss equals its loss alone: -100 positions are ignored."""
    collate = SpeechSeq2SeqCollator(pad_token_id=EOT, decoder_start_token_id=SOT)
    alone = collate([rows()[1]])
    with torch.no_grad():
        logits_pair = tiny_model(**collate(rows())).logits[1]
        logits_alone = tiny_model(**alone).logits[0]
    n = alone["labels"].shape[1]
    torch.testing.assert_close(logits_pair[:n], logits_alone, rtol=1e-4, atol=1e-4)


def test_empty_batch_is_an_error():
    with raises_naming(ValueError, "empty"):
        SpeechSeq2SeqCollator(EOT, SOT)([])


def test_stored_encoder_outputs_become_encoder_outputs(tiny_model):
    """Rows from the encoder cache: the model skips its encoder and gives the same loss."""
    from transformers.modeling_outputs import BaseModelOutput

    collate = SpeechSeq2SeqCollator(pad_token_id=EOT, decoder_start_token_id=SOT)
    live = collate(rows())
    with torch.no_grad():
        hidden = tiny_model.get_encoder()(live["input_features"]).last_hidden_state
    cached = [
        {"encoder_hidden_states": h.numpy().astype(np.float16), "labels": r["labels"]}
        for h, r in zip(hidden, rows(), strict=True)
    ]
    batch = collate(cached)
    assert set(batch) == {"encoder_outputs", "labels"}
    assert isinstance(batch["encoder_outputs"], BaseModelOutput)
    assert torch.equal(batch["labels"], live["labels"])
    with torch.no_grad():
        expected = tiny_model(**live).loss
        got = tiny_model(**batch).loss
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)
