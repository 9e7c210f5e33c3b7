"""Stage ``rank``: the review queue, every original train and dev clip ranked by suspicion.

``python -m stages.rank models/base models/trained data/features data/validated checkpoints
reports/review_queue.parquet reports/review_queue.csv reports/review_queue.json``.
The fine-tuned model is the train stage's (trained on every clip the queue ranks, before the
merge and before the retrain stage leaves the queue's top out).
For each clip: the fine-tuned model's teacher-forced loss and greedy transcript, the
zero-shot model's transcript, their WER/CER against the label, reading speed and loudness
measures, and (``review.rank.cross_fit``) the same losses and transcript scored by fold
models that did not train on the clip, with the suspect word, each turned into a percentile
score and weighted into ``suspicion`` (params ``review.rank``). The most suspicious clips
(a label read differently, a truncated recording, a clip under the wrong sentence, a wrong
word) come first, for the review page. ``checkpoints``
is only read: the train stage's stored encoder outputs are reused where they fit.
Only when the queue is needed (``review.rank.enabled``, or auto-exclusion on): otherwise
the stage writes the queue's files empty, saying why, and loads no model.
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.model.training.params import TrainParams
from swedish_transcriber.params import section
from swedish_transcriber.review.params import ReviewParams
from swedish_transcriber.review.queue import RankInputs, rank, write_empty_queue
from swedish_transcriber.whisper import EncoderContext


def run(
    base_model: Path,
    finetuned: Path,
    features: Path,
    validated: Path,
    checkpoints: Path,
    queue_parquet: Path,
    queue_csv: Path,
    summary: Path,
) -> None:
    """Read params, measure and rank the clips, write the queue; print its top."""
    params = section("review", ReviewParams)
    outputs = (queue_parquet, queue_csv, summary)
    if not params.queue_needed:
        why = "review.rank.enabled is false and review.auto_exclude_top_fraction is 0"
        write_empty_queue(params.rank, outputs, why)
        print(f"rank: not ranked ({why}); {queue_parquet} is empty")
        return
    model = section("model", ModelLanguage, subset=True)
    inputs = RankInputs(base_model, finetuned, features, validated, checkpoints)
    context = section("whisper", EncoderContext)
    # The fold models of cross-fitting train with the train stage's recipe.
    recipe = section("train", TrainParams) if params.rank.cross_fit.enabled else None
    queue = rank(
        inputs,
        params.rank,
        model.language,
        model.task,
        outputs,
        context=context,
        train_params=recipe,
    )
    print(f"rank: {len(queue)} clips -> {queue_parquet}, {queue_csv}; the most suspicious:")
    for row in queue.head(5).itertuples():
        said = f"{row.sentence!r} -> {row.transcript!r}"
        print(f"  {row.rank}. {row.split}/{row.path} ({row.suspicion:.3f}): {said}")


if __name__ == "__main__":
    stage.main(run)
