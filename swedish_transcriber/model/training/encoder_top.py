"""Training the top encoder layers on stored lower-layer states (``trainable: [encoder_top]``).

When only the top ``k`` encoder layers train, everything below them (the two convolutions,
the positions and layers ``0 .. n-k-1``) gives the same hidden states for a clip at every
step. The encoder cache (:mod:`swedish_transcriber.model.encoder_cache`, ``below_layer``)
stores those once; a training step then runs only the top ``k`` layers and the final layer
norm on them, and the decoder on the result. The collator hands the stored states over as
``encoder_lower_states``; :func:`encoder_outputs_from_lower` turns them into the
``encoder_outputs`` Whisper's forward and ``generate()`` accept, for the model being trained
(inside the step, so gradients reach the top layers) or for the frozen distillation teacher.

The layers are called as ``WhisperEncoder.forward`` calls them in transformers 4.57
(``layer(hidden, None, layer_head_mask=None, output_attentions=False)[0]``), with no
LayerDrop (Whisper's configs have ``encoder_layerdrop`` 0) and without the dropout that
follows the positions (it sits below the cut; ``train.dropout`` is 0 by default).
"""

from __future__ import annotations

import torch
from transformers.modeling_outputs import BaseModelOutput

from swedish_transcriber.model.encoder_cache import LOWER_COLUMN

INPUT_KEY = LOWER_COLUMN  # the batch key the collator writes


def whisper_of(model):
    """The ``WhisperForConditionalGeneration`` inside DDP and/or a peft wrapper."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    if hasattr(inner, "get_base_model"):  # peft.PeftModel (adapters stay inside its layers)
        inner = inner.get_base_model()
    return inner


def first_trained_layer(config, top_layers: int) -> int:
    """Index of the lowest trained encoder layer: the cache stores what enters it."""
    return int(config.encoder_layers) - top_layers


def encoder_outputs_from_lower(model, lower: torch.Tensor, top_layers: int) -> BaseModelOutput:
    """Run the top ``top_layers`` encoder layers and the final layer norm of ``model``."""
    encoder = whisper_of(model).get_encoder()
    hidden = lower.to(dtype=next(encoder.parameters()).dtype)
    for layer in encoder.layers[len(encoder.layers) - top_layers :]:
        hidden = layer(hidden, None, layer_head_mask=None, output_attentions=False)[0]
    return BaseModelOutput(last_hidden_state=encoder.layer_norm(hidden))


def with_encoder_outputs(model, inputs: dict, top_layers: int) -> dict:
    """``inputs`` with stored lower states replaced by ``model``'s encoder outputs."""
    if INPUT_KEY not in inputs:
        return inputs
    out = {k: v for k, v in inputs.items() if k != INPUT_KEY}
    out["encoder_outputs"] = encoder_outputs_from_lower(model, inputs[INPUT_KEY], top_layers)
    return out
