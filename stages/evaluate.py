"""Stage ``evaluate``: score zero-shot and fine-tuned test transcripts.

Writes ``metrics/eval.json`` (DVC metrics: wer, cer, wer_norm, cer_norm per model and
``relative_wer_reduction``), ``reports/predictions.csv`` (per utterance) and
``metrics/slices.json`` (WER by gender, age, accent and duration: a DVC plot).
"""

from __future__ import annotations

import json
from pathlib import Path

from swedish_transcriber.atomic import atomic_file, write_text
from swedish_transcriber.evaluation.report import (
    MODELS,
    join,
    metrics,
    predictions,
    read_transcripts,
    slices,
)
from swedish_transcriber.evaluation.transcription import EvaluateParams
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage

TRANSCRIPTS = Path("reports/transcripts")
METRICS = Path("metrics/eval.json")
SLICES = Path("metrics/slices.json")
PREDICTIONS = Path("reports/predictions.csv")


def run() -> None:
    """Join the transcripts, score them and write the three outputs."""
    params = section("evaluate", EvaluateParams)
    joined = join({name: read_transcripts(TRANSCRIPTS / f"{name}.csv") for name in MODELS})
    result = metrics(joined)
    with atomic_file(PREDICTIONS, "w", encoding="utf-8", newline="") as fh:
        predictions(joined).to_csv(fh, index=False)
    write_text(SLICES, json.dumps(slices(joined, params.duration_buckets), indent=2) + "\n")
    write_text(METRICS, json.dumps(result, indent=2) + "\n")
    print(
        "evaluate: wer_norm zero-shot {zs:.3f} -> fine-tuned {ft:.3f} "
        "(relative reduction {rel:.1%}) on {n} test clips".format(
            zs=result["zero_shot"]["wer_norm"],
            ft=result["finetuned"]["wer_norm"],
            rel=result["relative_wer_reduction"],
            n=result["test_clips"],
        )
    )


def main() -> None:
    run_stage("evaluate", run)


if __name__ == "__main__":
    main()
