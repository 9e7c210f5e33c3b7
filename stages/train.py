"""Stage ``train``: fine-tune ``models/base`` on ``data/features/train`` -> ``models/finetuned``.

Every knob is in params ``train``. Checkpoints go to ``checkpoints/`` (a ``persist`` output):
run ``dvc repro`` again after a kill and training resumes from the newest one. For several
GPUs or CPU processes set ``train.launcher`` to e.g. ``torchrun --nproc_per_node=4``.
"""

from __future__ import annotations

from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.model.train_params import TrainParams
from swedish_transcriber.model.training import train
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage


def run() -> None:
    """Read params, train, print the final dev metrics."""
    params = section("train", TrainParams)
    model = section("model", ModelLanguage, subset=True)
    final = train(params, model.language, model.task)
    print("train: final dev metrics " + ", ".join(f"{k}={v}" for k, v in sorted(final.items())))


def main() -> None:
    run_stage("train", run)


if __name__ == "__main__":
    main()
