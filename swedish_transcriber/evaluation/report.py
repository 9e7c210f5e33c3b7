"""Scoring the test transcripts: headline metrics, per-utterance errors and WER slices.

Every model in params ``evaluate.models`` transcribes every set in ``evaluate.sets``; the
``transcribe@<model>`` stage writes ``reports/transcripts/<model>/<set>.csv``, one stage per
model, so an experiment that changes only training re-transcribes with the fine-tuned model
and keeps the zero-shot transcripts. This module joins one set's files on the clip path and
scores them with :mod:`swedish_transcriber.evaluation.scoring`.

``metrics/eval.json`` is nested by set, then model (``demo_test.finetuned.wer_norm``), and
holds numbers only, so ``dvc metrics diff --targets metrics/eval.json`` can compare every
figure between experiments; ``metrics/wer.json`` (:func:`headline`), the DVC metric, holds
only each ``wer_norm`` with its bootstrap interval (:mod:`.intervals`), so ``dvc metrics
show`` leads with them. ``relative_wer_reduction`` is computed on the normalised WER, the
number the project is judged by: ``(zero_shot - finetuned) / zero_shot`` (0.5 means the
errors halved).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from swedish_transcriber.evaluation.intervals import BootstrapParams, clip_errors, interval, units
from swedish_transcriber.evaluation.normalizer import normalize
from swedish_transcriber.evaluation.scoring import scores, wer

# The pair ``relative_wer_reduction`` compares, when both are scored.
BASELINE, FINETUNED = "zero_shot", "finetuned"
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
# Speaker metadata a test set may lack (a folder of wav/txt pairs has none): written empty.
METADATA_COLUMNS = ("client_id", "gender", "age", "accent")
SLICE_GROUPS = ("gender", "age", "accent", "duration")
# Names that a model key would collide with: columns of predictions.csv, keys of eval.json.
# Each pair's difference in eval.json: ``<set>.differences.<second>-<first>`` (second minus first
# in evaluate.models' order, e.g. finetuned-zero_shot).
DIFFERENCES = "differences"
RESERVED = frozenset(TRANSCRIPT_COLUMNS) | {
    "set",
    "clips",
    "speakers",
    "bootstrap_units",
    "words",
    "relative_wer_reduction",
    DIFFERENCES,
}


def check_models(models: Sequence[str]) -> None:
    """Model keys become eval.json keys and predictions.csv columns: they must not collide."""
    clashes = sorted(set(models) & RESERVED)
    if clashes:
        raise ValueError(
            f"evaluate.models: {', '.join(clashes)} cannot name a model (a column of "
            f"reports/predictions.csv or a key of metrics/eval.json); rename it"
        )


def transcript_file(transcripts_dir: Path, model: str, set_name: str) -> Path:
    """``reports/transcripts/<model>/<set>.csv``."""
    return transcripts_dir / model / f"{set_name}.csv"


def transcripts_frame(table: datasets.Dataset, hypotheses: Sequence[str]) -> pd.DataFrame:
    """One set's transcripts as the transcribe stage writes them (``TRANSCRIPT_COLUMNS``).

    Metadata a set lacks is written as empty strings (scored as ``unknown`` in the slices);
    a set without clip paths gets row numbers, so the models' files still join.
    """
    if len(hypotheses) != len(table):
        raise ValueError(f"{len(hypotheses)} transcripts for {len(table)} clips")
    missing = [c for c in ("sentence", "duration") if c not in table.column_names]
    if missing:
        raise ValueError(f"the feature table has no {' or '.join(missing)} column")
    present = [c for c in ("path", *METADATA_COLUMNS, "duration") if c in table.column_names]
    out = table.select_columns([*present, "sentence"]).to_pandas()
    if "path" not in out:
        out["path"] = [f"{i:06d}" for i in range(len(out))]
    for column in METADATA_COLUMNS:
        out[column] = out[column].fillna("").astype(str) if column in out else ""
    out = out.rename(columns={"sentence": "reference"})
    out["hypothesis"] = list(hypotheses)
    return out[list(TRANSCRIPT_COLUMNS)]


def read_transcripts(path: Path) -> pd.DataFrame:
    """One model's transcripts of one set; a missing file or column is an error naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no transcripts; run the transcribe stage first")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in TRANSCRIPT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    if table.empty:
        raise ValueError(f"{path}: no transcribed clips")
    duplicated = table["path"][table["path"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{path}: clip {duplicated.iloc[0]!r} is listed more than once")
    table["duration"] = table["duration"].astype(float)
    return table


def _examples(paths: set[str]) -> str:
    return ", ".join(sorted(paths)[:3]) + (", ..." if len(paths) > 3 else "")


def join(set_name: str, transcripts: dict[str, tuple[Path, pd.DataFrame]]) -> pd.DataFrame:
    """Every model's hypotheses of one set side by side, one row per clip (by path).

    ``transcripts`` is model -> (its file, its table); the first model's file gives the row
    order. Files that cover different clips, or disagree on a clip's reference, are an error
    naming the set and both files: the models would be scored on different tests.
    """
    names = list(transcripts)
    first_file, base = transcripts[names[0]]
    joined = base[[c for c in TRANSCRIPT_COLUMNS if c != "hypothesis"]].copy()
    joined.insert(0, "set", set_name)
    joined[names[0]] = base["hypothesis"].to_numpy()
    clips = set(joined["path"])
    for name in names[1:]:
        file, table = transcripts[name]
        other = table.set_index("path")
        missing, extra = clips - set(other.index), set(other.index) - clips
        if missing or extra:
            raise ValueError(
                f"test set {set_name}: {file} and {first_file} cover different clips "
                f"({len(missing)} missing, e.g. {_examples(missing) or '-'}; {len(extra)} extra, "
                f"e.g. {_examples(extra) or '-'}); re-run `dvc repro transcribe` so every "
                f"model transcribes the same clips"
            )
        references = other.loc[joined["path"], "reference"].to_numpy()
        differ = joined["path"][references != joined["reference"].to_numpy()]
        if len(differ):
            raise ValueError(
                f"test set {set_name}: {file} and {first_file} give clip {differ.iloc[0]!r} "
                f"different references; re-run `dvc repro transcribe`"
            )
        joined[name] = other.loc[joined["path"], "hypothesis"].to_numpy()
    return joined


def load_set(transcripts_dir: Path, set_name: str, models: Sequence[str]) -> pd.DataFrame:
    """The joined transcripts of one set by every model (files from :func:`transcript_file`)."""
    transcripts = {}
    for model in models:
        file = transcript_file(transcripts_dir, model, set_name)
        if not file.is_file():
            raise FileNotFoundError(
                f"test set {set_name}: {file}: no transcripts by model {model}; run "
                f"`dvc repro transcribe@{model}` (it transcribes every set in evaluate.sets)"
            )
        transcripts[model] = (file, read_transcripts(file))
    return join(set_name, transcripts)


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


def predictions(joined: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Rows of ``reports/predictions.csv``: set, clip, reference, hypotheses, per-clip WER."""
    out = joined.copy()
    for name in models:
        out[f"{name}_wer"] = [
            round(utterance_wer(r, h), 6) for r, h in zip(out["reference"], out[name], strict=True)
        ]
    return out


def clip_table(joined: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """One set's rows of ``metrics/clip_errors.csv``: each clip's normalised reference words
    and each model's word errors, the counts every interval is resampled from (committed, so
    the pull-request report can pair a model with the base branch's on the same clips)."""
    out = joined[["set", "path", "client_id"]].copy()
    for name in models:
        errors, words = clip_errors(list(joined["reference"]), list(joined[name]))
        out["words"] = words
        out[f"{name}_errors"] = errors
    return out[["set", "path", "client_id", "words", *(f"{m}_errors" for m in models)]]


def set_metrics(
    joined: pd.DataFrame, models: Sequence[str], bootstrap: BootstrapParams
) -> dict[str, object]:
    """One set's entry of ``metrics/eval.json``: clips, the four rates per model with the
    interval of ``wer_norm``, the gain, and each pair's difference with its paired interval."""
    counts = clip_table(joined, models)
    unit = units(counts["client_id"], bootstrap)
    words = counts["words"].to_numpy()
    out: dict[str, object] = {
        "clips": len(joined),
        "speakers": int(counts["client_id"].replace("", np.nan).nunique()),
        "bootstrap_units": int(unit.max()) + 1,
    }
    for name in models:
        result = {
            k: round(v, 6) for k, v in scores(list(joined["reference"]), list(joined[name])).items()
        }
        _, low, high = interval(unit, words, bootstrap, counts[f"{name}_errors"].to_numpy())
        out[name] = result | {"wer_norm_low": round(low, 6), "wer_norm_high": round(high, 6)}
    if BASELINE in models and FINETUNED in models:
        baseline = out[BASELINE]["wer_norm"]  # type: ignore[index]
        finetuned = out[FINETUNED]["wer_norm"]  # type: ignore[index]
        out["relative_wer_reduction"] = (
            round((baseline - finetuned) / baseline, 6) if baseline else 0.0
        )
    differences = {}
    for i, first in enumerate(models):
        for second in models[i + 1 :]:
            errors = (counts[f"{second}_errors"].to_numpy(), counts[f"{first}_errors"].to_numpy())
            diff, low, high = interval(unit, words, bootstrap, *errors)
            differences[f"{second}-{first}"] = {
                "wer_norm": round(diff, 6),
                "low": round(low, 6),
                "high": round(high, 6),
            }
    if differences:
        out[DIFFERENCES] = differences
    return out


def summary_line(set_name: str, result: dict, models: Sequence[str]) -> str:
    """``demo_test (94 clips): wer_norm zero_shot 0.882 [0.84, 0.92], ...`` for the log."""
    rates = ", ".join(
        f"{m} {result[m]['wer_norm']:.3f} [{result[m]['wer_norm_low']:.3f}, "
        f"{result[m]['wer_norm_high']:.3f}]"
        for m in models
    )
    return f"{set_name} ({result['clips']} clips): wer_norm {rates}"


def headline(results: dict[str, dict[str, object]], models: Sequence[str]) -> dict[str, object]:
    """``metrics/wer.json``, the one DVC metrics file of test results: each set's ``wer_norm``
    per model with its interval, so ``dvc metrics show`` and ``diff`` lead with them."""
    keep = ("wer_norm", "wer_norm_low", "wer_norm_high")
    return {
        name: {m: {k: result[m][k] for k in keep} for m in models}  # type: ignore[index]
        for name, result in results.items()
    }


def slices(
    joined: pd.DataFrame, models: Sequence[str], edges: Sequence[float]
) -> list[dict[str, object]]:
    """One set's rows of ``metrics/slices.json``: normalised WER by speaker group and duration.

    One record per (model, slice), the long shape DVC plots read; ``label`` (set, model and
    slice in one string) is the bar chart's axis, so bars of different sets and models do not
    stack. A speaker group the set has no values for at all is left out, not one ``unknown``
    bar repeating the whole-set WER.
    """
    table = joined.copy()
    table["duration"] = [duration_bucket(s, edges) for s in table["duration"]]
    set_name = str(table["set"].iloc[0])
    records: list[dict[str, object]] = []
    for group in SLICE_GROUPS:
        values = table[group].astype(str).replace("", "unknown")
        if (values == "unknown").all():
            continue
        for value in sorted(values.unique()):
            rows = table[values == value]
            refs = [normalize(r) for r in rows["reference"]]
            keep = [i for i, r in enumerate(refs) if r]
            if not keep:
                continue
            for name in models:
                hyps = [normalize(h) for h in rows[name]]
                records.append(
                    {
                        "set": set_name,
                        "model": name,
                        "slice": f"{group}: {value}",
                        "group": group,
                        "label": f"{set_name} | {name} | {group}: {value}",
                        "clips": len(keep),
                        "wer": round(wer([refs[i] for i in keep], [hyps[i] for i in keep]), 6),
                    }
                )
    return records
