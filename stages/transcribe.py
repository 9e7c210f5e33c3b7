"""Stage ``transcribe@<model>``: transcribe the test split with one model.

``python -m stages.transcribe <name> <model dir>`` writes ``reports/transcripts/<name>.csv``.
dvc.yaml runs it for the zero-shot base model and for the fine-tuned one, as separate stages,
so a training experiment does not re-transcribe with the unchanged base model.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
from swedish_transcriber.stage import run_stage

FEATURES = Path("data/features")
OUT_DIR = Path("reports/transcripts")


def run(name: str, model_dir: Path) -> None:
    """Transcribe ``data/features/test`` with the checkpoint in ``model_dir``."""
    from transformers.utils import logging

    logging.set_verbosity_error()  # generate()'s notices about Whisper's own defaults
    params = section("evaluate", EvaluateParams)
    language = section("model", ModelLanguage, subset=True)
    table = subset(load_split(FEATURES, "test"), params.max_clips, params.seed)
    model, processor = load_model(model_dir, language.language, language.task)
    hypotheses = transcribe_table(model, processor, table, params, language.language, language.task)
    out = table.select_columns(
        [c for c in TRANSCRIPT_COLUMNS if c not in ("reference", "hypothesis")] + ["sentence"]
    ).to_pandas()
    out = out.rename(columns={"sentence": "reference"})
    out["hypothesis"] = hypotheses
    with atomic_file(OUT_DIR / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
        out[list(TRANSCRIPT_COLUMNS)].to_csv(fh, index=False)
    print(f"transcribe: {name}: {len(out)} clips -> {OUT_DIR / f'{name}.csv'}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit("usage: python -m stages.transcribe <name> <model dir>")
    run_stage("transcribe", lambda: run(argv[0], Path(argv[1])))


if __name__ == "__main__":
    main()
