"""Exporting the fine-tuned model to CTranslate2 (``models/ct2``), the page's fast CPU engine.

CTranslate2's own converter reads the transformers checkpoint and stores its matrices
quantized (int8 by default: a quarter of float32's size, integer matrix products on the
CPU). The converter also copies the Whisper processor's files (its ``copy_files``) beside
``model.bin``, so the directory is self-contained:
``engines.factory.load_engine("models/ct2", ...)`` needs nothing else.

The converter writes CTranslate2's own ``config.json``, which drops the encoder context a
transformers checkpoint records (``whisper.CONTEXT_KEY``). So the export copies the source's
context (``whisper.model_context``: padded when it records none) into
``decode_options.json``, and the page serves the export with the context its model was
trained for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.whisper import CONTEXT_KEY, model_context

# Quantizations CTranslate2 can store; the CPU computes in int8, int16 or float32.
QUANTIZATIONS: tuple[str, ...] = (
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)
# The Whisper processor: feature extractor and tokenizer (not config.json: CTranslate2 writes
# its own, and the transformers one would then be read by the wrong library).
PROCESSOR_FILES: tuple[str, ...] = (
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "normalizer.json",
)


@dataclass(frozen=True)
class ExportParams:
    """Params section ``export``."""

    quantization: str  # one of QUANTIZATIONS

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(
                f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {self.quantization!r}"
            )


def export_ct2(
    model_dir: str | Path,
    out_dir: str | Path,
    quantization: str,
    decode_options: dict | None = None,
) -> dict:
    """Convert the transformers Whisper in ``model_dir`` to a CTranslate2 model in ``out_dir``.

    All or nothing: ``out_dir`` is replaced only when the conversion has succeeded.
    ``decode_options.json`` beside the model holds the encoder context ``model_dir`` was
    trained for (under ``whisper.CONTEXT_KEY``, always) and ``decode_options`` (params
    ``app.decode``, as a dict) when given: how the page decodes it, guards included, for
    anyone who runs the export elsewhere.
    """
    from ctranslate2.converters import TransformersConverter

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    ExportParams(quantization)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir}: no transformers checkpoint (config.json) to export; run the train "
            f"stage first (dvc repro train)"
        )
    if not (model_dir / "preprocessor_config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: no Whisper processor (preprocessor_config.json)")
    if decode_options is not None and CONTEXT_KEY in decode_options:
        raise ValueError(f"decode_options must not set {CONTEXT_KEY}: it is the model's own")
    context = model_context(model_dir)  # a malformed record fails here, before converting
    # Which of them a tokenizer saves varies; the converter refuses a listed file that is absent.
    copied = [name for name in PROCESSOR_FILES if (model_dir / name).is_file()]
    with atomic_dir(out_dir) as tmp:
        TransformersConverter(str(model_dir), copy_files=copied).convert(
            str(tmp), quantization=quantization, force=True
        )
        info = {
            "source": str(model_dir),
            "quantization": quantization,
            "converter": "ctranslate2.converters.TransformersConverter",
            "processor_files": copied,
            "model_bytes": (tmp / "model.bin").stat().st_size,
            CONTEXT_KEY: context.record(),
        }
        (tmp / "export_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        decode = {**(decode_options or {}), CONTEXT_KEY: context.record()}
        (tmp / "decode_options.json").write_text(
            json.dumps(decode, indent=2) + "\n", encoding="utf-8"
        )
    return info
