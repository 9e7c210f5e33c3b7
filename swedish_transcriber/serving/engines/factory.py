"""``load_engine``: the engine a model directory needs, loaded and ready.

Each engine's module is imported only when its kind is asked for, so a page that only ever
runs ``models/ct2`` never imports torch or transformers.
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.serving.engines.contract import (
    CTRANSLATE2,
    Engine,
    EngineSettings,
    model_kind,
)
from swedish_transcriber.whisper import DecodeOptions, EncoderContext


def load_engine(
    model_dir: str | Path,
    language: ModelLanguage,
    options: DecodeOptions,
    settings: EngineSettings,
    context: EncoderContext | None = None,
) -> Engine:
    """The engine that ``model_dir`` needs, loaded and ready.

    ``options.batch_size`` is for the caller (how many clips it hands ``transcribe`` at once).
    ``context``: what the encoder sees; None (the page) serves the model with the context it
    recorded (``whisper.model_context``), a given one overrides it (benchmarks, comparisons).
    The CTranslate2 engine's module imports neither torch nor transformers, and only the
    engine asked for is imported.
    """
    if model_kind(model_dir) == CTRANSLATE2:
        from swedish_transcriber.serving.engines.ctranslate2_engine import CTranslate2Engine

        return CTranslate2Engine(model_dir, language, options, settings, context)
    from swedish_transcriber.serving.engines.transformers_engine import TransformersEngine

    return TransformersEngine(model_dir, language, options, settings, context)
