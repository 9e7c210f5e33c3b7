"""Stage ``transcribe@<model>``: transcribe every test set with one model.

``python -m stages.transcribe <model dir> data/testsets reports/transcripts/<model>`` writes
``<set>.csv`` for each set of params ``evaluate.sets`` (read from ``data/testsets/<set>``,
which the ``testset@<set>`` stages featurize). dvc.yaml runs it once per entry of
``evaluate.models``, as separate stages, so a training experiment does not re-transcribe with
the unchanged base model. Decoding is params ``evaluate.decode``.

The model directory may be a transformers checkpoint or a CTranslate2 export (``models/ct2``,
the page's fast engine): both decode the same stored log-mel features, so their WERs differ
only by the model, not by how each computed its input. Each model is served with the encoder
context it records (``whisper.model_context``: a model trained with ``whisper.context: clip``
sees each clip's own frames; the base model, the 30 s window), as the page serves it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import datasets

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.features import PAD_COLUMN, load_split, pad_features, stored_frames_of
from swedish_transcriber.evaluation.report import transcripts_frame
from swedish_transcriber.evaluation.transcription import (
    EvaluateParams,
    context_batches,
    load_model,
    subset,
    transcribe_table,
)
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.params import section
from swedish_transcriber.serving.engines import (
    CT2_COMPUTE_TYPES,
    CTRANSLATE2,
    EngineSettings,
    model_kind,
)
from swedish_transcriber.whisper import DecodeOptions, model_context

Transcriber = Callable[[datasets.Dataset], list[str]]


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
    from swedish_transcriber.serving.ct2_engine import CTranslate2Engine

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


def run(model_dir: Path, testsets_dir: Path, out_dir: Path) -> None:
    """Transcribe each set of ``evaluate.sets`` with ``model_dir`` into ``out_dir/<set>.csv``."""
    params = section("evaluate", EvaluateParams)
    language = section("model", ModelLanguage, subset=True)
    # Every set is loaded before the model: a missing one fails in seconds, not after decoding.
    tables = {
        name: subset(load_split(testsets_dir, name), params.max_clips, params.seed)
        for name in params.sets
    }
    if model_kind(model_dir) == CTRANSLATE2:
        transcribe = ct2_transcriber(model_dir, language, params.decode)
    else:
        transcribe = transformers_transcriber(model_dir, language, params.decode)
    with atomic_dir(out_dir) as tmp:
        for name, table in tables.items():
            print(f"transcribe: {model_dir}: set {name}, {len(table)} clips")
            frame = transcripts_frame(table, transcribe(table))
            frame.to_csv(tmp / f"{name}.csv", index=False, encoding="utf-8")
    print(f"transcribe: {model_dir}: {', '.join(tables)} -> {out_dir}")


if __name__ == "__main__":
    stage.main(run)
