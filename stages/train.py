"""Stage ``train``: fine-tune the base model on the featurized train split.

``python -m stages.train models/base data/features models/trained checkpoints dvclive``.
The trained model goes to models/trained; the merge stage makes models/finetuned from it.
Every knob is in params ``train``. Checkpoints go to the checkpoints directory (a ``persist``
output): run ``dvc repro`` again after a kill and training resumes from the newest one. For
several GPUs or CPU processes set ``train.launcher`` to e.g. ``torchrun --nproc_per_node=4``.
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.model.training.fine_tune import TrainPaths, train
from swedish_transcriber.model.training.params import TrainParams
from swedish_transcriber.params import section
from swedish_transcriber.whisper import EncoderContext


def run(base_model: Path, features: Path, output: Path, checkpoints: Path, live: Path) -> None:
    """Read params, train, print the final dev metrics."""
    params = section("train", TrainParams)
    model = section("model", ModelLanguage, subset=True)
    context = section("whisper", EncoderContext)
    paths = TrainPaths(base_model, features, output, checkpoints, live)
    final = train(params, model.language, model.task, paths, context=context)
    print("train: final dev metrics " + ", ".join(f"{k}={v}" for k, v in sorted(final.items())))


if __name__ == "__main__":
    stage.main(run)
