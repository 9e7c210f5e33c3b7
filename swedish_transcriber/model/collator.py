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
the trainer runs the top layers on them (:mod:`swedish_transcriber.model.training.encoder_top`).

Under ``whisper.context: clip`` a batch's log-mel frames are padded only to the batch's
context (:class:`~swedish_transcriber.whisper.EncoderContext`; batches share one,
:mod:`.training.length_buckets`). A distillation teacher that sees the 30 s window (``train.distill.
teacher_context: padded``) gets its own input beside the student's: the padded frames
(``teacher_input_features``) or its stored encoder outputs (``teacher_encoder_outputs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers.modeling_outputs import BaseModelOutput

from swedish_transcriber.data.features import PAD_COLUMN, pad_features
from swedish_transcriber.whisper import N_FRAMES, PADDED, EncoderContext

IGNORE_INDEX = -100
# Stored encoder states a row may carry instead of log-mel features (encoder_cache's columns).
CACHED_KEYS = ("encoder_hidden_states", "encoder_lower_states")
TEACHER_COLUMN = "teacher_hidden_states"  # the teacher's stored outputs on the 30 s window
TEACHER_FEATURES = "teacher_input_features"  # batch key: the teacher's padded log-mel input
TEACHER_OUTPUTS = "teacher_encoder_outputs"  # batch key: the teacher's stored outputs
TEACHER_KEYS = (TEACHER_FEATURES, TEACHER_OUTPUTS)


def stack_states(states: Sequence[Any], key: str) -> torch.Tensor:
    """Stored encoder states of one batch as float32; one clear error if lengths differ."""
    tensors = [torch.as_tensor(s).to(torch.float32) for s in states]
    lengths = sorted({t.shape[0] for t in tensors})
    if len(lengths) > 1:
        raise ValueError(
            f"{key}: stored states of {lengths} positions in one batch; batches must share "
            f"one encoder context (model.training.length_buckets)"
        )
    return torch.stack(tensors)


@dataclass
class SpeechSeq2SeqCollator:
    """Collate rows with ``input_features`` (and ``pad_value``) and ``labels`` into a batch."""

    pad_token_id: int
    decoder_start_token_id: int
    context: EncoderContext = PADDED
    # The teacher sees the 30 s window while the student sees ``context`` (log-mel rows only;
    # rows of stored states carry the teacher's own in TEACHER_COLUMN).
    teacher_padded: bool = False

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if not rows:
            raise ValueError("cannot collate an empty batch")
        key = next(k for k in (*CACHED_KEYS, "input_features") if k in rows[0])
        extra: dict[str, Any] = {}
        if key == "input_features":
            frames = [r[key] for r in rows]
            pads = [r[PAD_COLUMN] for r in rows]
            width = max(self.context.frames(len(f)) for f in frames)
            stacked = torch.from_numpy(pad_features(frames, pads, width))
            if self.teacher_padded:
                extra[TEACHER_FEATURES] = (
                    stacked if width == N_FRAMES else torch.from_numpy(pad_features(frames, pads))
                )
        else:
            stacked = stack_states([r[key] for r in rows], key)
        if TEACHER_COLUMN in rows[0]:
            extra[TEACHER_OUTPUTS] = BaseModelOutput(
                last_hidden_state=stack_states([r[TEACHER_COLUMN] for r in rows], TEACHER_COLUMN)
            )
        labels = [torch.as_tensor(r["labels"], dtype=torch.long) for r in rows]
        if all(len(seq) and seq[0] == self.decoder_start_token_id for seq in labels):
            labels = [seq[1:] for seq in labels]
        length = max(len(seq) for seq in labels)
        padded = torch.full((len(labels), length), IGNORE_INDEX, dtype=torch.long)
        for i, seq in enumerate(labels):
            padded[i, : len(seq)] = seq
        if key == "encoder_hidden_states":
            # A ModelOutput, not a tuple: Whisper's generate() reads its shape this way.
            return {
                "encoder_outputs": BaseModelOutput(last_hidden_state=stacked),
                "labels": padded,
                **extra,
            }
        return {key: stacked, "labels": padded, **extra}
