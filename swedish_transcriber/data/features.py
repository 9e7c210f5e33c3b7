"""Whisper inputs and targets: log-mel features and label token ids, stored with ``datasets``.

Features are computed once here (not in the training loop) so that training, evaluation
and experiments on the model side all read the same cached Arrow tables. Log-mel frames are
stored as float16 by default: values lie in about [-1.5, 1.5], where float16's 3 significant
digits lose nothing Whisper notices, and the tables halve in size.

Only a clip's own frames are stored, not Whisper's whole 30 s window: a Common Voice clip
is about 5 s, so storing 3000 frames would spend five sixths of the table on padding. The
extractor zero-pads the audio to 30 s; every frame whose STFT window lies wholly in those
zeros has, in every mel bin, the one value ``max(clip max - 2, -1.5)`` (Whisper's
``log_spec.max() - 8`` floor, normalized). So a row keeps the frames that touch audio
(``input_features``, frames x mels: ``datasets`` lets only an array's first dimension vary)
and that value (``pad_value``, as stored, in the table's dtype), and :func:`pad_features`
rebuilds the model input, bit for bit the extractor's padded window at the table's dtype.
Every reader of ``input_features`` goes through it.

Clips longer than Whisper's 30 s window and labels longer than its 448-token decoder are
quarantined with the reason instead of being silently truncated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from swedish_transcriber.audio import AudioError, load_audio
from swedish_transcriber.data.manifest import quarantine_rows
from swedish_transcriber.whisper import (
    CHUNK_LENGTH,
    N_FRAMES,
    N_MELS,
    N_TEXT_CTX,
    SAMPLE_RATE,
    frames_touching,
)

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
# The value of the padded frames of a row's window (see the module docstring).
PAD_COLUMN = "pad_value"
# What a padded frame is when the clip is silent: log10 of the 1e-10 floor, normalized.
SILENT_PAD = (-10.0 + 4.0) / 4.0
WHISPER_MELS = (N_MELS, 128)  # mel bins of Whisper's models (128: large-v3)


@dataclass(frozen=True)
class FeatureSettings:
    """Params section ``features``."""

    num_proc: int  # worker processes
    batch_size: int  # clips per call of the feature extractor
    dtype: str  # storage type of the log-mel frames: float16 or float32

    def __post_init__(self) -> None:
        if self.dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be float16 or float32, got {self.dtype!r}")
        if self.num_proc < 1 or self.batch_size < 1:
            raise ValueError("num_proc and batch_size must be >= 1")


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


# How many log-mel frames of a clip touch its audio: the frames featurize stores.
stored_frames = frames_touching


def stored_frames_of(table: datasets.Dataset) -> list[int]:
    """Each row's own log-mel frames (the stored ``input_features``' first dimension)."""
    frames = table.select_columns(["input_features"]).with_format("numpy")
    return [len(f) for f in frames["input_features"]]


def pad_features(
    frames: Sequence[ArrayLike], pad_values: Sequence[float] | ArrayLike, n_frames: int = N_FRAMES
) -> np.ndarray:
    """Whisper's model input, float32 ``batch x mels x n_frames``, from stored rows.

    ``frames``: each row's ``input_features`` (its own frames, ``frames x mels``, numpy or
    torch); ``pad_values``: their ``pad_value``. The frames after a row's own are filled
    with its pad value, as the feature extractor's zero-padded 30 s window has them.
    """
    pads = np.asarray(pad_values, dtype=np.float32).reshape(-1)
    if len(frames) != len(pads):
        raise ValueError(f"{len(frames)} rows of frames but {len(pads)} pad values")
    clips = [np.asarray(f) for f in frames]
    n_mels = clips[0].shape[-1] if clips else N_MELS
    batch = np.empty((len(clips), n_mels, n_frames), dtype=np.float32)
    for i, (clip, pad) in enumerate(zip(clips, pads, strict=True)):
        if (
            clip.ndim != 2
            or clip.shape[1] != n_mels
            or n_mels not in WHISPER_MELS
            or clip.shape[0] > n_frames
        ):
            raise ValueError(
                f"row {i}: stored log-mel frames must be (at most {n_frames}) frames x mels "
                f"({' or '.join(map(str, WHISPER_MELS))}), got shape {clip.shape}"
            )
        batch[i, :, : clip.shape[0]] = clip.T
        batch[i, :, clip.shape[0] :] = pad
    return batch


class _Featurizer:
    """A picklable batch function for ``Dataset.map`` (runs in ``num_proc`` workers)."""

    def __init__(self, processor, settings: FeatureSettings) -> None:
        self.processor = processor
        self.settings = settings
        self.n_mels = int(processor.feature_extractor.feature_size)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        import torch

        torch.set_num_threads(1)  # the workers already use every core
        n = len(batch["audio_file"])
        reasons = [""] * n
        audio: list[np.ndarray] = []
        limit = CHUNK_LENGTH
        for i, file in enumerate(batch["audio_file"]):
            try:
                samples = load_audio(file, SAMPLE_RATE)
            except AudioError as exc:
                reasons[i] = str(exc)
                samples = np.zeros(SAMPLE_RATE, dtype=np.float32)
            seconds = len(samples) / SAMPLE_RATE
            if not reasons[i] and seconds > limit:
                reasons[i] = f"{file}: clip is {seconds:.1f} s, over Whisper's {limit} s window"
                samples = samples[: int(limit * SAMPLE_RATE)]
            audio.append(samples)
        windows = self.processor.feature_extractor(
            audio, sampling_rate=SAMPLE_RATE, return_tensors="np"
        ).input_features
        frames, pads = [], []
        for i, window in enumerate(windows):
            stored, pad = self._own_frames(window, len(audio[i]), batch["audio_file"][i])
            frames.append(stored)
            pads.append(pad)
        labels = self.processor.tokenizer(batch["sentence"]).input_ids
        for i, ids in enumerate(labels):
            if not reasons[i] and len(ids) > N_TEXT_CTX:
                reasons[i] = (
                    f"{batch['audio_file'][i]}: label is {len(ids)} tokens, over Whisper's "
                    f"{N_TEXT_CTX} decoder positions"
                )
        out = {c: batch[c] for c in KEEP_COLUMNS}
        out["input_features"] = frames
        out[PAD_COLUMN] = pads
        out["labels"] = labels
        out["input_length"] = [len(a) for a in audio]
        out["reason"] = reasons
        return out

    def _own_frames(
        self, window: np.ndarray, n_samples: int, file: str
    ) -> tuple[np.ndarray, float]:
        """A clip's own frames (``frames x mels``, stored dtype) and its pad value.

        The frames are sliced from the extractor's whole padded window, so they are exactly
        what it computes; the pad value is read off its first padded frame, so
        :func:`pad_features` rebuilds the window bit for bit. Every padded frame is checked
        to hold it (an extractor that dithers, say, would not pad with one value).
        """
        keep = stored_frames(n_samples, window.shape[1])
        if keep < window.shape[1]:
            pad = window[0, keep]
            if not np.all(window[:, keep:] == pad):
                raise RuntimeError(
                    f"{file}: the feature extractor's padded frames are not one constant "
                    f"(dither on?): storing only the clip's own frames would lose the rest"
                )
        else:  # a clip filling the window: nothing to pad, the value is Whisper's rule
            pad = max(float(window.max()) - 2.0, SILENT_PAD)
        dtype = np.dtype(self.settings.dtype)
        stored = np.ascontiguousarray(window[:, :keep].T, dtype=dtype)
        return stored, float(dtype.type(pad))


def schema(n_mels: int, dtype: str) -> datasets.Features:
    """The Arrow schema of a feature table.

    ``input_features`` holds a clip's own frames (at most Whisper's window) as frames x
    mels; ``pad_value`` (float32, holding a value of ``dtype``) fills the rest of the window.
    """
    columns = {c: datasets.Value("float64" if c == "duration" else "string") for c in KEEP_COLUMNS}
    columns["input_features"] = datasets.Array2D(shape=(None, n_mels), dtype=dtype)
    columns[PAD_COLUMN] = datasets.Value("float32")
    columns["labels"] = datasets.Sequence(datasets.Value("int32"))
    columns["input_length"] = datasets.Value("int64")
    columns["reason"] = datasets.Value("string")
    return datasets.Features(columns)


def featurize_split(
    manifest: pd.DataFrame,
    processor,
    settings: FeatureSettings,
    scratch_dir: Path | None = None,
) -> tuple[datasets.Dataset, pd.DataFrame]:
    """Featurize one split; return the feature table and the quarantined rows.

    ``scratch_dir``: where ``map`` writes its Arrow output. The source table is built in
    memory, and ``datasets`` keeps the ``map`` of an in-memory table in memory too (in every
    worker, and again in the main process), so a release-scale split would need its whole
    feature table in RAM. With a scratch folder the rows stream to disk and the result is
    memory-mapped; the caller keeps the folder until the table is saved. None (small sets,
    tests) keeps everything in memory.
    """
    featurizer = _Featurizer(processor, settings)
    features = schema(featurizer.n_mels, settings.dtype)
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
        cache_file_name=None if scratch_dir is None else str(scratch_dir / "featurized.arrow"),
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
    if PAD_COLUMN not in table.column_names:
        raise ValueError(
            f"{folder}: the featurized {split} split has no {PAD_COLUMN} column: it holds "
            f"whole padded 30 s windows, as featurize stored them before; featurize it again "
            f"(dvc repro featurize)"
        )
    return table
