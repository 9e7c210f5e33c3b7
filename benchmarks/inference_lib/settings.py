"""The benchmarks' decode and chunking settings: the page's own, read as strictly as it does."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swedish_transcriber.serving.long_form import ChunkPlan


def decode_settings(params_file: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Decode and chunking settings: the page's, CLI flags on top.

    ``params.yaml``'s ``model`` and ``app`` sections are read as strictly as the page reads them.
    """
    from swedish_transcriber.serving.page import load_config

    config = load_config(params_file)
    app = config.app
    settings = {
        "language": config.language.language,
        "task": config.language.task,
        "num_beams": app.decode.num_beams,
        "max_new_tokens": app.decode.max_new_tokens,
        # The duration cap of short clips (inference_lib.short_clips), as the page caps them.
        "max_tokens_per_second": app.decode.max_tokens_per_second,
        "max_tokens_slack": app.decode.max_tokens_slack,
        "threads": app.engine.threads,
        "chunk_seconds": app.chunks.chunk_seconds,
        "min_pause": app.chunks.min_pause,
        "silence_threshold_db": app.chunks.silence_threshold_db,
        "padding": app.chunks.padding,
        "batch_size": app.decode.batch_size,
    }
    for key in ("num_beams", "max_new_tokens", "threads", "batch_size"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    return settings


def chunk_plan(settings: dict[str, Any]) -> ChunkPlan:
    """How the page cuts long audio (``long_form.ChunkPlan``), from ``decode_settings``."""
    from swedish_transcriber.serving.long_form import ChunkPlan

    keys = ("chunk_seconds", "min_pause", "silence_threshold_db", "padding")
    return ChunkPlan(**{k: settings[k] for k in keys})
