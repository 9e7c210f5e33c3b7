"""Stage ``evaluate``: score zero-shot and fine-tuned test transcripts.

``python -m stages.evaluate reports/transcripts/zero_shot.csv reports/transcripts/finetuned.csv
reports/predictions.csv metrics/eval.json metrics/slices.json`` writes the per-utterance
predictions, the DVC metrics (wer, cer, wer_norm, cer_norm per model and
``relative_wer_reduction``) and WER by gender, age, accent and duration (a DVC plot).
"""

from __future__ import annotations

import json
from pathlib import Path

from swedish_transcriber import stage
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


def run(
    zero_shot: Path, finetuned: Path, predictions_file: Path, metrics_file: Path, slices_file: Path
) -> None:
    """Join the transcripts, score them and write the three outputs."""
    params = section("evaluate", EvaluateParams)
    files = {"zero_shot": zero_shot, "finetuned": finetuned}
    joined = join({name: read_transcripts(files[name]) for name in MODELS})
    result = metrics(joined)
    with atomic_file(predictions_file, "w", encoding="utf-8", newline="") as fh:
        predictions(joined).to_csv(fh, index=False)
    write_text(slices_file, json.dumps(slices(joined, params.duration_buckets), indent=2) + "\n")
    write_text(metrics_file, json.dumps(result, indent=2) + "\n")
    print(
        "evaluate: wer_norm zero-shot {zs:.3f} -> fine-tuned {ft:.3f} "
        "(relative reduction {rel:.1%}) on {n} test clips".format(
            zs=result["zero_shot"]["wer_norm"],
            ft=result["finetuned"]["wer_norm"],
            rel=result["relative_wer_reduction"],
            n=result["test_clips"],
        )
    )


if __name__ == "__main__":
    stage.main(run)
