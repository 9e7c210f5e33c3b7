"""Scoring the test transcripts: headline metrics, per-utterance errors and WER slices.

The ``transcribe`` stage writes one CSV per model (``reports/transcripts/<model>.csv``), so
an experiment that changes only training re-transcribes with the fine-tuned model and keeps
the zero-shot transcripts. This module joins them on the clip path and scores them with
:mod:`swedish_transcriber.evaluation.scoring`.

``relative_wer_reduction`` is computed on the normalised WER, the number the project is
judged by: ``(zero_shot - finetuned) / zero_shot`` (0.5 means the errors halved).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from swedish_transcriber.evaluation.normalizer import normalize
from swedish_transcriber.evaluation.scoring import scores, wer

MODELS = ("zero_shot", "finetuned")
TRANSCRIPT_COLUMNS = (
    "path",
    "client_id",
    "gender",
    "age",
    "accent",
    "duration",
    "reference",
    "hypothesis",
)
SLICE_GROUPS = ("gender", "age", "accent", "duration")


def read_transcripts(path: Path) -> pd.DataFrame:
    """One model's transcripts; a missing file or column is an error naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no transcripts; run the transcribe stage first")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in TRANSCRIPT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    if table.empty:
        raise ValueError(f"{path}: no transcribed clips")
    table["duration"] = table["duration"].astype(float)
    return table


def join(transcripts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Both models' hypotheses side by side, one row per test clip."""
    base = transcripts[MODELS[0]]
    joined = base[[c for c in TRANSCRIPT_COLUMNS if c != "hypothesis"]].copy()
    joined[MODELS[0]] = base["hypothesis"].to_numpy()
    for name in MODELS[1:]:
        other = transcripts[name].set_index("path")
        if set(other.index) != set(joined["path"]):
            raise ValueError(
                f"the {name} and {MODELS[0]} transcripts cover different clips; re-run "
                f"`dvc repro transcribe` so both use the same test split"
            )
        joined[name] = other.loc[joined["path"], "hypothesis"].to_numpy()
    return joined


def utterance_wer(reference: str, hypothesis: str) -> float:
    """Normalised WER of one utterance (nan when the reference normalises to nothing)."""
    ref = normalize(reference)
    return wer([ref], [normalize(hypothesis)]) if ref else float("nan")


def duration_bucket(seconds: float, edges: Sequence[float]) -> str:
    """``"2-4 s"`` style label of the bucket holding ``seconds``."""
    lower = 0.0
    for edge in edges:
        if seconds < edge:
            return f"{lower:g}-{edge:g} s"
        lower = edge
    return f">={lower:g} s"


def predictions(joined: pd.DataFrame) -> pd.DataFrame:
    """``reports/predictions.csv``: reference, both hypotheses and per-utterance WER."""
    out = joined.copy()
    for name in MODELS:
        out[f"{name}_wer"] = [
            round(utterance_wer(r, h), 6) for r, h in zip(out["reference"], out[name], strict=True)
        ]
    return out


def metrics(joined: pd.DataFrame) -> dict[str, object]:
    """``metrics/eval.json``: wer, cer, wer_norm, cer_norm per model and the relative gain."""
    out: dict[str, object] = {}
    for name in MODELS:
        result = scores(list(joined["reference"]), list(joined[name]))
        out[name] = {k: round(v, 6) for k, v in result.items()}
    zero_shot = out["zero_shot"]["wer_norm"]  # type: ignore[index]
    finetuned = out["finetuned"]["wer_norm"]  # type: ignore[index]
    out["relative_wer_reduction"] = (
        round((zero_shot - finetuned) / zero_shot, 6) if zero_shot else 0.0
    )
    out["test_clips"] = len(joined)
    return out


def slices(joined: pd.DataFrame, edges: Sequence[float]) -> list[dict[str, object]]:
    """``metrics/slices.json``: normalised WER of each model by speaker group and duration.

    A list of records, the shape DVC plots (bar charts by ``slice``) read.
    """
    table = joined.copy()
    table["duration"] = [duration_bucket(s, edges) for s in table["duration"]]
    records: list[dict[str, object]] = []
    for group in SLICE_GROUPS:
        values = table[group].replace("", "unknown")
        for value in sorted(values.unique()):
            rows = table[values == value]
            refs = [normalize(r) for r in rows["reference"]]
            keep = [i for i, r in enumerate(refs) if r]
            if not keep:
                continue
            record: dict[str, object] = {
                "slice": f"{group}: {value}",
                "group": group,
                "clips": len(keep),
            }
            for name in MODELS:
                hyps = [normalize(h) for h in rows[name]]
                record[f"{name}_wer"] = round(
                    wer([refs[i] for i in keep], [hyps[i] for i in keep]), 6
                )
            records.append(record)
    return records
