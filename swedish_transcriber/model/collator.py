"""Batching featurized rows for Whisper's Seq2Seq training.

Features are stored as each clip's own frames; ``features.pad_features`` pads them to
Whisper's fixed 30 s window, as the feature extractor does. Labels vary in length:
they are padded, and the padding is set to -100 so the loss ignores it. The labels stored
by ``featurize`` start with ``<|startoftranscript|>``; the model builds its decoder inputs by
shifting the labels right and prepending ``decoder_start_token_id`` (that same token), so
the token is removed here when every sequence in the batch starts with it; otherwise the
decoder would see it twice and learn to predict it.

Rows may carry stored encoder outputs (``encoder_hidden_states``, see
:mod:`swedish_transcriber.model.encoder_cache`) instead of log-mel features; the batch then holds
``encoder_outputs`` and the model skips its (frozen) encoder. Rows with the stored states
below the trained top encoder layers (``encoder_lower_states``) are stacked under that key;
the trainer runs the top layers on them (:mod:`swedish_transcriber.model.encoder_top`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers.modeling_outputs import BaseModelOutput

from swedish_transcriber.data.features import PAD_COLUMN, pad_features

IGNORE_INDEX = -100
# Stored encoder states a row may carry instead of log-mel features (encoder_cache's columns).
CACHED_KEYS = ("encoder_hidden_states", "encoder_lower_states")


@dataclass
class SpeechSeq2SeqCollator:
    """Collate rows with ``input_features`` (and ``pad_value``) and ``labels`` into a batch."""

    pad_token_id: int
    decoder_start_token_id: int

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if not rows:
            raise ValueError("cannot collate an empty batch")
        key = next(k for k in (*CACHED_KEYS, "input_features") if k in rows[0])
        if key == "input_features":
            stacked = torch.from_numpy(
                pad_features([r[key] for r in rows], [r[PAD_COLUMN] for r in rows])
            )
        else:
            stacked = torch.stack([torch.as_tensor(r[key]).to(torch.float32) for r in rows])
        labels = [torch.as_tensor(r["labels"], dtype=torch.long) for r in rows]
        if all(len(seq) and seq[0] == self.decoder_start_token_id for seq in labels):
            labels = [seq[1:] for seq in labels]
        length = max(len(seq) for seq in labels)
        padded = torch.full((len(labels), length), IGNORE_INDEX, dtype=torch.long)
        for i, seq in enumerate(labels):
            padded[i, : len(seq)] = seq
        if key == "encoder_hidden_states":
            # A ModelOutput, not a tuple: Whisper's generate() reads its shape this way.
            return {"encoder_outputs": BaseModelOutput(last_hidden_state=stacked), "labels": padded}
        return {key: stacked, "labels": padded}
