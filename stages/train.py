"""Stage ``train``: fine-tune the base model on the featurized train split.

``python -m stages.train models/base data/features models/finetuned checkpoints dvclive``.
Every knob is in params ``train``. Checkpoints go to the checkpoints directory (a ``persist``
output): run ``dvc repro`` again after a kill and training resumes from the newest one. For
several GPUs or CPU processes set ``train.launcher`` to e.g. ``torchrun --nproc_per_node=4``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.model.train_params import TrainParams
from swedish_transcriber.model.training import TrainPaths, train
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage


def run(paths: TrainPaths) -> None:
    """Read params, train, print the final dev metrics."""
    params = section("train", TrainParams)
    model = section("model", ModelLanguage, subset=True)
    final = train(params, model.language, model.task, paths)
    print("train: final dev metrics " + ", ".join(f"{k}={v}" for k, v in sorted(final.items())))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_model", type=Path, help="the model to fine-tune")
    parser.add_argument("features", type=Path, help="feature tables (train and dev are read)")
    parser.add_argument("output", type=Path, help="the fine-tuned model to write")
    parser.add_argument("checkpoints", type=Path, help="resume points and the encoder cache")
    parser.add_argument("live", type=Path, help="DVCLive's metrics and plots")
    args = parser.parse_args(argv)
    paths = TrainPaths(args.base_model, args.features, args.output, args.checkpoints, args.live)
    run_stage("train", lambda: run(paths))


if __name__ == "__main__":
    main()
