"""Whisper inputs and targets: log-mel features and label token ids, stored with ``datasets``.

Features are computed once here (not in the training loop) so that training, evaluation
and experiments on the model side all read the same cached Arrow tables. Log-mel frames are
stored as float16 by default: values lie in about [-1.5, 1.5], where float16's 3 significant
digits lose nothing Whisper notices, and the tables (80 x 3000 per clip) halve in size.

Clips longer than Whisper's 30 s window and labels longer than its 448-token decoder are
quarantined with the reason instead of being silently truncated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from swedish_transcriber.audio import AudioError, load_audio
from swedish_transcriber.data.manifest import quarantine_rows
from swedish_transcriber.whisper import CHUNK_LENGTH, N_TEXT_CTX, SAMPLE_RATE

STAGE = "featurize"
# Manifest columns carried into the feature tables (for slicing WER by speaker group later).
KEEP_COLUMNS: tuple[str, ...] = (
    "split",
    "path",
    "sentence",
    "client_id",
    "gender",
    "age",
    "accent",
    "duration",
)


@dataclass(frozen=True)
class FeatureSettings:
    """Params section ``features``."""

    num_proc: int  # worker processes
    batch_size: int  # clips per call of the feature extractor
    max_audio_seconds: float  # longer clips are quarantined (at most Whisper's window)
    max_label_tokens: int  # longer labels are quarantined (at most Whisper's decoder length)
    dtype: str  # storage type of the log-mel frames: float16 or float32

    def __post_init__(self) -> None:
        if self.dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be float16 or float32, got {self.dtype!r}")
        if self.num_proc < 1 or self.batch_size < 1:
            raise ValueError("num_proc and batch_size must be >= 1")
        if not 0 < self.max_audio_seconds <= CHUNK_LENGTH:
            raise ValueError(
                f"max_audio_seconds must be in (0, {CHUNK_LENGTH}] (Whisper's window), "
                f"got {self.max_audio_seconds}"
            )
        if not 0 < self.max_label_tokens <= N_TEXT_CTX:
            raise ValueError(
                f"max_label_tokens must be in (0, {N_TEXT_CTX}] (Whisper's decoder length), "
                f"got {self.max_label_tokens}"
            )


def load_processor(model_dir: str | Path, language: str, task: str):
    """The base model's processor with the tokenizer's prefix set to ``language`` and ``task``.

    The labels then start with ``<|startoftranscript|><|sv|><|transcribe|><|notimestamps|>``
    exactly as the decoder is prompted at inference time.
    """
    from transformers import WhisperProcessor

    model_dir = Path(model_dir)
    if not (model_dir / "preprocessor_config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir}: no Whisper processor (preprocessor_config.json) found; run the "
            f"base_model stage first (dvc repro base_model)"
        )
    processor = WhisperProcessor.from_pretrained(model_dir)
    processor.tokenizer.set_prefix_tokens(language=language, task=task, predict_timestamps=False)
    return processor


class _Featurizer:
    """A picklable batch function for ``Dataset.map`` (runs in ``num_proc`` workers)."""

    def __init__(self, processor, settings: FeatureSettings) -> None:
        self.processor = processor
        self.settings = settings
        self.n_mels = int(processor.feature_extractor.feature_size)
        self.n_frames = int(processor.feature_extractor.nb_max_frames)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        import torch

        torch.set_num_threads(1)  # the workers already use every core
        n = len(batch["audio_file"])
        reasons = [""] * n
        audio: list[np.ndarray] = []
        limit = self.settings.max_audio_seconds
        for i, file in enumerate(batch["audio_file"]):
            try:
                samples = load_audio(file, SAMPLE_RATE)
            except AudioError as exc:
                reasons[i] = str(exc)
                samples = np.zeros(SAMPLE_RATE, dtype=np.float32)
            seconds = len(samples) / SAMPLE_RATE
            if not reasons[i] and seconds > limit:
                reasons[i] = (
                    f"{file}: clip is {seconds:.1f} s, over features.max_audio_seconds "
                    f"({limit:g} s, Whisper's window)"
                )
                samples = samples[: int(limit * SAMPLE_RATE)]
            audio.append(samples)
        features = self.processor.feature_extractor(
            audio, sampling_rate=SAMPLE_RATE, return_tensors="np"
        ).input_features.astype(self.settings.dtype)
        labels = self.processor.tokenizer(batch["sentence"]).input_ids
        for i, ids in enumerate(labels):
            if not reasons[i] and len(ids) > self.settings.max_label_tokens:
                reasons[i] = (
                    f"{batch['audio_file'][i]}: label is {len(ids)} tokens, over "
                    f"features.max_label_tokens ({self.settings.max_label_tokens})"
                )
        out = {c: batch[c] for c in KEEP_COLUMNS}
        out["input_features"] = list(features)
        out["labels"] = labels
        out["input_length"] = [len(a) for a in audio]
        out["reason"] = reasons
        return out


def schema(n_mels: int, n_frames: int, dtype: str) -> datasets.Features:
    """The Arrow schema of a feature table."""
    columns = {c: datasets.Value("float64" if c == "duration" else "string") for c in KEEP_COLUMNS}
    columns["input_features"] = datasets.Array2D(shape=(n_mels, n_frames), dtype=dtype)
    columns["labels"] = datasets.Sequence(datasets.Value("int32"))
    columns["input_length"] = datasets.Value("int64")
    columns["reason"] = datasets.Value("string")
    return datasets.Features(columns)


def featurize_split(
    manifest: pd.DataFrame, processor, settings: FeatureSettings
) -> tuple[datasets.Dataset, pd.DataFrame]:
    """Featurize one split; return the feature table and the quarantined rows."""
    featurizer = _Featurizer(processor, settings)
    features = schema(featurizer.n_mels, featurizer.n_frames, settings.dtype)
    if manifest.empty:
        empty = {name: [] for name in features if name != "reason"}
        return datasets.Dataset.from_dict(
            empty, features=datasets.Features({k: v for k, v in features.items() if k != "reason"})
        ), manifest.iloc[0:0]
    source = datasets.Dataset.from_pandas(
        manifest[list(KEEP_COLUMNS) + ["audio_file"]].astype(
            {c: "object" for c in KEEP_COLUMNS if c != "duration"}
        ),
        preserve_index=False,
    )
    num_proc = min(settings.num_proc, max(1, len(manifest) // settings.batch_size))
    table = source.map(
        featurizer,
        batched=True,
        batch_size=settings.batch_size,
        num_proc=num_proc if num_proc > 1 else None,
        remove_columns=source.column_names,
        features=features,
        desc=f"featurize {manifest['split'].iloc[0]}",
    )
    reasons = np.asarray(table["reason"], dtype=object)
    bad = reasons != ""
    quarantined = quarantine_rows(manifest.reset_index(drop=True)[bad], STAGE, list(reasons[bad]))
    good = table.select(np.flatnonzero(~bad)).remove_columns("reason")
    return good, quarantined


def load_split(features_dir: Path, split: str) -> datasets.Dataset:
    """A featurized split; a missing or empty one is an error naming its folder."""
    folder = features_dir / split
    if not (folder / "dataset_info.json").is_file():
        raise FileNotFoundError(
            f"{folder}: no featurized {split} split; run the featurize stage first "
            f"(dvc repro featurize)"
        )
    # datasets saves an empty table without data files and then cannot load it back.
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    table = datasets.load_from_disk(str(folder)) if state.get("_data_files") else None
    if table is None or len(table) == 0:
        raise ValueError(
            f"{folder}: the featurized {split} split has no rows (every clip quarantined? "
            f"see data/quarantine/); nothing to train or evaluate on"
        )
    return table
