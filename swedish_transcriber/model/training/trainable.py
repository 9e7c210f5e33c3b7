"""Which of Whisper's parameters train (``train.trainable``), and the checks against the model.

Fine-tuning every decoder weight on a few hours of one kind of speech makes the model forget
what it knew (real voices, rare words). Training fewer parameters is the cheapest guard, so
the trainable set is a list of named parts:

* ``encoder``: the whole encoder (its fixed sinusoidal positions excepted, as in Whisper);
* ``encoder_top``: the top ``train.encoder_top_layers`` encoder layers and the encoder's
  final layer norm: the acoustic features adapt a little, the lower layers stay general;
* ``decoder``: the whole decoder (its token embeddings only without ``freeze_embeddings``);
* ``cross_attention``: only the decoder's ``encoder_attn`` blocks and their layer norms,
  how the decoder reads the audio; its language model stays the base's.

A part is a set of parameter-name prefixes; :func:`part_prefixes` is the one place they are
spelt, and LoRA (:mod:`swedish_transcriber.model.training.lora`) puts its adapters inside the same
prefixes. :func:`check_against_model` turns a part the model lacks into an error naming the
param, before any long work starts.
"""

from __future__ import annotations

from torch import nn

from swedish_transcriber.model.training.params import TrainParams

ENCODER = "model.encoder."
DECODER = "model.decoder."
# Whisper's encoder positions are fixed sinusoids (frozen in transformers too).
ALWAYS_FROZEN = ("model.encoder.embed_positions.",)
EMBEDDINGS = ("model.decoder.embed_tokens.", "proj_out.")  # tied: one matrix


def part_prefixes(config, params: TrainParams) -> list[str]:
    """Parameter-name prefixes (of a ``WhisperForConditionalGeneration``) that train."""
    layers = int(config.encoder_layers)
    prefixes: list[str] = []
    for part in params.trainable:
        if part == "encoder":
            prefixes.append(ENCODER)
        elif part == "encoder_top":
            first = layers - params.encoder_top_layers
            prefixes += [f"{ENCODER}layers.{i}." for i in range(first, layers)]
            prefixes.append(f"{ENCODER}layer_norm.")
        elif part == "decoder":
            prefixes += [DECODER, "proj_out."]
        elif part == "cross_attention":
            for i in range(int(config.decoder_layers)):
                prefixes.append(f"{DECODER}layers.{i}.encoder_attn.")
                prefixes.append(f"{DECODER}layers.{i}.encoder_attn_layer_norm.")
        else:  # TrainParams refuses it first; kept for callers that build params by hand
            raise ValueError(f"train.trainable: unknown part {part!r}")
    return prefixes


def in_parts(name: str, prefixes: list[str]) -> bool:
    """Whether a parameter or module name lies inside one of the parts."""
    name = name + "."  # a module's own name matches its prefix too
    return any(name.startswith(prefix) for prefix in prefixes)


def trains(name: str, prefixes: list[str], params: TrainParams) -> bool:
    """Whether parameter ``name`` trains under ``params`` (without LoRA)."""
    if any(name.startswith(p) for p in ALWAYS_FROZEN):
        return False
    if params.freeze_embeddings and any(name.startswith(p) for p in EMBEDDINGS):
        return False
    return in_parts(name, prefixes)


def apply_trainable(model, params: TrainParams) -> list[str]:
    """Set ``requires_grad`` from ``params``; return the names of the parameters that train."""
    prefixes = part_prefixes(model.config, params)
    names = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(trains(name, prefixes, params))
        if parameter.requires_grad:
            names.append(name)
    return names


def lora_target_names(model, params: TrainParams) -> dict[str, list[str]]:
    """``lora.target_modules`` suffix -> the linear modules inside the trainable parts it names."""
    prefixes = part_prefixes(model.config, params)
    found: dict[str, list[str]] = {suffix: [] for suffix in params.lora.target_modules}
    for name, module in model.named_modules():
        if not in_parts(name, prefixes) or not isinstance(module, nn.Linear):
            continue
        for suffix in params.lora.target_modules:
            if name == suffix or name.endswith("." + suffix):
                found[suffix].append(name)
    return found


def check_against_model(model, params: TrainParams) -> None:
    """Refuse params that name parts or modules ``model`` lacks (before any long work)."""
    layers = int(model.config.encoder_layers)
    if "encoder_top" in params.trainable and params.encoder_top_layers > layers:
        raise ValueError(
            f"params.yaml: train.encoder_top_layers={params.encoder_top_layers} but the model "
            f"has {layers} encoder layers"
        )
    if not params.lora.enabled:
        return
    found = lora_target_names(model, params)
    missing = [suffix for suffix, names in found.items() if not names]
    if missing:
        linear = sorted(
            {
                name.rsplit(".", 1)[-1]
                for name, module in model.named_modules()
                if isinstance(module, nn.Linear)
                and in_parts(name, part_prefixes(model.config, params))
            }
        )
        raise ValueError(
            f"params.yaml: train.lora.target_modules {missing} match no linear module in the "
            f"trainable parts {params.trainable}; those parts have: {', '.join(linear)}"
        )
