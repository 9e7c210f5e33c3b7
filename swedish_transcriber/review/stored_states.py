"""The train stage's stored encoder outputs, reused for the review queue when they fit.

With a frozen encoder the train stage has already run the base encoder over every train
clip and over the dev clips it evaluates on, and kept the outputs (float16) in
``checkpoints/encoder_cache/{train,dev}`` (:mod:`swedish_transcriber.model.encoder_cache`).
The encoder is most of a clip's cost, so the rank stage reads those instead of running it
again. A stored table is used only under the fingerprint the train stage wrote it under,
recomputed here from the same inputs with the train stage's own functions (a digest of
``models/base`` and of the train and dev feature tables, plus, for dev, the subset size and
seed in ``train_info.json``), and only when its rows carry the labels of the rows they are
taken for. Anything else (no checkpoints folder, another model or data, a fine-tuned model
without ``train_info.json``) is not an error: those clips are encoded now, and the stage
says how many.

``checkpoints`` is a memo, not an input of the rank stage (dvc.yaml does not list it): the
queue is the same with or without it, up to the float16 rounding of the stored outputs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch

from swedish_transcriber.model.encoder_cache import COLUMN, read_fingerprint, tree_digest
from swedish_transcriber.model.training.fine_tune import dev_subset, text_digest
from swedish_transcriber.whisper import PADDED, EncoderContext

CACHE_DIR = "encoder_cache"  # under the train stage's checkpoints folder
TRAIN_INFO = "train_info.json"  # the train params, written beside the trained weights


@dataclass
class StoredStates:
    """One split's stored base-encoder outputs: feature row -> row of ``table`` (or none)."""

    table: datasets.Dataset | None
    rows: dict[int, int]  # feature-table row -> stored row
    note: str  # why (not) used, for the stage's output

    def get(self, feature_rows: Sequence[int]) -> dict[int, torch.Tensor]:
        """The stored outputs (float32) of those of ``feature_rows`` that have one."""
        found = [r for r in feature_rows if r in self.rows]
        if not found or self.table is None:
            return {}
        stored = self.table.select([self.rows[r] for r in found]).with_format("numpy")
        states = np.asarray(stored[COLUMN])
        return {r: torch.from_numpy(states[i].astype(np.float32)) for i, r in enumerate(found)}


def nothing(note: str) -> StoredStates:
    return StoredStates(None, {}, note)


def cache_key(base_model: Path, features: Path) -> str:
    """The train stage's key for its stored base-encoder outputs (model/training/fine_tune.py)."""
    model_digest = tree_digest(sorted(Path(base_model).glob("*")))
    data_digest = tree_digest([Path(features) / "train", Path(features) / "dev"])
    return text_digest(model_digest + data_digest)


def dev_rows(n_rows: int, train_info: dict) -> tuple[list[int], str]:
    """The dev rows the train stage stored (its evaluation subset) and their fingerprint suffix."""
    train = train_info["train"]
    max_clips, seed = int(train["eval_max_clips"]), int(train["seed"])
    picked = dev_subset(datasets.Dataset.from_dict({"row": list(range(n_rows))}), max_clips, seed)
    return [int(r) for r in picked["row"]], f" {max_clips} {seed}"


def _open(folder: Path, fingerprint: str, rows: list[int], labels: list[list[int]]):
    """The stored table of ``folder`` mapped onto feature ``rows``, or why it is not usable."""
    if not folder.is_dir():
        return nothing(f"{folder}: not there")
    if read_fingerprint(folder) != fingerprint:
        return nothing(f"{folder}: stored for another base model or other features")
    table = datasets.load_from_disk(str(folder / "table"))
    if len(table) != len(rows):
        return nothing(f"{folder}: {len(table)} rows stored, {len(rows)} expected")
    stored = table["labels"]
    if any(list(stored[i]) != list(labels[r]) for i, r in enumerate(rows)):
        return nothing(f"{folder}: its labels differ from the feature table's")
    return StoredStates(table, {r: i for i, r in enumerate(rows)}, f"{folder}: reused")


def find(
    checkpoints: Path,
    base_model: Path,
    features: Path,
    finetuned: Path,
    labels: dict[str, list[list[int]]],
    context: EncoderContext = PADDED,
) -> dict[str, StoredStates]:
    """Per split (train, dev), the train stage's stored outputs that fit these inputs.

    ``labels``: each split's feature-table labels, in table order (to check the stored rows).
    Only padded outputs are looked up: under ``context: clip`` the encoder runs here, which
    costs a fraction of the padded pass.
    """
    if context.is_clip:
        return {split: nothing("context clip: encoded here") for split in labels}
    folder = Path(checkpoints) / CACHE_DIR
    if not folder.is_dir():
        note = f"{folder}: not there (no frozen-encoder training run)"
        return {split: nothing(note) for split in labels}
    key = cache_key(base_model, features)
    out: dict[str, StoredStates] = {}
    if "train" in labels:
        rows = list(range(len(labels["train"])))
        out["train"] = _open(folder / "train", key, rows, labels["train"])
    if "dev" in labels:
        info_file = Path(finetuned) / TRAIN_INFO
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
            rows, suffix = dev_rows(len(labels["dev"]), info)
        except (OSError, ValueError, KeyError, TypeError):
            out["dev"] = nothing(f"{info_file}: unreadable, cannot tell which dev clips are stored")
        else:
            out["dev"] = _open(folder / "dev", text_digest(key + suffix), rows, labels["dev"])
    return out
