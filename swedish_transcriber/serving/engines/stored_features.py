"""The ``transcribe`` stage's engines: a model fed the pipeline's stored log-mel features.

The model directory may be a transformers checkpoint or a CTranslate2 export (``models/ct2``,
the page's fast engine): both decode the same stored features, so their WERs differ only by
the model, not by how each computed its input. Each model is served with the encoder context
it records (``whisper.model_context``: a model trained with ``whisper.context: clip`` sees
each clip's own frames; the base model, the 30 s window), as the page serves it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import datasets

from swedish_transcriber.data.features import PAD_COLUMN, pad_features, stored_frames_of
from swedish_transcriber.evaluation.transcription import (
    context_batches,
    load_model,
    transcribe_table,
)
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.serving.engines.contract import (
    CT2_COMPUTE_TYPES,
    CTRANSLATE2,
    EngineSettings,
    model_kind,
)
from swedish_transcriber.whisper import DecodeOptions, model_context

Transcriber = Callable[[datasets.Dataset], list[str]]


def table_transcriber(
    model_dir: Path, language: ModelLanguage, options: DecodeOptions
) -> Transcriber:
    """The transcripts of a feature table's rows, in order, with the model in ``model_dir``."""
    if model_kind(model_dir) == CTRANSLATE2:
        return ct2_transcriber(model_dir, language, options)
    return transformers_transcriber(model_dir, language, options)


def ct2_compute_type(model_dir: Path) -> str:
    """Compute as the export stored its weights (export_info.json), else in float32.

    Scored as stored is what the page runs by default (``app.engine.ct2_compute_type`` and
    ``export.quantization`` are both int8); a float16 export computes in float32 on a CPU.
    """
    info = model_dir / "export_info.json"
    stored = (
        json.loads(info.read_text(encoding="utf-8")).get("quantization") if info.is_file() else None
    )
    return stored if stored in CT2_COMPUTE_TYPES else "float32"


def ct2_transcriber(
    model_dir: Path, language: ModelLanguage, options: DecodeOptions
) -> Transcriber:
    """A CTranslate2 export, fed the table's stored features ``options.batch_size`` at a time."""
    from swedish_transcriber.serving.engines.ctranslate2_engine import CTranslate2Engine

    settings = EngineSettings(
        threads=os.cpu_count() or 1, ct2_compute_type=ct2_compute_type(model_dir)
    )
    engine = CTranslate2Engine(model_dir, language, options, settings)
    context = model_context(model_dir)

    def transcribe(table: datasets.Dataset) -> list[str]:
        rows = table.select_columns(["input_features", PAD_COLUMN, "duration"])
        rows = rows.with_format("numpy")
        hypotheses = [""] * len(rows)
        batches = context_batches(stored_frames_of(table), context, options.batch_size)
        for done, (frames, batch_rows) in enumerate(batches, start=1):
            batch = rows[batch_rows]
            features = pad_features(batch["input_features"], batch[PAD_COLUMN], frames)
            texts = engine.transcribe_features(features, batch["duration"].tolist())
            for row, text in zip(batch_rows, texts, strict=True):
                hypotheses[row] = text
            print(f"transcribe: batch {done}/{len(batches)}")
        return hypotheses

    return transcribe


def transformers_transcriber(
    model_dir: Path, language: ModelLanguage, options: DecodeOptions
) -> Transcriber:
    """A transformers checkpoint, as the training's dev evaluation decodes."""
    from transformers.utils import logging

    logging.set_verbosity_error()  # generate()'s notices about Whisper's own defaults
    model, processor = load_model(model_dir, language.language, language.task)
    context = model_context(model_dir)
    return lambda table: transcribe_table(
        model, processor, table, options, language.language, language.task, context
    )
