"""Stage ``evaluate``: score zero-shot and fine-tuned test transcripts.

``python -m stages.evaluate reports/transcripts/zero_shot.csv reports/transcripts/finetuned.csv
reports/predictions.csv metrics/eval.json metrics/slices.json`` writes the per-utterance
predictions, the DVC metrics (wer, cer, wer_norm, cer_norm per model and
``relative_wer_reduction``) and WER by gender, age, accent and duration (a DVC plot).
"""

from __future__ import annotations

import argparse
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


def run(args: argparse.Namespace) -> None:
    """Join the transcripts, score them and write the three outputs."""
    params = section("evaluate", EvaluateParams)
    joined = join({name: read_transcripts(getattr(args, name)) for name in MODELS})
    result = metrics(joined)
    with atomic_file(args.predictions, "w", encoding="utf-8", newline="") as fh:
        predictions(joined).to_csv(fh, index=False)
    write_text(args.slices, json.dumps(slices(joined, params.duration_buckets), indent=2) + "\n")
    write_text(args.metrics, json.dumps(result, indent=2) + "\n")
    print(
        "evaluate: wer_norm zero-shot {zs:.3f} -> fine-tuned {ft:.3f} "
        "(relative reduction {rel:.1%}) on {n} test clips".format(
            zs=result["zero_shot"]["wer_norm"],
            ft=result["finetuned"]["wer_norm"],
            rel=result["relative_wer_reduction"],
            n=result["test_clips"],
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in MODELS:
        parser.add_argument(name, type=Path, help=f"the {name} model's transcripts (CSV)")
    parser.add_argument("predictions", type=Path, help="per-utterance transcripts and errors")
    parser.add_argument("metrics", type=Path, help="WER and CER per model (JSON, DVC metrics)")
    parser.add_argument("slices", type=Path, help="WER per speaker group (JSON, DVC plot)")
    args = parser.parse_args(argv)
    run_stage("evaluate", lambda: run(args))


if __name__ == "__main__":
    main()
