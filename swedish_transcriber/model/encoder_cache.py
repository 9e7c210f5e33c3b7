"""Stored encoder outputs, so a frozen encoder runs once per clip instead of once per step.

With a frozen encoder (``train.trainable`` without ``encoder``/``encoder_top``) its output for
a clip never changes during training, yet a Trainer step would recompute it for every batch:
on a CPU that is about two thirds of a step. :func:`build` runs the encoder once over a
feature table and keeps ``float16`` outputs (Whisper's encoder ends in a layer norm, so
values are O(1) and float16 loses nothing the decoder notices) with the labels, in a
``datasets`` table that the collator turns into ``encoder_outputs``.

The tables live in the train stage's persistent ``checkpoints/`` folder under a fingerprint
of the model and the features, so an experiment that only changes, say, the learning rate
reuses them, and a changed model or data rebuilds them.

When only the top encoder layers train (``encoder_top``), the same table holds instead the
hidden states entering the first trained layer (``below_layer``; column
:data:`LOWER_COLUMN`): the output of the frozen convolutions, positions and lower layers.
These are the residual stream before any layer norm, so they are larger than the final
output but still well inside float16's range.

Under ``whisper.context: clip`` each clip is encoded at its own context
(:class:`~swedish_transcriber.whisper.EncoderContext`), so rows hold states of different
lengths; a clip's states depend on the clip alone. With ``teacher_padded`` the table also
holds the encoder's final outputs on the 30 s window (:data:`TEACHER_COLUMN`), which the
distillation teacher reads.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import datasets
import numpy as np
import torch

from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.features import PAD_COLUMN, pad_features
from swedish_transcriber.digest import update_from_file
from swedish_transcriber.model.collator import TEACHER_COLUMN
from swedish_transcriber.whisper import PADDED, EncoderContext

FINGERPRINT_FILE = "fingerprint.json"
COLUMN = "encoder_hidden_states"
LOWER_COLUMN = "encoder_lower_states"


def tree_digest(paths: Iterable[str | Path]) -> str:
    """sha256 over the relative names and contents of every file under ``paths``."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in files:
            digest.update(str(file.relative_to(root.parent)).encode())
            update_from_file(digest, file)
    return digest.hexdigest()


def read_fingerprint(folder: Path) -> str | None:
    """The fingerprint a folder was written under, or None."""
    try:
        return json.loads((folder / FINGERPRINT_FILE).read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError):
        return None


def write_fingerprint(folder: Path, fingerprint: str, **info: object) -> None:
    """Record what a folder was built from (``info`` is kept for people reading it)."""
    record = {"fingerprint": fingerprint, **info}
    (folder / FINGERPRINT_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _run(model, features: torch.Tensor, below_layer: int | None) -> torch.Tensor:
    if below_layer is None:
        return model.get_encoder()(features).last_hidden_state
    # hidden_states[i] is what enters layer i (positions already added before layer 0).
    return model.get_encoder()(features, output_hidden_states=True).hidden_states[below_layer]


@torch.no_grad()
def _encode(
    batch: dict,
    model,
    device: torch.device,
    below_layer: int | None,
    context: EncoderContext,
    teacher_padded: bool,
) -> dict:
    column = COLUMN if below_layer is None else LOWER_COLUMN
    frames, pads = batch["input_features"], batch[PAD_COLUMN]
    widths = [context.frames(len(f)) for f in frames]
    out: list = [None] * len(frames)
    for width in sorted(set(widths)):  # one encoder call per context length in the batch
        rows = [i for i, w in enumerate(widths) if w == width]
        windows = pad_features([frames[i] for i in rows], [pads[i] for i in rows], width)
        features = torch.from_numpy(windows).to(device=device, dtype=model.dtype)
        hidden = _run(model, features, below_layer).to(torch.float16).cpu().numpy()
        for i, states in zip(rows, hidden, strict=True):
            out[i] = states
    result = {column: out if context.is_clip else np.stack(out), "labels": batch["labels"]}
    if teacher_padded:
        features = torch.from_numpy(pad_features(frames, pads)).to(device=device, dtype=model.dtype)
        teacher = model.get_encoder()(features).last_hidden_state
        result[TEACHER_COLUMN] = teacher.to(torch.float16).cpu().numpy()
    return result


def build(
    model,
    table: datasets.Dataset,
    out_dir: Path,
    fingerprint: str,
    batch_size: int,
    device: torch.device,
    below_layer: int | None = None,
    context: EncoderContext = PADDED,
    teacher_padded: bool = False,
) -> datasets.Dataset:
    """Encoder outputs and labels for ``table``, reused from ``out_dir`` when up to date.

    ``below_layer``: store the hidden states entering that encoder layer instead; ``context``:
    the student's encoder context; ``teacher_padded``: also store the outputs on the 30 s
    window. The fingerprint must say all three.
    """
    if read_fingerprint(out_dir) == fingerprint:
        return datasets.load_from_disk(str(out_dir / "table"))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    frames = int(model.config.max_source_positions)
    width = int(model.config.d_model)
    columns = {
        (COLUMN if below_layer is None else LOWER_COLUMN): datasets.Array2D(
            shape=(None if context.is_clip else frames, width), dtype="float16"
        ),
        "labels": datasets.Sequence(datasets.Value("int32")),
    }
    if teacher_padded:
        columns[TEACHER_COLUMN] = datasets.Array2D(shape=(frames, width), dtype="float16")
    schema = datasets.Features(columns)
    was_training = model.training
    model.eval()
    source = table.select_columns(["input_features", PAD_COLUMN, "labels"]).with_format("numpy")
    encoded = source.map(
        _encode,
        batched=True,
        batch_size=batch_size,
        fn_kwargs={
            "model": model,
            "device": device,
            "below_layer": below_layer,
            "context": context,
            "teacher_padded": teacher_padded,
        },
        remove_columns=["input_features", PAD_COLUMN, "labels"],
        features=schema,
        keep_in_memory=True,
        new_fingerprint=fingerprint[:32],
        desc="encoder outputs",
    )
    model.train(was_training)
    with atomic_dir(out_dir) as tmp:
        encoded.save_to_disk(str(tmp / "table"))
        write_fingerprint(tmp, fingerprint, rows=len(encoded))
    return datasets.load_from_disk(str(out_dir / "table"))
