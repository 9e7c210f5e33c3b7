"""Stage ``evaluate``: score every model's transcripts of every test set.

``python -m stages.evaluate reports/transcripts reports/predictions.csv metrics/wer.json
metrics/eval.json metrics/clip_errors.csv metrics/slices.json metrics/tradeoff.json`` reads
``reports/transcripts/<model>/<set>.csv`` for each model of params ``evaluate.models`` and set
of ``evaluate.sets`` and writes:

* ``reports/predictions.csv``: one row per (set, clip): reference, each model's hypothesis
  and per-utterance normalised WER (``<model>_wer``);
* ``metrics/wer.json`` (the DVC metrics of the test sets): ``{set: {model: {wer_norm,
  wer_norm_low, wer_norm_high}}}``, WER with its bootstrap interval (``evaluate.bootstrap``);
* ``metrics/eval.json``: ``{set: {clips, speakers, bootstrap_units, model: {wer, cer,
  wer_norm, cer_norm, wer_norm_low, wer_norm_high}, relative_wer_reduction, differences:
  {second-first: {wer_norm, low, high}}}}``, every figure and each pair's paired interval;
* ``metrics/clip_errors.csv``: per clip, its normalised reference words and each model's
  errors (what the intervals resample; the pull-request report pairs it with the base's);
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
from swedish_transcriber.evaluation import report
from swedish_transcriber.evaluation.tradeoff import tradeoff
from swedish_transcriber.evaluation.transcription import EvaluateParams
from swedish_transcriber.params import section


def dump(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_csv(path: Path, table: pd.DataFrame) -> None:
    with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
        table.to_csv(fh, index=False)


def run(
    transcripts_dir: Path,
    predictions_file: Path,
    wer_file: Path,
    metrics_file: Path,
    clip_errors_file: Path,
    slices_file: Path,
    tradeoff_file: Path,
) -> None:
    """Join each set's transcripts, score them and write the six outputs."""
    params = section("evaluate", EvaluateParams)
    models = list(params.models)
    report.check_models(models)
    # Every file is read and checked before anything is written.
    joined = {name: report.load_set(transcripts_dir, name, models) for name in params.sets}
    results = {n: report.set_metrics(t, models, params.bootstrap) for n, t in joined.items()}
    edges = params.duration_buckets
    rows = [r for table in joined.values() for r in report.slices(table, models, edges)]
    write_csv(
        predictions_file,
        pd.concat([report.predictions(t, models) for t in joined.values()], ignore_index=True),
    )
    write_csv(
        clip_errors_file,
        pd.concat([report.clip_table(t, models) for t in joined.values()], ignore_index=True),
    )
    write_text(slices_file, dump(rows))
    write_text(tradeoff_file, dump(tradeoff(results, params.sets, models)))
    write_text(metrics_file, dump(results))
    write_text(wer_file, dump(report.headline(results, models)))
    for name, result in results.items():
        rates = ", ".join(
            f"{m} {result[m]['wer_norm']:.3f} [{result[m]['wer_norm_low']:.3f}, "  # type: ignore[index]
            f"{result[m]['wer_norm_high']:.3f}]"  # type: ignore[index]
            for m in models
        )
        print(f"evaluate: {name} ({result['clips']} clips): wer_norm {rates}")


if __name__ == "__main__":
    stage.main(run)
