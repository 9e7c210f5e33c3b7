"""Stage ``transcribe@<model>``: transcribe the test split with one model.

``python -m stages.transcribe <model dir> data/features reports/transcripts/<name>.csv``.
dvc.yaml runs it for the zero-shot base model and for the fine-tuned one, as separate stages,
so a training experiment does not re-transcribe with the unchanged base model. Decoding is
params ``evaluate.decode``.
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_file
from swedish_transcriber.data.features import load_split
from swedish_transcriber.evaluation.report import TRANSCRIPT_COLUMNS
from swedish_transcriber.evaluation.transcription import (
    EvaluateParams,
    load_model,
    subset,
    transcribe_table,
)
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.params import section


def run(model_dir: Path, features: Path, out_file: Path) -> None:
    """Transcribe ``features/test`` with the checkpoint in ``model_dir`` into ``out_file``."""
    from transformers.utils import logging

    logging.set_verbosity_error()  # generate()'s notices about Whisper's own defaults
    params = section("evaluate", EvaluateParams)
    language = section("model", ModelLanguage, subset=True)
    table = subset(load_split(features, "test"), params.max_clips, params.seed)
    model, processor = load_model(model_dir, language.language, language.task)
    hypotheses = transcribe_table(
        model, processor, table, params.decode, language.language, language.task
    )
    out = table.select_columns(
        [c for c in TRANSCRIPT_COLUMNS if c not in ("reference", "hypothesis")] + ["sentence"]
    ).to_pandas()
    out = out.rename(columns={"sentence": "reference"})
    out["hypothesis"] = hypotheses
    with atomic_file(out_file, "w", encoding="utf-8", newline="") as fh:
        out[list(TRANSCRIPT_COLUMNS)].to_csv(fh, index=False)
    print(f"transcribe: {model_dir}: {len(out)} clips -> {out_file}")


if __name__ == "__main__":
    stage.main(run)
