"""LoRA adapters through peft (``train.lora``), merged back into a plain Whisper checkpoint.

A low-rank update ``W + (alpha / r) * B @ A`` can only move each matrix within a rank-``r``
subspace, and ``B`` starts at zero: the model starts as the base and moves less far from it
than full fine-tuning of the same layers, so it forgets less. Adapters go on the linear
modules named by ``train.lora.target_modules`` (name suffixes: ``q_proj`` is every attention's
query projection, ``encoder_attn.q_proj`` only cross-attention's) *inside the parts listed in
``train.trainable``* (:mod:`swedish_transcriber.model.training.trainable`); every other weight is
frozen. After training :func:`merged` folds them into the weights (``merge_and_unload``), so
``models/trained`` is an ordinary ``WhisperForConditionalGeneration`` checkpoint.

The Trainer saves and resumes a peft model by itself (its checkpoints hold only
``adapter_model.safetensors``); :func:`load_adapter_checkpoint` is for a finished run whose
outputs were lost, which the train stage reloads without ``Trainer.train()``.
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber.model.training.params import TrainParams
from swedish_transcriber.model.training.trainable import lora_target_names

ADAPTER_FILE = "adapter_model.safetensors"


def apply_lora(model, params: TrainParams):
    """``model`` wrapped in a peft model with adapters on the targets; the rest frozen."""
    from peft import LoraConfig, get_peft_model

    names = sorted({n for found in lora_target_names(model, params).values() for n in found})
    config = LoraConfig(
        r=params.lora.rank,
        lora_alpha=params.lora.alpha,
        lora_dropout=params.lora.dropout,
        # Full module names: exactly the modules inside the chosen parts (peft matches a
        # list entry by equality or by a dotted suffix, so a full name means that one module).
        target_modules=names,
        bias="none",
    )
    return get_peft_model(model, config)


def is_peft(model) -> bool:
    return hasattr(model, "merge_and_unload") and hasattr(model, "get_base_model")


def merged(model):
    """A plain transformers model: the adapters folded into the weights (or ``model`` as is)."""
    return model.merge_and_unload() if is_peft(model) else model


def load_adapter_checkpoint(model, checkpoint: str | Path) -> None:
    """Load a Trainer checkpoint's adapter weights into the peft ``model``."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(checkpoint) / ADAPTER_FILE
    if not path.is_file():
        raise ValueError(f"{checkpoint}: no {ADAPTER_FILE}; was this checkpoint made with LoRA?")
    result = set_peft_model_state_dict(model, load_file(str(path)))
    if result.unexpected_keys:
        raise ValueError(
            f"{checkpoint}: adapter weights do not match the model ({result.unexpected_keys[:3]})"
        )
