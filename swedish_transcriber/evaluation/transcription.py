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


@dataclass(frozen=True)
class EvaluateParams:
    """Params section ``evaluate``."""

    batch_size: int = 8
    num_beams: int = 1
    max_new_tokens: int = 128
    max_clips: int = 0  # test clips transcribed; 0 = all (a deterministic subset otherwise)
    seed: int = 1234
    # Upper edges (seconds) of the duration buckets that WER is sliced by.
    duration_buckets: tuple[float, ...] = (2.0, 4.0, 6.0)

    def __post_init__(self) -> None:
        for name in ("batch_size", "num_beams", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"params.yaml: evaluate.{name} must be >= 1")
        if self.max_clips < 0:
            raise ValueError("params.yaml: evaluate.max_clips must be >= 0 (0 = all)")
        edges = list(self.duration_buckets)
        if edges != sorted(edges) or len(set(edges)) != len(edges) or any(e <= 0 for e in edges):
            raise ValueError(
                f"params.yaml: evaluate.duration_buckets must be increasing positive seconds, "
                f"got {edges}"
            )


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
    num_beams: int = 1,
    max_new_tokens: int = 128,
) -> list[str]:
    """Transcripts of one batch of log-mel features (shape ``batch x mels x frames``)."""
    inputs = torch.as_tensor(np.asarray(features)).to(model.device, dtype=model.dtype)
    tokens = model.generate(
        input_features=inputs,
        language=language,
        task=task,
        num_beams=num_beams,
        max_new_tokens=max_new_tokens,
    )
    return [t.strip() for t in processor.tokenizer.batch_decode(tokens, skip_special_tokens=True)]


def transcribe_table(
    model, processor, table: datasets.Dataset, params: EvaluateParams, language: str, task: str
) -> list[str]:
    """Transcripts of every row of a feature table, in order, ``params.batch_size`` at a time."""
    hypotheses: list[str] = []
    rows = table.select_columns(["input_features"]).with_format("numpy")
    for start in range(0, len(rows), params.batch_size):
        batch = rows[start : start + params.batch_size]["input_features"]
        hypotheses += transcribe_features(
            model, processor, batch, language, task, params.num_beams, params.max_new_tokens
        )
        print(f"transcribe: {min(start + params.batch_size, len(rows))}/{len(rows)} clips")
    return hypotheses
