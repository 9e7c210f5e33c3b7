"""Stage ``transcribe@<model>``: transcribe every test set with one model.

``python -m stages.transcribe <model dir> data/testsets reports/transcripts/<model>`` writes
``<set>.csv`` for each set of params ``evaluate.sets`` (read from ``data/testsets/<set>``,
which the ``testset@<set>`` stages featurize). dvc.yaml runs it once per entry of
``evaluate.models``, as separate stages, so a training experiment does not re-transcribe with
the unchanged base model. Decoding is params ``evaluate.decode``.

The model directory may be a transformers checkpoint or a CTranslate2 export (``models/ct2``):
both decode the same stored log-mel features, each with the encoder context it records
(``swedish_transcriber/serving/engines/stored_features.py``).
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.features import load_split
from swedish_transcriber.evaluation.report import transcripts_frame
from swedish_transcriber.evaluation.transcription import EvaluateParams, subset
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.params import section
from swedish_transcriber.serving.engines.stored_features import table_transcriber


def run(model_dir: Path, testsets_dir: Path, out_dir: Path) -> None:
    """Transcribe each set of ``evaluate.sets`` with ``model_dir`` into ``out_dir/<set>.csv``."""
    params = section("evaluate", EvaluateParams)
    language = section("model", ModelLanguage, subset=True)
    # Every set is loaded before the model: a missing one fails in seconds, not after decoding.
    tables = {
        name: subset(load_split(testsets_dir, name), params.max_clips, params.seed)
        for name in params.sets
    }
    transcribe = table_transcriber(model_dir, language, params.decode)
    with atomic_dir(out_dir) as tmp:
        for name, table in tables.items():
            print(f"transcribe: {model_dir}: set {name}, {len(table)} clips")
            frame = transcripts_frame(table, transcribe(table))
            frame.to_csv(tmp / f"{name}.csv", index=False, encoding="utf-8")
    print(f"transcribe: {model_dir}: {', '.join(tables)} -> {out_dir}")


if __name__ == "__main__":
    stage.main(run)
