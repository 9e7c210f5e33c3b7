"""Whisper's encoder on fewer than 3000 log-mel frames (``whisper.context: clip``).

transformers 4.57's ``WhisperEncoder.forward`` refuses any input but the full 30 s window,
because it adds all 1500 positional embeddings. :class:`OwnContextEncoder` adds only the
first ``frames // 2`` of them, which is what openai/whisper's ``audio_ctx`` and CTranslate2 do
on a shorter input. It has no weights of its own: :func:`own_context` swaps the class of a
loaded model's encoder, so the model loads and saves as a plain Whisper checkpoint, and a
3000-frame input takes the parent's code path, bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.whisper.modeling_whisper import WhisperEncoder


class OwnContextEncoder(WhisperEncoder):
    """A ``WhisperEncoder`` that accepts any even number of frames up to the window."""

    def forward(
        self,
        input_features,
        attention_mask=None,
        head_mask=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        window = self.config.max_source_positions * self.conv1.stride[0] * self.conv2.stride[0]
        frames = input_features.shape[-1]
        if frames == window:
            return super().forward(
                input_features, attention_mask, head_mask, output_attentions,
                output_hidden_states, return_dict,
            )  # fmt: skip
        if frames > window or frames < 2 or frames % 2:
            raise ValueError(
                f"the encoder takes an even number of log-mel frames from 2 to {window}, got "
                f"{frames}"
            )
        if head_mask is not None or output_attentions:
            raise ValueError("head_mask and output_attentions need the full 30 s window")
        hidden_flag = self.config.output_hidden_states
        output_hidden_states = hidden_flag if output_hidden_states is None else output_hidden_states
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        embeds = nn.functional.gelu(self.conv1(input_features))
        embeds = nn.functional.gelu(self.conv2(embeds)).permute(0, 2, 1)
        hidden = embeds + self.embed_positions.weight[: embeds.shape[1]]
        hidden = nn.functional.dropout(hidden, p=self.dropout, training=self.training)
        states = []
        for layer in self.layers:
            if output_hidden_states:
                states.append(hidden)
            if self.training and torch.rand([]) < self.layerdrop:
                continue
            hidden = layer(hidden, None, layer_head_mask=None, output_attentions=False)[0]
        hidden = self.layer_norm(hidden)
        if output_hidden_states:
            states.append(hidden)
        all_states = tuple(states) if output_hidden_states else None
        if not return_dict:
            return tuple(v for v in (hidden, all_states) if v is not None)
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=all_states)


def own_context(model):
    """``model`` (a Whisper model, or one wrapping it) with an encoder of any context; in place."""
    encoder = model.get_encoder()
    if not isinstance(encoder, WhisperEncoder):
        raise TypeError(f"not a Whisper encoder: {type(encoder).__name__}")
    if not isinstance(encoder, OwnContextEncoder):
        encoder.__class__ = OwnContextEncoder
    return model
