"""Stage ``evaluate``: score every model's transcripts of every test set.

``python -m stages.evaluate reports/transcripts reports/predictions.csv metrics/wer.json
metrics/eval.json metrics/clip_errors.csv metrics/slices.json metrics/tradeoff.json`` reads
``reports/transcripts/<model>/<set>.csv`` (params ``evaluate.models`` x ``evaluate.sets``) and
writes: per-clip hypotheses and WER (predictions.csv); the DVC metric, ``wer_norm`` per set
and model with its bootstrap interval (wer.json); every figure and each pair's paired
interval (eval.json); per-clip error counts, what the intervals resample (clip_errors.csv);
WER by speaker group and duration (slices.json); synthetic against real WER (tradeoff.json).
Layouts: ``swedish_transcriber/evaluation/report.py`` and docs/training.md.
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


def write_csv(path: Path, tables: list[pd.DataFrame]) -> None:
    with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
        pd.concat(tables, ignore_index=True).to_csv(fh, index=False)


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
    write_csv(predictions_file, [report.predictions(t, models) for t in joined.values()])
    write_csv(clip_errors_file, [report.clip_table(t, models) for t in joined.values()])
    write_text(slices_file, dump(rows))
    write_text(tradeoff_file, dump(tradeoff(results, params.sets, models)))
    write_text(metrics_file, dump(results))
    write_text(wer_file, dump(report.headline(results, models)))
    for name, result in results.items():
        print(f"evaluate: {report.summary_line(name, result, models)}")


if __name__ == "__main__":
    stage.main(run)
