"""Batched transcription of featurized clips with any Whisper checkpoint.

Shared by the ``transcribe`` stage (test split, zero-shot and fine-tuned) and the demo page,
so both decode the same way: language and task forced from params (a Swedish model must not
wander into language detection), greedy or beam search, a cap on new tokens so a
hallucinating zero-shot model cannot loop for minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch

from swedish_transcriber.data.features import load_processor
from swedish_transcriber.data.testsets import TestSet, check_names
from swedish_transcriber.whisper import DecodeOptions


@dataclass(frozen=True)
class EvaluateParams:
    """Params section ``evaluate``."""

    decode: DecodeOptions  # how the test clips are transcribed
    # The named test sets every model is scored on (data/testsets.py); -S adds one.
    sets: dict[str, TestSet]
    # The models scored on every set: metrics key -> model directory (a transformers
    # checkpoint or a CTranslate2 export).
    models: dict[str, str]
    max_clips: int  # test clips transcribed; 0 = all (a deterministic subset otherwise)
    seed: int
    # Upper edges (seconds) of the duration buckets that WER is sliced by.
    duration_buckets: tuple[float, ...]

    def __post_init__(self) -> None:
        check_names(self.sets)
        if not self.models:
            raise ValueError("evaluate.models is empty: name at least one model to score")
        if self.max_clips < 0:
            raise ValueError("max_clips must be >= 0 (0 = all)")
        edges = list(self.duration_buckets)
        if edges != sorted(edges) or len(set(edges)) != len(edges) or any(e <= 0 for e in edges):
            raise ValueError(f"duration_buckets must be increasing positive seconds, got {edges}")


def load_model(model_dir: str | Path, language: str, task: str):
    """A Whisper checkpoint and its processor, ready for generation on the best device."""
    from transformers import WhisperForConditionalGeneration

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir}: no transformers checkpoint (config.json) found; run the stage that "
            f"writes it first (dvc repro)"
        )
    processor = load_processor(model_dir, language, task)
    # safetensors only: pickled weights (pytorch_model.bin) can run code when loaded.
    model = WhisperForConditionalGeneration.from_pretrained(model_dir, use_safetensors=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), processor


def subset(table: datasets.Dataset, max_clips: int, seed: int) -> datasets.Dataset:
    """A deterministic subset of ``max_clips`` rows (all rows when 0), in table order."""
    if max_clips <= 0 or max_clips >= len(table):
        return table
    keep = np.random.default_rng(seed).permutation(len(table))[:max_clips]
    return table.select(sorted(keep.tolist()))


@torch.no_grad()
def transcribe_features(
    model,
    processor,
    features: np.ndarray | torch.Tensor,
    language: str,
    task: str,
    options: DecodeOptions,
) -> list[str]:
    """Transcripts of one batch of log-mel features (shape ``batch x mels x frames``).

    The batch is decoded as it is given; ``options.batch_size`` is for the caller's batching.
    """
    inputs = torch.as_tensor(np.asarray(features)).to(model.device, dtype=model.dtype)
    tokens = model.generate(
        input_features=inputs,
        language=language,
        task=task,
        num_beams=options.num_beams,
        max_new_tokens=options.max_new_tokens,
    )
    return [t.strip() for t in processor.tokenizer.batch_decode(tokens, skip_special_tokens=True)]


def transcribe_table(
    model, processor, table: datasets.Dataset, options: DecodeOptions, language: str, task: str
) -> list[str]:
    """Transcripts of every row of a feature table, in order, ``options.batch_size`` at a time."""
    hypotheses: list[str] = []
    rows = table.select_columns(["input_features"]).with_format("numpy")
    size = options.batch_size
    for start in range(0, len(rows), size):
        batch = rows[start : start + size]["input_features"]
        hypotheses += transcribe_features(model, processor, batch, language, task, options)
        print(f"transcribe: {min(start + size, len(rows))}/{len(rows)} clips")
    return hypotheses
