"""Stage ``evaluate``: score every model's transcripts of every test set.

``python -m stages.evaluate reports/transcripts reports/predictions.csv metrics/eval.json
metrics/slices.json metrics/tradeoff.json`` reads ``reports/transcripts/<model>/<set>.csv``
for each model of params ``evaluate.models`` and set of ``evaluate.sets`` and writes:

* ``reports/predictions.csv``: one row per (set, clip): reference, each model's hypothesis
  and per-utterance normalised WER (``<model>_wer``);
* ``metrics/eval.json`` (DVC metrics): ``{set: {clips, model: {wer, cer, wer_norm,
  cer_norm}, relative_wer_reduction}}``;
* ``metrics/slices.json`` (a DVC plot): WER by gender, age, accent and duration per set and
  model;
* ``metrics/tradeoff.json`` (the top-level "synthetic vs real WER" plot): each model's
  ``wer_norm`` on the first synthetic set against the first real one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_file, write_text
from swedish_transcriber.evaluation.report import (
    check_models,
    load_set,
    predictions,
    set_metrics,
    slices,
)
from swedish_transcriber.evaluation.tradeoff import tradeoff
from swedish_transcriber.evaluation.transcription import EvaluateParams
from swedish_transcriber.params import section


def dump(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def run(
    transcripts_dir: Path,
    predictions_file: Path,
    metrics_file: Path,
    slices_file: Path,
    tradeoff_file: Path,
) -> None:
    """Join each set's transcripts, score them and write the four outputs."""
    params = section("evaluate", EvaluateParams)
    models = list(params.models)
    check_models(models)
    # Every file is read and checked before anything is written.
    joined = {name: load_set(transcripts_dir, name, models) for name in params.sets}
    results = {name: set_metrics(table, models) for name, table in joined.items()}
    rows = [r for table in joined.values() for r in slices(table, models, params.duration_buckets)]
    table = pd.concat([predictions(t, models) for t in joined.values()], ignore_index=True)
    with atomic_file(predictions_file, "w", encoding="utf-8", newline="") as fh:
        table.to_csv(fh, index=False)
    write_text(slices_file, dump(rows))
    write_text(tradeoff_file, dump(tradeoff(results, params.sets, models)))
    write_text(metrics_file, dump(results))
    for name, result in results.items():
        rates = ", ".join(f"{m} {result[m]['wer_norm']:.3f}" for m in models)  # type: ignore[index]
        print(f"evaluate: {name} ({result['clips']} clips): wer_norm {rates}")


if __name__ == "__main__":
    stage.main(run)
